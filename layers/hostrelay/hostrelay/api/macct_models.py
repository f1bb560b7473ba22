"""Request and response models of the LINBO machine-account endpoints."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StringConstraints

from hostrelay.api.models import HostName, JobOut
from hostrelay.job_types import ComputerName, ImageName

SchoolName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MacctRepairRequest(_Request):
    host: HostName = Field(description="The domain controller whose relay repairs the accounts")
    image: ImageName = Field(description="The LINBO image whose captured secrets are restored")
    computers: list[ComputerName] = Field(min_length=1, max_length=500)
    school: SchoolName | None = Field(default=None, description="Limit lookups to this school")
    dry_run: StrictBool = False


class MacctCaptureRequest(_Request):
    host: HostName
    image: ImageName
    computer: ComputerName


class MacctRepairResponse(BaseModel):
    """Which job repairs each computer: a new job, or one that was already pending."""

    created: JobOut | None = Field(description="The job queued by this request, if any")
    reused: list[JobOut] = Field(description="Pending repairs that already cover computers")
    computers: dict[str, str] = Field(description="Account name (upper case) → job id")
