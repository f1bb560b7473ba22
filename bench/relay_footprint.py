"""Bench: resident memory of an idle relay process after it has been connected for a while."""

from __future__ import annotations

import argparse
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hostrelay_local.broker import MosquittoBroker
from hostrelay_local.local_relay import LocalRelay, RelayOptions
from hostrelay_local.pki import LocalCA
from hostrelay_relay.ledger import Ledger

# The target is 45 MB (SI: 45,000,000 bytes), which is 42.9 MiB; /proc reports KiB.
TARGET_RSS_BYTES = 45_000_000
MIB = 1024 * 1024
MB = 1000 * 1000


def memory_bytes(pid: int) -> dict[str, int]:
    """VmRSS (resident now), VmHWM (peak), RssAnon and RssFile of a process, in bytes."""
    fields: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in {"VmRSS", "VmHWM", "RssAnon", "RssFile"}:
            fields[name] = int(value.split()[0]) * 1024
    return fields


def both_units(size: int) -> str:
    return f"{size / MIB:.1f} MiB = {size / MB:.1f} MB"


def wait_connected(relay: LocalRelay, timeout_s: float = 20.0) -> None:
    ledger_path = relay.state_dir / "ledger.sqlite3"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not relay.is_running():
            raise RuntimeError(f"relay exited:\n{relay.log_tail()}")
        if ledger_path.exists():
            try:
                ledger = Ledger(ledger_path, read_only=True)
                connected = ledger.get_meta("last_connect_at")
                ledger.close()
            except sqlite3.Error:  # created a moment ago: the schema is not there yet
                connected = None
            if connected:
                return
        time.sleep(0.1)
    raise TimeoutError(f"relay did not connect:\n{relay.log_tail()}")


def bare_interpreter_rss() -> int:
    """The baseline: RSS of this same Python, idle, with nothing imported (measured now)."""
    idle = subprocess.Popen(
        [
            sys.executable,
            "-S",
            "-c",
            "import sys; sys.stdout.write('up\\n'); sys.stdout.flush(); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert idle.stdout is not None
        idle.stdout.readline()
        return memory_bytes(idle.pid)["VmRSS"]
    finally:
        idle.communicate()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=60.0, help="idle time before measuring")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="relay-footprint-") as tmp:
        work = Path(tmp)
        ca = LocalCA(work / "pki")
        key = Ed25519PrivateKey.generate().public_key()
        public_pem = key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()
        with MosquittoBroker(work / "broker", ca) as broker:
            relay = LocalRelay("footprint01", work / "relay", RelayOptions(log_level="WARNING"))
            relay.prepare(ca, broker.endpoint, public_pem)
            relay.start()
            try:
                wait_connected(relay)
                time.sleep(args.seconds)
                assert relay.pid is not None
                memory = memory_bytes(relay.pid)
            finally:
                relay.stop()
    rss = memory["VmRSS"]
    baseline = bare_interpreter_rss()
    print(
        f"relay on Python {platform.python_version()}, idle for {args.seconds:.0f} s "
        "while connected to mosquitto (TLS):"
    )
    print(f"  RSS          {both_units(rss)}")
    print(f"  peak (HWM)   {both_units(memory['VmHWM'])}")
    print(f"  anonymous    {both_units(memory['RssAnon'])}")
    print(f"  file-backed  {both_units(memory['RssFile'])} (shared libraries, mostly shared)")
    print(f"  baseline     {both_units(baseline)}: the same Python idle, nothing imported")
    print(f"  ratio        {rss / baseline:.1f}x the bare interpreter")
    verdict = "PASS" if rss <= TARGET_RSS_BYTES else "FAIL"
    print(f"  target <= {both_units(TARGET_RSS_BYTES)}: {verdict}")
    return 0 if rss <= TARGET_RSS_BYTES else 1


if __name__ == "__main__":
    sys.exit(main())
