"""A container reuses a token it read for a few seconds; revocation still wins where it is made."""

from __future__ import annotations

import pytest

from hostrelay.clock import utcnow
from hostrelay.dal.tables import TokenRecord
from hostrelay.dal.tokens_repo import TokenRepository, hash_token
from hostrelay.settings import ApiSettings

pytestmark = pytest.mark.integration


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


def revoke_elsewhere(secret: str) -> None:
    """What another container's revocation looks like from here: only the table changes."""
    TokenRecord(token_hash=hash_token(secret)).update(
        actions=[TokenRecord.revoked_at.set(utcnow())]
    )


def test_a_token_read_recently_is_reused_until_the_ttl_passes(api_handler: object) -> None:
    # Given a container that looked a token up a moment ago
    clock = FakeMonotonic()
    cached = TokenRepository(cache_ttl_s=5, monotonic=clock)
    secret, _ = TokenRepository().create(
        token_id="t-cache", name="ci", scopes=["reader"], created_by="test"
    )
    assert cached.find_by_secret(secret) is not None
    # When another container revokes it
    revoke_elsewhere(secret)
    # Then this container may still see it unrevoked within the TTL, and sees it revoked after
    clock.now += 4
    record = cached.find_by_secret(secret)
    assert record is not None and record.revoked_at is None
    clock.now += 1
    record = cached.find_by_secret(secret)
    assert record is not None and record.revoked_at is not None


def test_a_revocation_made_in_this_container_takes_effect_at_once(api_handler: object) -> None:
    cached = TokenRepository(cache_ttl_s=5, monotonic=FakeMonotonic())
    secret, record = TokenRepository().create(
        token_id="t-gone", name="ci", scopes=["reader"], created_by="test"
    )
    assert cached.find_by_secret(secret) is not None
    TokenRepository().revoke(record.token_id)
    found = cached.find_by_secret(secret)
    assert found is not None and found.revoked_at is not None


def test_a_cache_longer_than_five_seconds_fails_the_cold_start() -> None:
    with pytest.raises(ValueError, match="less than or equal to 5"):
        ApiSettings.model_validate(
            {
                "JOBS_TABLE": "j",
                "HOSTS_TABLE": "h",
                "TOKENS_TABLE": "t",
                "IDEMPOTENCY_TABLE": "i",
                "OUTPUT_TABLE": "o",
                "DISPATCH_QUEUE_URL": "q",
                "SIGNING_PUBLIC_KEY_PARAM": "p",
                "TOKEN_CACHE_TTL_S": "60",
            }
        )
