"""Idempotency keys of job creation: same key and body → same job; other body → conflict."""

from __future__ import annotations

from datetime import timedelta

from pynamodb.exceptions import DoesNotExist, PutError

from hostrelay.clock import utcnow
from hostrelay.dal.tables import IdempotencyRecord


class IdempotencyRepository:
    def __init__(self, ttl: timedelta = timedelta(hours=24)) -> None:
        self._ttl = ttl

    def claim(self, key: str, job_id: str, body_sha256: str) -> IdempotencyRecord:
        """Store key → job_id unless the key exists; returns the record that won."""
        record = IdempotencyRecord(
            key=key, job_id=job_id, body_sha256=body_sha256, expires_at=utcnow() + self._ttl
        )
        try:
            record.save(condition=IdempotencyRecord.key.does_not_exist())
        except PutError as exc:
            if exc.cause_response_code != "ConditionalCheckFailedException":
                raise
            return IdempotencyRecord.get(key, consistent_read=True)
        return record

    def find(self, key: str) -> IdempotencyRecord | None:
        try:
            return IdempotencyRecord.get(key, consistent_read=True)
        except DoesNotExist:
            return None
