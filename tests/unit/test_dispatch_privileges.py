"""template.yaml: the API may start the dispatch function, and sign or publish nothing itself."""

from __future__ import annotations

import json
from typing import Any

from hostrelay_local.template import function_named, load_template


def _policies(function: str) -> list[Any]:
    policies: list[Any] = load_template().resources[function]["Properties"]["Policies"]
    return policies


def _statement_text(policies: list[Any]) -> str:
    """The inline statements' actions and resources, as text (intrinsics by their value)."""
    return json.dumps(policies, default=lambda tagged: str(tagged.value))


def test_the_api_may_invoke_the_dispatch_function_and_nothing_else() -> None:
    # Given the API function's policies
    policies = _policies("ApiFunction")
    # Then its one Lambda permission names the dispatch function
    invokes = [p["LambdaInvokePolicy"] for p in policies if "LambdaInvokePolicy" in p]
    assert [function_named(p["FunctionName"]) for p in invokes] == ["DispatchFunction"]
    # And it may neither publish to IoT nor read the signing key
    text = _statement_text(policies)
    assert "iot:Publish" not in text
    assert "ssm:GetParameter" not in text


def test_a_dispatch_the_function_gave_up_on_goes_to_the_dispatch_queue() -> None:
    # Given the dispatch function's asynchronous invocation settings
    props = load_template().resources["DispatchFunction"]["Properties"]
    on_failure = props["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]
    # Then a failed invocation goes to the queue the function itself reads
    queues = [e["Properties"]["Queue"].value for e in props["Events"].values()]
    assert on_failure["Type"] == "SQS"
    assert on_failure["Destination"].value == "DispatchQueue.Arn"
    assert queues == ["DispatchQueue.Arn"]
    # And the function may send there (Lambda sends the record with the function's role)
    sends = [p["SQSSendMessagePolicy"] for p in _policies("DispatchFunction")
             if "SQSSendMessagePolicy" in p]  # fmt: skip
    assert any("DispatchQueue" in str(s["QueueName"].value) for s in sends)
