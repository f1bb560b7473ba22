"""A job's params judged by the contract's model of its type, as the relay will judge them."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from hostrelay.domain.errors import InvalidRequest
from hostrelay_contract.job_types import JOB_TYPES, UnknownJobType, validate_params


def check_job_params(job_type: str, params: dict[str, Any]) -> dict[str, Any]:
    """`params` unchanged if the relay would accept their shape, else InvalidRequest (422).

    The params are stored and signed as sent: the relay validates those very bytes again.
    """
    try:
        validate_params(job_type, params)
    except UnknownJobType:
        raise InvalidRequest(
            f"unknown job type {job_type!r}",
            details=[{"field": "type", "allowed": sorted(JOB_TYPES)}],
        ) from None
    except ValidationError as exc:
        raise InvalidRequest(
            f"invalid params for {job_type}",
            details=[
                {"field": ".".join(str(p) for p in ("params", *err["loc"])), "message": err["msg"]}
                for err in exc.errors()
            ],
        ) from None
    return params
