"""The one retry rule of every HTTPS client that reads a source: what is retried, how long to wait.

Two clients follow it: hostrelay_sources.https (standard library; the relay and the discovery
function's self-hosted sources) and the control plane's dal/rest_source.py (urllib3; SaaS
connectors). They differ in transport and in what a vendor adds on top (Okta's
X-Rate-Limit-Reset, Google's quota 403s, renewing a refreshing token once on a 401), never in
the rule itself. Standard library only: the relay imports it on Python 3.10-3.13.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

# Statuses that mean "slow down" (Too Many Requests, Service Unavailable).
THROTTLED = frozenset({429, 503})
# A connection that failed (refused, reset, timed out) is tried once more, not for minutes.
UNREACHABLE_ATTEMPTS = 2


class WaitTooLong(Exception):
    """The source asks for a longer wait than the policy allows: fail now, say how long."""

    def __init__(self, wait_s: float) -> None:
        super().__init__(f"throttled, retry after {wait_s:.0f} s")
        self.wait_s = wait_s


def retry_after_s(value: str | None, now: float) -> float | None:
    """Seconds a Retry-After header asks for (delta-seconds or an HTTP date), else None."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        return max(0.0, parsedate_to_datetime(text).timestamp() - now)
    except (TypeError, ValueError):
        return None


@dataclass
class RetryPolicy:
    """How long to keep asking a source: the wait it asks for wins over the backoff."""

    max_attempts: int = 5
    max_wait_s: float = 60.0
    backoff_s: float = 0.5
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.time

    def unreachable_wait(self, attempt: int) -> float | None:
        """Seconds to wait before trying again after the connection failed on `attempt`
        (1-based); None: give up (the source is unreachable)."""
        return self.backoff_s if attempt < UNREACHABLE_ATTEMPTS else None

    def throttled_wait(self, attempt: int, asked_s: float | None) -> float | None:
        """Seconds to wait before trying again after a throttled answer to `attempt`: what the
        source asked for (`asked_s`), else an exponential backoff. None when `attempt` was the
        last (the throttled answer stands); WaitTooLong when the wait exceeds max_wait_s."""
        if attempt >= self.max_attempts:
            return None
        wait = asked_s if asked_s is not None else self.backoff_s * 2 ** (attempt - 1)
        if wait > self.max_wait_s:
            raise WaitTooLong(wait)
        return wait
