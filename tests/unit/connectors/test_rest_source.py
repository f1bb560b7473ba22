"""How long a throttled connector waits, and where Okta's next page is."""

from __future__ import annotations

import pytest

from hostrelay.dal.rest_source import _retry_after_s, next_link

NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("headers", "wait"),
    [
        ({"Retry-After": "7"}, 7.0),
        ({"Retry-After": "Tue, 14 Nov 2023 22:13:40 GMT"}, 20.0),
        ({"X-Rate-Limit-Reset": str(int(NOW) + 12)}, 12.0),
        ({"X-Rate-Limit-Reset": str(int(NOW) - 5)}, 0.0),
        ({"Retry-After": "3", "X-Rate-Limit-Reset": str(int(NOW) + 60)}, 3.0),
        ({}, None),
        ({"Retry-After": "soon"}, None),
    ],
)
def test_the_wait_a_throttled_source_asks_for(headers: dict[str, str], wait: float | None) -> None:
    assert _retry_after_s(headers, NOW) == wait


def test_the_next_page_is_the_link_marked_next_whatever_the_order() -> None:
    both = (
        '<https://o.okta.com/api/v1/users?after=00u2&limit=2>; rel="next", '
        '<https://o.okta.com/api/v1/users?limit=2>; rel="self"'
    )
    assert next_link({"Link": both}) == "https://o.okta.com/api/v1/users?after=00u2&limit=2"
    assert next_link({"Link": '<https://o.okta.com/api/v1/users?limit=2>; rel="self"'}) is None
    assert next_link({}) is None
