"""Connector schedules: EventBridge `rate()` and `cron()` expressions, and when they fire next.

Cron follows EventBridge (UTC): six fields `minutes hours day-of-month month day-of-week year`,
exactly one of the two day fields is `?`, day-of-week counts 1=SUN..7=SAT, names (JAN, MON)
are accepted, and each field takes lists, ranges and steps. The special forms work when they
are a day field's only item: `L`, `LW` and `15W` for day-of-month, `L`, `6L` and `2#3` for
day-of-week.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal, Protocol

from hostrelay.domain.errors import InvalidRequest

MIN_YEAR, MAX_YEAR = 1970, 2199
_RATE = re.compile(r"^rate\(\s*(\d{1,6})\s+([a-z]+)\s*\)$")
_CRON = re.compile(r"^cron\((.*)\)$")
_UNITS = {"minute": 60, "hour": 3600, "day": 86400}
_MONTHS = {name.upper(): i for i, name in enumerate(calendar.month_abbr) if name}
_WEEKDAYS = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}


class Schedule(Protocol):
    @property
    def expression(self) -> str:
        """The expression as written, e.g. `rate(5 minutes)`."""

    def next_after(self, moment: datetime) -> datetime | None:
        """The first firing strictly after `moment`; None if there is none."""

    def following(self, due: datetime, now: datetime) -> datetime | None:
        """The next firing after a run due at `due` was taken at `now` (missed ones skipped)."""


def _invalid(expression: str, why: str) -> InvalidRequest:
    return InvalidRequest(
        f"invalid schedule {expression[:100]!r}: {why}",
        details=[{"field": "schedule", "message": why}],
    )


# ---------------------------------------------------------------- rate()


@dataclass(frozen=True)
class RateSchedule:
    expression: str
    period: timedelta

    def next_after(self, moment: datetime) -> datetime | None:
        return moment + self.period

    def following(self, due: datetime, now: datetime) -> datetime | None:
        if now < due:
            return due + self.period
        missed = (now - due) // self.period
        return due + (missed + 1) * self.period


def _parse_rate(expression: str) -> RateSchedule:
    match = _RATE.fullmatch(expression)
    if match is None:
        raise _invalid(expression, "expected rate(<value> minute|minutes|hour|hours|day|days)")
    value, unit = int(match.group(1)), match.group(2)
    singular = unit.removesuffix("s")
    if singular not in _UNITS:
        raise _invalid(expression, f"unknown unit {unit!r}; use minutes, hours or days")
    if value < 1:
        raise _invalid(expression, "the value must be a positive whole number")
    if (value == 1) != (unit == singular):
        raise _invalid(expression, "use a singular unit for 1 and a plural one otherwise")
    return RateSchedule(expression, timedelta(seconds=value * _UNITS[singular]))


# ---------------------------------------------------------------- cron()


@dataclass(frozen=True)
class _FieldSpec:
    name: str
    low: int
    high: int
    names: dict[str, int]


_MINUTES = _FieldSpec("minutes", 0, 59, {})
_HOURS = _FieldSpec("hours", 0, 23, {})
_DAY_OF_MONTH = _FieldSpec("day-of-month", 1, 31, {})
_MONTH = _FieldSpec("month", 1, 12, _MONTHS)
_DAY_OF_WEEK = _FieldSpec("day-of-week", 1, 7, _WEEKDAYS)
_YEAR = _FieldSpec("year", MIN_YEAR, MAX_YEAR, {})


def _value(text: str, spec: _FieldSpec) -> int:
    if text.upper() in spec.names:
        return spec.names[text.upper()]
    if not text.isdigit():
        raise ValueError(f"{spec.name}: {text!r} is not a number")
    value = int(text)
    if not spec.low <= value <= spec.high:
        raise ValueError(f"{spec.name}: {value} is outside {spec.low}-{spec.high}")
    return value


def _values(text: str, spec: _FieldSpec) -> frozenset[int]:
    """Lists, ranges and steps: `*`, `5`, `1-5`, `*/15`, `10/5`, `1-20/2`, `MON,WED`."""
    found: set[int] = set()
    for item in text.split(","):
        base, slash, step_text = item.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) < 1:
                raise ValueError(f"{spec.name}: step in {item!r} must be a positive number")
            step = int(step_text)
        if base == "*":
            start, end = spec.low, spec.high
        elif "-" in base:
            first, _, last = base.partition("-")
            start, end = _value(first, spec), _value(last, spec)
            if start > end:
                raise ValueError(f"{spec.name}: range {base!r} runs backwards")
        else:
            start = _value(base, spec)
            end = spec.high if slash else start
        found.update(range(start, end + 1, step))
    return frozenset(found)


@dataclass(frozen=True)
class _DayRule:
    """One day field: plain values, or one of the special forms."""

    form: Literal["values", "last", "last_weekday", "nearest_weekday", "last_of", "nth_of"]
    values: frozenset[int] = frozenset()
    number: int = 0
    nth: int = 0


def _weekday(day: date) -> int:
    """EventBridge numbering: 1=SUN .. 7=SAT."""
    return (day.weekday() + 1) % 7 + 1


def _nearest_weekday(year: int, month: int, day: int) -> int | None:
    last = calendar.monthrange(year, month)[1]
    if day > last:
        return None
    weekday = date(year, month, day).weekday()  # Mon=0 .. Sun=6
    if weekday == 5:  # Saturday: Friday before, or Monday after when that leaves the month
        return day - 1 if day > 1 else day + 2
    if weekday == 6:  # Sunday: Monday after, or Friday before when that leaves the month
        return day + 1 if day < last else day - 2
    return day


def _matches_day_of_month(rule: _DayRule, day: date) -> bool:
    last = calendar.monthrange(day.year, day.month)[1]
    if rule.form == "values":
        return day.day in rule.values
    if rule.form == "last":
        return day.day == last
    if rule.form == "last_weekday":
        return day.day == _nearest_weekday(day.year, day.month, last)
    return day.day == _nearest_weekday(day.year, day.month, rule.number)


def _matches_day_of_week(rule: _DayRule, day: date) -> bool:
    weekday = _weekday(day)
    if rule.form == "values":
        return weekday in rule.values
    if weekday != rule.number:
        return False
    if rule.form == "last_of":
        return day.day + 7 > calendar.monthrange(day.year, day.month)[1]
    return (day.day - 1) // 7 + 1 == rule.nth


def _day_of_month_rule(text: str) -> _DayRule:
    upper = text.upper()
    if upper == "L":
        return _DayRule("last")
    if upper == "LW":
        return _DayRule("last_weekday")
    if upper.endswith("W"):
        return _DayRule("nearest_weekday", number=_value(upper[:-1], _DAY_OF_MONTH))
    if "L" in upper or "W" in upper or "#" in upper:
        raise ValueError("day-of-month: L and W must be the field's only item (L, LW, 15W)")
    return _DayRule("values", values=_values(text, _DAY_OF_MONTH))


def _day_of_week_rule(text: str) -> _DayRule:
    upper = text.upper()
    if upper == "L":
        return _DayRule("values", values=frozenset({7}))
    if "#" in upper:
        day, _, nth = upper.partition("#")
        if not nth.isdigit() or not 1 <= int(nth) <= 5:
            raise ValueError("day-of-week: in d#n, n must be 1-5")
        return _DayRule("nth_of", number=_value(day, _DAY_OF_WEEK), nth=int(nth))
    if upper.endswith("L"):
        return _DayRule("last_of", number=_value(upper[:-1], _DAY_OF_WEEK))
    if "L" in upper or "W" in upper.replace("WED", ""):
        raise ValueError("day-of-week: L must be the field's only item (L or 6L)")
    return _DayRule("values", values=_values(text, _DAY_OF_WEEK))


@dataclass(frozen=True)
class CronSchedule:
    expression: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    months: frozenset[int]
    years: frozenset[int] | None
    day_of_month: _DayRule | None
    day_of_week: _DayRule | None

    def _day_matches(self, day: date) -> bool:
        if self.day_of_month is not None:
            return _matches_day_of_month(self.day_of_month, day)
        assert self.day_of_week is not None
        return _matches_day_of_week(self.day_of_week, day)

    def next_after(self, moment: datetime) -> datetime | None:
        moment = moment.astimezone(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
        while moment.year <= MAX_YEAR:
            if self.years is not None and moment.year not in self.years:
                later = [year for year in self.years if year > moment.year]
                if not later:
                    return None
                moment = datetime(min(later), 1, 1, tzinfo=UTC)
                continue
            if moment.month not in self.months:
                year, month = divmod(moment.year * 12 + moment.month, 12)
                moment = datetime(year, month + 1, 1, tzinfo=UTC)
                continue
            if self._day_matches(moment.date()):
                for hour in self.hours:
                    if hour < moment.hour:
                        continue
                    for minute in self.minutes:
                        if hour == moment.hour and minute < moment.minute:
                            continue
                        return moment.replace(hour=hour, minute=minute)
            moment = datetime(moment.year, moment.month, moment.day, tzinfo=UTC) + timedelta(days=1)
        return None

    def following(self, due: datetime, now: datetime) -> datetime | None:
        return self.next_after(max(due, now))


def _parse_cron(expression: str) -> CronSchedule:
    match = _CRON.fullmatch(expression)
    assert match is not None
    fields = match.group(1).split()
    if len(fields) != 6:
        raise _invalid(
            expression,
            "cron needs 6 fields: minutes hours day-of-month month day-of-week year",
        )
    minutes, hours, dom, month, dow, year = fields
    if (dom == "?") == (dow == "?"):
        raise _invalid(expression, "exactly one of day-of-month and day-of-week must be '?'")
    try:
        return CronSchedule(
            expression=expression,
            minutes=tuple(sorted(_values(minutes, _MINUTES))),
            hours=tuple(sorted(_values(hours, _HOURS))),
            months=_values(month, _MONTH),
            years=None if year == "*" else _values(year, _YEAR),
            day_of_month=None if dom == "?" else _day_of_month_rule(dom),
            day_of_week=None if dow == "?" else _day_of_week_rule(dow),
        )
    except ValueError as exc:
        raise _invalid(expression, str(exc)) from None


def parse_schedule(expression: str, *, now: datetime | None = None) -> Schedule:
    """Parse and check a schedule; with `now`, also require that it fires after `now`."""
    text = expression.strip()
    if len(text) > 256:
        raise _invalid(text, "longer than 256 characters")
    schedule: Schedule
    if text.startswith("rate("):
        schedule = _parse_rate(text)
    elif _CRON.fullmatch(text):
        schedule = _parse_cron(text)
    else:
        raise _invalid(text, "expected rate(...) or cron(...)")
    if now is not None and schedule.next_after(now) is None:
        raise _invalid(text, "it never fires again")
    return schedule
