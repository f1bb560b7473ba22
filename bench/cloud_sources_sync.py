"""Bench: workspace.sync, discovery.gcp and discovery.azure of a 12,000-entity source each.

Each source runs in its own child process (so one source's in-process moto does not grow the
next one's memory) against its local fake over TLS: Workspace 10,000 users / 2,000 groups
(each user in three groups), GCP 10,000 Compute instances in 20 zones + 2,000 VPC networks
(+ buckets on the real gcp-storage-emulator), Azure 10,000 VMs + 2,000 virtual networks. The
connector code is the discovery function's (token from the secret in moto, reader, entities,
InventoryService.replace_all into the inventory table in in-process moto). Printed per source:

- baseline: entities applied with replace_all alone (no source read), all created, measured
  in the same run (every entity; `--apply-sample N` applies the first N only);
- read only: the whole source read into entities (token, every page), no inventory;
- apply only, all unchanged: the same entities applied again (a second run's inventory cost);
- apply only, 10 % changed: the same again with one attribute of every tenth entity changed;
- full run: token, read and apply of the whole source into a fresh connector (all created),
  measured end to end (estimated from the parts when --apply-sample cuts the apply);
with entities/s, seconds, API calls (the read's = a full run's), and each rate as a ratio of
the baseline's. None of these sources has a change feed the connector can use, so every run is
a full run (no incremental figure).

    .venv/bin/python bench/cloud_sources_sync.py [--source workspace|gcp|azure] [--scale 1.0]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # tests.fakes, when run as a script

for name, value in {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_NAMESPACE": "hostrelay",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
}.items():
    os.environ.setdefault(name, value)

SOURCES = ("workspace", "gcp", "azure")
Row = tuple[str, int, int, float]  # name, entities, API calls, seconds


def _inventory_env(fake_ca: str, roots: dict[str, str]) -> Any:
    """In-process moto with the template's tables; the discovery settings pointed at fakes."""
    import boto3

    from hostrelay.dal.aws_clients import client
    from hostrelay.settings import DiscoverySettings, load_settings
    from hostrelay.wiring import _bind_common, _bind_connectors
    from hostrelay_local.aws_resources import create_resources, function_environment
    from hostrelay_local.template import load_template

    client.cache_clear()
    load_settings.cache_clear()
    template = load_template()
    resources = create_resources(boto3.session.Session(region_name="us-east-1"), template=template)
    env = function_environment(template, "DiscoveryFunction", resources)
    os.environ.update({k: v for k, v in env.items() if k != "POWERTOOLS_SERVICE_NAME"})
    os.environ.update({"SOURCE_CA_BUNDLE": fake_ca, **roots})
    settings = load_settings(DiscoverySettings)
    _bind_common(settings)
    _bind_connectors(settings, settings.connectors_table, settings.inventory_table)
    return settings


def _secret(value: str) -> str:
    from hostrelay.dal.aws_clients import client

    created = client("secretsmanager").create_secret(Name="hostrelay/bench", SecretString=value)
    return str(created["ARN"])


def _measure(
    connect: Callable[[], Any],
    read: Callable[[Any], list[Any]],
    kinds: frozenset[str],
    apply_sample: int,
) -> list[Row]:
    """The read at full size, the inventory apply of the first `apply_sample` entities (all
    of them when 0: affordable since tune_moto rolls transactions back per item), and, at full
    size, the whole run (token, read, apply; all created) measured end to end."""
    from hostrelay.dal.inventory_repo import InventoryRepository
    from hostrelay.logic.inventory import InventoryService

    inventory = InventoryService(InventoryRepository())
    started = time.perf_counter()
    source = connect()
    entities = read(source)
    read_row: Row = ("read only (full size)", len(entities), source.calls, 0.0)
    read_row = (*read_row[:3], time.perf_counter() - started)
    sample = entities[:apply_sample] if apply_sample else entities
    # Every tenth entity with one attribute changed: a run that finds 10 % of the source changed.
    changed = [
        e.model_copy(update={"attributes": {**e.attributes, "bench_changed": True}})
        if i % 10 == 0
        else e
        for i, e in enumerate(sample)
    ]
    rows = []
    for label, snapshot in (
        ("baseline: apply only, all created", sample),
        ("apply only, all unchanged", sample),
        ("apply only, 10 % changed", changed),
    ):
        started = time.perf_counter()
        inventory.replace_all("connector", snapshot, datetime.now(UTC), complete_kinds=kinds)
        rows.append((label, len(snapshot), 0, time.perf_counter() - started))
    if len(sample) < len(entities):
        read_s_per_entity = read_row[3] / len(entities)
        apply_s_per_entity = rows[0][3] / len(sample)
        estimate = len(entities) * (read_s_per_entity + apply_s_per_entity)
        full: Row = ("full run, estimated (read+apply)", len(entities), source.calls, estimate)
        return [rows[0], read_row, *rows[1:], full]
    started = time.perf_counter()
    source = connect()
    entities = read(source)
    inventory.replace_all("full-run", entities, datetime.now(UTC), complete_kinds=kinds)
    full = ("full run (read+apply, created)", len(entities), source.calls, 0.0)
    full = (*full[:3], time.perf_counter() - started)
    return [rows[0], read_row, *rows[1:], full]


