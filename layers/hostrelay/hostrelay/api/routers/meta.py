"""Routes about the API itself: health (no auth)."""

# No `from __future__ import annotations`: Powertools reads these signatures at runtime.

import time

from aws_lambda_powertools.event_handler.api_gateway import Router

from hostrelay import __version__
from hostrelay.api.models.meta import Health
from hostrelay.api.routers import new_router


def meta_router() -> Router:
    router = new_router()

    @router.get(
        "/v1/health",
        summary="Health check",
        description=(
            "Answers without a token; use it for load balancer and uptime checks. Relays "
            "compare `time` with their clock."
        ),
        tags=["meta"],
        responses={200: {"description": "The API is up"}},
    )
    def health() -> Health:
        return Health(status="ok", version=__version__, time=time.time())

    return router
