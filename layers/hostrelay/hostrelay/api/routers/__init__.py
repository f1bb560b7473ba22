"""One Router per resource, each built from the API's services."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.api_gateway import Router


def new_router() -> Router:
    # Powertools leaves Router.__init__ unannotated; keep mypy --strict's complaint here.
    return Router()  # type: ignore[no-untyped-call]
