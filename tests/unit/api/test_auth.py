"""Bearer parsing, and a token's secret → its principal, with an in-memory token store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hostrelay.api.auth import bearer_secret
from hostrelay.domain.errors import Forbidden, Unauthorized
from hostrelay.domain.principal import Scope
from hostrelay.domain.tokens import ApiToken, hash_token
from hostrelay.logic.tokens import Authenticator

NOW = datetime(2030, 1, 1, tzinfo=UTC)


class MemoryTokens:
    def __init__(self) -> None:
        self.tokens: dict[str, ApiToken] = {}
        self.touched: list[str] = []

    def add(self, secret: str, *scopes: str, **fields: Any) -> ApiToken:
        token = ApiToken(
            token_id=fields.pop("token_id", "t1"),
            name=fields.pop("name", "ci"),
            scopes=list(scopes),
            created_by="test",
            created_at=NOW - timedelta(days=1),
            **fields,
        )
        self.tokens[hash_token(secret)] = token
        return token

    def find_by_secret(self, secret: str) -> ApiToken | None:
        return self.tokens.get(hash_token(secret))

    def touch(self, secret: str, token: ApiToken, now: datetime) -> None:
        self.touched.append(token.token_id)


def authenticator(tokens: MemoryTokens, bootstrap: str = "") -> Authenticator:
    return Authenticator(tokens, bootstrap, clock=lambda: NOW)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("header", "secret"),
    [
        ("Bearer hr_abc", "hr_abc"),
        ("bearer hr_abc", "hr_abc"),
        ("Bearer   hr_a-b.c~d+e/f==", "hr_a-b.c~d+e/f=="),
    ],
)
def test_bearer_secret_reads_the_token(header: str, secret: str) -> None:
    assert bearer_secret(header) == secret


@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer", "Bearer ", "Basic abc", "Bearer a b", "Token abc", "Bearer " + "a" * 600],
)
def test_bearer_secret_refuses_missing_or_malformed_headers(header: str | None) -> None:
    with pytest.raises(Unauthorized):
        bearer_secret(header)


def test_known_token_becomes_its_principal_and_is_touched() -> None:
    # Given a service token limited to ping on dc01
    tokens = MemoryTokens()
    tokens.add("hr_s", "service", token_id="svc", name="linbo", job_types=["ping"], hosts=["dc01"])
    # When it authenticates
    principal = authenticator(tokens).authenticate("hr_s")
    # Then the principal carries its identity and limits, and its use is recorded
    assert principal.token_id == "svc"
    assert principal.label == "token:svc/linbo"
    assert principal.scopes == [Scope.SERVICE]
    assert principal.job_types == ["ping"] and principal.hosts == ["dc01"]
    assert tokens.touched == ["svc"]


def test_unknown_scopes_grant_nothing() -> None:
    tokens = MemoryTokens()
    tokens.add("hr_x", "reader", "superuser")
    assert authenticator(tokens).authenticate("hr_x").scopes == [Scope.READER]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"expires_at": NOW - timedelta(seconds=1)}, "token expired"),
        ({"expires_at": NOW}, "token expired"),
        ({"revoked_at": NOW - timedelta(hours=1)}, "token revoked"),
    ],
)
def test_expired_or_revoked_tokens_are_refused(fields: dict[str, Any], message: str) -> None:
    tokens = MemoryTokens()
    tokens.add("hr_old", "admin", **fields)
    with pytest.raises(Unauthorized, match=message):
        authenticator(tokens).authenticate("hr_old")
    assert tokens.touched == []


def test_token_expiring_later_is_accepted() -> None:
    tokens = MemoryTokens()
    tokens.add("hr_ok", "reader", expires_at=NOW + timedelta(minutes=1))
    assert authenticator(tokens).authenticate("hr_ok").has(Scope.READER)


def test_unknown_token_is_refused() -> None:
    with pytest.raises(Unauthorized, match="invalid token"):
        authenticator(MemoryTokens()).authenticate("hr_nope")


def test_bootstrap_token_is_an_admin_without_a_record() -> None:
    auth = authenticator(MemoryTokens(), bootstrap=hash_token("hr_boot").upper())
    principal = auth.authenticate("hr_boot")
    assert principal.token_id == "bootstrap"
    assert principal.has(Scope.ADMIN)
    with pytest.raises(Unauthorized):
        auth.authenticate("hr_boot2")


def test_no_bootstrap_hash_accepts_no_bootstrap_token() -> None:
    # An empty hash must not match anything, including an empty-looking token
    with pytest.raises(Unauthorized):
        authenticator(MemoryTokens(), bootstrap="").authenticate("hr_boot")


def test_a_service_token_stored_without_limits_may_create_and_read_nothing() -> None:
    # Given a service token from before limits were required: no job types, no hosts
    tokens = MemoryTokens()
    tokens.add("hr_open", "service", token_id="old", name="legacy")
    principal = authenticator(tokens).authenticate("hr_open")
    # Then it may create no job at all, exec least of all, and sees no job
    for job_type in ("ping", "exec"):
        with pytest.raises(Forbidden):
            principal.require_job_create(job_type, "dc01")
        assert not principal.may_read_job(job_type, "dc01")
    assert principal.readable_hosts() == [] and principal.readable_job_types() == []


def test_a_service_token_with_stars_was_opened_on_purpose() -> None:
    # Given a service token whose admin typed `*` for the hosts, and named ping only
    tokens = MemoryTokens()
    tokens.add("hr_any", "service", job_types=["ping"], hosts=["*"])
    principal = authenticator(tokens).authenticate("hr_any")
    # Then it may ping any host, and still nothing else
    principal.require_job_create("ping", "any-host")
    with pytest.raises(Forbidden, match="may not create exec"):
        principal.require_job_create("exec", "any-host")
    assert principal.readable_hosts() is None and principal.readable_job_types() == ["ping"]
