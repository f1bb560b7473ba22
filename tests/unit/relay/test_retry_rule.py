"""The one retry rule both source clients follow (hostrelay_sources.retry): a table of answers
and what the rule does next. The relay's client (hostrelay_sources.https) and the SaaS
connectors' (the control plane's dal/rest_source.py) take every decision from it; what each adds
(Okta's reset header, Google's quota 403s, a token renewal) is tested with that client."""

from __future__ import annotations

import pytest

from hostrelay_sources.retry import RetryPolicy, WaitTooLong, retry_after_s

NOW = 1_700_000_000.0
POLICY = RetryPolicy(max_attempts=5, max_wait_s=60.0, backoff_s=0.5)
TOO_LONG = "too long"


@pytest.mark.parametrize(
    ("attempt", "asked_s", "then"),
    [
        (1, None, 0.5),  # no wait asked for: exponential backoff from backoff_s
        (2, None, 1.0),
        (3, None, 2.0),
        (4, None, 4.0),
        (5, None, None),  # the last attempt: its throttled answer stands
        (1, 7.0, 7.0),  # the wait the source asks for wins over the backoff
        (3, 0.0, 0.0),
        (2, 60.0, 60.0),  # up to max_wait_s
        (1, 3600.0, TOO_LONG),  # longer: fail now rather than sleep an hour
        (5, 3600.0, None),  # the last attempt: no wait at all, so none too long
    ],
)
def test_after_a_throttled_answer(attempt: int, asked_s: float | None, then: object) -> None:
    if then == TOO_LONG:
        with pytest.raises(WaitTooLong, match="retry after 3600 s"):
            POLICY.throttled_wait(attempt, asked_s)
    else:
        assert POLICY.throttled_wait(attempt, asked_s) == then


@pytest.mark.parametrize(("attempt", "then"), [(1, 0.5), (2, None), (3, None)])
def test_after_a_failed_connection_it_is_tried_once_more(attempt: int, then: float | None) -> None:
    assert POLICY.unreachable_wait(attempt) == then


@pytest.mark.parametrize(
    ("value", "wait"),
    [
        ("7", 7.0),
        (" 7 ", 7.0),
        ("Tue, 14 Nov 2023 22:13:40 GMT", 20.0),  # an HTTP date: the seconds until then
        ("Tue, 14 Nov 2023 22:13:00 GMT", 0.0),  # a date gone by: no wait
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_the_wait_a_retry_after_header_asks_for(value: str | None, wait: float | None) -> None:
    assert retry_after_s(value, NOW) == wait
