"""Bench: a 20,000-entity directory full sync applied through the results function.

The relay sends a full sync as `inventory` events of at most 100 entities; the IoT rule puts
them on the results queue and Lambda hands the results function 10 messages per invocation.
This replays exactly that against in-process moto, once with batched writes (BatchGetItem +
conditional TransactWriteItems, up to 100 items a call) and once with one conditional
UpdateItem per entity, and
prints entities/s and DynamoDB calls side by side. `--replay` re-delivers every event once
more (all unchanged). moto spends ~25 ms parsing each UpdateItem expression, so the
per-entity run takes several minutes; the call counts are what carries over to AWS. moto runs
as the local stack tunes it (a TransactWriteItems rolled back item by item);
`--whole-table-rollback` keeps moto's own deep copy of every table a transaction touches, under
which the batched run's time grows with the table.

    .venv/bin/python bench/inventory_apply.py [--entities 20000] [--replay]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_REGION", "us-east-1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "hostrelay")
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import boto3
from moto import mock_aws

from hostrelay.dal.aws_clients import client
from hostrelay.settings import load_settings
from hostrelay_local.aws_resources import create_resources, function_environment
from hostrelay_local.lambda_runtime import FakeLambdaContext, load_handler
from hostrelay_local.moto_endpoint import tune_moto
from hostrelay_local.template import load_template

CALLS: Counter[str] = Counter()
BATCH_ENTITIES = 100  # the relay's MAX_BATCH_ITEMS
RECORDS_PER_INVOCATION = 10  # the results function's SQS BatchSize
WRITES = ("BatchWriteItem", "TransactWriteItems", "UpdateItem", "PutItem")


def directory(total: int) -> list[dict[str, Any]]:
    """Users, groups (with members) and OUs, shaped like the relay's entities."""
    ous = [
        {"id": f"ou-{i:05d}", "kind": "ou", "dn": f"OU=unit{i},DC=corp,DC=test",
         "name": f"unit{i}", "attributes": {"description": f"unit {i}"}, "member_of": []}
        for i in range(max(1, total // 40))
    ]  # fmt: skip
    groups = [
        {"id": f"g-{i:05d}", "kind": "group", "dn": f"CN=group{i},DC=corp,DC=test",
         "name": f"group{i}", "attributes": {"sAMAccountName": f"group{i}"},
         "members": [f"u-{(i * 7 + k) % (total // 2):06d}" for k in range(5)], "member_of": []}
        for i in range(max(1, total // 8))
    ]  # fmt: skip
    users = [
        {"id": f"u-{i:06d}", "kind": "user",
         "dn": f"CN=user{i},OU=unit{i % len(ous)},DC=corp,DC=test", "name": f"User {i}",
         "attributes": {"sAMAccountName": f"user{i}", "mail": f"user{i}@corp.test",
                        "department": f"dept{i % 50}", "title": "Engineer"},
         "member_of": [f"g-{i % len(groups):05d}"]}
        for i in range(total - len(ous) - len(groups))
    ]  # fmt: skip
    return [*ous, *groups, *users]


def rule_message(host: str, event: dict[str, Any]) -> str:
    payload = base64.b64encode(json.dumps(event).encode()).decode()
    return json.dumps({"payload": payload, "topic": f"hostrelay/{host}/events"})


def sqs_event(bodies: list[str]) -> dict[str, Any]:
    return {
        "Records": [
            {"messageId": f"m-{i}", "receiptHandle": "r", "body": body,
             "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "0"},
             "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
             "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:results",
             "awsRegion": "us-east-1"}
            for i, body in enumerate(bodies)
        ]
    }  # fmt: skip


@dataclass
class Result:
    mode: str
    entities: int
    apply_s: float
    stored: int
    calls: Counter[str] = field(default_factory=Counter)
    replay_s: float | None = None

    @property
    def rate(self) -> float:
        return self.entities / self.apply_s

    @property
    def replay_rate(self) -> str:
        return f"{self.entities / self.replay_s:,.0f}" if self.replay_s else "-"


def count_dynamodb_calls() -> None:
    """Counts DynamoDB operations moto serves in CALLS, by name (X-Amz-Target)."""
    from moto.core.botocore_stubber import BotocoreStubber

    original = BotocoreStubber.process_request

    def process_request(self: BotocoreStubber, request: Any) -> Any:
        target = request.headers.get("X-Amz-Target", b"")
        target = target.decode() if isinstance(target, bytes) else str(target)
        if target.startswith("DynamoDB_"):
            CALLS[target.split(".", 1)[1]] += 1
        return original(self, request)

    BotocoreStubber.process_request = process_request  # type: ignore[method-assign]


def run(mode: str, entities: list[dict[str, Any]], replay: bool) -> Result:
    template = load_template()
    with mock_aws():
        client.cache_clear()
        load_settings.cache_clear()
        session = boto3.session.Session(region_name="us-east-1")
        resources = create_resources(session, template=template)
        api_env = function_environment(template, "ApiFunction", resources)
        results_env = function_environment(template, "ResultsFunction", resources)
        results_env["INVENTORY_BATCH_WRITES"] = "true" if mode == "batched" else "false"
        os.environ.update({k: v for k, v in api_env.items() if k != "POWERTOOLS_SERVICE_NAME"})
        spec = next(f for f in template.functions() if f.logical_id == "ResultsFunction")
        results = load_handler(spec, results_env)

        from hostrelay.dal.hosts_repo import HostRepository
        from hostrelay.domain.connectors import ConnectorKind
        from hostrelay.domain.principal import Principal, Scope
        from hostrelay.logic.connectors import ConnectorDraft
        from hostrelay.settings import ApiSettings
        from hostrelay.wiring import (
            build_connector_service,
            build_inventory_queries,
            build_job_service,
        )

        settings = load_settings(ApiSettings)
        hosts = HostRepository()
        jobs = build_job_service(settings)
        hosts.register("dc01")
        hosts.seen("dc01", connected=True)
        admin = Principal(token_id="bench", name="bench", scopes=[Scope.ADMIN])
        connectors = build_connector_service(settings, jobs)
        connector = connectors.create(
            ConnectorDraft(
                name="bench", kind=ConnectorKind.LDAP, target="dc01",
                settings={"url": "ldaps://dc01.corp.test", "base_dn": "DC=corp,DC=test",
                          "credential": "sync"},
            ),
            admin,
        )  # fmt: skip
        job = connectors.run_now(connector.id, admin)
        sent_at = time.time() - 60
        bodies = [
            rule_message(
                "dc01",
                {"v": 1, "kind": "inventory", "event_id": f"e{seq}", "sent_at": sent_at,
                 "job_id": job.id, "attempt": 1, "connector": connector.id, "seq": seq,
                 "upserts": entities[start : start + BATCH_ENTITIES], "deletes": []},
            )
            for seq, start in enumerate(range(0, len(entities), BATCH_ENTITIES))
        ]  # fmt: skip
        calls = CALLS.copy()
        timings = []
        for _ in range(2 if replay else 1):  # the full sync, then the same events again
            started = time.perf_counter()
            for first in range(0, len(bodies), RECORDS_PER_INVOCATION):
                response = results(
                    sqs_event(bodies[first : first + RECORDS_PER_INVOCATION]),
                    FakeLambdaContext(function_name="results"),
                )
                assert response == {"batchItemFailures": []}, response
            timings.append(time.perf_counter() - started)
            if len(timings) == 1:
                calls = CALLS - calls
        stored = sum(c.active for c in build_inventory_queries(settings).counts())
        client.cache_clear()
        load_settings.cache_clear()
    result = Result(mode, len(entities), timings[0], stored, calls)
    result.replay_s = timings[1] if replay else None
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=20_000)
    parser.add_argument("--replay", action="store_true", help="re-deliver every event once more")
    parser.add_argument(
        "--whole-table-rollback",
        action="store_true",
        help="keep moto's whole-table copy per transaction item (the figures before the patch)",
    )
    args = parser.parse_args()
    tune_moto(per_item_rollback=not args.whole_table_rollback)
    entities = directory(args.entities)
    count_dynamodb_calls()
    print(
        f"inventory apply: {len(entities)} entities in {len(entities) // BATCH_ENTITIES} "
        f"events, {RECORDS_PER_INVOCATION} events per results invocation (in-process moto)"
    )
    results = [run(mode, entities, args.replay) for mode in ("batched", "per-entity")]
    print(f"{'':30}" + "".join(f"{r.mode:>16}" for r in results))
    rows = [
        ("full sync, seconds", lambda r: f"{r.apply_s:.1f}"),
        ("full sync, entities/s", lambda r: f"{r.rate:,.0f}"),
        ("re-delivery, entities/s", lambda r: r.replay_rate),
        ("DynamoDB calls", lambda r: f"{sum(r.calls.values()):,}"),
        ("  of which writes", lambda r: f"{sum(r.calls[w] for w in WRITES):,}"),
        ("entities stored", lambda r: f"{r.stored:,}"),
    ]
    for label, cell in rows:
        print(f"{label:30}" + "".join(f"{cell(r):>16}" for r in results))
    batched, single = results
    print(f"batched writes apply the full sync {batched.rate / single.rate:.1f}x faster")
    assert batched.stored == single.stored == len(entities)


if __name__ == "__main__":
    main()
