"""Bench: relay-side macct.repair of 100 computers in one job vs one ldbmodify run per host."""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hostrelay_local.samba_domain import (
    SambaDomain,
    add_computers,
    provision_domain,
    random_password,
    set_passwords,
)
from hostrelay_relay.handlers.base import JobContext
from hostrelay_relay.handlers.macct_capture import MacctCaptureHandler
from hostrelay_relay.handlers.macct_repair import MacctRepairHandler
from hostrelay_relay.macct.capture_store import CaptureStore
from hostrelay_relay.macct.ldif import LdifRecord, render_ldif
from hostrelay_relay.macct.samdb import (
    AS_SYSTEM_CONTROL,
    RELAX_CONTROL,
    STORE_HASHES_AS_GIVEN_CONTROL,
)
from hostrelay_relay.settings import MacctSettings, RelaySettings


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def context(settings: RelaySettings) -> JobContext:
    return JobContext(
        job_id="bench",
        attempt=1,
        host="dc01",
        settings=settings,
        timeout_s=600,
        report_progress=lambda done, total, message: None,
        report_output=lambda stream, data: None,
    )


def run_handler(handler: Any, settings: RelaySettings, params: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = handler.run(handler.validate(params), context(settings))
    return result


def one_ldbmodify_per_host(domain: SambaDomain, records: list[LdifRecord]) -> None:
    """Today's way: one ldbmodify process (one script) per restored host."""
    for record in records:
        subprocess.run(
            [
                "ldbmodify",
                f"--url={domain.sam_ldb}",
                "--nosync",
                f"--controls={RELAX_CONTROL}",
                f"--controls={AS_SYSTEM_CONTROL}",
                f"--controls={STORE_HASHES_AS_GIVEN_CONTROL}",
            ],
            input=render_ldif([record]),
            check=True,
            capture_output=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--computers", type=int, default=100, help="accounts to repair (≤500)")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds of the relay job")
    parser.add_argument("--per-host-rounds", type=int, default=1, help="rounds of the baseline")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="macct-bench-") as tmp:
        root = Path(tmp)
        print(f"provisioning a Samba AD domain in {root} ...")
        started = time.perf_counter()
        domain = provision_domain(root / "domain", dc_name="DC1")
        provision_s = time.perf_counter() - started

        names = [f"PC{index:03d}" for index in range(args.computers)]
        started = time.perf_counter()
        dns = add_computers(domain, {name: random_password() for name in names})
        ldbadd_s = time.perf_counter() - started
        started = time.perf_counter()
        for index in range(3):
            subprocess.run(
                ["samba-tool", "computer", "create", f"TOOL{index}", "-H", str(domain.sam_ldb)],
                check=True,
                capture_output=True,
            )
        samba_tool_each_s = (time.perf_counter() - started) / 3

        settings = RelaySettings(
            host="dc01",
            state_dir=root / "state",
            macct=MacctSettings(sam_ldb=domain.sam_ldb),
        )
        capture_s = timed(
            lambda: run_handler(
                MacctCaptureHandler(settings), settings, {"image": "win10", "computer": names[0]}
            )
        )
        captured = CaptureStore(settings.state_dir).load("win10").secrets
        targets = [dn for name, dn in dns.items() if name != names[0]]

        def scramble() -> None:
            set_passwords(domain, {dn: random_password() for dn in targets})

        relay_times: list[float] = []
        for _ in range(args.rounds):
            scramble()
            handler = MacctRepairHandler(settings)
            params = {"image": "win10", "computers": names}
            started = time.perf_counter()
            result = run_handler(handler, settings, params)
            relay_times.append(time.perf_counter() - started)
            assert result["counts"]["updated"] == len(targets), result["counts"]

        records = [LdifRecord("replace", dn, captured.as_attributes()) for dn in targets]
        per_host_times: list[float] = []
        for _ in range(args.per_host_rounds):
            scramble()
            per_host_times.append(timed(lambda: one_ldbmodify_per_host(domain, records)))

        unchanged_s = timed(
            lambda: run_handler(
                MacctRepairHandler(settings), settings, {"image": "win10", "computers": names}
            )
        )

    relay_best, relay_median = min(relay_times), statistics.median(relay_times)
    count = len(targets)
    job = f"{len(names)} computers ({count} updated) in one job"
    print(f"provision domain:                       {provision_s:7.2f} s")
    print(f"create {len(names)} computers with one ldbadd:   {ldbadd_s:7.2f} s")
    print(f"samba-tool computer create, each:       {samba_tool_each_s:7.3f} s")
    print(f"macct.capture of one computer:          {capture_s:7.3f} s")
    print(f"macct.repair, {job}: best {relay_best:.3f} s, median {relay_median:.3f} s")
    print(f"macct.repair, {len(names)} computers all unchanged:   {unchanged_s:7.3f} s")
    if per_host_times:
        per_host = statistics.median(per_host_times)
        print(f"{count} separate ldbmodify runs (one per host): {per_host:7.3f} s")
        print(f"ratio per-host / one job (median):      {per_host / relay_median:7.1f} x")


if __name__ == "__main__":
    main()
