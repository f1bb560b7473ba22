"""Stands in for Lambda's Invoke API for the functions of this process (`Event` type only)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urlsplit

from hostrelay_local.in_process_answers import answer, skip_answered_in_moto

# Function name -> what takes its asynchronous invocations (queues the event, returns).
_targets: dict[str, Callable[[dict[str, Any]], None]] = {}
_HOOK = "before-send.lambda.Invoke"


def invoke_in_process(function_name: str, target: Callable[[dict[str, Any]], None]) -> None:
    """From now on an asynchronous invocation of `function_name` by a boto3 client of this
    process is handed to `target` (with the event) and answered 202, as Lambda does once it
    has queued the event; other invocations go out as usual."""
    import boto3
    from botocore.handlers import BUILTIN_HANDLERS, REGISTER_FIRST

    _targets[function_name] = target
    skip_answered_in_moto()
    hook = (_HOOK, _invoke_in_process, REGISTER_FIRST)  # before moto's stubber, in tests
    if hook not in BUILTIN_HANDLERS:
        BUILTIN_HANDLERS.append(hook)  # sessions created from now on
    if boto3.DEFAULT_SESSION is not None:
        boto3.DEFAULT_SESSION.events.register_first(_HOOK, _invoke_in_process, unique_id=_HOOK)


def withdraw(function_name: str) -> None:
    _targets.pop(function_name, None)


def _invoke_in_process(request: Any, **kwargs: Any) -> Any:
    """botocore `before-send` hook: `POST /2015-03-31/functions/{name}/invocations`."""
    parts = urlsplit(request.url).path.split("/")
    if len(parts) < 5 or parts[-1] != "invocations":
        return None
    name = unquote(parts[-2]).rsplit(":function:", 1)[-1].split(":", 1)[0]
    target = _targets.get(name)
    if target is None or request.headers.get("X-Amz-Invocation-Type") not in (b"Event", "Event"):
        return None
    body = request.body or b""
    target(json.loads(body if isinstance(body, bytes) else body.read()))
    return answer(request, 202, b"")
