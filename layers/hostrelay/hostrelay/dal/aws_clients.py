"""boto3 clients created once per container, on first use (keeps cold imports small)."""

from __future__ import annotations

from functools import cache
from typing import Any


@cache
def client(service: str, endpoint_url: str | None = None) -> Any:
    import boto3

    factory: Any = boto3.client
    return factory(service, endpoint_url=endpoint_url or None)
