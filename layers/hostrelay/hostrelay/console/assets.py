"""The console's files, read once from the package, and the headers every one is served with."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

STATIC_DIR = Path(__file__).with_name("static")
INDEX = "index.html"
# Flat names only: a request can never climb out of the static directory.
ASSET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{0,63}\.(?:html|js|css|svg|json)$")

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".json": "application/json",
}

# Scripts, styles and API calls from this origin only; nothing inline, no frames, no forms
# posting elsewhere, no plugins.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "manifest-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
# The page itself is never cached (it names the current assets); assets are revalidated by
# ETag, so a deploy is seen at once and an unchanged file costs a 304.
INDEX_CACHE_CONTROL = "no-store"
ASSET_CACHE_CONTROL = "no-cache"


@dataclass(frozen=True)
class ConsoleAsset:
    name: str
    body: str
    content_type: str
    etag: str

    @property
    def cache_control(self) -> str:
        return INDEX_CACHE_CONTROL if self.name == INDEX else ASSET_CACHE_CONTROL

    def headers(self) -> dict[str, str]:
        return {**SECURITY_HEADERS, "Cache-Control": self.cache_control, "ETag": self.etag}

    def matches(self, if_none_match: str | None) -> bool:
        """Whether the browser's cached copy (If-None-Match) is this version."""
        if not if_none_match:
            return False
        tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        return self.etag in tags or "*" in tags


@cache
def console_asset(name: str) -> ConsoleAsset | None:
    """The asset called `name`, or None when there is no such file."""
    if not ASSET_NAME.fullmatch(name):
        return None
    path = STATIC_DIR / name
    if not path.is_file():
        return None
    data = path.read_bytes()
    return ConsoleAsset(
        name=name,
        body=data.decode("utf-8"),
        content_type=CONTENT_TYPES[path.suffix],
        etag='"' + hashlib.sha256(data).hexdigest()[:32] + '"',
    )
