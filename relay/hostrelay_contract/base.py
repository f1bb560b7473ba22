"""The two kinds of model every job type has: strict params and its documented result."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictParams(BaseModel):
    """Job params: unknown fields are an error and values are never coerced (`"5"` is no 5).

    The API validates a job's params with the very model the relay runs it with, so what
    the relay would reject for its shape is a 422 before a job exists.
    """

    # defer_build: a Lambda container or a relay builds only the types it meets.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, defer_build=True)


class JobResult(BaseModel):
    """The `result` object of a job that ran: what the handler returns, nothing more."""

    model_config = ConfigDict(extra="forbid", defer_build=True)
