"""Fixtures for the control-plane pipeline: handlers, queues and a registered host."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from hostrelay.dal.hosts_repo import HostRepository
from hostrelay.domain.principal import Principal, Scope
from hostrelay.logic.jobs import JobService, NewJob
from hostrelay.settings import ApiSettings, load_settings
from hostrelay.wiring import build_job_service
from tests.conftest import AwsStack, sqs_event

ADMIN = Principal(token_id="t-admin", name="admin", scopes=[Scope.ADMIN])


@dataclass
class Pipeline:
    aws: AwsStack
    jobs: JobService
    dispatch: Callable[[dict[str, Any], Any], Any]
    results: Callable[[dict[str, Any], Any], Any]
    sweeper: Callable[[dict[str, Any], Any], Any]
    # Asynchronous invocations of the dispatch function, in the order Lambda took them.
    invocations: list[dict[str, Any]] = field(default_factory=list)

    def queue_bodies(self, logical_id: str) -> list[dict[str, Any]]:
        """Drain a queue and return its message bodies (delayed ones included)."""
        sqs = self.aws.client("sqs")
        url = self.aws.ref(logical_id)
        bodies: list[dict[str, Any]] = []
        while True:
            got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            messages = got.get("Messages", [])
            if not messages:
                return bodies
            for message in messages:
                bodies.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

    def run_dispatch(self) -> dict[str, Any]:
        """Run the dispatch function on its pending asynchronous invocations (the API's, for
        fresh jobs), then on what waits on the dispatch queue (one batch)."""
        while self.invocations:
            self.dispatch(self.invocations.pop(0), _context("dispatch"))
        bodies = [json.dumps(b) for b in self.queue_bodies("DispatchQueue")]
        if not bodies:
            return {"batchItemFailures": []}
        return self.dispatch(sqs_event(bodies), _context("dispatch"))  # type: ignore[no-any-return]

    def send_events(
        self, host: str, *events: dict[str, Any], receive_count: int = 1
    ) -> dict[str, Any]:
        """Publish events as `host` does: the template's topic rules route each one, as IoT
        would (output into the output table, results straight to the results function, the
        rest to it at once as one batch of the results queue). With `receive_count` above 1,
        results come as that delivery of a message on the results queue instead (where a
        result that waited for its output in vain goes)."""
        from hostrelay_local.iot_bridge import AwsClients, LambdaAction, SqsAction, topic_rules
        from hostrelay_local.iot_sql import RuleInput

        clients = AwsClients(sqs=self.aws.client("sqs"), dynamodb=self.aws.client("dynamodb"))
        topic = f"hostrelay/{host}/events"
        rules = topic_rules(self.aws.template, self.aws.resources)
        bodies = []
        for event in events:
            message = RuleInput(topic, json.dumps(relay_event(event)).encode())
            for rule in rules:
                output = rule.query.apply(message)
                if output is None:
                    continue
                if isinstance(rule.action, LambdaAction) and receive_count == 1:
                    self.results(output, _context("results"))
                elif isinstance(rule.action, SqsAction | LambdaAction):
                    bodies.append(json.dumps(output))
                else:
                    rule.run(clients, message)
        if not bodies:
            return {"batchItemFailures": []}
        event = sqs_event(bodies)
        for record in event["Records"]:
            record["attributes"]["ApproximateReceiveCount"] = str(receive_count)
        return self.results(event, _context("results"))  # type: ignore[no-any-return]

    def create(self, **fields: Any) -> Any:
        fields.setdefault("type", "ping")
        fields.setdefault("host", "dc01")
        fields.setdefault("params", {})
        job, _ = self.jobs.create(NewJob(**fields), ADMIN)
        return job


def relay_event(event: dict[str, Any]) -> dict[str, Any]:
    """An event with the fields every relay event has."""
    return {"v": 1, "event_id": "e-" + str(id(event)), "sent_at": 0.0, **event}


def rule_message(host: str, event: dict[str, Any], topic: str | None = None) -> str:
    """What EventsTopicRule puts on the results queue for one relay event."""
    return json.dumps(
        {
            "payload": base64.b64encode(json.dumps(relay_event(event)).encode()).decode(),
            "topic": topic or f"hostrelay/{host}/events",
        }
    )


def _context(name: str) -> Any:
    from hostrelay_local.lambda_runtime import FakeLambdaContext

    return FakeLambdaContext(function_name=name)


@pytest.fixture
def pipeline(aws: AwsStack) -> Iterator[Pipeline]:
    """Given the control plane in moto with host dc01 online; the API's asynchronous
    invocations of the dispatch function wait in `invocations` for run_dispatch()."""
    from hostrelay_local.lambda_invoke import invoke_in_process, withdraw

    hosts = HostRepository()
    jobs = build_job_service(load_settings(ApiSettings))
    hosts.register("dc01")
    hosts.seen("dc01", connected=True)
    # A result waits this long for output it misses before it asks SQS to try again later.
    aws.environments["ResultsFunction"]["OUTPUT_WAIT_S"] = "0.2"
    pipeline = Pipeline(
        aws=aws,
        jobs=jobs,
        dispatch=aws.handler("DispatchFunction"),
        results=aws.handler("ResultsFunction"),
        sweeper=aws.handler("SweeperFunction"),
    )
    dispatch_function = aws.ref("DispatchFunction")
    invoke_in_process(dispatch_function, pipeline.invocations.append)
    yield pipeline
    withdraw(dispatch_function)


@pytest.fixture
def published(aws: AwsStack) -> Callable[[], list[tuple[str, bytes]]]:
    """What the dispatch function published to IoT Core (moto records it)."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.iotdata.models import iotdata_backends

    def read() -> list[tuple[str, bytes]]:
        backend = iotdata_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]
        return [(topic, bytes(payload)) for topic, payload in backend.published_payloads]

    return read
