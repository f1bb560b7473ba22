"""Bench: the Authentik and Kubernetes connectors at 10,000-user / 2,000-group scale.

Authentik: 10,000 users (100 of them service accounts), 2,000 groups nested as a graph (most
groups have two parents), each user in three groups. Kubernetes: a comparable cluster of
about 12,000 objects (namespaces, nodes, deployments, statefulsets, daemonsets, services).
Both sources are the local fakes of tests/fakes over TLS.

For each source it prints entities/s and API calls of
- the cloud run (authentik.sync / kubernetes.sync: read, then apply into the inventory in
  in-process moto), first (all created) and second (all unchanged);
- the relay run (connector.sync: read, diff against the relay's state, cut into inventory
  events), first (everything sent) and second (nothing changed: nothing sent);
- the baseline, measured in the same run: the same entities applied with replace_all without
  reading the source, so the cloud run's ratio to it is what reading the source costs.
Authentik runs are full reads (its group list has no updated-since filter); the relay's
second run reads everything and sends only changes. Kubernetes also runs incrementally: after
`--changes` deployments are scaled and a tenth as many services deleted, a relay run whose
params carry the last run's resourceVersions (`since`) watches each resource once, beside a
full relay run after the same number of changes (its baseline: the ratio is incremental/full);
in the cloud, the changes since the second run's versions are read and applied the same way.
The fake ends a watch once it has sent the changes; a real API server holds each open for
WATCH_TIMEOUT_S (1 s), so a real incremental run takes about 1 s more per resource.

    .venv/bin/python -m bench.self_hosted_sync [--users 10000] [--groups 2000] [--changes 100]
        [--only kubernetes]
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_REGION", "us-east-1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "hostrelay")
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")

import boto3
from moto import mock_aws

from hostrelay.dal.aws_clients import client
from hostrelay.domain.inventory import InventoryChanges
from hostrelay.settings import DiscoverySettings, load_settings
from hostrelay_contract.jobs.sources import AuthentikSource, KubernetesSource
from hostrelay_local.aws_resources import create_resources, function_environment
from hostrelay_local.moto_endpoint import tune_moto
from hostrelay_local.template import load_template
from hostrelay_relay.handlers.base import JobContext
from hostrelay_relay.handlers.connector_sync import ConnectorSyncHandler
from hostrelay_relay.settings import RelaySettings, SourcesSettings
from hostrelay_sources.readers import read_kubernetes_changes, read_source
from tests.fakes.authentik import AuthentikFake
from tests.fakes.kubernetes import KubernetesFake

TOKEN = "bench-token"  # the local fakes'


def arrange_authentik(fake: AuthentikFake, users: int, groups: int) -> None:
    ids = [str(uuid.UUID(int=(1 << 64) + g)) for g in range(groups)]
    for g, group_id in enumerate(ids):
        parents = sorted({ids[(g - 1) // 2], ids[(g - 1) // 3]}) if g else []
        fake.state.add_group(group_id, f"group {g}", [], parents=parents)
    for pk in range(1, users + 1):
        kind = "service_account" if pk % 100 == 0 else "internal"
        fake.state.add_user(pk, f"user{pk}", user_type=kind)
        for offset in range(3):
            fake.state.members[ids[(pk + offset * 7) % groups]].add(pk)


def arrange_kubernetes(fake: KubernetesFake, scale: int) -> None:
    """About 1.2 objects per user of the Authentik source at the same `scale`."""
    state = fake.state
    app = {"template": {"spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}}}
    namespaces = max(1, scale // 50)
    for n in range(namespaces):
        state.put("namespaces", f"ns{n}", status={"phase": "Active"})
    for n in range(max(1, scale // 200)):
        state.put("nodes", f"node{n}", status={"conditions": [{"type": "Ready", "status": "True"}]})
    for i in range(scale * 6 // 10):
        state.put(
            "deployments", f"web{i}", namespace=f"ns{i % namespaces}", spec={"replicas": 2, **app}
        )
    for i in range(scale // 10):
        state.put(
            "statefulsets", f"db{i}", namespace=f"ns{i % namespaces}", spec={"replicas": 1, **app}
        )
    for i in range(namespaces // 4 or 1):
        state.put("daemonsets", f"agent{i}", namespace=f"ns{i % namespaces}", spec=app)
    for i in range(scale // 2):
        state.put(
            "services",
            f"svc{i}",
            namespace=f"ns{i % namespaces}",
            spec={"type": "ClusterIP", "ports": [{"port": 80, "protocol": "TCP"}]},
        )


def change_kubernetes(fake: KubernetesFake, changes: int, round_: int) -> None:
    """Scale `changes` deployments and delete a tenth as many services (different ones each
    round)."""
    app = {"template": {"spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}}}
    deployments = sorted(fake.state.objects["deployments"])
    for key in deployments[round_ * changes : (round_ + 1) * changes]:
        namespace, name = key.split("/")
        fake.state.put("deployments", name, namespace=namespace, spec={"replicas": 3, **app})
    services = sorted(fake.state.objects["services"])
    for key in services[: max(1, changes // 10)]:
        fake.state.delete("services", key)


def relay_run(
    settings: RelaySettings, params: dict[str, Any]
) -> tuple[int, int, float, int, dict[str, Any]]:
    """(entities read, API calls, seconds, inventory events sent, result) of one connector.sync."""
    handler = ConnectorSyncHandler(settings)
    events: list[dict[str, Any]] = []
    ctx = JobContext(
        job_id="bench",
        attempt=1,
        host="bench",
        settings=settings,
        timeout_s=3600,
        report_progress=lambda done, total, message: None,
        report_output=lambda stream, data: None,
        cancel_event=threading.Event(),
        report_event=lambda kind, body: events.append(body),
    )
    started = time.perf_counter()
    result = handler.run(handler.validate(params), ctx)
    seconds = time.perf_counter() - started
    return result["total"], result["api_calls"], seconds, len(events), result


def print_row(name: str, count: int, calls: int, seconds: float, baseline_s: float | None) -> None:
    ratio = f"{seconds / baseline_s:>7.2f}" if baseline_s else f"{'-':>7}"
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{name:<40}{count:>9}{count / seconds:>12.0f}{seconds:>9.2f}{calls:>10}{ratio}"
        f"{rss_mb:>9.0f}",
        flush=True,
    )


def relay_rows(
    name: str,
    source: AuthentikSource | KubernetesSource,
    ca_file: str,
    directory: Path,
    kubernetes: tuple[KubernetesFake, int] | None = None,
) -> None:
    """connector.sync twice (the second finds nothing changed), then the read alone; with
    `kubernetes` (the fake, changes a round), a full and an incremental run after changes."""
    token_file = directory / f"{name}.token"
    token_file.write_text(TOKEN)
    token_file.chmod(0o600)
    settings = RelaySettings(
        host="bench",
        state_dir=directory / f"{name}-state",
        sources=SourcesSettings(
            credential_dir=directory, origins=[source.url], ca_file=Path(ca_file)
        ),
    )
    params = {
        "connector": name,
        "source": source.model_dump(mode="json", exclude_none=True),
        "credential_file": str(token_file),
    }
    for run in (1, 2):
        count, calls, seconds, events, result = relay_run(settings, params)
        print_row(f"{name} relay run {run} ({events} events)", count, calls, seconds, None)
    if kubernetes is not None:
        fake, changes = kubernetes
        change_kubernetes(fake, changes, 0)
        count, calls, full_s, events, result = relay_run(settings, params)
        sent = result["created"] + result["updated"] + result["deleted"]
        print_row(f"{name} relay full, {sent} sent (baseline)", count, calls, full_s, full_s)
        change_kubernetes(fake, changes, 1)
        since = {**params, "since": result["resource_versions"]}
        count, calls, seconds, events, result = relay_run(settings, since)
        assert result["mode"] == "incremental", result["mode"]
        sent = result["created"] + result["updated"] + result["deleted"]
        print_row(f"{name} relay incremental, {sent} sent", count, calls, seconds, full_s)
    started = time.perf_counter()
    read = read_source(source, TOKEN, lambda: False, ca_file=ca_file)
    seconds = time.perf_counter() - started
    print_row(f"{name} read only", len(read.entities or []), read.api_calls, seconds, None)


def cloud_rows(
    name: str,
    source: AuthentikSource | KubernetesSource,
    ca_file: str,
    inventory: Any,
    kubernetes: tuple[KubernetesFake, int] | None = None,
) -> None:
    """The cloud run (read, then apply into the inventory in moto) beside the apply alone;
    with `kubernetes`, then the changes since the second run read and applied."""
    from hostrelay.logic.sync_self_hosted import entity_upsert

    read = read_source(source, TOKEN, lambda: False, ca_file=ca_file)
    upserts = [entity_upsert(e) for e in read.entities or []]
    started = time.perf_counter()
    kinds = read.complete_kinds
    inventory.replace_all(f"{name}-baseline", upserts, datetime.now(UTC), complete_kinds=kinds)
    baseline_s = time.perf_counter() - started
    print_row(f"{name} baseline: inventory apply only", len(upserts), 0, baseline_s, baseline_s)
    for run, what in ((1, "all created"), (2, "all unchanged")):
        started = time.perf_counter()
        read = read_source(source, TOKEN, lambda: False, ca_file=ca_file)
        upserts = [entity_upsert(e) for e in read.entities or []]
        inventory.replace_all(name, upserts, datetime.now(UTC), complete_kinds=read.complete_kinds)
        seconds = time.perf_counter() - started
        print_row(
            f"{name} cloud run {run} ({what})", len(upserts), read.api_calls, seconds, baseline_s
        )
    if kubernetes is not None and isinstance(source, KubernetesSource):
        fake, changes = kubernetes
        change_kubernetes(fake, changes, 2)
        started = time.perf_counter()
        found, calls = read_kubernetes_changes(
            source, TOKEN, read.positions, lambda: False, ca_file=ca_file
        )
        assert found is not None
        upserts = [entity_upsert(e) for e in found.changed]
        inventory.apply_all(
            name, InventoryChanges(upserts=upserts, deletes=found.deleted), datetime.now(UTC)
        )
        seconds = time.perf_counter() - started
        changed = len(upserts) + len(found.deleted)
        print_row(f"{name} cloud incremental, {changed} changed", changed, calls, seconds, None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--groups", type=int, default=2_000)
    parser.add_argument(
        "--changes", type=int, default=100, help="deployments changed before an incremental run"
    )
    parser.add_argument("--only", choices=("authentik", "kubernetes"), help="one source only")
    parser.add_argument(
        "--whole-table-rollback",
        action="store_true",
        help="keep moto's whole-table copy per transaction item (the figures before the patch)",
    )
    args = parser.parse_args()
    tune_moto(per_item_rollback=not args.whole_table_rollback)
    with tempfile.TemporaryDirectory() as tmp, mock_aws():
        directory = Path(tmp)
        authentik = AuthentikFake(directory / "authentik", TOKEN).start()
        kubernetes = KubernetesFake(directory / "kubernetes", TOKEN).start()
        arrange_authentik(authentik, args.users, args.groups)
        arrange_kubernetes(kubernetes, args.users)
        client.cache_clear()
        load_settings.cache_clear()
        template = load_template()
        resources = create_resources(
            boto3.session.Session(region_name="us-east-1"), template=template
        )
        env = function_environment(template, "DiscoveryFunction", resources)
        os.environ.update({k: v for k, v in env.items() if k != "POWERTOOLS_SERVICE_NAME"})
        from hostrelay.dal.inventory_repo import InventoryRepository
        from hostrelay.logic.inventory import InventoryService
        from hostrelay.wiring import _bind_common, _bind_connectors

        settings = load_settings(DiscoverySettings)
        _bind_common(settings)
        _bind_connectors(settings, settings.connectors_table, settings.inventory_table)
        # Batched writes, as the discovery function applies them: with the local stack's
        # per-item transaction rollback (tune_moto) they no longer measure moto's table copies.
        inventory = InventoryService(InventoryRepository())
        print(f"authentik: {args.users} users, {args.groups} groups; kubernetes: ~1.2 objects/user")
        print(
            f"{'run':<40}{'entities':>9}{'entities/s':>12}{'seconds':>9}{'API calls':>10}"
            f"{'ratio':>7}{'RSS MB':>9}"
        )
        # Rows print as they are measured: the relay's first (seconds), the cloud's (minutes).
        sources = [
            (
                "authentik",
                AuthentikSource(url=authentik.base_url, page_size=500),
                authentik.ca_file,
            ),
            (
                "kubernetes",
                KubernetesSource(url=kubernetes.base_url, page_size=500),
                kubernetes.ca_file,
            ),
        ]
        sources = [row for row in sources if args.only in (None, row[0])]
        changing = (kubernetes, args.changes)
        for name, source, ca_file in sources:
            relay_rows(name, source, ca_file, directory, changing if name == "kubernetes" else None)
        for name, source, ca_file in sources:
            cloud_rows(name, source, ca_file, inventory, changing if name == "kubernetes" else None)
        authentik.stop()
        kubernetes.stop()


if __name__ == "__main__":
    main()
