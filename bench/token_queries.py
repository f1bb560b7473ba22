"""Bench: what a service token's job listing and a token revoke read, against a baseline.

In-process moto with the tables of template.yaml. The listing part fills the jobs table with
`--hidden` jobs on `--hosts` hosts and `--visible` pings on two hosts, then pages through
GET /v1/jobs's logic as a service token (ping on those two hosts) with `--limit`: once as it
works now (one by_host_state query per host, merged) and once as it worked before (a page of
a table scan, filtered after the query). The revoke part makes `--tokens` tokens and revokes
one: through the by_token_id index, and by the scan it replaced. It prints pages, empty
pages, DynamoDB calls and items read side by side; moto's timings mean little, the item
counts carry over to AWS (a scan reads, and is billed for, every item it passes).

    .venv/bin/python bench/token_queries.py [--hidden 3000] [--visible 120] [--tokens 2000]
"""

from __future__ import annotations

import argparse
import os
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_REGION", "us-east-1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import boto3
from moto import mock_aws

from hostrelay.clock import utcnow
from hostrelay.dal.aws_clients import client
from hostrelay.settings import load_settings
from hostrelay_local.aws_resources import create_resources, function_environment
from hostrelay_local.template import load_template

CALLS: Counter[str] = Counter()
ITEMS_READ: Counter[str] = Counter()


def count_dynamodb_reads() -> None:
    """Counts DynamoDB calls, and the items each Query/Scan examined (ScannedCount)."""
    import json

    from moto.core.botocore_stubber import BotocoreStubber

    original = BotocoreStubber.process_request

    def process_request(self: BotocoreStubber, request: Any) -> Any:
        target = request.headers.get("X-Amz-Target", b"")
        target = target.decode() if isinstance(target, bytes) else str(target)
        response = original(self, request)
        if target.startswith("DynamoDB_"):
            operation = target.split(".", 1)[1]
            CALLS[operation] += 1
            if operation in ("Query", "Scan") and response is not None:
                body = response[2] if isinstance(response, tuple) else b"{}"
                ITEMS_READ[operation] += int(json.loads(body or b"{}").get("ScannedCount", 0))
        return response

    BotocoreStubber.process_request = process_request  # type: ignore[method-assign]


def measure(run: Callable[[], list[int]]) -> dict[str, Any]:
    calls, items = CALLS.copy(), ITEMS_READ.copy()
    started = time.perf_counter()
    pages = run()
    return {
        "pages": len(pages),
        "empty pages": sum(1 for size in pages if size == 0),
        "jobs listed": sum(pages),
        "DynamoDB calls": sum((CALLS - calls).values()),
        "items read": sum((ITEMS_READ - items).values()),
        "seconds (moto)": round(time.perf_counter() - started, 2),
    }


def table(title: str, columns: dict[str, dict[str, Any]]) -> None:
    print(title)
    print(f"{'':22}" + "".join(f"{name:>18}" for name in columns))
    for row in next(iter(columns.values())):
        print(f"{row:22}" + "".join(f"{values[row]!s:>18}" for values in columns.values()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=3000, help="jobs the token may not see")
    parser.add_argument("--hosts", type=int, default=30, help="hosts the hidden jobs are on")
    parser.add_argument("--visible", type=int, default=120, help="jobs the token may see")
    parser.add_argument("--limit", type=int, default=50, help="page size")
    parser.add_argument("--tokens", type=int, default=2000)
    args = parser.parse_args()
    count_dynamodb_reads()
    template = load_template()
    with mock_aws():
        client.cache_clear()
        load_settings.cache_clear()
        resources = create_resources(
            boto3.session.Session(region_name="us-east-1"), template=template
        )
        env = function_environment(template, "ApiFunction", resources)
        os.environ.update({k: v for k, v in env.items() if k != "POWERTOOLS_SERVICE_NAME"})

        from ulid import ULID

        from hostrelay.dal.jobs_repo import JobRepository
        from hostrelay.dal.tables import TokenRecord
        from hostrelay.dal.tokens_repo import TokenRepository
        from hostrelay.domain.jobs import Job, JobState
        from hostrelay.domain.principal import Principal, Scope
        from hostrelay.settings import ApiSettings
        from hostrelay.wiring import build_job_service

        service = build_job_service(load_settings(ApiSettings))
        repo = JobRepository()
        start = utcnow()
        total = args.hidden + args.visible
        shown = {n * total // args.visible for n in range(args.visible)}
        for n in range(total):
            visible = n in shown
            host = f"dc{n % 2 + 1:02d}" if visible else f"h{n % args.hosts:03d}"
            at = start + timedelta(milliseconds=n)
            repo.create(
                Job(id=str(ULID()), type="ping", host=host, params={}, state=JobState.QUEUED,
                    timeout_s=60, created_by="bench", created_at=at, updated_at=at)
            )  # fmt: skip
        token = Principal(
            token_id="b", name="bench", scopes=[Scope.SERVICE], job_types=["ping"],
            hosts=["dc01", "dc02"],
        )  # fmt: skip

        def now_listing() -> list[int]:
            sizes, key = [], None
            while True:
                jobs, key = service.list(
                    token, host=None, state=None, job_type=None, limit=args.limit, start_key=key
                )
                sizes.append(len(jobs))
                if key is None:
                    return sizes

        def before_listing() -> list[int]:
            sizes, key = [], None
            while True:
                jobs, key = repo.list(limit=args.limit, start_key=key)
                sizes.append(sum(1 for j in jobs if token.may_read_job(j.type, j.host)))
                if key is None:
                    return sizes

        listing = {
            "per-host merged": measure(now_listing),
            "scan + filter": measure(before_listing),
        }
        table(
            f"service-token listing: {args.visible} visible of {args.hidden + args.visible} jobs, "
            f"limit {args.limit}",
            listing,
        )

        tokens = TokenRepository()
        ids = [f"t{n:05d}" for n in range(args.tokens)]
        for token_id in ids:
            tokens.create(token_id=token_id, name=token_id, scopes=["reader"], created_by="bench")
        target = ids[len(ids) // 2]

        def by_index() -> list[int]:
            return [1 if tokens.revoke(target) is not None else 0]

        def by_scan() -> list[int]:
            found = list(TokenRecord.scan(TokenRecord.token_id == target))
            for record in found:
                record.update(actions=[TokenRecord.revoked_at.set(utcnow())])
            return [len(found)]

        revoke = {"by_token_id index": measure(by_index), "table scan": measure(by_scan)}
        for values in revoke.values():
            values.pop("pages"), values.pop("empty pages"), values.pop("jobs listed")
        print()
        table(f"token revoke among {args.tokens} tokens", revoke)
        client.cache_clear()
        load_settings.cache_clear()
    merged, scanned = listing.values()
    assert merged["jobs listed"] == scanned["jobs listed"] == args.visible


if __name__ == "__main__":
    main()
