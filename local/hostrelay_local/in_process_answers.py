"""Answers to AWS calls that the local stack serves in its own process, without HTTP or moto.

Two botocore `before-send` hooks answer calls whose target lives in this process: the IoT
data plane's Publish (iot_bridge.py) and Lambda's asynchronous Invoke of a local function
(lambda_invoke.py). botocore calls *every* `before-send` handler and keeps the first answer,
so moto's stubber, registered for all services, would still run on a request already
answered: it routed the URL through its services' patterns and ran its own Lambda invoke or
kept the published payload in memory (about a third of the API's job creation). An answered
request is marked in its context, and `skip_answered_in_moto` makes moto's stubber pass on
marked requests.
"""

from __future__ import annotations

import threading
from typing import Any

_ANSWERED = "hostrelay_local_answered"
_patch_lock = threading.Lock()


class _RawBody:
    """The `raw` of a botocore response built without HTTP."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **kwargs: Any) -> Any:
        yield self._body


def answer(request: Any, status: int, body: bytes, error_type: str = "") -> Any:
    """The response to `request`, marked as answered in this process."""
    from botocore.awsrequest import AWSResponse, HTTPHeaders

    if request.context is not None:
        request.context[_ANSWERED] = True
    headers = HTTPHeaders()
    headers["Content-Type"] = "application/json"
    if error_type:
        headers["x-amzn-ErrorType"] = error_type
    return AWSResponse(request.url, status, headers, _RawBody(body))


def answered(request: Any) -> bool:
    context = getattr(request, "context", None)
    return bool(context and context.get(_ANSWERED))


def skip_answered_in_moto() -> None:
    """moto's stubber passes (None) on requests an in-process hook answered. Idempotent."""
    from moto.core.botocore_stubber import BotocoreStubber

    with _patch_lock:
        call = BotocoreStubber.__call__
        if getattr(call, "_skips_answered", False):
            return

        def stub_unanswered(self: Any, event_name: str, request: Any, **kwargs: Any) -> Any:
            if answered(request):
                return None
            return call(self, event_name, request, **kwargs)

        stub_unanswered._skips_answered = True  # type: ignore[attr-defined]
        BotocoreStubber.__call__ = stub_unanswered  # type: ignore[method-assign]
