"""Idempotency keys of job creation: same key and body → same job; other body → conflict."""

from __future__ import annotations

from datetime import timedelta

from pynamodb.exceptions import DoesNotExist

from hostrelay.clock import utcnow
from hostrelay.dal.tables import IdempotencyRecord


class IdempotencyKeyTaken(Exception):
    """The key was claimed first by another request: replay what that one created."""


class IdempotencyRepository:
    def __init__(self, ttl: timedelta = timedelta(hours=24)) -> None:
        self._ttl = ttl

    def new_claim(self, key: str, job_id: str, body_sha256: str) -> IdempotencyRecord:
        """The claim of `key` for `job_id`; JobRepository.create writes it with the job."""
        return IdempotencyRecord(
            key=key, job_id=job_id, body_sha256=body_sha256, expires_at=utcnow() + self._ttl
        )

    def find(self, key: str) -> IdempotencyRecord | None:
        try:
            return IdempotencyRecord.get(key, consistent_read=True)
        except DoesNotExist:
            return None
