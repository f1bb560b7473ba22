"""API tokens, stored by SHA-256 of the secret; the secret is shown once and never kept."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable, Iterator
from datetime import datetime

from pynamodb.exceptions import DoesNotExist, UpdateError

from hostrelay.clock import utcnow
from hostrelay.dal.tables import TokenRecord

TOKEN_PREFIX = "hr_"  # noqa: S105 - a public prefix, not a secret

# Tokens this container looked up recently: hash -> (when it was read, record). Shared by every
# repository of the container, so a revocation made here takes effect here at once.
_recently_read: dict[str, tuple[float, TokenRecord]] = {}


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_token_secret() -> str:
    """256 random bits, URL-safe, with a prefix that secret scanners can recognise."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


class TokenRepository:
    """`cache_ttl_s` > 0 lets a container reuse a token it read that long ago: a token revoked
    through another container keeps working there for up to that long. Callers still check
    `revoked_at` and `expires_at` of the record they get."""

    def __init__(
        self, cache_ttl_s: float = 0.0, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._cache_ttl_s = cache_ttl_s
        self._monotonic = monotonic

    def find_by_secret(self, secret: str) -> TokenRecord | None:
        token_hash = hash_token(secret)
        now = self._monotonic()
        cached = _recently_read.get(token_hash)
        if cached is not None and now - cached[0] < self._cache_ttl_s:
            return cached[1]
        try:
            record = TokenRecord.get(token_hash, consistent_read=True)
        except DoesNotExist:
            _recently_read.pop(token_hash, None)
            return None
        if self._cache_ttl_s > 0:
            _recently_read[token_hash] = (now, record)
        return record

    def create(
        self,
        *,
        token_id: str,
        name: str,
        scopes: list[str],
        created_by: str,
        expires_at: datetime | None = None,
        job_types: list[str] | None = None,
        hosts: list[str] | None = None,
    ) -> tuple[str, TokenRecord]:
        secret = new_token_secret()
        record = TokenRecord(
            token_hash=hash_token(secret),
            token_id=token_id,
            name=name,
            scopes=scopes,
            job_types=job_types,
            hosts=hosts,
            created_by=created_by,
            created_at=utcnow(),
            expires_at=expires_at,
        )
        record.save(condition=TokenRecord.token_hash.does_not_exist())
        return secret, record

    def all(self) -> Iterator[TokenRecord]:
        yield from TokenRecord.scan()

    def touch(self, record: TokenRecord, now: datetime) -> None:
        """Record last use, at most once a minute per token to spare write capacity."""
        last = record.last_used_at
        if last is None or (now - last).total_seconds() >= 60:
            record.update(actions=[TokenRecord.last_used_at.set(now)])

    def revoke(self, token_id: str) -> TokenRecord | None:
        """Mark the token with this id revoked (found through the by_token_id index)."""
        for entry in TokenRecord.by_token_id.query(token_id, limit=1):
            record = TokenRecord(token_hash=entry.token_hash)
            try:
                record.update(
                    actions=[TokenRecord.revoked_at.set(utcnow())],
                    condition=TokenRecord.token_hash.exists(),
                )
            except UpdateError as exc:
                if exc.cause_response_code != "ConditionalCheckFailedException":
                    raise
                return None  # deleted (expired by TTL) since the index was read
            _recently_read.pop(entry.token_hash, None)
            return record
        return None
