"""Schedule expressions: what EventBridge accepts, and when each one fires next (UTC)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hostrelay.domain.errors import InvalidRequest
from hostrelay.logic.scheduling import parse_schedule

NOW = datetime(2025, 1, 15, 10, 30, 20, tzinfo=UTC)  # a Wednesday


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def firings(expression: str, count: int = 3, start: datetime = NOW) -> list[datetime]:
    schedule = parse_schedule(expression, now=start)
    found: list[datetime] = []
    moment = start
    for _ in range(count):
        following = schedule.next_after(moment)
        assert following is not None
        found.append(following)
        moment = following
    return found


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("rate(1 minute)", ["2025-01-15 10:31:20", "2025-01-15 10:32:20"]),
        ("rate(5 minutes)", ["2025-01-15 10:35:20", "2025-01-15 10:40:20"]),
        ("rate(2 hours)", ["2025-01-15 12:30:20", "2025-01-15 14:30:20"]),
        ("rate(1 day)", ["2025-01-16 10:30:20", "2025-01-17 10:30:20"]),
        ("cron(0 12 * * ? *)", ["2025-01-15 12:00", "2025-01-16 12:00"]),
        ("cron(0/15 * * * ? *)", ["2025-01-15 10:45", "2025-01-15 11:00"]),
        ("cron(0 9 ? * MON-FRI *)", ["2025-01-16 09:00", "2025-01-17 09:00", "2025-01-20 09:00"]),
        ("cron(0 18 ? * 2,4 *)", ["2025-01-15 18:00", "2025-01-20 18:00"]),  # MON, WED
        ("cron(30 2 1 JAN-MAR ? *)", ["2025-02-01 02:30", "2025-03-01 02:30", "2026-01-01 02:30"]),
        ("cron(0 0 L * ? *)", ["2025-01-31 00:00", "2025-02-28 00:00", "2025-03-31 00:00"]),
        ("cron(0 0 LW * ? *)", ["2025-01-31 00:00", "2025-02-28 00:00", "2025-03-31 00:00"]),
        ("cron(0 0 1W * ? *)", ["2025-02-03 00:00", "2025-03-03 00:00", "2025-04-01 00:00"]),
        ("cron(15 10 ? * 6L 2025)", ["2025-01-31 10:15", "2025-02-28 10:15", "2025-03-28 10:15"]),
        ("cron(0 8 ? * MON#2 *)", ["2025-02-10 08:00", "2025-03-10 08:00", "2025-04-14 08:00"]),
        ("cron(0 0 29 2 ? *)", ["2028-02-29 00:00", "2032-02-29 00:00"]),
        ("cron(0 10-12/2 15 * ? 2025-2026)", ["2025-01-15 12:00", "2025-02-15 10:00"]),
    ],
)
def test_next_firings_follow_eventbridge_semantics(expression: str, expected: list[str]) -> None:
    assert firings(expression, len(expected)) == [at(e) for e in expected]


@pytest.mark.parametrize(
    ("expression", "why"),
    [
        ("rate(1 minutes)", "singular unit for 1"),
        ("rate(5 minute)", "singular unit for 1"),
        ("rate(0 minutes)", "positive"),
        ("rate(5 weeks)", "unknown unit"),
        ("rate(five minutes)", "expected rate"),
        ("cron(0 12 * * * *)", "exactly one of day-of-month and day-of-week"),
        ("cron(0 12 ? * ? *)", "exactly one of day-of-month and day-of-week"),
        ("cron(0 12 * * ?)", "6 fields"),
        ("cron(60 * * * ? *)", "minutes: 60 is outside 0-59"),
        ("cron(0 24 * * ? *)", "hours: 24"),
        ("cron(0 0 32 * ? *)", "day-of-month: 32"),
        ("cron(0 0 ? 13 * *)", "month: 13"),
        ("cron(0 0 ? * 8 *)", "day-of-week: 8"),
        ("cron(0 0 ? * FOO *)", "not a number"),
        ("cron(0 0 * * ? 1969)", "year: 1969"),
        ("cron(9-3 * * * ? *)", "runs backwards"),
        ("cron(*/0 * * * ? *)", "step"),
        ("cron(0 0 L,15 * ? *)", "only item"),
        ("cron(0 0 ? * 2#6 *)", "n must be 1-5"),
        ("cron(0 0 1 1 ? 2020)", "never fires again"),
        ("at(2025-01-01T00:00:00)", "expected rate"),
    ],
)
def test_invalid_expressions_say_why(expression: str, why: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        parse_schedule(expression, now=NOW)
    assert why in raised.value.message
    assert [d["field"] for d in raised.value.details] == ["schedule"]


def test_a_late_rate_run_skips_missed_periods_but_keeps_its_phase() -> None:
    schedule = parse_schedule("rate(5 minutes)")
    due = at("2025-01-15 10:00:00")
    # Taken 23 minutes late: the missed 10:05..10:20 firings are skipped, not replayed
    assert schedule.following(due, due + timedelta(minutes=23)) == at("2025-01-15 10:25:00")
    # Taken on time: the next period
    assert schedule.following(due, due + timedelta(seconds=2)) == at("2025-01-15 10:05:00")


def test_a_late_cron_run_resumes_at_the_next_firing_after_now() -> None:
    schedule = parse_schedule("cron(0 * * * ? *)")
    due = at("2025-01-15 08:00")
    assert schedule.following(due, at("2025-01-15 10:30")) == at("2025-01-15 11:00")
