"""API tokens, stored by SHA-256 of the secret; the secret is shown once and never kept."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from datetime import datetime

from pynamodb.exceptions import DoesNotExist, UpdateError

from hostrelay.clock import utcnow
from hostrelay.dal.tables import TokenRecord
from hostrelay.domain.tokens import ApiToken, hash_token

TOKEN_PREFIX = "hr_"  # noqa: S105 - a public prefix, not a secret
# How often a token's last use is written at most, to spare write capacity.
TOUCH_INTERVAL_S = 60

# Tokens this container looked up recently: hash -> (when it was read, token). Shared by every
# repository of the container, so a revocation made here takes effect here at once.
_recently_read: dict[str, tuple[float, ApiToken]] = {}

__all__ = ["TOKEN_PREFIX", "TokenRepository", "hash_token", "new_token_secret"]


def new_token_secret() -> str:
    """256 random bits, URL-safe, with a prefix that secret scanners can recognise."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


class TokenRepository:
    """`cache_ttl_s` > 0 lets a container reuse a token it read that long ago: a token revoked
    through another container keeps working there for up to that long. Callers still check
    `revoked_at` and `expires_at` of the token they get."""

    def __init__(
        self, cache_ttl_s: float = 0.0, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._cache_ttl_s = cache_ttl_s
        self._monotonic = monotonic

    def find_by_secret(self, secret: str) -> ApiToken | None:
        token_hash = hash_token(secret)
        now = self._monotonic()
        cached = _recently_read.get(token_hash)
        if cached is not None and now - cached[0] < self._cache_ttl_s:
            return cached[1]
        try:
            token = ApiToken.model_validate(TokenRecord.get(token_hash, consistent_read=True))
        except DoesNotExist:
            _recently_read.pop(token_hash, None)
            return None
        if self._cache_ttl_s > 0:
            _recently_read[token_hash] = (now, token)
        return token

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
    ) -> tuple[str, ApiToken]:
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
        return secret, ApiToken.model_validate(record)

    def all(self) -> Iterator[ApiToken]:
        for record in TokenRecord.scan():
            yield ApiToken.model_validate(record)

    def touch(self, secret: str, token: ApiToken, now: datetime) -> None:
        """Record the last use of the token `secret` is, at most once a minute."""
        last = token.last_used_at
        if last is not None and (now - last).total_seconds() < TOUCH_INTERVAL_S:
            return
        token_hash = hash_token(secret)
        TokenRecord(token_hash=token_hash).update(actions=[TokenRecord.last_used_at.set(now)])
        cached = _recently_read.get(token_hash)
        if cached is not None:
            _recently_read[token_hash] = (cached[0], token.model_copy(update={"last_used_at": now}))

    def revoke(self, token_id: str) -> ApiToken | None:
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
            return ApiToken.model_validate(record)
        return None
