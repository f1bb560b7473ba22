"""The SaaS connectors' HTTP client against the local Okta fake: throttling and origins."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hostrelay.dal.okta import OktaOrg
from hostrelay.dal.rest_source import RestSource, SourceRejected, SourceThrottled, SourceUnreachable
from hostrelay_sources.errors import Throttled
from hostrelay_sources.https import JsonClient
from hostrelay_sources.retry import RetryPolicy
from tests.fakes.authentik import AuthentikFake
from tests.fakes.okta import OktaFake

pytestmark = pytest.mark.integration
TOKEN = "00rest-test-token"


@pytest.fixture
def okta(tmp_path: Path) -> Iterator[OktaFake]:
    fake = OktaFake(tmp_path, TOKEN).start()
    fake.state.add_user("00u1", "a.b@example.test")
    yield fake
    fake.stop()
    assert fake.state.violations == []


def client(okta: OktaFake, waits: list[float], **options: float) -> RestSource:
    return RestSource(
        okta.base_url,
        {"Authorization": f"SSWS {TOKEN}"},
        ca_bundle=okta.ca_file,
        sleep=waits.append,
        **options,  # type: ignore[arg-type]
    )


def test_a_429_is_retried_after_the_wait_the_source_asks_for(okta: OktaFake) -> None:
    # Given Okta throttles the next two calls and asks for 3 seconds
    okta.state.throttle_next, okta.state.retry_after = 2, "3"
    waits: list[float] = []
    # When the connector lists users
    users = list(OktaOrg(client(okta, waits), page_size=10).users())
    # Then it waited exactly what was asked, twice, and got the users
    assert waits == [3.0, 3.0]
    assert [u["id"] for u in users] == ["00u1"]


def test_a_wait_longer_than_allowed_fails_at_once(okta: OktaFake) -> None:
    okta.state.throttle_next, okta.state.retry_after = 1, "3600"
    waits: list[float] = []
    with pytest.raises(SourceThrottled, match="retry after 3600"):
        client(okta, waits, max_wait_s=60).request("GET", "/api/v1/users")
    assert waits == []


@pytest.mark.parametrize(
    ("throttled", "retry_after", "waits", "answer"),
    [
        (2, "3", [3.0, 3.0], "200"),  # the wait asked for, then the answer
        (5, "2", [2.0, 2.0, 2.0, 2.0], "throttled (HTTP 429)"),  # 5 attempts, then the 429
        (1, "3600", [], "retry after 3600 s"),  # longer than max_wait_s: at once
    ],
)
def test_both_source_clients_follow_the_one_retry_rule(
    tmp_path: Path,
    okta: OktaFake,
    throttled: int,
    retry_after: str,
    waits: list[float],
    answer: str,
) -> None:
    # Given Okta (the SaaS connectors' client) and Authentik (the relay's client) throttling
    authentik = AuthentikFake(tmp_path / "authentik", "ak-token").start()
    try:
        outcomes: list[str] = []
        for fake in (okta, authentik):
            fake.state.throttle_next, fake.state.retry_after = throttled, retry_after
        okta_waits: list[float] = []
        relay_waits: list[float] = []
        saas = client(okta, okta_waits, max_wait_s=60)
        relay = JsonClient(
            authentik.base_url,
            {"Authorization": "Bearer ak-token"},
            ca_file=authentik.ca_file,
            retry=RetryPolicy(max_wait_s=60, sleep=relay_waits.append),
        )
        # When each lists users
        for call, errors in (
            (lambda: saas.request("GET", "/api/v1/users"), SourceThrottled),
            (lambda: relay.request("GET", "/api/v3/core/users/"), Throttled),
        ):
            try:
                outcomes.append(str(call().status))
            except errors as exc:
                outcomes.append(str(exc))
        # Then both waited the same and ended the same way
        assert okta_waits == relay_waits == waits
        assert all(answer in outcome for outcome in outcomes), outcomes
    finally:
        authentik.stop()


def test_a_link_to_another_origin_is_not_followed_with_the_token(okta: OktaFake) -> None:
    source = client(okta, [])
    with pytest.raises(SourceRejected, match="another origin"):
        source.request("GET", "https://attacker.example/api/v1/users")
    assert source.calls == 0


def test_an_untrusted_certificate_is_refused(okta: OktaFake) -> None:
    # Given the system trust store only (the fake's test CA is not in it)
    source = RestSource(okta.base_url, {"Authorization": f"SSWS {TOKEN}"}, sleep=[].append)
    with pytest.raises(SourceUnreachable, match="TLS verification failed"):
        source.request("GET", "/api/v1/users")
    assert okta.state.requests == []


def test_the_fake_records_an_answer_or_a_request_okta_would_not_send(okta: OktaFake) -> None:
    # Given a user the fake holds in a shape Okta's API description does not have
    okta.state.users["00u1"]["status"] = "DISABLED"
    okta.state.users["00u1"]["profile"]["nickname"] = "ab"
    # When it answers a page of users, and a request with a parameter Okta does not declare
    list(OktaOrg(client(okta, []), page_size=10).users())
    okta.state.add_group("00g1", "Engineering", ["00u1"])
    with pytest.raises(SourceRejected, match="HTTP 400"):  # and answered as Okta would
        client(okta, []).request("GET", "/api/v1/groups/00g1/users?expand=stats")
    # Then each is recorded as a violation (the fixture asserts none are left)
    violations, okta.state.violations = okta.state.violations, []
    assert any("'DISABLED'" in v for v in violations)
    assert any("'nickname'" in v for v in violations)
    assert any("listGroupUsers: undeclared query parameter 'expand'" in v for v in violations)
