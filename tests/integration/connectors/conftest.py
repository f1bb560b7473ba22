"""Fixtures for connectors and inventory: API clients, the scheduler, discovery and results."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from hostrelay.dal.hosts_repo import HostRepository
from hostrelay.dal.tokens_repo import TokenRepository
from hostrelay_local.aws_resources import function_environment
from hostrelay_local.lambda_runtime import FakeLambdaContext, LambdaHandler
from tests.conftest import AwsStack, sqs_event
from tests.integration.api.conftest import Api, Tokens
from tests.integration.control_plane.conftest import rule_message

OWN_FUNCTIONS = ("SchedulerFunction", "DiscoveryFunction")

LDAP_SETTINGS = {
    "url": "ldaps://dc01.example.test",
    "base_dn": "DC=example,DC=test",
    "credential": "ad-sync",
    "page_size": 200,
}


@dataclass
class ConnectorStack:
    """The control plane in moto, with an admin/operator/reader token and host dc01."""

    aws: AwsStack
    admin: Api
    operator: Api
    reader: Api
    results: LambdaHandler

    def handler(self, logical_id: str) -> LambdaHandler:
        return self.aws.handler(logical_id)

    def create_connector(self, **fields: Any) -> dict[str, Any]:
        body = {
            "name": "corp directory",
            "kind": "ldap",
            "target": "dc01",
            "settings": LDAP_SETTINGS,
            **fields,
        }
        response = self.admin.post("/v1/connectors", json_body=body)
        assert response.status == 201, response.body
        return response.body  # type: ignore[no-any-return]

    def queue_bodies(self, logical_id: str) -> list[dict[str, Any]]:
        """Drain a queue and return its message bodies."""
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

    def send_events(self, host: str, *events: dict[str, Any]) -> dict[str, Any]:
        bodies = [rule_message(host, event) for event in events]
        return self.results(sqs_event(bodies), FakeLambdaContext(function_name="results"))  # type: ignore[no-any-return]

    def run_cloud_jobs(self) -> dict[str, Any]:
        """Hand every queued cloud job to the discovery function, one message per batch."""
        handler = self.handler("DiscoveryFunction")
        responses: dict[str, Any] = {"batchItemFailures": []}
        for body in self.queue_bodies("CloudJobsQueue"):
            response = handler(
                sqs_event([json.dumps(body)]), FakeLambdaContext(function_name="discovery")
            )
            responses["batchItemFailures"] += response["batchItemFailures"]
        return responses


@pytest.fixture
def stack(aws: AwsStack) -> ConnectorStack:
    for name in OWN_FUNCTIONS:
        aws.environments[name] = function_environment(aws.template, name, aws.resources)
    handler = aws.handler("ApiFunction")
    tokens = Tokens(TokenRepository())
    hosts = HostRepository()
    hosts.register("dc01")
    hosts.seen("dc01", connected=True)
    return ConnectorStack(
        aws=aws,
        admin=Api(handler, token=tokens.create("admin", name="root")),
        operator=Api(handler, token=tokens.create("operator", name="ops")),
        reader=Api(handler, token=tokens.create("reader", name="viewer")),
        results=aws.handler("ResultsFunction"),
    )


@pytest.fixture
def atomic_aws_requests(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each moto request runs whole, as each DynamoDB request is atomic in AWS.

    Threads still interleave between requests, which is what concurrent Lambda invocations
    do; without this, moto could interleave inside one conditional write.
    """
    from moto.core.botocore_stubber import BotocoreStubber

    lock = threading.RLock()
    original = BotocoreStubber.process_request

    def process_request(self: BotocoreStubber, request: Any) -> Any:
        with lock:
            return original(self, request)

    monkeypatch.setattr(BotocoreStubber, "process_request", process_request)
    yield


def entity(
    entity_id: str,
    kind: str,
    name: str,
    *,
    members: list[str] | None = None,
    member_of: list[str] | None = None,
    **attributes: Any,
) -> dict[str, Any]:
    """An inventory entity as the relay's ldap.sync sends it."""
    body: dict[str, Any] = {
        "id": entity_id,
        "kind": kind,
        "dn": f"CN={name},DC=example,DC=test",
        "name": name,
        "attributes": attributes,
    }
    if members is not None:
        body["members"] = members
    body["member_of"] = member_of or []
    return body


def inventory_event(
    job: dict[str, Any],
    connector: str,
    *,
    seq: int = 0,
    upserts: list[dict[str, Any]] | None = None,
    deletes: list[str] | None = None,
    sent_at: float = 1_700_000_000.0,
) -> dict[str, Any]:
    return {
        "kind": "inventory",
        "event_id": f"inv-{job['id']}-{seq}-{sent_at}",
        "sent_at": sent_at,
        "job_id": job["id"],
        "attempt": job["attempt"],
        "connector": connector,
        "seq": seq,
        "upserts": upserts or [],
        "deletes": deletes or [],
    }
