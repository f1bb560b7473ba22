"""Bench: AWS requests per `ping` job, by service and operation, and dollars per million jobs.

One ping job goes the whole way through the control plane's own code in this process, in moto
with every resource of template.yaml (the local stack's pieces: hostrelay_local builds the
resources, loads each function's handler with its template environment and runs the IoT topic
rules):

  POST /v1/jobs (api function) → dispatch function (the API's asynchronous invocation, no
  queue: hostrelay_local/lambda_invoke.py takes it in process) → IoT publish to the relay
  → the relay's `result` event (its `accepted` is held back and dropped for a job this quick:
  relay/hostrelay_relay/accepted_hold.py) → ResultsTopicRule → results function (the rule's
  Lambda action: an asynchronous invocation, no queue).

Every AWS call any of them makes is counted by a botocore hook (pynamodb and boto3 both go
through botocore's client). Calls AWS makes for us and bills us for are counted as it would:
an SQS event source's ReceiveMessage and DeleteMessageBatch (one message per batch, the
low-traffic case: no ping uses a queue now), what a topic rule's action sends (SendMessage
for an Sqs action; a Lambda action's invocation is counted as the invocation), one Lambda
invocation per function call (the API's `Invoke` call is that invocation, counted once, as
AWS bills it), one HTTP API request. The relay's MQTT message is one IoT
message and triggers one rule with one action.

Not counted: the client reading the job back (GET /v1/jobs/{id} polls are the caller's
choice), the sweeper (it runs on a schedule, whatever the number of jobs), the event source's
empty long polls (a fixed cost per hour), relay connection minutes, and CloudWatch/X-Ray.
One read is a container's, repeated only after a while (the API's token read after
TOKEN_CACHE_TTL_S): its share per job depends on the pace, here one ping after another
through one container of each function.

Prices: AWS list prices, us-east-1, on-demand, as published in 2025 (no free tier):
  DynamoDB on-demand     $0.625 per million write request units, $0.125 per million read
                         request units; the model here: 1 RRU per read request, 1 WRU per
                         item written (2 in a transaction, a ConditionCheck included: AWS
                         bills it as a transactional write); GSI writes and items over 1 KB /
                         4 KB are not counted, so the DynamoDB figure is a floor
  SQS standard queue     $0.40 per million requests
  IoT Core               $1.00 per million messages (publish, either way), rules engine $0.15
                         per million rules triggered + $0.15 per million actions applied
  Lambda (x86)           $0.20 per million requests + $0.0000166667 per GB-second; the
                         duration used is the handler's time here with the template's memory
                         size, which includes moto's own time, so it is an upper bound
  API Gateway HTTP API   $1.00 per million requests
  SSM Parameter Store    standard parameters, standard throughput: no charge

    python bench/cost_per_job.py               # 50 measured jobs after 5 warm-up jobs
    python bench/cost_per_job.py --jobs 200
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_REGION", "us-east-1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "hostrelay")

import boto3
import botocore.client
from moto import mock_aws

REGION = "us-east-1"
MEGA = 1_000_000
PRICE_DYNAMODB_WRU = 0.625 / MEGA
PRICE_DYNAMODB_RRU = 0.125 / MEGA
PRICE_SQS_REQUEST = 0.40 / MEGA
PRICE_IOT_MESSAGE = 1.00 / MEGA
PRICE_IOT_RULE = 0.15 / MEGA
PRICE_IOT_ACTION = 0.15 / MEGA
PRICE_LAMBDA_REQUEST = 0.20 / MEGA
PRICE_LAMBDA_GB_S = 0.0000166667
PRICE_HTTP_API_REQUEST = 1.00 / MEGA

DYNAMODB_READS = frozenset(
    {"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems", "DescribeTable"}
)
FUNCTIONS = ("ApiFunction", "DispatchFunction", "ResultsFunction")


@dataclass
class Tally:
    """What one or more jobs cost, request by request."""

    calls: Counter[tuple[str, str]] = field(default_factory=Counter)
    # (function or "aws" for what AWS does for us, service, operation)
    calls_by_caller: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    dynamodb_items_written: float = 0.0
    dynamodb_reads: float = 0.0
    lambda_invocations: Counter[str] = field(default_factory=Counter)
    lambda_seconds: Counter[str] = field(default_factory=Counter)
    iot_messages: int = 0
    iot_rules: int = 0
    iot_actions: int = 0
    http_requests: int = 0

    def by_service(self) -> Counter[str]:
        services: Counter[str] = Counter()
        for (service, _), count in self.calls.items():
            services[service] += count
        return services


class RequestCounter:
    """Counts every botocore API call made while it is installed."""

    def __init__(self) -> None:
        self.tally = Tally()
        self.caller = "aws"

    def _record(self, service: str, operation: str, params: dict[str, Any]) -> None:
        if (service, operation) == ("lambda", "Invoke"):
            return  # billed as the invocation it makes, counted there
        self.tally.calls[(service, operation)] += 1
        self.tally.calls_by_caller[(self.caller, service, operation)] += 1
        if service != "dynamodb":
            if service == "iot-data" and operation == "Publish":
                self.tally.iot_messages += 1
            return
        if operation in DYNAMODB_READS:
            self.tally.dynamodb_reads += 1
        elif operation == "TransactWriteItems":
            self.tally.dynamodb_items_written += 2 * len(params.get("TransactItems", []))
        elif operation == "BatchWriteItem":
            self.tally.dynamodb_items_written += sum(
                len(items) for items in params.get("RequestItems", {}).values()
            )
        else:
            self.tally.dynamodb_items_written += 1

    @contextmanager
    def installed(self) -> Iterator[RequestCounter]:
        original = botocore.client.BaseClient._make_api_call
        counter = self

        def counting(client: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
            service = client.meta.service_model.service_name
            counter._record(service, operation_name, api_params)
            return original(client, operation_name, api_params)

        botocore.client.BaseClient._make_api_call = counting  # type: ignore[method-assign]
        try:
            yield self
        finally:
            botocore.client.BaseClient._make_api_call = original  # type: ignore[method-assign]

    def reset(self) -> Tally:
        tally, self.tally = self.tally, Tally()
        return tally


class PingPipeline:
    """The control plane of template.yaml in moto, driven one ping job at a time."""

    def __init__(self, counter: RequestCounter) -> None:
        from ulid import ULID

        from hostrelay_local.aws_resources import create_resources, function_environment
        from hostrelay_local.iot_bridge import AwsClients, topic_rules
        from hostrelay_local.lambda_runtime import load_handler
        from hostrelay_local.template import load_template

        self.template = load_template()
        self.resources = create_resources(
            boto3.session.Session(region_name=REGION), template=self.template
        )
        specs = {spec.logical_id: spec for spec in self.template.functions()}
        # The template's Globals give every function 256 MB unless it says otherwise.
        self.memory_mb = {
            name: int(self.template.resources[name]["Properties"].get("MemorySize", 256))
            for name in FUNCTIONS
        }
        self.counter = counter
        environments = {
            name: function_environment(self.template, name, self.resources) for name in FUNCTIONS
        }
        for env in environments.values():  # only the figures on stdout
            env.update({"LOG_LEVEL": "WARNING", "POWERTOOLS_METRICS_DISABLED": "true"})
        for env in environments.values():
            for key, value in env.items():
                if key != "POWERTOOLS_SERVICE_NAME":
                    os.environ[key] = value
        self.handlers = {name: load_handler(specs[name], environments[name]) for name in FUNCTIONS}
        self.rules = topic_rules(self.template, self.resources)
        self.sqs = boto3.client("sqs", region_name=REGION)
        self.clients = AwsClients(
            sqs=self.sqs, dynamodb=boto3.client("dynamodb", region_name=REGION)
        )

        from hostrelay.dal.hosts_repo import HostRepository
        from hostrelay.dal.tokens_repo import TokenRepository

        HostRepository().register("dc01")
        HostRepository().seen("dc01", connected=True)
        self.token, _ = TokenRepository().create(
            token_id=str(ULID()), name="bench-admin", scopes=["admin"], created_by="bench"
        )
        self.published = 0
        # The API's asynchronous invocations of the dispatch function, taken in process.
        from hostrelay_local.lambda_invoke import invoke_in_process

        self.invocations: list[dict[str, Any]] = []
        invoke_in_process(self.resources.refs["DispatchFunction"], self.invocations.append)

    def _invoke(self, tally: Tally, name: str, event: dict[str, Any]) -> Any:
        from hostrelay_local.lambda_runtime import FakeLambdaContext

        started = time.perf_counter()
        self.counter.caller = name
        try:
            result = self.handlers[name](event, FakeLambdaContext(function_name=name))
        finally:
            self.counter.caller = "aws"
        tally.lambda_seconds[name] += time.perf_counter() - started
        tally.lambda_invocations[name] += 1
        return result

    def _relay_result(self, tally: Tally, envelope: dict[str, Any]) -> None:
        """The relay ran the ping: its one `result` event goes through the topic rules."""
        from hostrelay_local.iot_sql import RuleInput

        event = {
            "v": 1,
            "event_id": f"e-{envelope['job_id']}",
            "sent_at": time.time(),
            "kind": "result",
            "job_id": envelope["job_id"],
            "attempt": envelope["attempt"],
            "outcome": "succeeded",
            "result": {"pong": True},
            "error": None,
            "output": None,
            "started_at": time.time(),
        }
        from hostrelay_local.iot_bridge import LambdaAction

        message = RuleInput(f"hostrelay/{envelope['host']}/events", json.dumps(event).encode())
        tally.iot_messages += 1
        for rule in self.rules:
            output = rule.query.apply(message)
            if output is None:
                continue
            tally.iot_rules += 1
            tally.iot_actions += 1
            if isinstance(rule.action, LambdaAction):
                self._invoke(tally, rule.action.function, output)
            else:
                rule.run(self.clients, message)

    def _published_envelope(self) -> dict[str, Any]:
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.iotdata.models import iotdata_backends

        payloads = iotdata_backends[DEFAULT_ACCOUNT_ID][REGION].published_payloads
        fresh = payloads[self.published :]
        self.published = len(payloads)
        [(_, payload)] = fresh
        envelope: dict[str, Any] = json.loads(bytes(payload))["envelope"]
        return envelope

    def run_job(self, tally: Tally) -> str:
        from hostrelay_local.http_api import build_event

        body = json.dumps({"type": "ping", "host": "dc01", "params": {}}).encode()
        request = build_event(
            method="POST",
            target="/v1/jobs",
            headers=[
                ("Authorization", f"Bearer {self.token}"),
                ("Content-Type", "application/json"),
            ],
            body=body,
            source_ip="127.0.0.1",
        )
        tally.http_requests += 1
        response = self._invoke(tally, "ApiFunction", request)
        if response["statusCode"] != 201:
            raise RuntimeError(f"POST /v1/jobs answered {response['statusCode']}")
        job_id: str = json.loads(response["body"])["id"]
        if not self.invocations:
            raise RuntimeError("the API did not invoke the dispatch function")
        while self.invocations:
            self._invoke(tally, "DispatchFunction", self.invocations.pop(0))
        self._relay_result(tally, self._published_envelope())
        return job_id

    def state(self, job_id: str) -> str:
        from hostrelay.dal.jobs_repo import JobRepository

        return JobRepository().get(job_id).state.value


def dollars(tally: Tally, jobs: int, memory_mb: dict[str, int]) -> dict[str, float]:
    """Dollars per million jobs, by service."""
    per_job = MEGA / jobs
    services = tally.by_service()
    sqs_requests = services["sqs"]
    gb_seconds = sum(
        seconds * memory_mb[name] / 1024 for name, seconds in tally.lambda_seconds.items()
    )
    return {
        "dynamodb": per_job
        * (
            tally.dynamodb_items_written * PRICE_DYNAMODB_WRU
            + tally.dynamodb_reads * PRICE_DYNAMODB_RRU
        ),
        "sqs": per_job * sqs_requests * PRICE_SQS_REQUEST,
        "iot": per_job
        * (
            tally.iot_messages * PRICE_IOT_MESSAGE
            + tally.iot_rules * PRICE_IOT_RULE
            + tally.iot_actions * PRICE_IOT_ACTION
        ),
        "lambda requests": per_job * sum(tally.lambda_invocations.values()) * PRICE_LAMBDA_REQUEST,
        "lambda duration (upper bound)": per_job * gb_seconds * PRICE_LAMBDA_GB_S,
        "http api": per_job * tally.http_requests * PRICE_HTTP_API_REQUEST,
    }


def report(tally: Tally, jobs: int, memory_mb: dict[str, int]) -> None:
    print(f"ping jobs measured: {jobs}  (requests per job; AWS calls by service and operation)")
    for service, count in sorted(tally.by_service().items()):
        print(f"  {service:<10} {count / jobs:6.2f}")
        for (svc, operation), n in sorted(tally.calls.items()):
            if svc == service:
                print(f"      {operation:<24} {n / jobs:6.2f}")
    print("  by caller (aws: what AWS does for us: event sources, topic rules):")
    for (caller, service, operation), n in sorted(tally.calls_by_caller.items()):
        print(f"      {caller:<17} {service:<9} {operation:<20} {n / jobs:6.2f}")
    aws_calls = sum(tally.calls.values())
    invocations = sum(tally.lambda_invocations.values())
    print(f"  {'lambda':<10} {invocations / jobs:6.2f} invocations")
    for name, n in sorted(tally.lambda_invocations.items()):
        mean_ms = 1000 * tally.lambda_seconds[name] / n
        print(f"      {name:<24} {n / jobs:6.2f}   mean {mean_ms:.1f} ms in-process")
    print(f"  {'iot':<10} {tally.iot_messages / jobs:6.2f} messages (publishes, either way)")
    print(f"  {'http api':<10} {tally.http_requests / jobs:6.2f} requests")
    print(
        f"  dynamodb units (model): {tally.dynamodb_reads / jobs:.2f} RRU, "
        f"{tally.dynamodb_items_written / jobs:.2f} WRU per job"
    )
    total_requests = aws_calls + invocations + tally.iot_rules + tally.http_requests
    print(
        f"total AWS requests per job: {total_requests / jobs:.2f}  "
        f"(API calls {aws_calls / jobs:.2f} + invocations {invocations / jobs:.2f} + "
        f"rule runs {tally.iot_rules / jobs:.2f} + HTTP {tally.http_requests / jobs:.2f})"
    )
    costs = dollars(tally, jobs, memory_mb)
    print("dollars per million ping jobs (us-east-1 list prices, see the module docstring):")
    for name, value in costs.items():
        print(f"  {name:<30} ${value:8.2f}")
    print(f"  {'total':<30} ${sum(costs.values()):8.2f}")
    without = sum(v for k, v in costs.items() if not k.startswith("lambda duration"))
    print(f"  {'total without Lambda duration':<30} ${without:8.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5, help="jobs run first, not counted")
    args = parser.parse_args(argv)
    counter = RequestCounter()
    with mock_aws():
        pipeline = PingPipeline(counter)
        with counter.installed():
            for _ in range(args.warmup):  # cold starts: signing key, token cache, clients
                pipeline.run_job(counter.tally)
            counter.reset()
            ids = [pipeline.run_job(counter.tally) for _ in range(args.jobs)]
            tally = counter.reset()
        states = Counter(pipeline.state(job_id) for job_id in ids)
    if states != Counter({"SUCCEEDED": args.jobs}):
        print(f"jobs did not all succeed: {dict(states)}", file=sys.stderr)
        return 1
    report(tally, args.jobs, pipeline.memory_mb)
    return 0


if __name__ == "__main__":
    sys.exit(main())
