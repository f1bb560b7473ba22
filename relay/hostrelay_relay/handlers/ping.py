"""`ping`: proves the whole path works; echoes a message and reports the relay's clock."""

from __future__ import annotations

import platform
import time
from typing import Any

from hostrelay_contract.jobs.ping import PingParams, PingResult
from hostrelay_relay import __version__
from hostrelay_relay.handlers.base import Handler, JobContext


class PingHandler(Handler[PingParams]):
    type = "ping"
    params_model = PingParams
    repeatable = True  # reads only

    def run(self, params: PingParams, ctx: JobContext) -> dict[str, Any]:
        deadline = time.monotonic() + params.sleep_s
        while time.monotonic() < deadline:
            ctx.check_cancel_or_timeout()
            ctx.cancel_event.wait(min(0.1, max(0.0, deadline - time.monotonic())))
        ctx.check_cancel_or_timeout()
        return PingResult(
            pong=True,
            message=params.message,
            relay_version=__version__,
            hostname=platform.node(),
            clock=time.time(),
        ).model_dump()
