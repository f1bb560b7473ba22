"""Loads a function's handler the way Lambda does (CodeUri + Handler) and invokes it."""

from __future__ import annotations

import importlib.util
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from hostrelay_local.template import FunctionSpec

LambdaHandler = Callable[[dict[str, Any], Any], Any]


@dataclass
class FakeLambdaContext:
    """The attributes Powertools reads from a Lambda context object."""

    function_name: str
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:local"
    aws_request_id: str = ""
    timeout_s: int = 30

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_s
        self.aws_request_id = self.aws_request_id or str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def load_handler(spec: FunctionSpec, environment: dict[str, str]) -> LambdaHandler:
    """Import `<CodeUri>/<module>.py` under a unique name with the function's environment.

    Settings are validated at import (cold start), so the environment must be in place then;
    it is restored afterwards because several functions share this process.
    """
    module_name, _, attr = spec.handler.rpartition(".")
    path = spec.code_uri / f"{module_name.replace('.', '/')}.py"
    unique = f"hostrelay_fn_{spec.logical_id}_{uuid.uuid4().hex[:8]}"
    module_spec = importlib.util.spec_from_file_location(unique, path)
    if module_spec is None or module_spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(module_spec)
    from hostrelay import cold_start
    from hostrelay.settings import load_settings

    try:
        with _environment(environment):
            load_settings.cache_clear()
            sys.modules[unique] = module
            module_spec.loader.exec_module(module)
    finally:
        cold_start.loaded()  # also when the handler failed to load: collect again
    handler: LambdaHandler = getattr(module, attr)
    return handler


def invoke(handler: LambdaHandler, event: dict[str, Any], function_name: str) -> Any:
    return handler(event, FakeLambdaContext(function_name=function_name))
