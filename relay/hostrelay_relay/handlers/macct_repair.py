"""`macct.repair`: give restored computers their image's captured machine secrets."""

from __future__ import annotations

from typing import Any

from hostrelay_contract.jobs.macct import MacctRepairParams
from hostrelay_relay.handlers.base import Handler, JobContext
from hostrelay_relay.macct.doctor import disabled_reason
from hostrelay_relay.macct.errors import MacctError
from hostrelay_relay.macct.job_errors import as_job_error
from hostrelay_relay.macct.repair import repair_machine_accounts
from hostrelay_relay.macct.run_limits import RunLimits


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
