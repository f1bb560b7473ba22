"""Output throughput of an exec job through the local stack: job → relay → MQTT → results → store.

Boots the local stack (no Samba, no directory) with `/usr/bin/seq` allowed, runs
`seq 1 N` (about 6.9 bytes a line) and times from job creation until the job is SUCCEEDED
with its full output stored (size and sha256 checked against the expected bytes).
Prints MB/s; the issue's target is >= 20 MB/s.

    python bench/exec_output_stack.py [--lines 3000000] [--runs 3]
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import tempfile
import time
from pathlib import Path

import requests

from hostrelay_local.stack import LocalStack, StackOptions

SEQ = "/usr/bin/seq"


def run_once(api: str, token: str, lines: int) -> tuple[float, int]:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    expected = "".join(f"{n}\n" for n in range(1, lines + 1)).encode()
    started = time.perf_counter()
    created = session.post(
        f"{api}/v1/jobs",
        json={"type": "exec", "host": "dc01", "timeout_s": 600,
              "params": {"argv": [SEQ, "1", str(lines)], "timeout_s": 600}},
        timeout=30,
    )  # fmt: skip
    created.raise_for_status()
    job_id = created.json()["id"]
    while True:
        job = session.get(f"{api}/v1/jobs/{job_id}", timeout=30).json()
        if job["state"] not in ("QUEUED", "DISPATCHED", "IN_PROGRESS"):
            break
        time.sleep(0.05)
    elapsed = time.perf_counter() - started
    if job["state"] != "SUCCEEDED":
        raise SystemExit(f"job ended {job['state']}: {job.get('error')}")
    output = job["output"]
    if output["size"] != len(expected) or output["sha256"] != hashlib.sha256(expected).hexdigest():
        raise SystemExit(f"stored output differs: {output['size']} bytes vs {len(expected)}")
    return elapsed, len(expected)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_350_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    options = StackOptions(api_port=0, with_samba=False, with_directory=False, exec_commands=(SEQ,))
    with tempfile.TemporaryDirectory() as state, LocalStack(Path(state), options) as stack:
        rates = []
        for run in range(args.runs):
            elapsed, size = run_once(stack.api_url, stack.admin_token, args.lines)
            rates.append(size / elapsed / 1e6)
            print(f"run {run + 1}: {size / 1e6:.1f} MB in {elapsed:.2f} s = {rates[-1]:.1f} MB/s")
        print(f"exec output through the local stack: median {statistics.median(rates):.1f} MB/s "
              f"(target >= 20 MB/s)")  # fmt: skip


if __name__ == "__main__":
    main()
