"""A bearer token that is fetched again before it expires, and once after a 401.

Google access tokens and Azure client-credential tokens live about an hour; a run that reads a
big source for longer must not fail halfway on an expired token.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

# Fetched again this long before the expiry the issuer gave (clock skew, a slow last page).
REFRESH_MARGIN_S = 300.0


@dataclass(frozen=True)
class IssuedToken:
    value: str
    expires_at: float  # seconds since the epoch


class RefreshingToken:
    """`header()` is the Authorization value for the next request."""

    def __init__(
        self,
        fetch: Callable[[], IssuedToken],
        *,
        clock: Callable[[], float] = time.time,
        margin_s: float = REFRESH_MARGIN_S,
    ) -> None:
        self._fetch = fetch
        self._clock = clock
        self._margin_s = margin_s
        self._token: IssuedToken | None = None
        self.fetches = 0

    def header(self) -> str:
        if self._token is None or self._clock() >= self._token.expires_at - self._margin_s:
            self.renew()
        assert self._token is not None
        return f"Bearer {self._token.value}"

    def renew(self) -> None:
        self._token = self._fetch()
        self.fetches += 1
