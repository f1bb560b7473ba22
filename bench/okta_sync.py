"""Bench: an okta.sync of a 10,000-user / 2,000-group org on the local Okta fake.

Runs the okta.sync handler (the discovery function's code) against tests/fakes/okta.py over
TLS, with the inventory in in-process moto, and prints entities/s and API calls for a first
full run (everything created) and a second one (everything unchanged). The baseline, measured
in the same run, is the inventory alone: the same entities applied with replace_all without
reading Okta, so the difference is what reading Okta costs. Then 1 % of the users change and
1 % of the groups change members, and an incremental run (read_org_changes: only what was
updated since the full run) is printed beside the full one, with the ratio of API calls.

    .venv/bin/python -m bench.okta_sync [--users 10000] [--groups 2000]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
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
from hostrelay.dal.okta import OktaOrg
from hostrelay.domain.connector_settings import OktaConnectorSettings
from hostrelay.settings import DiscoverySettings, load_settings
from hostrelay_local.aws_resources import create_resources, function_environment
from hostrelay_local.template import load_template
from tests.fakes.okta import OktaFake

TOKEN = "00bench-token"  # the local fake's


def arrange(fake: OktaFake, users: int, groups: int) -> None:
    """Each user in three groups (g, g+1, g+2 modulo the count, g = the user's number modulo
    it); group sizes even (15 members each at the defaults)."""
    members: dict[int, list[str]] = {g: [] for g in range(groups)}
    for i in range(users):
        user_id = f"00u{i:06d}"
        fake.state.add_user(user_id, f"user{i}.bench@example.test")
        for g in {(i % groups - offset) % groups for offset in range(3)}:
            members[g].append(user_id)
    for g in range(groups):
        group_type = "APP_GROUP" if g % 10 == 0 else "OKTA_GROUP"
        fake.state.add_group(f"00g{g:05d}", f"group {g}", members[g], group_type=group_type)


class Phases:
    """Prints each phase as it starts and ends (a long run shows where it is), keeps seconds."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.seconds: dict[str, float] = {}

    def _print(self, text: str) -> None:
        print(f"[{time.perf_counter() - self.started:7.1f} s] {text}", flush=True)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        self._print(f"{name} ...")
        began = time.perf_counter()
        yield
        self.seconds[name] = time.perf_counter() - began
        self._print(f"{name}: {self.seconds[name]:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--groups", type=int, default=2_000)
    parser.add_argument(
        "--whole-table-rollback",
        action="store_true",
        help="keep moto's whole-table copy per transaction item (the figures before the patch)",
    )
    args = parser.parse_args()
    from hostrelay_local.moto_endpoint import tune_moto

    # As the other sync benches: without it moto copies the whole inventory table for each
    # transaction, and the apply grows with the square of the org (8 entities/s at 2,400).
    tune_moto(per_item_rollback=not args.whole_table_rollback)
    phases = Phases()
    with tempfile.TemporaryDirectory() as directory, mock_aws():
        fake = OktaFake(Path(directory), TOKEN).start()
        with phases.phase(f"arrange the fake ({args.users} users, {args.groups} groups)"):
            arrange(fake, args.users, args.groups)
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
        from hostrelay.logic.sync_okta import GROUP_KIND, USER_KIND, read_org
        from hostrelay.wiring import _bind_common, _bind_connectors

        settings = load_settings(DiscoverySettings)
        _bind_common(settings)
        _bind_connectors(settings, settings.connectors_table, settings.inventory_table)
        inventory = InventoryService(InventoryRepository())
        okta = OktaConnectorSettings(
            org_url=fake.base_url,
            credential_arn="arn:aws:secretsmanager:us-east-1:123456789012:secret:hostrelay/b",
        )

        def sync(connector: str, name: str) -> tuple[int, int, float]:
            started = time.perf_counter()
            org = OktaOrg.connect(okta.base_url, TOKEN, page_size=200, ca_bundle=fake.ca_file)
            with phases.phase(f"{name}: read okta"):
                entities = read_org(org, lambda: False) or []
            with phases.phase(f"{name}: apply {len(entities)} entities"):
                inventory.replace_all(
                    connector, entities, datetime.now(UTC), complete_kinds={USER_KIND, GROUP_KIND}
                )
            return len(entities), org.calls, time.perf_counter() - started

        # Baseline: the same entities, applied without reading Okta.
        org = OktaOrg.connect(okta.base_url, TOKEN, page_size=200, ca_bundle=fake.ca_file)
        with phases.phase("baseline: read okta (not timed)"):
            entities = read_org(org, lambda: False) or []
        with phases.phase("baseline: apply only"):
            inventory.replace_all(
                "baseline", entities, datetime.now(UTC), complete_kinds={USER_KIND, GROUP_KIND}
            )
        baseline = phases.seconds["baseline: apply only"]
        first = sync("okta", "full run 1 (all created)")
        second = sync("okta", "full run 2 (all unchanged)")
        changed = incremental_after_changes(fake, inventory, okta, args.users, args.groups, phases)
        fake.stop()
    print(f"okta org: {args.users} users, {args.groups} groups, {len(entities)} entities")
    print(f"{'run':<36}{'entities/s':>12}{'seconds':>10}{'API calls':>11}{'x baseline':>12}")
    rows = [("baseline: inventory apply only", (len(entities), 0, baseline))]
    rows += [("okta.sync full (all created)", first), ("okta.sync full (all unchanged)", second)]
    rows += [("okta.sync incremental (1 % changed)", changed)]
    base_rate = len(entities) / baseline
    for name, (count, calls, seconds) in rows:
        rate = count / seconds
        print(f"{name:<36}{rate:>12.0f}{seconds:>10.1f}{calls:>11}{rate / base_rate:>12.2f}")
    print(
        f"API calls incremental / full: {changed[1]} / {second[1]} = {changed[1] / second[1]:.3f};"
        f" seconds {changed[2]:.2f} / {second[2]:.2f} = {changed[2] / second[2]:.3f}"
    )


def incremental_after_changes(
    fake: OktaFake,
    inventory: Any,
    okta: OktaConnectorSettings,
    users: int,
    groups: int,
    phases: Phases,
) -> tuple[int, int, float]:
    """1 % of users get a new status, 1 % of groups a new member; then an incremental run."""
    from hostrelay.domain.inventory import InventoryChanges
    from hostrelay.logic.sync_okta import read_org_changes

    # Okta's timestamps have milliseconds: a change in the same one as `since` is not after it.
    since = datetime.now(UTC) - timedelta(seconds=1)
    for i in range(0, users, 100):
        fake.state.update_user(f"00u{i:06d}", status="SUSPENDED")
    for g in range(1, groups, 100):
        group_id = f"00g{g:05d}"
        fake.state.set_members(group_id, fake.state.members[group_id] | {f"00u{g + 7:06d}"})
    started = time.perf_counter()
    org = OktaOrg.connect(okta.base_url, TOKEN, page_size=200, ca_bundle=fake.ca_file)
    with phases.phase("incremental: read okta changes"):
        read = read_org_changes(
            org,
            {"updated_after": since.isoformat()},
            datetime.now(UTC),
            lambda ids: inventory.live("okta", ids),
            lambda: False,
        )
    assert read is not None
    changes = InventoryChanges(upserts=read.upserts, deletes=read.deletes)
    with phases.phase(f"incremental: apply {len(read.upserts)} upserts"):
        inventory.apply_all("okta", changes, datetime.now(UTC))
    return len(read.upserts), org.calls, time.perf_counter() - started


if __name__ == "__main__":
    main()
