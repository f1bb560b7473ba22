"""Time in one place, so tests and the sweeper agree on what 'now' means."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def isoformat(moment: datetime) -> str:
    """Sortable ISO-8601 in UTC with microseconds, used in index sort keys."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
