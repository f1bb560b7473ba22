"""Job output as relays send it: consecutive chunks packed into one (maybe compressed) blob."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from hostrelay.domain.jobs import Job
from hostrelay_contract.output import check_chunk_index, expand


@dataclass(frozen=True)
class OutputChunk:
    seq: int
    stream: str
    data: bytes


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
        check_chunk_index(index, encoding)
        first = index[0][0]
        return cls(first, [(stream, size) for _, stream, size in index], encoding, payload)

    @property
    def last_seq(self) -> int:
        return self.first_seq + len(self.sizes) - 1

    @property
    def size(self) -> int:
        return sum(size for _, size in self.sizes)

    def raw(self) -> bytes:
        """The chunks' bytes back to back (ValueError if the payload does not match)."""
        return expand(self.encoding, self.payload, self.size)

    def chunks(self, raw: bytes | None = None) -> list[OutputChunk]:
        """The chunks, cut from `raw` (what `raw()` gave) or from the payload."""
        data, offset, chunks = self.raw() if raw is None else raw, 0, []
        for n, (stream, size) in enumerate(self.sizes):
            chunks.append(OutputChunk(self.first_seq + n, stream, data[offset : offset + size]))
            offset += size
        return chunks


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
