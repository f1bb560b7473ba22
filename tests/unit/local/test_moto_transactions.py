"""TransactWriteItems in the patched moto: all or nothing, rolled back item by item."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import AwsStack

pytestmark = pytest.mark.integration  # moto, as the local stack runs it


def _scan(dynamodb: Any, table: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = dynamodb.scan(TableName=table)["Items"]
    return sorted(items, key=repr)


@pytest.fixture
def tables(aws: AwsStack) -> dict[str, str]:
    """Given a jobs table (hash key) and a runs table (hash + range key) with one item each,
    and a few hundred other jobs beside them."""
    dynamodb = aws.client("dynamodb")
    names = {"jobs": aws.ref("JobsTable"), "runs": aws.ref("RunsTable")}
    dynamodb.put_item(
        TableName=names["jobs"], Item={"id": {"S": "j-old"}, "state": {"S": "QUEUED"}}
    )
    dynamodb.put_item(
        TableName=names["runs"],
        Item={"run_id": {"S": "r1"}, "item": {"S": "target#h1"}, "state": {"S": "PENDING"}},
    )
    for index in range(300):
        dynamodb.put_item(TableName=names["jobs"], Item={"id": {"S": f"other-{index}"}})
    return names


def _transaction(names: dict[str, str], expected_state: str) -> list[dict[str, Any]]:
    """Put a new job, update the existing one, add a target to an existing run and start a
    new run, on condition that the existing run target is in `expected_state`."""
    return [
        {"Put": {"TableName": names["jobs"], "Item": {"id": {"S": "j-new"}}}},
        {
            "Update": {
                "TableName": names["jobs"],
                "Key": {"id": {"S": "j-old"}},
                "UpdateExpression": "SET #s = :s",
                "ExpressionAttributeNames": {"#s": "state"},
                "ExpressionAttributeValues": {":s": {"S": "DISPATCHED"}},
            }
        },
        {
            "Put": {
                "TableName": names["runs"],
                "Item": {"run_id": {"S": "r1"}, "item": {"S": "target#h2"}},
            }
        },
        {
            "Put": {
                "TableName": names["runs"],
                "Item": {"run_id": {"S": "r2"}, "item": {"S": "run"}},
            }
        },
        {
            "ConditionCheck": {
                "TableName": names["runs"],
                "Key": {"run_id": {"S": "r1"}, "item": {"S": "target#h1"}},
                "ConditionExpression": "#s = :expected",
                "ExpressionAttributeNames": {"#s": "state"},
                "ExpressionAttributeValues": {":expected": {"S": expected_state}},
            }
        },
    ]


def test_a_cancelled_transaction_changes_nothing(aws: AwsStack, tables: dict[str, str]) -> None:
    dynamodb = aws.client("dynamodb")
    before = {name: _scan(dynamodb, table) for name, table in tables.items()}
    # When a transaction whose last condition fails is written
    with pytest.raises(ClientError) as cancelled:
        dynamodb.transact_write_items(TransactItems=_transaction(tables, "RUNNING"))
    # Then it is cancelled with the failing item's reason, as DynamoDB reports it
    error = cancelled.value.response
    assert error["Error"]["Code"] == "TransactionCanceledException"
    codes = [reason["Code"] for reason in error["CancellationReasons"]]
    assert codes == ["None", "None", "None", "None", "ConditionalCheckFailed"]
    # And the new items are absent, the updated one unchanged: both tables as they were
    assert {name: _scan(dynamodb, table) for name, table in tables.items()} == before
    job = dynamodb.get_item(TableName=tables["jobs"], Key={"id": {"S": "j-old"}})["Item"]
    assert job["state"] == {"S": "QUEUED"}
    assert "Item" not in dynamodb.get_item(TableName=tables["jobs"], Key={"id": {"S": "j-new"}})
    assert (
        dynamodb.query(
            TableName=tables["runs"],
            KeyConditionExpression="run_id = :r",
            ExpressionAttributeValues={":r": {"S": "r2"}},
        )["Items"]
        == []
    )


def test_a_passing_transaction_applies_every_item(aws: AwsStack, tables: dict[str, str]) -> None:
    dynamodb = aws.client("dynamodb")
    # When the same transaction is written with a condition that holds
    dynamodb.transact_write_items(TransactItems=_transaction(tables, "PENDING"))
    # Then every write is applied
    job = dynamodb.get_item(TableName=tables["jobs"], Key={"id": {"S": "j-old"}})["Item"]
    assert job["state"] == {"S": "DISPATCHED"}
    assert "Item" in dynamodb.get_item(TableName=tables["jobs"], Key={"id": {"S": "j-new"}})
    runs = {(item["run_id"]["S"], item["item"]["S"]) for item in _scan(dynamodb, tables["runs"])}
    assert runs == {("r1", "target#h1"), ("r1", "target#h2"), ("r2", "run")}
    assert len(_scan(dynamodb, tables["jobs"])) == 302


def test_a_key_named_twice_is_refused_and_changes_nothing(
    aws: AwsStack, tables: dict[str, str]
) -> None:
    dynamodb = aws.client("dynamodb")
    before = _scan(dynamodb, tables["jobs"])
    # When one transaction puts a new job and then updates the same key
    update = {
        "TableName": tables["jobs"],
        "Key": {"id": {"S": "j-new"}},
        "UpdateExpression": "SET #s = :s",
        "ExpressionAttributeNames": {"#s": "state"},
        "ExpressionAttributeValues": {":s": {"S": "DISPATCHED"}},
    }
    items = [*_transaction(tables, "PENDING")[:1], {"Update": update}]
    with pytest.raises(ClientError) as refused:
        dynamodb.transact_write_items(TransactItems=items)
    # Then DynamoDB's validation error comes back and the first put is undone
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert _scan(dynamodb, tables["jobs"]) == before
