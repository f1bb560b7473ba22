"""max_concurrency and max_errors: numbers or percentages, and how percentages round."""

from __future__ import annotations

import pytest

from hostrelay.domain.errors import InvalidRequest
from hostrelay.domain.runs import (
    concurrency_of,
    error_limit_of,
    parse_limit,
)


@pytest.mark.parametrize(
    ("spec", "total", "window"),
    [(10, 50, 10), ("10%", 5, 1), ("10%", 11, 2), ("10%", 200, 20), ("100%", 7, 7), ("1%", 1, 1)],
)
def test_concurrency_percentage_rounds_up_and_is_at_least_one(
    spec: int | str, total: int, window: int
) -> None:
    assert concurrency_of(spec, total) == window


@pytest.mark.parametrize(
    ("spec", "total", "limit"),
    [(0, 50, 0), (2, 50, 2), ("10%", 15, 1), ("10%", 9, 0), ("50%", 5, 2), ("100%", 4, 4)],
)
def test_error_percentage_rounds_down(spec: int | str, total: int, limit: int) -> None:
    assert error_limit_of(spec, total) == limit


@pytest.mark.parametrize("bad", [-1, 5001, "101%", "10", "%", "-5%", "5.5%", " 5%", True])
def test_limits_refuse_what_is_neither_a_count_nor_a_percentage(bad: int | str) -> None:
    with pytest.raises(InvalidRequest):
        parse_limit(bad, "max_errors")