def bench_workspace(work: Path, scale: float, sample: int) -> list[Row]:
    from hostrelay.domain.cloud_sources import WorkspaceConnectorSettings
    from hostrelay.logic.sync_workspace import WORKSPACE_SOURCE, read_workspace
    from hostrelay.wiring import _workspace_connector
    from tests.fakes.google import GoogleFake, ServiceAccount

    users, groups = int(10_000 * scale), int(2_000 * scale)
    account = ServiceAccount("bench@hostrelay-bench.iam.gserviceaccount.com")
    fake = GoogleFake(work / "google", account).start()
    state = fake.state
    state.delegated_admins.add("admin@example.test")
    state.add_org_unit("id:ou1", "/staff", "id:root", "/")
    for i in range(users):
        state.add_user(f"{100000 + i}", f"user{i}.bench@example.test", org_unit_path="/staff")
    for g in range(groups):
        state.add_group(f"g{g:05d}", f"group{g}@example.test", [])
    for i in range(users):  # user i is in groups i, i-1 and i-2 (mod groups)
        for g in {i % groups, (i - 1) % groups, (i - 2) % groups}:
            state.members[f"g{g:05d}"].append((f"{100000 + i}", "USER"))
    settings = _inventory_env(
        fake.ca_file,
        {"GOOGLE_TOKEN_URI": fake.token_uri, "WORKSPACE_API_ROOT": fake.base_url},
    )
    workspace = WorkspaceConnectorSettings(
        admin_email="admin@example.test", credential_arn=_secret(account.key_json())
    )
    connect = _workspace_connector(settings)
    rows = _measure(
        lambda: connect(workspace),
        lambda d: read_workspace(d, lambda: False) or [],
        WORKSPACE_SOURCE.entity_kinds,
        sample,
    )
    assert state.violations == [], state.violations[:3]
    fake.stop()
    return rows


def bench_gcp(work: Path, scale: float, sample: int) -> list[Row]:
    import socket

    import urllib3
    from gcp_storage_emulator.server import create_server

    from hostrelay.domain.cloud_sources import GcpConnectorSettings
    from hostrelay.logic.sync_gcp import GCP_SOURCE, read_projects
    from hostrelay.wiring import _gcp_connector
    from tests.fakes.google import GoogleFake, ServiceAccount

    project = "bench-project-1"
    instances, networks, buckets = int(10_000 * scale), int(2_000 * scale), int(200 * scale)
    account = ServiceAccount("bench@bench-project-1.iam.gserviceaccount.com")
    fake = GoogleFake(work / "google", account).start()
    for n in range(networks):
        fake.state.add_network(project, f"net-{n}", str(5_000_000 + n))
    for i in range(instances):
        zone = f"zone-{i % 20}"
        fake.state.add_instance(project, zone, f"vm-{i}", str(9_000_000 + i), network="net-0")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    storage = create_server("127.0.0.1", port, in_memory=True)
    storage.start()
    http = urllib3.PoolManager()
    for b in range(buckets):
        http.request(
            "POST",
            f"http://127.0.0.1:{port}/storage/v1/b?project={project}",
            body=f'{{"name": "bench-bucket-{b}"}}',
            headers={"Content-Type": "application/json"},
        )
    settings = _inventory_env(
        fake.ca_file,
        {
            "GOOGLE_TOKEN_URI": fake.token_uri,
            "GCP_COMPUTE_ROOT": fake.base_url,
            "GCP_STORAGE_ROOT": f"http://127.0.0.1:{port}",
        },
    )
    gcp = GcpConnectorSettings(projects=[project], credential_arn=_secret(account.key_json()))
    connect = _gcp_connector(settings)
    rows = _measure(
        lambda: connect(gcp),
        lambda client: read_projects(client, gcp, lambda: False) or [],
        GCP_SOURCE.complete_kinds(gcp),
        sample,
    )
    assert fake.state.violations == [], fake.state.violations[:3]
    fake.stop()
    storage.stop()
    return rows


