"""OutputPump: how job output becomes ordered chunks of at most 16 KiB, flushed within 250 ms."""

from __future__ import annotations

import hashlib

import pytest

from hostrelay_relay.handlers.base import OutputStream
from hostrelay_relay.isolation.output_pump import CHUNK_BYTES, OutputPump


class Collected:
    def __init__(self) -> None:
        self.chunks: list[tuple[OutputStream, bytes]] = []

    def __call__(self, stream: OutputStream, data: bytes) -> None:
        self.chunks.append((stream, data))

    def data(self) -> bytes:
        return b"".join(chunk for _, chunk in self.chunks)


def test_small_output_waits_for_the_flush_interval() -> None:
    """Given a few bytes, then nothing is emitted until 250 ms have passed since they came."""
    sink = Collected()
    pump = OutputPump(sink, limit_bytes=1 << 20, flush_interval_s=0.25)

    pump.feed("stdout", b"hello\n", now=10.0)
    pump.flush_if_due(now=10.2)
    assert sink.chunks == []
    assert pump.seconds_until_flush(now=10.2) == pytest.approx(0.05)

    pump.flush_if_due(now=10.25)
    assert sink.chunks == [("stdout", b"hello\n")]
    assert pump.seconds_until_flush(now=10.3) is None


def test_large_output_is_cut_into_full_chunks_at_once() -> None:
    """Given 40 KiB in one read, then two full 16 KiB chunks go out at once, the rest waits."""
    sink = Collected()
    pump = OutputPump(sink, limit_bytes=1 << 20)

    pump.feed("stdout", b"a" * (40 * 1024), now=0.0)

    assert [len(chunk) for _, chunk in sink.chunks] == [CHUNK_BYTES, CHUNK_BYTES]
    pump.flush()
    assert [len(chunk) for _, chunk in sink.chunks] == [CHUNK_BYTES, CHUNK_BYTES, 8 * 1024]


def test_chunks_keep_arrival_order_across_streams_and_never_mix_them() -> None:
    """Given output alternating between streams, then chunks follow arrival order, one stream
    each, and consecutive bytes of one stream are merged."""
    sink = Collected()
    pump = OutputPump(sink, limit_bytes=1 << 20)

    for stream, data in [("stdout", b"1"), ("stdout", b"2"), ("stderr", b"3"), ("stdout", b"4")]:
        pump.feed(stream, data, now=0.0)  # type: ignore[arg-type]
    pump.flush()

    assert sink.chunks == [("stdout", b"12"), ("stderr", b"3"), ("stdout", b"4")]


def test_oldest_pending_byte_sets_the_deadline() -> None:
    """Given bytes on two streams at different times, then the flush is due 250 ms after the
    first of them, not the last."""
    sink = Collected()
    pump = OutputPump(sink, limit_bytes=1 << 20, flush_interval_s=0.25)

    pump.feed("stdout", b"first", now=1.0)
    pump.feed("stderr", b"second", now=1.2)

    assert pump.seconds_until_flush(now=1.2) == pytest.approx(0.05)
    pump.flush_if_due(now=1.24)
    assert sink.chunks == []
    pump.flush_if_due(now=1.25)
    assert sink.chunks == [("stdout", b"first"), ("stderr", b"second")]


def test_limit_cuts_delivery_exactly_and_marks_truncated() -> None:
    """Given a 100-byte limit, when 250 bytes come, then exactly 100 are delivered, all 250
    are counted, and the summary says truncated."""
    sink = Collected()
    pump = OutputPump(sink, limit_bytes=100)

    pump.feed("stdout", b"o" * 60, now=0.0)
    pump.feed("stderr", b"e" * 90, now=0.0)
    pump.feed("stdout", b"o" * 100, now=0.0)
    pump.flush()
    summary = pump.summary()

    assert sink.data() == b"o" * 60 + b"e" * 40
    assert summary.truncated is True
    assert (summary.stdout_bytes, summary.stderr_bytes) == (160, 90)
    assert summary.delivered_bytes == 100


def test_output_exactly_at_the_limit_is_not_truncated() -> None:
    """Given a limit equal to the output size, then all of it is delivered, not truncated."""
    sink = Collected()
    pump = OutputPump(sink, limit_bytes=64)

    pump.feed("stdout", b"x" * 64, now=0.0)
    pump.flush()

    assert sink.data() == b"x" * 64
    assert pump.summary().truncated is False


def test_summary_digest_is_over_the_chunks_in_emission_order() -> None:
    """Given mixed output, then sha256 is the digest of the emitted chunks concatenated."""
    sink = Collected()
    pump = OutputPump(sink, limit_bytes=1 << 20)

    pump.feed("stdout", b"a" * 20_000, now=0.0)
    pump.feed("stderr", b"b" * 5, now=0.0)
    pump.feed("stdout", b"c" * 7, now=0.0)
    pump.flush()
    summary = pump.summary()

    assert summary.sha256 == hashlib.sha256(sink.data()).hexdigest()
    assert summary.chunks == len(sink.chunks)
    assert summary.as_result()["delivered_bytes"] == 20_012


def test_empty_output_has_the_digest_of_nothing() -> None:
    """Given no output, then the summary has zero sizes and the SHA-256 of empty input."""
    pump = OutputPump(Collected(), limit_bytes=10)

    summary = pump.summary()

    assert summary.sha256 == hashlib.sha256(b"").hexdigest()
    assert (summary.delivered_bytes, summary.chunks, summary.truncated) == (0, 0, False)
