"""When a macct step must stop: the job's deadline and, where safe, its cancel flag."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from hostrelay_relay.macct.errors import StepCanceled, StepTimedOut


@dataclass(frozen=True)
class RunLimits:
    """`deadline` is monotonic time; `cancel` is None where stopping halfway is unsafe."""

    deadline: float
    cancel: threading.Event | None = None

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def check(self, what: str) -> None:
        """Raise StepTimedOut/StepCanceled if `what` must not go on."""
        if self.cancel is not None and self.cancel.is_set():
            raise StepCanceled(f"{what} stopped: job canceled")
        if self.remaining() <= 0:
            raise StepTimedOut(f"{what} ran past the job deadline")

    def without_cancel(self) -> RunLimits:
        return RunLimits(self.deadline)
