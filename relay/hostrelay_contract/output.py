"""Job output on the wire: chunk limits, the chunk index of an `output` event, its data."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Final

MAX_CHUNK_BYTES: Final = 16 * 1024
MAX_CHUNKS_PER_EVENT: Final = 64
# Decoded `data` of one event; the relay keeps it under 88 KiB (IoT Core: 128 KB a message).
MAX_EVENT_DATA_BYTES: Final = 96 * 1024
STREAMS: Final = ("stdout", "stderr")
ENCODINGS: Final = ("identity", "zlib")


def check_chunk_index(index: Sequence[tuple[int, str, int]], encoding: str) -> None:
    """ValueError unless (seq, stream, size) each is a sane index of one event's chunks:
    1 to 64 chunks with consecutive seq numbers, known streams, sizes within a chunk's limit.
    """
    if not 1 <= len(index) <= MAX_CHUNKS_PER_EVENT:
        raise ValueError(f"an output batch holds 1 to {MAX_CHUNKS_PER_EVENT} chunks")
    first = index[0][0]
    if first < 0 or [seq for seq, _, _ in index] != list(range(first, first + len(index))):
        raise ValueError("output chunks must have consecutive, non-negative seq numbers")
    for _, stream, size in index:
        if stream not in STREAMS or not 0 <= size <= MAX_CHUNK_BYTES:
            raise ValueError("output chunk with an unknown stream or a bad size")
    if encoding not in ENCODINGS:
        raise ValueError(f"unknown output encoding {encoding[:20]!r}")


def inflate(compressed: bytes, size: int) -> bytes:
    """zlib data that must expand to exactly `size` bytes (ValueError otherwise; no bombs)."""
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(compressed, size + 1)
    except zlib.error as exc:
        raise ValueError(f"output data is not zlib: {exc}") from None
    if len(raw) != size or not inflater.eof or inflater.unused_data:
        raise ValueError(f"output data does not expand to the {size} bytes its chunks say")
    return raw


def expand(encoding: str, payload: bytes, size: int) -> bytes:
    """The chunks' bytes back to back (ValueError if the payload does not hold `size`)."""
    data = inflate(payload, size) if encoding == "zlib" else payload
    if len(data) != size:
        raise ValueError(f"output data holds {len(data)} bytes, its chunks say {size}")
    return data
