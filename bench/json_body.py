"""Times the API's strict JSON body reader against a bare json.loads of the same bodies.

The reader (hostrelay.api.json_body.parse_json) adds number hooks and a walk that checks depth
and strings; this prints what that costs per body, for a small job request and for one near
the default 256 KiB body limit, beside the json.loads baseline measured in the same run.

    python bench/json_body.py [--runs 200]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

from hostrelay.api.json_body import parse_json

SMALL = json.dumps(
    {"type": "exec", "host": "dc01", "params": {"argv": ["/usr/bin/id", "-u"]}, "timeout_s": 60}
)
# Many short strings and numbers, nested a few levels: the walk's worst case per byte.
LARGE = json.dumps(
    {
        "type": "exec",
        "host": "dc01",
        "params": {
            "argv": ["/bin/true"],
            "limits": {
                f"k{i}": {"n": i, "f": i / 7, "s": "x" * 8, "l": [1, 2, 3]} for i in range(3000)
            },
        },
    }
)


def median_us(parse: Callable[[str], Any], text: str, runs: int) -> float:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        parse(text)
        samples.append((time.perf_counter() - started) * 1e6)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    runs = parser.parse_args().runs
    print(f"{'body':<14}{'bytes':>9}{'json.loads µs':>16}{'parse_json µs':>16}{'ratio':>8}")
    for name, text in (("small job", SMALL), ("large params", LARGE)):
        baseline = median_us(json.loads, text, runs)
        strict = median_us(parse_json, text, runs)
        print(f"{name:<14}{len(text):>9}{baseline:>16.1f}{strict:>16.1f}{strict / baseline:>8.2f}")


if __name__ == "__main__":
    main()
