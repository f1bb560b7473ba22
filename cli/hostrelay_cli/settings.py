"""The CLI's settings: the only place that reads the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_URL = "http://127.0.0.1:3000"


@dataclass(frozen=True)
class CliSettings:
    url: str = DEFAULT_URL
    token: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> CliSettings:
        """HOSTRELAY_URL, and HOSTRELAY_TOKEN or a file named by HOSTRELAY_TOKEN_FILE."""
        env = os.environ if environ is None else environ
        token = env.get("HOSTRELAY_TOKEN", "").strip() or None
        token_file = env.get("HOSTRELAY_TOKEN_FILE", "").strip()
        if token is None and token_file:
            token = Path(token_file).expanduser().read_text(encoding="utf-8").strip() or None
        url = env.get("HOSTRELAY_URL", "").strip() or DEFAULT_URL
        return cls(url=url.rstrip("/"), token=token)
