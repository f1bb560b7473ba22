"""The plugin interface every relay job handler implements: validate params, run, report."""

from __future__ import annotations

import builtins
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, TypeVar

from pydantic import BaseModel

if TYPE_CHECKING:
    from hostrelay_relay.settings import RelaySettings

OutputStream = Literal["stdout", "stderr"]


ParamsT = TypeVar("ParamsT", bound=BaseModel)


class JobError(Exception):
    """A handler failure reported to the control plane as `error: {code, message}`."""

    outcome: ClassVar[str] = "failed"

    def __init__(
        self,
        code: str,
        message: str,
        *,
        result: dict[str, Any] | None = None,
        retryable: bool = False,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.result = result
        self.retryable = retryable


class JobTimedOut(JobError):
    """The job ran past its deadline; everything it started has been stopped."""

    outcome: ClassVar[str] = "timed_out"

    def __init__(self, message: str = "job ran past its timeout", **kwargs: Any) -> None:
        super().__init__("timeout", message, **kwargs)


class JobCanceled(JobError):
    """The control plane asked to cancel; everything the job started has been stopped."""

    outcome: ClassVar[str] = "canceled"

    def __init__(self, message: str = "job canceled on request", **kwargs: Any) -> None:
        super().__init__("canceled", message, **kwargs)


def _no_event_sink(kind: str, body: dict[str, Any]) -> None:
    raise NotImplementedError("this relay cannot publish job events yet")


@dataclass
class JobContext:
    """What a running handler may know and do: its identity, deadline, cancel flag, reporters."""

    job_id: str
    attempt: int
    host: str
    settings: RelaySettings
    timeout_s: float
    report_progress: Callable[[int, int | None, str], None]
    report_output: Callable[[OutputStream, bytes], None]
    cancel_event: threading.Event = field(default_factory=threading.Event)
    started_monotonic: float = field(default_factory=time.monotonic)
    # Publishes a job-scoped event of `kind` (e.g. "inventory" batches of ldap.sync).
    report_event: Callable[[str, dict[str, Any]], None] = _no_event_sink

    @property
    def deadline(self) -> float:
        """Monotonic time at which the job must be stopped."""
        return self.started_monotonic + self.timeout_s

    @property
    def state_dir(self) -> Path:
        return self.settings.state_dir

    def remaining(self) -> float:
        return max(0.0, self.deadline - time.monotonic())

    def progress(self, done: int, total: int | None = None, message: str = "") -> None:
        self.report_progress(done, total, message)

    def output(self, stream: OutputStream, data: bytes) -> None:
        self.report_output(stream, data)

    def check_cancel_or_timeout(self) -> None:
        """Raise JobCanceled/JobTimedOut at a safe point in long handler loops."""
        if self.cancel_event.is_set():
            raise JobCanceled()
        if time.monotonic() >= self.deadline:
            raise JobTimedOut()


class Handler(ABC, Generic[ParamsT]):
    """One job type. Subclasses set `type` and `params_model` and implement `run`.

    `validate` runs before the job is accepted: raising pydantic.ValidationError (or
    ValueError) rejects the envelope with reason `invalid_params` and nothing runs.
    `run` returns the result object; raising JobError ends the job FAILED (or TIMED_OUT /
    CANCELED for the subclasses) with that code and message.
    """

    type: ClassVar[str]
    params_model: ClassVar[builtins.type[BaseModel]]  # `type` is shadowed just above
    # True only for a job that changes nothing, on the host or anywhere else: run twice,
    # it does no harm. It then starts without waiting for its start mark to reach the disk
    # (the start journal's fsync, 2-4 ms on a VM disk, on every job's way): should the relay
    # die before the mark is written, the job is reported `relay_stopped` (retryable), which
    # is true of such a job. Closed by default.
    repeatable: ClassVar[bool] = False

    def __init__(self, settings: RelaySettings) -> None:
        self.settings = settings

    def validate(self, raw: dict[str, Any]) -> ParamsT:
        return self.params_model.model_validate(raw)  # type: ignore[return-value]

    def enabled(self) -> str | None:
        """None when this host can run the job type, else why not (reported as rejection)."""
        return None

    @abstractmethod
    def run(self, params: ParamsT, ctx: JobContext) -> dict[str, Any]:
        """Do the work; return the JSON-serialisable result."""
