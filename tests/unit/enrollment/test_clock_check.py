"""The relay's clock check: skew measured mid-request, refusal beyond the envelope validity."""

from __future__ import annotations

import logging

import pytest

from hostrelay_relay.clock_check import ClockCheckFailed, ClockGuard, measure_skew


class SteppingClock:
    def __init__(self, *times: float) -> None:
        self.times = list(times)

    def __call__(self) -> float:
        return self.times.pop(0) if len(self.times) > 1 else self.times[0]


def test_skew_is_measured_against_the_middle_of_the_request() -> None:
    assert measure_skew(lambda: 1000.0, SteppingClock(900.0, 910.0)) == 95.0


def test_guard_refuses_beyond_the_validity_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    # Given a host whose clock is 10 minutes behind the control plane's
    guard = ClockGuard(
        "https://api.example.com", 300, fetch=lambda url: 1600.0, clock=lambda: 1000.0
    )

    # When it checks
    with caplog.at_level(logging.INFO):
        guard.check()

    # Then it refuses envelopes, saying why in plain words, and logs an error line
    refusal = guard.refusal()
    assert refusal is not None and "600 s behind" in refusal and "NTP" in refusal
    assert guard.control_plane_time() == 1600.0
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert errors and "refusing jobs" in errors[0].getMessage()


def test_guard_recovers_when_the_clock_is_fixed() -> None:
    server = {"time": 1600.0}
    guard = ClockGuard("https://x", 300, fetch=lambda url: server["time"], clock=lambda: 1000.0)
    guard.check()
    server["time"] = 1010.0
    guard.check()
    assert guard.refusal() is None


def test_unreachable_control_plane_keeps_the_last_known_state() -> None:
    def unreachable(url: str) -> float:
        raise ClockCheckFailed("down")

    guard = ClockGuard("https://x", 300, fetch=unreachable, clock=lambda: 1000.0)
    assert guard.check() is None
    assert guard.refusal() is None


def test_no_control_plane_url_means_no_check() -> None:
    guard = ClockGuard(None, 300, fetch=lambda url: 0.0, clock=lambda: 1e9)
    assert guard.check() is None
    assert guard.refusal() is None
