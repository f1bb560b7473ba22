"""Validation of names that reach topics, file paths or directory lookups."""

from __future__ import annotations

import re

_HOST_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


def check_host_name(value: str) -> str:
    """A host name is one lowercase DNS label: it becomes an MQTT topic level and a cert CN."""
    if not _HOST_LABEL.fullmatch(value):
        raise ValueError(
            "host must be a DNS label: 1-63 of a-z, 0-9 and '-', not starting or ending with '-'"
        )
    return value
