"""Job output as relays send it: consecutive chunks packed into one (maybe compressed) blob."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from hostrelay.domain.jobs import Job


@dataclass(frozen=True)
class OutputChunk:
    seq: int
    stream: str
    data: bytes


MAX_CHUNK_BYTES = 16 * 1024
MAX_CHUNKS_PER_BATCH = 64
STREAMS = ("stdout", "stderr")
ENCODINGS = ("identity", "zlib")
# Chunks may arrive after the result; past this, missing ones are taken as lost.
LATE_CHUNK_GRACE = timedelta(seconds=60)


@dataclass(frozen=True)
class OutputBatch:
    """The chunks of one `output` event: `first_seq` on, `sizes` (stream, bytes) each."""

    first_seq: int
    sizes: list[tuple[str, int]]
    encoding: str  # "identity" or "zlib"
    payload: bytes

    @classmethod
    def from_index(
        cls, index: list[tuple[int, str, int]], encoding: str, payload: bytes
    ) -> OutputBatch:
        """A batch from its chunk index, (seq, stream, size) each, as a relay sent it.

        ValueError unless the index is sane: 1 to 64 chunks with consecutive seq numbers,
        known streams, sizes within a chunk's limit. (The payload is checked by `raw`.)
        """
        if not 1 <= len(index) <= MAX_CHUNKS_PER_BATCH:
            raise ValueError(f"an output batch holds 1 to {MAX_CHUNKS_PER_BATCH} chunks")
        first = index[0][0]
        if first < 0 or [seq for seq, _, _ in index] != list(range(first, first + len(index))):
            raise ValueError("output chunks must have consecutive, non-negative seq numbers")
        for _, stream, size in index:
            if stream not in STREAMS or not 0 <= size <= MAX_CHUNK_BYTES:
                raise ValueError("output chunk with an unknown stream or a bad size")
        if encoding not in ENCODINGS:
            raise ValueError(f"unknown output encoding {encoding[:20]!r}")
        return cls(first, [(stream, size) for _, stream, size in index], encoding, payload)

    @property
    def last_seq(self) -> int:
        return self.first_seq + len(self.sizes) - 1

    @property
    def size(self) -> int:
        return sum(size for _, size in self.sizes)

    def raw(self) -> bytes:
        """The chunks' bytes back to back (ValueError if the payload does not match)."""
        size = self.size
        data = inflate(self.payload, size) if self.encoding == "zlib" else self.payload
        if len(data) != size:
            raise ValueError(f"output data holds {len(data)} bytes, its chunks say {size}")
        return data

    def chunks(self, raw: bytes | None = None) -> list[OutputChunk]:
        """The chunks, cut from `raw` (what `raw()` gave) or from the payload."""
        data, offset, chunks = self.raw() if raw is None else raw, 0, []
        for n, (stream, size) in enumerate(self.sizes):
            chunks.append(OutputChunk(self.first_seq + n, stream, data[offset : offset + size]))
            offset += size
        return chunks


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


def output_complete(job: Job, *, next_seq: int, short_page: bool, now: datetime) -> bool:
    """Whether a reader that has read up to `next_seq` has all of `job`'s output.

    Only once the job has ended: when every chunk the result counted has been read, or (no
    count, or a grace period after the end) when the last page came back short.
    """
    if not job.state.terminal:
        return False
    if job.output is not None and job.output.chunks:
        ended = job.finished_at or job.updated_at
        late = now - ended > LATE_CHUNK_GRACE
        sent = job.output.chunks + job.output.missing
        return next_seq >= sent - 1 or (short_page and late)
    return short_page
