"""The functions that move runs may make every DynamoDB call a run's life makes on the runs table
(moto does not check IAM; AWS does, per action inside a transaction too)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.client import BaseClient

from hostrelay_local.template import load_template
from tests.conftest import AwsStack
from tests.integration.runs.conftest import Fleet, tag_host

# The functions that read or write runs (they have RUNS_TABLE in their environment).
RUN_FUNCTIONS = ("ApiFunction", "DispatchFunction", "ResultsFunction", "SweeperFunction")
# The IAM action of each kind of write inside TransactWriteItems.
TRANSACT_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}


def _actions_on(table: str, operation: str, params: dict[str, Any]) -> set[str]:
    """The IAM actions one DynamoDB call needs on `table`."""
    if operation == "TransactWriteItems":
        return {
            TRANSACT_ACTIONS[kind]
            for item in params["TransactItems"]
            for kind, write in item.items()
            if write["TableName"] == table
        }
    if operation in ("BatchWriteItem", "BatchGetItem"):
        return {f"dynamodb:{operation}"} if table in params["RequestItems"] else set()
    return {operation} if params.get("TableName") == table else set()


@pytest.fixture
def runs_table_calls(aws: AwsStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[set[str]]:
    """The IAM actions of every DynamoDB call on the runs table while the test runs."""
    table = aws.ref("RunsTable")
    used: set[str] = set()
    make_api_call = BaseClient._make_api_call

    def recording(client: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        if client.meta.service_model.service_name == "dynamodb":
            used.update(
                action.removeprefix("dynamodb:") for action in _actions_on(table, operation, params)
            )
        return make_api_call(client, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", recording)
    yield used


def _listed(statement: dict[str, Any], key: str) -> list[Any]:
    value = statement.get(key, [])
    return value if isinstance(value, list) else [value]


def _granted_on_runs_table(function: str) -> set[str]:
    """The DynamoDB actions `function`'s inline statements allow on the runs table itself."""
    granted: set[str] = set()
    for policy in load_template().resources[function]["Properties"]["Policies"]:
        for statement in policy.get("Statement", []) if isinstance(policy, dict) else []:
            resources = _listed(statement, "Resource")
            if any(getattr(r, "value", None) == "RunsTable.Arn" for r in resources):
                granted.update(a.removeprefix("dynamodb:") for a in _listed(statement, "Action"))
    return granted


def test_every_call_of_a_continuous_run_is_allowed_to_each_function_that_moves_runs(
    fleet: Fleet, runs_table_calls: set[str]
) -> None:
    # Given a continuous run over role=dc, one at a time, whose two hosts answer
    fleet.enroll(["dc01", "dc02"], tags={"role": "dc"})
    run = fleet.start(targets={"tags": {"role": "dc"}}, continuous=True, max_concurrency=1)
    fleet.drive(run["id"], lambda host: "succeeded")
    # And a host tagged later, added by the sweeper, then the run listed, read and canceled
    fleet.enroll(["dc03"])
    tag_host("dc03", {"role": "dc"})
    fleet.sweep()
    fleet.drive(run["id"], lambda host: "succeeded")
    fleet.api.get("/v1/runs")
    fleet.targets(run["id"], state="SUCCEEDED")
    assert fleet.api.post(f"/v1/runs/{run['id']}/cancel").status == 202
    assert fleet.run(run["id"])["counts"] == {"SUCCEEDED": 3}
    # Then each function that moves runs may make every call the run's life made
    assert runs_table_calls >= {"UpdateItem", "PutItem", "BatchGetItem", "Query", "GetItem"}
    missing = {
        function: sorted(runs_table_calls - _granted_on_runs_table(function))
        for function in RUN_FUNCTIONS
    }
    assert missing == {function: [] for function in RUN_FUNCTIONS}
