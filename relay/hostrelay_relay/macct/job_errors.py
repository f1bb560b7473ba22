"""The one place macct domain errors become the JobError a relay job reports."""

from __future__ import annotations

from hostrelay_relay.handlers.base import JobCanceled, JobError, JobTimedOut
from hostrelay_relay.macct.errors import MacctError, StepCanceled, StepTimedOut


def as_job_error(exc: MacctError) -> JobError:
    if isinstance(exc, StepTimedOut):
        return JobTimedOut(exc.message, result=exc.result)
    if isinstance(exc, StepCanceled):
        return JobCanceled(exc.message, result=exc.result)
    return JobError(exc.code, exc.message, result=exc.result)
