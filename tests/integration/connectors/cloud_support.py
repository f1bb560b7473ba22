"""What the workspace, gcp and azure connector tests share: runs, entities, secret greps."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest

from tests.integration.connectors.conftest import ConnectorStack

ACCOUNT = "123456789012"


def put_secret(stack: ConnectorStack, name: str, value: str) -> str:
    created = stack.aws.client("secretsmanager").create_secret(Name=name, SecretString=value)
    return str(created["ARN"])


def discovery_env(stack: ConnectorStack, **variables: str) -> None:
    """Point the discovery function at local fakes (what its settings read at cold start)."""
    stack.aws.environments["DiscoveryFunction"].update(variables)


def run(stack: ConnectorStack, connector: dict[str, Any]) -> dict[str, Any]:
    job = stack.operator.post(f"/v1/connectors/{connector['id']}/run").body
    assert stack.run_cloud_jobs() == {"batchItemFailures": []}
    return stack.reader.get(f"/v1/jobs/{job['id']}").body  # type: ignore[no-any-return]


def entity(stack: ConnectorStack, entity_id: str) -> dict[str, Any]:
    response = stack.reader.get(f"/v1/inventory/entities/{quote(entity_id, safe='')}")
    assert response.status == 200, (entity_id, response.body)
    return response.body  # type: ignore[no-any-return]


def related(body: dict[str, Any], relation: str) -> list[str]:
    return sorted(item["id"] for item in body["relations"][relation]["items"])


def stored_items(stack: ConnectorStack) -> str:
    """Every item of every DynamoDB table, as one string."""
    dynamodb = stack.aws.client("dynamodb")
    dumped = []
    for table in dynamodb.list_tables()["TableNames"]:
        for page in dynamodb.get_paginator("scan").paginate(TableName=table):
            dumped.append(json.dumps(page["Items"], default=str))
    return "\n".join(dumped)


def assert_secret_nowhere(
    stack: ConnectorStack,
    connector: dict[str, Any],
    job: dict[str, Any],
    secret_parts: list[str],
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """Not in the connector, the job, the logs, printed output or any stored item."""
    shown = json.dumps(stack.reader.get(f"/v1/connectors/{connector['id']}").body)
    logged = json.dumps([record.__dict__ for record in caplog.records], default=str)
    captured = capfd.readouterr()
    assert "source sync finished" in logged
    assert "connector_sync_total" in captured.out  # the EMF metrics were printed
    everywhere = "\n".join(
        [shown, json.dumps(job), logged, captured.out, captured.err, stored_items(stack)]
    )
    for part in secret_parts:
        assert part not in everywhere
