"""How the CLI shows things: tables, job summaries, times, and the live state line."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

TERMINAL_STATES = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "CANCELED", "REJECTED", "EXPIRED"})
SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def relative(moment: datetime, now: datetime) -> str:
    """`5m ago` / `in 3d`: the largest unit, rounded down."""
    seconds = int((now - moment).total_seconds())
    ahead = seconds < 0
    seconds = abs(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            amount = f"{seconds // size}{unit}"
            break
    else:
        amount = f"{seconds}s"
    return f"in {amount}" if ahead else f"{amount} ago"


def format_time(value: str | None, now: datetime, *, with_relative: bool = True) -> str:
    moment = parse_time(value)
    if moment is None:
        return "-"
    text = moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    return f"{text} ({relative(moment, now)})" if with_relative else text


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    lines = [headers, *rows]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def job_rows(jobs: Sequence[dict[str, Any]], now: datetime) -> list[list[str]]:
    return [
        [
            job["id"],
            job["type"],
            job["host"],
            job["state"],
            format_time(job.get("created_at"), now),
        ]
        for job in jobs
    ]


JOB_HEADERS = ("ID", "TYPE", "HOST", "STATE", "CREATED")
HOST_HEADERS = ("NAME", "STATE", "LAST SEEN", "RELAY", "CERT EXPIRES", "TAGS")
TOKEN_HEADERS = ("ID", "NAME", "SCOPES", "LIMITS", "EXPIRES", "LAST USED", "REVOKED")


def host_rows(hosts: Sequence[dict[str, Any]], now: datetime) -> list[list[str]]:
    return [
        [
            host["name"],
            host["state"],
            format_time(host.get("last_seen"), now),
            host.get("relay_version") or "-",
            format_time(host.get("cert_expires_at"), now),
            format_tags(host.get("tags")),
        ]
        for host in hosts
    ]


def format_tags(tags: dict[str, str] | None) -> str:
    """`k=v,k2=v2` sorted by key, `-` for none."""
    return ",".join(f"{key}={value}" for key, value in sorted((tags or {}).items())) or "-"


def _limits(token: dict[str, Any]) -> str:
    parts = []
    if token.get("job_types") is not None:
        parts.append("types=" + ",".join(token["job_types"]))
    if token.get("hosts") is not None:
        parts.append("hosts=" + ",".join(token["hosts"]))
    return " ".join(parts) or "-"


def token_rows(tokens: Sequence[dict[str, Any]], now: datetime) -> list[list[str]]:
    return [
        [
            token["id"],
            token["name"],
            ",".join(token["scopes"]),
            _limits(token),
            format_time(token.get("expires_at"), now) if token.get("expires_at") else "never",
            format_time(token.get("last_used_at"), now),
            format_time(token.get("revoked_at"), now, with_relative=False),
        ]
        for token in tokens
    ]


def key_values(pairs: Sequence[tuple[str, str]]) -> str:
    width = max(len(key) for key, _ in pairs)
    return "\n".join(f"{key + ':':<{width + 1}} {value}" for key, value in pairs)


def job_summary(job: dict[str, Any], now: datetime) -> str:
    pairs = [
        ("id", job["id"]),
        ("type", job["type"]),
        ("host", job["host"]),
        ("state", job["state"]),
        ("attempt", f"{job.get('attempt', 1)}/{job.get('max_attempts', 1)}"),
        ("created", format_time(job.get("created_at"), now)),
        ("created by", job.get("created_by") or "-"),
    ]
    if job.get("started_at"):
        pairs.append(("started", format_time(job["started_at"], now)))
    if job.get("finished_at"):
        pairs.append(("finished", format_time(job["finished_at"], now)))
    if job.get("error"):
        pairs.append(("error", f"{job['error']['code']}: {job['error']['message']}"))
    text = key_values(pairs)
    if job.get("result") is not None:
        text += "\nresult:\n" + json.dumps(job["result"], indent=2, sort_keys=True)
    output = job.get("output")
    if output and output.get("tail"):
        text += f"\noutput ({output.get('size', 0)} bytes), tail:\n" + output["tail"].rstrip()
    return text


def host_summary(host: dict[str, Any], now: datetime) -> str:
    return key_values(
        [
            ("name", host["name"]),
            ("state", host["state"]),
            ("roles", ",".join(host.get("roles") or []) or "-"),
            ("tags", format_tags(host.get("tags"))),
            ("last seen", format_time(host.get("last_seen"), now)),
            ("connected", format_time(host.get("connected_at"), now)),
            ("relay", host.get("relay_version") or "-"),
            ("cert expires", format_time(host.get("cert_expires_at"), now)),
            ("revoked", format_time(host.get("revoked_at"), now)),
        ]
    )


class StateLine:
    """Shows a job's state while waiting: a spinner line on a terminal, else one line a change."""

    def __init__(self, stream: TextIO, *, interactive: bool) -> None:
        self._stream = stream
        self._interactive = interactive
        self._frame = 0
        self._last_state: str | None = None
        self._drawn = False

    def update(self, job: dict[str, Any], elapsed_s: float) -> None:
        state = job["state"]
        if self._interactive:
            spinner = SPINNER[self._frame % len(SPINNER)]
            self._frame += 1
            label = f"{job['type']} on {job['host']}"
            self._stream.write(f"\r\x1b[K{spinner} {job['id']} {label}: {state} {elapsed_s:.0f}s")
            self._drawn = True
        elif state != self._last_state:
            self._stream.write(f"{job['id']} {state}\n")
        self._last_state = state
        self._stream.flush()

    def clear(self) -> None:
        """Erase the spinner line (before other output, and at the end)."""
        if self._interactive and self._drawn:
            self._stream.write("\r\x1b[K")
            self._stream.flush()
            self._drawn = False
