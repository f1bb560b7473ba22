"""What checking each event against the contract's model costs the relay when it builds one.

`new_event` validates an event with its kind's model (hostrelay_contract.events) before the
relay queues it. Baseline, measured in the same run: the same event as a bare dict with a
fresh ULID (what `new_event` did before it checked). For a full `output` event (64 chunks of
16 KiB of log text, zlib level 1) the check expands the data again, so the relay's own work
for that event, compressing those bytes, is printed beside it too.

    python bench/relay_events.py [--runs 100]
"""

from __future__ import annotations

import argparse
import base64
import statistics
import time
import zlib
from collections.abc import Callable
from typing import Any

from hostrelay_contract.events import EVENT_VERSION, new_event, new_ulid
from hostrelay_contract.output import MAX_CHUNK_BYTES, MAX_CHUNKS_PER_EVENT

LINES = b"".join(b"2026-12-06 00:00:%02d relay: line %06d of the job's log\n" % (n % 60, n)
                 for n in range(400))  # fmt: skip
CHUNK = (LINES * (MAX_CHUNK_BYTES // len(LINES) + 1))[:MAX_CHUNK_BYTES]


def compress_chunks() -> dict[str, Any]:
    """The output fields the relay makes of 64 chunks: a sync flush per chunk, as it does."""
    compressor, parts, index = zlib.compressobj(1), [], []
    for seq in range(MAX_CHUNKS_PER_EVENT):
        index.append({"seq": seq, "stream": "stdout", "size": len(CHUNK)})
        parts += [compressor.compress(CHUNK), compressor.flush(zlib.Z_SYNC_FLUSH)]
    parts.append(compressor.flush())
    return {
        "first_seq": 0, "last_seq": MAX_CHUNKS_PER_EVENT - 1, "chunks": index,
        "encoding": "zlib", "data": base64.b64encode(b"".join(parts)).decode(),
    }  # fmt: skip


def bare_event(kind: str, **fields: Any) -> dict[str, Any]:
    now = time.time()
    return {"v": EVENT_VERSION, "kind": kind, "event_id": new_ulid(now), "sent_at": now, **fields}


def median_us(build: Callable[[], Any], runs: int) -> float:
    """Median CPU time of one call (process time: the machine is shared, wall time is not
    the relay's cost), over `runs` rounds of 10 calls."""
    build()  # the first call builds the model's validator
    samples = []
    for _ in range(runs):
        started = time.process_time()
        for _ in range(10):
            build()
        samples.append((time.process_time() - started) * 1e5)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    runs = parser.parse_args().runs
    job = {"job_id": "01JEXAMPLE0000000000000000", "attempt": 1}
    output = {**job, **compress_chunks()}
    events: dict[str, dict[str, Any]] = {
        "accepted": job,
        "progress": {**job, "done": 3, "total": 10, "message": "reading users"},
        "result": {
            **job, "outcome": "failed", "result": {"exit_code": 3},
            "error": {"code": "exit_code", "message": "exit 3", "retryable": False},
            "output": {"size": 1 << 20, "sha256": "ab" * 32, "chunks": 64}, "started_at": 1.0,
        },
        "output (1 MiB)": output,
    }  # fmt: skip
    print(f"{'event':<16}{'bare dict µs':>14}{'checked µs':>12}{'ratio':>8}   (CPU time)")
    for name, fields in events.items():
        kind = name.split()[0]
        baseline = median_us(lambda k=kind, f=fields: bare_event(k, **f), runs)
        checked = median_us(lambda k=kind, f=fields: new_event(k, **f), runs)
        print(f"{name:<16}{baseline:>14.1f}{checked:>12.1f}{checked / baseline:>8.1f}")
    work = median_us(compress_chunks, max(10, runs // 10))
    check = median_us(lambda: new_event("output", **output), max(10, runs // 10))
    print(
        f"output check vs the relay compressing those 1 MiB: {check:.0f} µs vs {work:.0f} µs"
        f" (ratio {check / work:.2f})"
    )


if __name__ == "__main__":
    main()
