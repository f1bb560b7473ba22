"""Job handlers that exist only for relay tests, registered through HandlerRegistry's table."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from hostrelay_contract.base import StrictParams
from hostrelay_relay.handlers.base import Handler, JobContext


class TickerParams(StrictParams):
    count: int = Field(ge=1, le=10_000)
    interval_s: float = Field(default=0.05, ge=0, le=10)


class TickerHandler(Handler[TickerParams]):
    """Reports progress `done` = 0..count-1, one every interval: a stream of ordered events."""

    type = "test.ticker"
    params_model = TickerParams

    def run(self, params: TickerParams, ctx: JobContext) -> dict[str, Any]:
        for done in range(params.count):
            ctx.check_cancel_or_timeout()
            ctx.progress(done, params.count, f"tick {done}")
            ctx.cancel_event.wait(params.interval_s)
        return {"ticks": params.count}
