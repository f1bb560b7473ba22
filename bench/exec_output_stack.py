"""Output throughput of an exec job through the local stack: job → relay → MQTT → results → store.

Boots the local stack as `make run` does (its own process; no Samba, no directory) with
`/usr/bin/seq` and `/usr/bin/head` allowed for exec on dc01, runs
`seq 1 N` (about 6.9 bytes a line) and times from job creation until the job is SUCCEEDED
with its full output stored (size and sha256 checked against the expected bytes).

Two clocks: the stack's own (the job's `created_at` to the `updated_at` of the write that
made it SUCCEEDED with its log in S3, so polling does not disturb it), and what a client
polling every 50 ms sees (its GETs compete with the stack for the same CPU). `--random`
writes incompressible bytes instead (`head -c` of a random file), the worst case for the
relay's compression. Prints MB/s; the issue's target is >= 20 MB/s.

    python bench/exec_output_stack.py [--lines 1350000] [--random BYTES] [--runs 7]
        [--warmup 2] [--poll 0.05]
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import requests

from hostrelay_local.stack_process import StackProcess

SEQ = "/usr/bin/seq"
HEAD = "/usr/bin/head"


@dataclass
class Run:
    size: int
    server_s: float  # created_at -> updated_at of the final write, the stack's clock
    client_s: float  # POST -> GET shows SUCCEEDED, as the polling client saw it


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def run_once(api: str, token: str, *, lines: int, random_bytes: int, poll_s: float) -> Run:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    if random_bytes:
        argv, expected = [HEAD, "-c", str(random_bytes), "/dev/urandom"], None
    else:
        argv = [SEQ, "1", str(lines)]
        expected = "".join(f"{n}\n" for n in range(1, lines + 1)).encode()
    started = time.perf_counter()
    created = session.post(
        f"{api}/v1/jobs",
        json={"type": "exec", "host": "dc01", "timeout_s": 600,
              "params": {"argv": argv, "timeout_s": 600}},
        timeout=30,
    )  # fmt: skip
    created.raise_for_status()
    job_id = created.json()["id"]
    while True:
        job = session.get(f"{api}/v1/jobs/{job_id}", timeout=30).json()
        if job["state"] not in ("QUEUED", "DISPATCHED", "IN_PROGRESS"):
            break
        time.sleep(poll_s)
    client_s = time.perf_counter() - started
    if job["state"] != "SUCCEEDED":
        raise SystemExit(f"job ended {job['state']}: {job.get('error')}")
    output, relay_side = job["output"], job["result"]["output"]
    # The stored log must be what the relay read from the job, byte for byte.
    if (output["size"], output["sha256"]) != (relay_side["delivered_bytes"], relay_side["sha256"]):
        raise SystemExit(f"stored output differs from what the relay sent: {output}")
    if expected is not None and (output["size"], output["sha256"]) != (
        len(expected),
        hashlib.sha256(expected).hexdigest(),
    ):
        raise SystemExit(f"stored output differs: {output['size']} bytes vs {len(expected)}")
    server_s = (_instant(job["updated_at"]) - _instant(job["created_at"])).total_seconds()
    return Run(size=output["size"], server_s=server_s, client_s=client_s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_350_000, help="seq 1 LINES (~9.7 MB)")
    parser.add_argument("--random", type=int, default=0, metavar="BYTES",
                        help="write this many random bytes instead of seq")  # fmt: skip
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=2, help="runs first, not counted")
    parser.add_argument("--poll", type=float, default=0.05, help="GET interval of the client")
    args = parser.parse_args()
    args_of_stack = ["--no-samba", "--no-directory", "--allow-exec", SEQ, "--allow-exec", HEAD]
    with (
        tempfile.TemporaryDirectory() as state,
        StackProcess(Path(state), extra_args=args_of_stack) as stack,
    ):
        runs = []
        for n in range(args.warmup + args.runs):
            run = run_once(stack.api_url, stack.admin_token, lines=args.lines,
                           random_bytes=args.random, poll_s=args.poll)  # fmt: skip
            if n >= args.warmup:
                runs.append(run)
            label = f"run {n + 1 - args.warmup}" if n >= args.warmup else "warm-up"
            print(f"{label}: {run.size / 1e6:.1f} MB stored {run.server_s:.2f} s after "
                  f"the job was created = {run.size / run.server_s / 1e6:.1f} MB/s "
                  f"(client saw it after {run.client_s:.2f} s)")  # fmt: skip
        server = statistics.median(r.size / r.server_s / 1e6 for r in runs)
        client = statistics.median(r.size / r.client_s / 1e6 for r in runs)
        kind = "random bytes" if args.random else "seq text"
        print(f"exec output ({kind}) through the local stack: median {server:.1f} MB/s "
              f"job to stored log; {client:.1f} MB/s as a client polling every "
              f"{args.poll * 1000:.0f} ms saw it (target >= 20 MB/s)")  # fmt: skip


if __name__ == "__main__":
    main()
