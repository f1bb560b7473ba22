"""One-shot enrollment tokens: stored hashed, consumed by a single conditional write."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from pynamodb.exceptions import DoesNotExist, UpdateError

from hostrelay.dal.security_tables import EnrollmentRecord
from hostrelay.domain.enrollment import Enrollment

ENROLLMENT_TOKEN_PREFIX = "hre_"  # noqa: S105 - a public prefix, not a secret


def hash_enrollment_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class EnrollmentRepository:
    def create(
        self,
        *,
        enrollment_id: str,
        host: str,
        roles: list[str],
        replace: bool,
        created_by: str,
        tags: dict[str, str] | None = None,
        now: datetime,
        ttl: timedelta,
    ) -> tuple[str, Enrollment]:
        """A fresh token of 256 random bits; only its hash is written."""
        token = ENROLLMENT_TOKEN_PREFIX + secrets.token_urlsafe(32)
        record = EnrollmentRecord(
            token_hash=hash_enrollment_token(token),
            enrollment_id=enrollment_id,
            host=host,
            roles=roles,
            replace="true" if replace else "false",
            tags=tags,
            created_by=created_by,
            created_at=now,
            valid_until=now + ttl,
            # DynamoDB TTL deletes a day later: lookups after expiry still say "expired".
            expires_at=now + ttl + timedelta(days=1),
        )
        record.save(condition=EnrollmentRecord.token_hash.does_not_exist())
        return token, Enrollment.model_validate(record)

    def find(self, token: str) -> Enrollment | None:
        try:
            record = EnrollmentRecord.get(hash_enrollment_token(token), consistent_read=True)
        except DoesNotExist:
            return None
        return Enrollment.model_validate(record)

    def consume(self, token: str, now: datetime) -> bool:
        """Mark the enrollment of `token` used; False when it was already used, has expired
        meanwhile, or does not exist."""
        try:
            EnrollmentRecord(token_hash=hash_enrollment_token(token)).update(
                actions=[EnrollmentRecord.consumed_at.set(now)],
                condition=EnrollmentRecord.token_hash.exists()
                & EnrollmentRecord.consumed_at.does_not_exist()
                & (EnrollmentRecord.valid_until > now),
            )
        except UpdateError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                return False
            raise
        return True
