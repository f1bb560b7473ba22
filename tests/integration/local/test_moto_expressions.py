"""The local stack's moto evaluates update and condition expressions with DynamoDB's rules
after moto_expressions.py's cheaper checks (tests/conftest.py applies tune_moto to every
test): each rule those changes touch, tried with an expression that breaks it and one that
keeps it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

TABLE = "expressions"


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client(
            "dynamodb", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
        )
        client.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        client.put_item(
            TableName=TABLE,
            Item={
                "id": {"S": "j1"},
                "state": {"S": "QUEUED"},
                "n": {"N": "1"},
                "doc": {"M": {"a": {"S": "x"}}},
                "label": {"S": "text"},
                "tags": {"L": [{"S": "t1"}]},
            },
        )
        yield client


def _update(client: Any, expression: str, values: dict[str, Any] | None = None, **kw: Any) -> Any:
    extra = {"ExpressionAttributeValues": values} if values else {}
    return client.update_item(
        TableName=TABLE,
        Key={"id": {"S": "j1"}},
        UpdateExpression=expression,
        ReturnValues="ALL_NEW",
        **extra,
        **kw,
    )["Attributes"]


def _refused(client: Any, expression: str, values: dict[str, Any] | None = None, **kw: Any) -> str:
    with pytest.raises(ClientError) as caught:
        _update(client, expression, values, **kw)
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    message: str = caught.value.response["Error"]["Message"]
    return message


@pytest.mark.parametrize(
    ("expression", "names", "says"),
    [
        ("SET a = :v SET b = :v", None, 'The "SET" section can only be used once'),
        ("SET a = :v REMOVE b REMOVE c", None, 'The "REMOVE" section can only be used once'),
        ("SET a = :v, a = :v", None, "Two document paths overlap"),
        ("SET doc.a = :v, doc = :v", None, "Two document paths overlap"),
        ("SET #a = :v, #b = :v", {"#a": "x", "#b": "x"}, "Two document paths overlap"),
        ("SET a = :v REMOVE a", None, "Two document paths overlap"),
    ],
)
def test_whole_expression_rules_still_refuse(
    dynamodb: Any, expression: str, names: dict[str, str] | None, says: str
) -> None:
    extra = {"ExpressionAttributeNames": names} if names else {}
    message = _refused(dynamodb, expression, {":v": {"S": "1"}}, **extra)
    assert says in message
    item = dynamodb.get_item(TableName=TABLE, Key={"id": {"S": "j1"}})["Item"]
    assert "a" not in item and "x" not in item  # nothing written


def test_rules_checked_per_node_still_hold(dynamodb: Any) -> None:
    # the key cannot be updated; arithmetic on a string and a path that is not there fail
    assert "key" in _refused(dynamodb, "SET id = :v", {":v": {"S": "j2"}})
    assert "operand" in _refused(dynamodb, "SET n = label + :v", {":v": {"N": "1"}}).lower()
    assert "document path" in _refused(dynamodb, "SET doc.b.c = :v", {":v": {"S": "1"}})


def test_one_expression_text_with_new_values_each_time(dynamodb: Any) -> None:
    # The same text three times (its parse is kept): each call uses its own values
    expression = (
        "SET #s = :s, n = n + :one, started = if_not_exists(started, :t), "
        "tags = list_append(tags, :more) REMOVE doc ADD hits :one"
    )
    names = {"#s": "state"}
    seen = []
    for turn in range(3):
        values = {
            ":s": {"S": f"S{turn}"},
            ":one": {"N": "1"},
            ":t": {"S": f"t{turn}"},
            ":more": {"L": [{"S": f"m{turn}"}]},
        }
        item = _update(dynamodb, expression, values, ExpressionAttributeNames=names)
        seen.append((item["state"]["S"], item["n"]["N"], item["started"]["S"], item["hits"]["N"]))
        assert "doc" not in item
    assert seen == [("S0", "2", "t0", "1"), ("S1", "3", "t0", "2"), ("S2", "4", "t0", "3")]
    assert [tag["S"] for tag in item["tags"]["L"]] == ["t1", "m0", "m1", "m2"]


def test_one_condition_text_with_new_values_each_time(dynamodb: Any) -> None:
    # The same condition text (its tokens are kept) decides by the values of each call
    condition = "(#s IN (:a, :b) AND n = :n) AND attribute_exists(doc)"
    names = {"#s": "state"}

    def attempt(state_now: str, n_now: str) -> bool:
        values = {
            ":a": {"S": state_now},
            ":b": {"S": "DISPATCHED"},
            ":n": {"N": n_now},
            ":x": {"S": "ok"},
        }
        try:
            _update(
                dynamodb,
                "SET marker = :x",
                values,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
            )
        except ClientError as exc:
            assert exc.response["Error"]["Code"] == "ConditionalCheckFailedException"
            return False
        return True

    assert [attempt("RUNNING", "1"), attempt("QUEUED", "2"), attempt("QUEUED", "1")] == [
        False,
        False,
        True,
    ]
