"""Warm Lambda containers of one function: each serves one invocation at a time, like Lambda."""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any

from aws_lambda_powertools.metrics.functions import is_metrics_disabled

from hostrelay_local.lambda_runtime import FakeLambdaContext, LambdaHandler, load_handler
from hostrelay_local.template import FunctionSpec

logger = logging.getLogger(__name__)
FUNCTION_ARN_PREFIX = "arn:aws:lambda:us-east-1:123456789012:function:"
# A cold start swaps os.environ for the function's environment: one at a time per process.
_cold_start_lock = threading.Lock()


class FunctionRuntime:
    """Runs one template function with up to `max_concurrency` warm containers.

    A container is the function's module loaded once (its cold start) with its environment;
    Powertools keeps per-invocation state on module objects, so one container never serves
    two invocations at once. Containers are created on demand and reused.
    """

    def __init__(self, spec: FunctionSpec, environment: dict[str, str], max_concurrency: int = 1):
        self.spec = spec
        self.environment = dict(environment)
        self._max = max(1, max_concurrency)
        self._idle: queue.LifoQueue[LambdaHandler] = queue.LifoQueue()
        self._slots = threading.Semaphore(self._max)

    @property
    def name(self) -> str:
        return self.spec.logical_id

    def warm_up(self) -> None:
        """Cold-start one container now, so the first request does not pay for it."""
        self._idle.put(self._new_container())

    def _new_container(self) -> LambdaHandler:
        with _cold_start_lock:
            handler = load_handler(self.spec, self.environment)
        logger.debug("function container started", extra={"function": self.name})
        return handler

    def invoke(self, event: dict[str, Any]) -> Any:
        """Invoke synchronously; exceptions from the handler propagate (a failed invocation)."""
        with self._slots:
            try:
                handler = self._idle.get_nowait()
            except queue.Empty:
                handler = self._new_container()
            try:
                context = FakeLambdaContext(
                    function_name=self.name,
                    invoked_function_arn=f"{FUNCTION_ARN_PREFIX}{self.name}",
                    timeout_s=self.spec.timeout_s,
                )
                return handler(event, context)
            finally:
                _forget_unpublished_metrics()
                self._idle.put(handler)


def _forget_unpublished_metrics() -> None:
    """What Lambda's flush after each invocation does, when metrics are not published.

    The local stack sets POWERTOOLS_METRICS_DISABLED (EMF blobs on the console help no one),
    and then Powertools' flush neither prints nor clears: every Metrics instance in a process
    shares one metric set, which grew with every job until a metric's 100th value, when
    Powertools prints the EMF blob regardless. Dropping the set after each invocation keeps
    the console quiet and the stack's memory flat.
    """
    if is_metrics_disabled():
        # Imported by the handler's cold start, under the stack's environment (its Tracer
        # reads POWERTOOLS_TRACE_DISABLED at import): not at this module's import.
        from hostrelay.observability import metrics

        metrics.clear_metrics()
