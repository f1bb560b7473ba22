"""`macct.capture` and `macct.repair`: machine-account secrets of LINBO images on a DC."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from hostrelay_contract.base import JobResult, StrictParams
from hostrelay_contract.names import ComputerName, ImageName, SchoolName

MAX_COMPUTERS = 500
RepairStatus = Literal["updated", "unchanged", "would_update", "not_found", "failed"]
REPAIR_STATUSES: tuple[RepairStatus, ...] = (
    "updated",
    "unchanged",
    "would_update",
    "not_found",
    "failed",
)


class MacctCaptureParams(StrictParams):
    image: ImageName = Field(description="The LINBO image the secrets are kept for")
    computer: ComputerName = Field(description="Its computer name, upper-cased by the relay")


class MacctRepairParams(StrictParams):
    image: ImageName = Field(description="The LINBO image whose captured secrets are restored")
    computers: list[ComputerName] = Field(min_length=1, max_length=MAX_COMPUTERS)
    school: SchoolName | None = Field(default=None, description="Limit lookups to this school")
    dry_run: bool = False

    @field_validator("computers")
    @classmethod
    def _once_each(cls, values: list[str]) -> list[str]:
        """`pc01` and `PC01$` are one computer: repeats are dropped, order is kept."""
        return list(dict.fromkeys(values))


class MacctCaptureResult(JobResult):
    """The captured secrets stay on the DC: the result names them, never their values."""

    image: str
    computer: str
    dn: str
    captured_at: str = Field(description="ISO 8601 UTC time, e.g. 2026-01-31T12:00:00Z")
    attributes: list[str] = Field(description="Names of the attributes captured")


class RepairedComputer(JobResult):
    computer: str
    status: RepairStatus
    dn: str | None = None
    reason: str | None = None


class RepairCounts(JobResult):
    updated: int
    unchanged: int
    would_update: int
    not_found: int
    failed: int


class MacctRepairResult(JobResult):
    image: str
    school: str | None
    dry_run: bool
    counts: RepairCounts
    computers: list[RepairedComputer]
