"""Calls the local stack answers in process never reach moto as well
(local/hostrelay_local/in_process_answers.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from hostrelay_local.lambda_invoke import invoke_in_process, withdraw


@pytest.fixture
def taken() -> Iterator[list[dict[str, Any]]]:
    """Given function `hostrelay-local-DispatchFunction` takes its invocations in process."""
    events: list[dict[str, Any]] = []
    invoke_in_process("hostrelay-local-DispatchFunction", events.append)
    yield events
    withdraw("hostrelay-local-DispatchFunction")


def test_moto_does_not_also_serve_an_invocation_answered_in_process(
    taken: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given moto mocking AWS in this process, counting the requests its stubber serves
    from moto import mock_aws
    from moto.core.botocore_stubber import BotocoreStubber

    served: list[str] = []
    process_request = BotocoreStubber.process_request

    def counted(self: BotocoreStubber, request: Any) -> Any:
        served.append(request.url)
        return process_request(self, request)

    monkeypatch.setattr(BotocoreStubber, "process_request", counted)
    with mock_aws():
        lambda_ = boto3.client(
            "lambda", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
        )
        # When a local function is invoked asynchronously, and a function moto knows nothing of
        answer = lambda_.invoke(
            FunctionName="hostrelay-local-DispatchFunction", InvocationType="Event", Payload=b"{}"
        )
        with pytest.raises(lambda_.exceptions.ResourceNotFoundException):
            lambda_.invoke(FunctionName="elsewhere", InvocationType="Event", Payload=b"{}")
    # Then the local one was taken here and never reached moto; the other went to moto
    assert answer["StatusCode"] == 202 and taken == [{}]
    assert [url.rsplit("/", 2)[-2] for url in served] == ["elsewhere"]
