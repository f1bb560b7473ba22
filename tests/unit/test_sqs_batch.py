"""The SQS partial batch response of the dispatch, results and discovery functions."""

from __future__ import annotations

from typing import Any

import pytest

from hostrelay.sqs_batch import BatchFailed, SqsRecord, process_sqs_batch


def _event(*bodies: str) -> dict[str, Any]:
    return {
        "Records": [
            {"messageId": f"msg-{i}", "body": body, "eventSource": "aws:sqs"}
            for i, body in enumerate(bodies)
        ]
    }


def test_every_record_handled_in_order_and_none_handed_back() -> None:
    # Given a batch of three messages
    seen: list[SqsRecord] = []
    # When each is handled
    response = process_sqs_batch(_event("a", "b", "c"), seen.append)
    # Then the handler saw each message once, in order, and SQS deletes them all
    assert seen == [SqsRecord("msg-0", "a"), SqsRecord("msg-1", "b"), SqsRecord("msg-2", "c")]
    assert response == {"batchItemFailures": []}


def test_a_failed_record_goes_back_to_sqs_and_the_rest_go_on() -> None:
    # Given a batch whose second message cannot be handled yet
    handled: list[str] = []

    def handle(record: SqsRecord) -> None:
        if record.body == "later":
            raise RuntimeError("not yet")
        handled.append(record.body)

    # When the batch is processed
    response = process_sqs_batch(_event("a", "later", "c"), handle)
    # Then only that message is handed back, and the ones after it were handled
    assert response == {"batchItemFailures": [{"itemIdentifier": "msg-1"}]}
    assert handled == ["a", "c"]


def test_a_batch_that_failed_entirely_fails_the_invocation() -> None:
    # Given a handler that fails every message
    def handle(record: SqsRecord) -> None:
        raise ValueError(record.message_id)

    # When the batch is processed, Then the invocation fails with every error kept
    with pytest.raises(BatchFailed) as failed:
        process_sqs_batch(_event("a", "b"), handle)
    assert [str(error) for error in failed.value.errors] == ["msg-0", "msg-1"]


@pytest.mark.parametrize("event", [{}, {"Records": []}, {"Records": "x"}])
def test_an_event_without_records_is_refused(event: dict[str, Any]) -> None:
    # Given an event that is no SQS batch, When processed, Then it is refused before any handling
    with pytest.raises(ValueError, match="no Records"):
        process_sqs_batch(event, lambda record: None)
