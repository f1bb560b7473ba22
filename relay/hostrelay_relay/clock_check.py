"""This host's clock against the control plane's; too far off, and jobs are refused."""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable

from hostrelay_relay import __version__

logger = logging.getLogger(__name__)

HEALTH_PATH = "/v1/health"
HTTP_TIMEOUT_S = 5.0


class ClockCheckFailed(Exception):
    """The control plane's time could not be read."""


def fetch_control_plane_time(url: str) -> float:
    """`time` of GET {url}/v1/health (no token needed)."""
    if not url.startswith(("https://", "http://")):
        raise ClockCheckFailed(f"control_plane_url must be an http(s) URL: {url!r}")
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked above
        url.rstrip("/") + HEALTH_PATH,
        headers={"Accept": "application/json", "User-Agent": f"hostrelay-relay/{__version__}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as response:  # noqa: S310
            body = json.loads(response.read(64 * 1024))
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise ClockCheckFailed(f"cannot read the control plane's time: {exc}") from None
    value = body.get("time") if isinstance(body, dict) else None
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ClockCheckFailed("the control plane's health answer has no time")
    return float(value)


def measure_skew(fetch: Callable[[], float], clock: Callable[[], float] = time.time) -> float:
    """Control plane time minus ours (positive: this host is behind), mid-request."""
    sent = clock()
    server = fetch()
    received = clock()
    return server - (sent + received) / 2


class ClockGuard:
    """Knows whether this host's clock can be trusted with envelope times.

    Envelopes are valid for `limit_s` seconds; with a clock off by more, the relay would
    run expired envelopes or refuse fresh ones at random, so it refuses them all, with
    reason `clock_skew`, until a check finds the clock back in range.
    """

    def __init__(
        self,
        control_plane_url: str | None,
        limit_s: float,
        *,
        fetch: Callable[[str], float] = fetch_control_plane_time,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._url = control_plane_url
        self._limit_s = limit_s
        self._fetch = fetch
        self._clock = clock
        self._lock = threading.Lock()
        self._skew_s: float | None = None
        self._warned_no_url = False

    @property
    def skew_s(self) -> float | None:
        with self._lock:
            return self._skew_s

    def check(self) -> float | None:
        """Measure the skew now and log what it means; the skew, or None when unknown."""
        url = self._url
        if not url:
            if not self._warned_no_url:
                logger.warning("no control_plane_url configured: the clock is not checked")
                self._warned_no_url = True
            return None
        try:
            skew = measure_skew(lambda: self._fetch(url), self._clock)
        except ClockCheckFailed as exc:
            logger.warning("clock check failed", extra={"error": str(exc)})
            return self.skew_s
        with self._lock:
            was_refusing = self._refusing(self._skew_s)
            self._skew_s = skew
        fields = {"skew_s": round(skew, 1), "limit_s": self._limit_s}
        if self._refusing(skew):
            logger.error(
                "clock skew exceeds the envelope validity: refusing jobs until this host's "
                "clock is fixed (check NTP)",
                extra=fields,
            )
        elif was_refusing:
            logger.warning(
                "clock skew back within the envelope validity: taking jobs", extra=fields
            )
        else:
            logger.info("clock checked", extra=fields)
        return skew

    def _refusing(self, skew: float | None) -> bool:
        return skew is not None and abs(skew) > self._limit_s

    def refusal(self) -> str | None:
        """Why envelopes must be refused now, or None."""
        skew = self.skew_s
        if not self._refusing(skew):
            return None
        assert skew is not None
        direction = "behind" if skew > 0 else "ahead of"
        return (
            f"this host's clock is {abs(skew):.0f} s {direction} the control plane's, more than "
            f"the {self._limit_s:.0f} s an envelope is valid; fix the clock (NTP)"
        )

    def control_plane_time(self) -> float:
        """Now, by the control plane's clock as last measured (ours when unknown)."""
        return self._clock() + (self.skew_s or 0.0)
