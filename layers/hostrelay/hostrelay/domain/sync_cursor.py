"""Where a source's last run read up to, and whether the next run may read only what changed."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta

from pydantic import BaseModel, Field


class IncrementalSchedule(BaseModel):
    """When a source that can read its changes since the last run reads everything instead:
    only a full run sees what was deleted."""

    full_sync_every: int = Field(
        default=24,
        ge=1,
        le=10_000,
        description="Every Nth run reads everything (1: every run); the runs between read "
        "only what changed since the run before",
    )
    full_sync_max_age_h: int = Field(
        default=24,
        ge=1,
        le=24 * 31,
        description="A run reads everything when the last full run is older than this",
    )


_SCHEDULE_FIELDS = frozenset(IncrementalSchedule.model_fields)


class CursorExpired(Exception):
    """The source no longer has the changes since the stored position (Kubernetes: 410 Gone):
    the run reads everything instead."""


class SyncCursor(BaseModel):
    """Stored after every successful run of an incremental source."""

    fingerprint: str = Field(description="The settings the source was read with")
    position: dict[str, str] = Field(
        description="The source's own cursor (Okta: a timestamp; Kubernetes: resourceVersions)"
    )
    full_at: datetime = Field(description="When the last full run started")
    runs_since_full: int = Field(default=0, ge=0)


def settings_fingerprint(settings: BaseModel) -> str:
    """Settings that change what is read (not when a full run happens) give a new fingerprint,
    so a connector pointed elsewhere never continues from another source's cursor."""
    data = settings.model_dump(mode="json", exclude=set(_SCHEDULE_FIELDS))
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:32]


def run_is_full(
    cursor: SyncCursor | None,
    fingerprint: str,
    schedule: IncrementalSchedule,
    now: datetime,
) -> bool:
    """Full when there is no usable cursor, every `full_sync_every`th run, and when the last
    full run is older than `full_sync_max_age_h`."""
    return (
        cursor is None
        or cursor.fingerprint != fingerprint
        or not cursor.position
        or cursor.runs_since_full + 1 >= schedule.full_sync_every
        or now - cursor.full_at >= timedelta(hours=schedule.full_sync_max_age_h)
    )


def next_cursor(
    cursor: SyncCursor | None,
    fingerprint: str,
    position: dict[str, str],
    *,
    full: bool,
    started: datetime,
) -> SyncCursor:
    if full or cursor is None:
        return SyncCursor(fingerprint=fingerprint, position=position, full_at=started)
    return SyncCursor(
        fingerprint=fingerprint,
        position=position,
        full_at=cursor.full_at,
        runs_since_full=cursor.runs_since_full + 1,
    )
