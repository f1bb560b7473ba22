"""The local stack's asynchronous invocations: Lambda's Invoke API in process (never also
served by moto: local/hostrelay_local/in_process_answers.py), retries, and the on-failure
destination's record."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any, cast

import boto3
import pytest

from hostrelay_local.event_sources import AsyncInvoker, failure_record
from hostrelay_local.functions import FunctionRuntime
from hostrelay_local.lambda_invoke import invoke_in_process, withdraw


@pytest.fixture
def taken() -> Iterator[list[dict[str, Any]]]:
    """Given function `hostrelay-local-DispatchFunction` takes its invocations in process."""
    events: list[dict[str, Any]] = []
    invoke_in_process("hostrelay-local-DispatchFunction", events.append)
    yield events
    withdraw("hostrelay-local-DispatchFunction")


def test_an_event_invocation_is_handed_over_and_answered_202(
    taken: list[dict[str, Any]],
) -> None:
    # When a boto3 client invokes the function asynchronously, by name and by ARN
    lambda_ = boto3.client(
        "lambda", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    answers = [
        lambda_.invoke(FunctionName=name, InvocationType="Event", Payload=b'{"job_id": "j1"}')
        for name in (
            "hostrelay-local-DispatchFunction",
            "arn:aws:lambda:us-east-1:123456789012:function:hostrelay-local-DispatchFunction",
        )
    ]
    # Then each was answered as Lambda answers a queued event, and the events were taken
    assert [answer["StatusCode"] for answer in answers] == [202, 202]
    assert taken == [{"job_id": "j1"}, {"job_id": "j1"}]


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


class _FailingFunction:
    name = "DispatchFunction"

    def __init__(self) -> None:
        self.calls = 0

    def invoke(self, event: dict[str, Any]) -> Any:
        self.calls += 1
        raise RuntimeError("iot refused")


def test_an_invocation_failing_every_try_goes_to_the_failure_destination() -> None:
    # Given a function that always fails, and a failure destination
    function = _FailingFunction()
    failed: list[tuple[str, dict[str, Any], str]] = []
    done = threading.Event()

    def on_failure(name: str, event: dict[str, Any], error: str) -> None:
        failed.append((name, event, error))
        done.set()

    invoker = AsyncInvoker(
        {"DispatchFunction": cast(FunctionRuntime, function)}, workers=1, on_failure=on_failure
    )
    invoker.ready.set()
    invoker.start()
    try:
        # When it is invoked asynchronously
        invoker.invoke("DispatchFunction", {"job_id": "j1"})
        assert done.wait(10)
    finally:
        invoker.stop()
    # Then it was tried three times, as Lambda does, then handed over with its error
    assert function.calls == AsyncInvoker.ATTEMPTS
    assert failed == [("DispatchFunction", {"job_id": "j1"}, "RuntimeError: iot refused")]
    assert invoker.pending == 0
    # And the record Lambda sends carries the request as `requestPayload`
    record = json.loads(failure_record("arn:f", {"job_id": "j1"}, "RuntimeError: x", 3))
    assert record["requestPayload"] == {"job_id": "j1"}
    assert record["requestContext"]["condition"] == "RetriesExhausted"