def bench_azure(work: Path, scale: float, sample: int) -> list[Row]:
    from hostrelay.domain.cloud_sources import AzureConnectorSettings
    from hostrelay.logic.sync_azure import AZURE_SOURCE, read_subscriptions
    from hostrelay.wiring import _azure_connector
    from tests.fakes.azure import AzureFake

    tenant, client_id = (
        "72f988bf-86f1-41af-91ab-2d7cd011db47",
        "0f6b2b7e-3c1a-4b7e-9d8e-5a1b2c3d4e5f",
    )
    subscription = "11111111-2222-4333-8444-555555555555"
    fake = AzureFake(work / "azure", tenant, client_id, "bench-secret").start()
    fake.state.page_size = 1000  # ARM's usual page for these list operations
    for i in range(int(10_000 * scale)):
        fake.state.add_vm(subscription, f"rg-{i % 50}", f"vm-{i}")
    for n in range(int(2_000 * scale)):
        fake.state.add_vnet(subscription, f"rg-{n % 50}", f"vnet-{n}", "10.0.0.0/16")
    settings = _inventory_env(
        fake.ca_file, {"AZURE_LOGIN_ROOT": fake.base_url, "AZURE_ARM_ROOT": fake.base_url}
    )
    azure = AzureConnectorSettings(
        tenant_id=tenant,
        client_id=client_id,
        subscriptions=[subscription],
        credential_arn=_secret("bench-secret"),
    )
    connect = _azure_connector(settings)
    rows = _measure(
        lambda: connect(azure),
        lambda client: read_subscriptions(client, azure, lambda: False) or [],
        AZURE_SOURCE.complete_kinds(azure),
        sample,
    )
    assert fake.state.violations == [], fake.state.violations[:3]
    fake.stop()
    return rows


def run_one(source: str, scale: float, sample: int) -> None:
    from moto import mock_aws

    benches = {"workspace": bench_workspace, "gcp": bench_gcp, "azure": bench_azure}
    with tempfile.TemporaryDirectory() as directory, mock_aws():
        rows = benches[source](Path(directory), scale, sample)
    baseline = rows[0][1] / rows[0][3]
    print(f"== {source}: {rows[1][1]} entities read, {rows[0][1]} applied")
    print(f"{'run':<34}{'entities/s':>12}{'seconds':>10}{'API calls':>11}{'x baseline':>12}")
    for name, count, calls, seconds in rows:
        rate = count / seconds
        print(f"{name:<34}{rate:>12.0f}{seconds:>10.1f}{calls:>11}{rate / baseline:>12.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", choices=SOURCES, help="one source only (in this process)")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the sizes above")
    parser.add_argument(
        "--apply-sample", type=int, default=0, help="entities applied (0: all, the default)"
    )
    parser.add_argument(
        "--whole-table-rollback",
        action="store_true",
        help="keep moto's whole-table copy per transaction item (the figures before the patch)",
    )
    args = parser.parse_args()
    if args.source:
        from hostrelay_local.moto_endpoint import tune_moto

        tune_moto(per_item_rollback=not args.whole_table_rollback)
        run_one(args.source, args.scale, args.apply_sample)
        return
    for source in SOURCES:  # each in a fresh process: moto's memory ends with it
        command = [sys.executable, __file__, "--source", source, "--scale", str(args.scale)]
        command += ["--apply-sample", str(args.apply_sample)]
        command += ["--whole-table-rollback"] if args.whole_table_rollback else []
        subprocess.run(command, check=True)


if __name__ == "__main__":
    main()
