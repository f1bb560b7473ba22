"""Models of the meta routes (health)."""

from __future__ import annotations

from pydantic import Field

from hostrelay.api.models.base import ResponseModel


class Health(ResponseModel):
    status: str = Field(description="Always `ok` when the API answers")
    version: str = Field(description="Version of the control-plane code")
    time: float = Field(description="The control plane's clock (Unix seconds): relays check theirs")
