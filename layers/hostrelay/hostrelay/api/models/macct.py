"""Models of the macct (LINBO) routes: the contract's params plus the domain controller."""

from __future__ import annotations

from pydantic import Field

from hostrelay.api.models.base import ResponseModel
from hostrelay.api.models.jobs import JobOut
from hostrelay_contract.jobs.macct import MacctCaptureParams, MacctRepairParams
from hostrelay_contract.names import HostName


class MacctRepairRequest(MacctRepairParams):
    """The params of a macct.repair job, and the domain controller that runs it."""

    host: HostName = Field(description="The domain controller whose relay repairs the accounts")


class MacctCaptureRequest(MacctCaptureParams):
    """The params of a macct.capture job, and the domain controller that runs it."""

    host: HostName = Field(description="The domain controller whose relay captures the secrets")


class MacctRepairResponse(ResponseModel):
    """Which job repairs each computer: a new job, or one that was already pending."""

    created: JobOut | None = Field(description="The job queued by this request, if any")
    reused: list[JobOut] = Field(description="Pending repairs that already cover computers")
    computers: dict[str, str] = Field(description="Account name (upper case) → job id")
