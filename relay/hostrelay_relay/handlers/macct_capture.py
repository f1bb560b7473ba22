"""`macct.capture`: keep an image's machine-account secrets on this DC (never in the result)."""

from __future__ import annotations

from typing import Any

from hostrelay_contract.jobs.macct import MacctCaptureParams
from hostrelay_relay.handlers.base import Handler, JobContext
from hostrelay_relay.macct.capture import capture_machine_account
from hostrelay_relay.macct.doctor import disabled_reason
from hostrelay_relay.macct.errors import MacctError
from hostrelay_relay.macct.job_errors import as_job_error
from hostrelay_relay.macct.run_limits import RunLimits


class MacctCaptureHandler(Handler[MacctCaptureParams]):
    type = "macct.capture"
    params_model = MacctCaptureParams

    def enabled(self) -> str | None:
        return disabled_reason(self.settings.macct)

    def run(self, params: MacctCaptureParams, ctx: JobContext) -> dict[str, Any]:
        limits = RunLimits(ctx.deadline, ctx.cancel_event)
        try:
            return capture_machine_account(self.settings, params.image, params.computer, limits)
        except MacctError as exc:
            raise as_job_error(exc) from exc
