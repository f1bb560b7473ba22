"""Turns a job's stdout/stderr into ordered, bounded chunks for the relay's `output` events."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hostrelay_relay.handlers.base import OutputStream

CHUNK_BYTES = 16 * 1024
FLUSH_INTERVAL_S = 0.1


@dataclass(frozen=True)
class OutputSummary:
    stdout_bytes: int  # what the job wrote, delivered or not
    stderr_bytes: int
    delivered_bytes: int  # what was emitted as chunks (and what sha256 covers)
    chunks: int
    sha256: str
    truncated: bool

    def as_result(self) -> dict[str, Any]:
        return {
            "stdout_bytes": self.stdout_bytes,
            "stderr_bytes": self.stderr_bytes,
            "delivered_bytes": self.delivered_bytes,
            "chunks": self.chunks,
            "sha256": self.sha256,
            "truncated": self.truncated,
        }


@dataclass
class _Pending:
    stream: OutputStream
    data: bytearray
    since: float


class OutputPump:
    """Coalesces what the job writes into chunks for `emit`.

    Chunks are at most `chunk_bytes` (16 KiB) and no byte waits longer than `flush_interval_s`
    (100 ms; the relay core coalesces once more, within its own 250 ms) before it is emitted.
    Chunks keep the order in which the relay read the bytes from the two pipes. `sha256` is
    the SHA-256 of the concatenation of the data of every emitted chunk, in emission order
    (both streams together); a consumer that concatenates the chunks in `seq` order gets the
    same digest. Beyond `limit_bytes` in total nothing more is emitted and the summary says
    `truncated`; the job's output is still drained and counted.

    Not thread-safe: fed and flushed by the one thread that reads the job's pipes.
    """

    def __init__(
        self,
        emit: Callable[[OutputStream, bytes], None],
        limit_bytes: int,
        chunk_bytes: int = CHUNK_BYTES,
        flush_interval_s: float = FLUSH_INTERVAL_S,
    ) -> None:
        self._emit = emit
        self._limit = limit_bytes
        self._chunk = chunk_bytes
        self._interval = flush_interval_s
        self._pending: list[_Pending] = []
        self._pending_bytes = 0
        self._produced: dict[OutputStream, int] = {"stdout": 0, "stderr": 0}
        self._delivered = 0
        self._chunks = 0
        self._sha = hashlib.sha256()
        self._truncated = False

    def feed(self, stream: OutputStream, data: bytes, now: float) -> None:
        """Take bytes read from one stream; emits the full chunks they complete."""
        self._produced[stream] += len(data)
        room = self._limit - self._delivered - self._pending_bytes
        if len(data) > room:
            self._truncated = True
            data = data[: max(0, room)]
        if not data:
            return
        if self._pending and self._pending[-1].stream == stream:
            self._pending[-1].data += data
        else:
            self._pending.append(_Pending(stream, bytearray(data), now))
        self._pending_bytes += len(data)
        while self._pending_bytes >= self._chunk:
            self._emit_front()

    def seconds_until_flush(self, now: float) -> float | None:
        """How long the oldest pending byte may still wait; None when nothing is pending."""
        if not self._pending:
            return None
        return max(0.0, self._pending[0].since + self._interval - now)

    def flush_if_due(self, now: float) -> None:
        if self._pending and now >= self._pending[0].since + self._interval:
            self.flush()

    def flush(self) -> None:
        while self._pending:
            self._emit_front()

    def summary(self) -> OutputSummary:
        return OutputSummary(
            stdout_bytes=self._produced["stdout"],
            stderr_bytes=self._produced["stderr"],
            delivered_bytes=self._delivered,
            chunks=self._chunks,
            sha256=self._sha.hexdigest(),
            truncated=self._truncated,
        )

    def _emit_front(self) -> None:
        front = self._pending[0]
        piece = bytes(front.data[: self._chunk])
        if len(piece) == len(front.data):
            self._pending.pop(0)
        else:
            del front.data[: self._chunk]
        self._pending_bytes -= len(piece)
        self._sha.update(piece)
        self._delivered += len(piece)
        self._chunks += 1
        self._emit(front.stream, piece)
