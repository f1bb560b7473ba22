"""`macct.repair`: give restored computers their image's captured machine secrets."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from hostrelay_relay.handlers.base import Handler, JobContext, StrictParams
from hostrelay_relay.macct.doctor import disabled_reason
from hostrelay_relay.macct.errors import MacctError
from hostrelay_relay.macct.job_errors import as_job_error
from hostrelay_relay.macct.names import (
    check_image_name,
    check_school_name,
    normalize_computer_name,
)
from hostrelay_relay.macct.repair import repair_machine_accounts
from hostrelay_relay.macct.run_limits import RunLimits

MAX_COMPUTERS = 500


class MacctRepairParams(StrictParams):
    image: str
    computers: list[str] = Field(min_length=1, max_length=MAX_COMPUTERS)
    school: str | None = None
    dry_run: bool = False

    @field_validator("image")
    @classmethod
    def _image(cls, value: str) -> str:
        return check_image_name(value)

    @field_validator("computers")
    @classmethod
    def _computers(cls, values: list[str]) -> list[str]:
        """Normalize every name (`pc01`, `PC01$` → `PC01`); drop repeats, keep order."""
        normalized: list[str] = []
        for index, value in enumerate(values):
            try:
                normalized.append(normalize_computer_name(value))
            except ValueError as exc:
                raise ValueError(f"computers[{index}]: {exc}") from exc
        return list(dict.fromkeys(normalized))

    @field_validator("school")
    @classmethod
    def _school(cls, value: str | None) -> str | None:
        return None if value is None else check_school_name(value)


class MacctRepairHandler(Handler[MacctRepairParams]):
    type = "macct.repair"
    params_model = MacctRepairParams

    def enabled(self) -> str | None:
        return disabled_reason(self.settings.macct)

    def run(self, params: MacctRepairParams, ctx: JobContext) -> dict[str, Any]:
        limits = RunLimits(ctx.deadline, ctx.cancel_event)
        try:
            return repair_machine_accounts(
                self.settings,
                image=params.image,
                computers=params.computers,
                school=params.school,
                dry_run=params.dry_run,
                limits=limits,
                progress=ctx.progress,
            )
        except MacctError as exc:
            raise as_job_error(exc) from exc
