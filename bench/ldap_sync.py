"""Bench: relay-side directory sync of ~20,000 entries on a local slapd, beside ldapsearch,
with each LDAP client library the relay can use (python-ldap, ldap3)."""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from hostrelay_contract.jobs.ldap import LdapSyncParams
from hostrelay_local.slapd import DirectoryShape, SlapdServer, count_entries, user_dn
from hostrelay_relay.directory.batches import InventoryBatch
from hostrelay_relay.directory.clients import is_installed
from hostrelay_relay.directory.flavors import KINDS, OPENLDAP
from hostrelay_relay.directory.state import SyncStateStore
from hostrelay_relay.directory.sync import SyncSummary, sync_directory
from hostrelay_relay.directory.watermarks import change_filter
from hostrelay_relay.settings import LdapCredential, LdapSettings


def best_of(runs: int, action: Callable[[], object]) -> tuple[float, float, float]:
    """(fastest, median) wall time of `runs` calls, and the fewest CPU seconds of this process."""
    times, cpu = [], []
    for _ in range(runs):
        started, started_cpu = time.perf_counter(), time.process_time()
        action()
        times.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    return min(times), statistics.median(times), min(cpu)


def ldapsearch_all(
    server: SlapdServer, password_file: Path, changed_since: str | None = None
) -> None:
    """The same three paged searches, filters and attributes the relay runs, to /dev/null;
    with `changed_since`, only what changed (the relay's own change filter)."""
    for kind in KINDS:
        search_filter = OPENLDAP.default_filters[kind]
        if changed_since is not None:
            search_filter = f"(&{search_filter}{changed_since})"
        subprocess.run(
            [
                "ldapsearch",
                "-x",
                "-LLL",
                "-o",
                "ldif-wrap=no",
                "-H",
                server.url,
                "-D",
                server.service_dn,
                "-y",
                str(password_file),
                "-b",
                server.base_dn,
                "-E",
                "pr=1000/noprompt",
                search_filter,
                *OPENLDAP.requested_attributes(kind),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )


def python_ldap_search_all(server: SlapdServer) -> int:
    """The floor for any python-ldap client: the same searches, entries converted, nothing else."""
    import ldap
    from ldap.controls import SimplePagedResultsControl

    connection = ldap.initialize(server.url)
    connection.simple_bind_s(server.service_dn, server.service_password)
    count = 0
    try:
        for kind in KINDS:
            control = SimplePagedResultsControl(True, size=1000, cookie="")
            while True:
                msgid = connection.search_ext(
                    server.base_dn,
                    ldap.SCOPE_SUBTREE,
                    OPENLDAP.default_filters[kind],
                    OPENLDAP.requested_attributes(kind),
                    serverctrls=[control],
                )
                while True:
                    rtype, data, _, controls = connection.result3(msgid, all=0)
                    if rtype != ldap.RES_SEARCH_ENTRY:
                        break
                    count += len(data)
                cookie = next(
                    (c.cookie for c in controls if c.controlType == control.controlType), b""
                )
                if not cookie:
                    break
                control.cookie = cookie
    finally:
        connection.unbind_s()
    return count


def change_users(server: SlapdServer, indexes: range, stamp: str) -> None:
    server.modify(
        "".join(
            f"dn: {user_dn(server.shape, index)}\nchangetype: modify\n"
            f"replace: displayName\ndisplayName: Bench {stamp} {index}\n\n"
            for index in indexes
        )
    )


def installed_clients() -> list[str]:
    return [client for client in ("python-ldap", "ldap3") if is_installed(client)]


def bench_client(
    client: str,
    server: SlapdServer,
    credential: LdapCredential,
    params: dict[str, object],
    runs: int,
    tmp: str,
    search_best: float,
    users: int,
    round_offset: int,
) -> None:
    """Full sync, then incremental syncs after 100 changes, with one LDAP client library."""
    password_file = Path(tmp) / "service.pw"
    batches: list[InventoryBatch] = []
    summaries: list[SyncSummary] = []

    def full_sync() -> None:
        state_dir = Path(tempfile.mkdtemp(dir=tmp))
        batches.clear()
        summaries.append(
            sync_directory(
                LdapSyncParams.model_validate({**params, "mode": "full"}),
                credential,
                SyncStateStore(state_dir),
                batches.append,
                settings=LdapSettings(client=client),
            )
        )

    sync_best, sync_median, sync_cpu = best_of(runs, full_sync)
    full = summaries[-1]
    print(
        f"[{client}] full sync:             best {sync_best:.3f} s, median {sync_median:.3f} s,"
        f" cpu {sync_cpu:.3f} s ({full.created} entities, {full.batches} batches)"
    )
    print(
        f"[{client}] ratio full sync / ldapsearch: {sync_best / search_best:.2f}x"
        " (target <= 3x for the fast path)"
    )

    state_store = SyncStateStore(Path(tmp) / f"incremental-{client}")
    settings = LdapSettings(clock_skew_s=1, client=client)
    sync_directory(
        LdapSyncParams.model_validate({**params, "mode": "full"}),
        credential,
        state_store,
        batches.append,
        settings=settings,
    )
    for label, scan_every in (("incremental, 100 changed", 1000), ("incremental + id scan", 1)):
        times, searches = [], []
        summary = None
        for round_no in range(runs):
            start = (round_offset + round_no * 100 + (0 if scan_every > 1 else 5000)) % (
                users - 100
            )
            change_users(server, range(start, start + 100), f"{client}-{label}-{round_no}")
            state = state_store.load("bench")
            assert state is not None
            changed = change_filter(OPENLDAP, state)
            search_started = time.perf_counter()
            ldapsearch_all(server, password_file, changed)
            searches.append(time.perf_counter() - search_started)
            started = time.perf_counter()
            summary = sync_directory(
                LdapSyncParams.model_validate(
                    {**params, "mode": "incremental", "full_scan_every": scan_every}
                ),
                credential,
                state_store,
                batches.append,
                settings=settings,
            )
            times.append(time.perf_counter() - started)
        assert summary is not None
        print(
            f"[{client}] {label}: best {min(times):.3f} s, median {statistics.median(times):.3f} s"
            f"  (read {summary.entries_read}, updated {summary.updated},"
            f" ids scanned {summary.ids_scanned}; target <= 0.5 s)"
        )
        print(
            f"[{client}]   ldapsearch of the changed entries: best {min(searches):.3f} s;"
            f" ratio {min(times) / min(searches):.2f}x"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=19_200)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument(
        "--client",
        choices=["python-ldap", "ldap3"],
        action="append",
        help="default: each installed",
    )
    args = parser.parse_args()
    clients = args.client or installed_clients()
    shape = DirectoryShape(users=args.users, departments=10)
    entries = sum(count_entries(shape).values())
    with SlapdServer(shape, tls=False) as server, tempfile.TemporaryDirectory() as tmp:
        password_file = Path(tmp) / "service.pw"
        fd = os.open(password_file, os.O_WRONLY | os.O_CREAT, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(server.service_password)
        credential = LdapCredential(
            bind_dn=server.service_dn, password_file=password_file, urls=[server.url]
        )
        params = {
            "connector": "bench",
            "url": server.url,
            "base_dn": server.base_dn,
            "credential": "bench",
            "page_size": args.page_size,
            "flavor": "openldap",
        }
        print(f"directory: {entries} entries ({count_entries(shape)}) on {server.url}")
        # Wall times (and their ratios) move with what else runs; say how busy the machine was.
        print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} (1 min)")
        ldapsearch_all(server, password_file)  # warm the server cache for every contender
        search_best, search_median, _ = best_of(
            args.runs, lambda: ldapsearch_all(server, password_file)
        )
        print(
            f"ldapsearch -E pr=1000 (3 searches): best {search_best:.3f} s,"
            f" median {search_median:.3f} s"
        )
        if is_installed("python-ldap"):
            floor_best, floor_median, floor_cpu = best_of(
                args.runs, lambda: python_ldap_search_all(server)
            )
            print(
                f"python-ldap search only (floor):  best {floor_best:.3f} s,"
                f" median {floor_median:.3f} s, cpu {floor_cpu:.3f} s"
            )
        for index, client in enumerate(clients):
            bench_client(
                client,
                server,
                credential,
                params,
                args.runs,
                tmp,
                search_best,
                args.users,
                round_offset=index * 2 * args.runs * 100,
            )


if __name__ == "__main__":
    main()
