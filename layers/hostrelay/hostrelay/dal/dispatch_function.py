"""The dispatch function, started for a fresh job by an asynchronous Lambda invocation."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from hostrelay.dal.aws_clients import client
from hostrelay.dal.dispatch_queue import dispatch_body
from hostrelay.domain.jobs import Job


class InvokeUnavailable(RuntimeError):
    """Lambda did not take the invocation (throttled, unreachable, denied)."""


class DispatchFunction:
    def __init__(self, function_name: str) -> None:
        self._function_name = function_name

    def start(self, job: Job, *, host_online: bool = False) -> None:
        """Ask the dispatch function to publish `job` (as just written, carried like a
        queue message). Lambda queues the event and answers at once (202); should the
        function fail on it, Lambda retries it and then sends it to the function's
        on-failure destination, the dispatch queue (template.yaml)."""
        try:
            client("lambda").invoke(
                FunctionName=self._function_name,
                InvocationType="Event",
                Payload=dispatch_body(
                    job.id, job.attempt, job=job, host_online=host_online
                ).encode(),
            )
        except (BotoCoreError, ClientError) as exc:
            raise InvokeUnavailable(f"dispatch function refused job {job.id}: {exc}") from exc
