"""`ping`: proves the whole path works; echoes a message and reports the relay's clock."""

from __future__ import annotations

from pydantic import Field

from hostrelay_contract.base import JobResult, StrictParams


class PingParams(StrictParams):
    message: str = Field(default="", max_length=1024, description="Echoed back in the result")
    sleep_s: float = Field(default=0.0, ge=0, le=3600, description="Wait this long first")


class PingResult(JobResult):
    pong: bool
    message: str
    relay_version: str
    hostname: str
    clock: float = Field(description="The relay's clock (Unix seconds) when it answered")
