"""The self-hosted sources' HTTPS client waits exactly what a throttled source asks for."""

from __future__ import annotations

import pytest

from hostrelay_sources.errors import Throttled
from hostrelay_sources.https import JsonClient
from hostrelay_sources.retry import RetryPolicy
from tests.fakes.authentik import AuthentikFake
from tests.integration.sources.conftest import AUTHENTIK_TOKEN

pytestmark = pytest.mark.integration
USERS = "/api/v3/core/users/"


def _client(authentik: AuthentikFake, waits: list[float], max_wait_s: float = 60) -> JsonClient:
    return JsonClient(
        authentik.base_url,
        {"Authorization": f"Bearer {AUTHENTIK_TOKEN}"},
        ca_file=authentik.ca_file,
        retry=RetryPolicy(max_wait_s=max_wait_s, sleep=waits.append),
    )


def test_a_429_is_retried_after_the_seconds_retry_after_names(authentik: AuthentikFake) -> None:
    # Given Authentik throttles the next two calls and asks for 7 seconds
    authentik.state.throttle_next, authentik.state.retry_after = 2, "7"
    waits: list[float] = []
    # When the client lists users
    response = _client(authentik, waits).request("GET", USERS)
    # Then it waited exactly what was asked, twice, and got the answer
    assert waits == [7.0, 7.0]
    assert response.status == 200 and authentik.state.throttled == 2


def test_a_wait_longer_than_allowed_fails_at_once(authentik: AuthentikFake) -> None:
    authentik.state.throttle_next, authentik.state.retry_after = 1, "3600"
    waits: list[float] = []
    with pytest.raises(Throttled, match="retry after 3600"):
        _client(authentik, waits, max_wait_s=60).request("GET", USERS)
    assert waits == []
