"""`ping`: proves the whole path works; echoes a message and reports the relay's clock."""

from __future__ import annotations

import platform
import time
from typing import Any

from pydantic import Field

from hostrelay_relay import __version__
from hostrelay_relay.handlers.base import Handler, JobContext, StrictParams


class PingParams(StrictParams):
    message: str = Field(default="", max_length=1024)
    sleep_s: float = Field(default=0.0, ge=0, le=3600)


class PingHandler(Handler[PingParams]):
    type = "ping"
    params_model = PingParams

    def run(self, params: PingParams, ctx: JobContext) -> dict[str, Any]:
        deadline = time.monotonic() + params.sleep_s
        while time.monotonic() < deadline:
            ctx.check_cancel_or_timeout()
            ctx.cancel_event.wait(min(0.1, max(0.0, deadline - time.monotonic())))
        ctx.check_cancel_or_timeout()
        return {
            "pong": True,
            "message": params.message,
            "relay_version": __version__,
            "hostname": platform.node(),
            "clock": time.time(),
        }
