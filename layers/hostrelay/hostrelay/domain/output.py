"""Job output as relays send it: consecutive chunks packed into one (maybe compressed) blob."""

from __future__ import annotations

import zlib
from dataclasses import dataclass


@dataclass(frozen=True)
class OutputChunk:
    seq: int
    stream: str
    data: bytes


@dataclass(frozen=True)
class OutputBatch:
    """The chunks of one `output` event: `first_seq` on, `sizes` (stream, bytes) each."""

    first_seq: int
    sizes: list[tuple[str, int]]
    encoding: str  # "identity" or "zlib"
    payload: bytes

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

    def chunks(self) -> list[OutputChunk]:
        data, offset, chunks = self.raw(), 0, []
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
