"""SQS partial batch responses: each record handled alone, the failed ones handed back to SQS.

The shape Powertools' BatchProcessor returns (`{"batchItemFailures": [{"itemIdentifier": id}]}`,
and an exception when every record failed), without its import: the batch utility and the event
data classes it loads cost a cold start about 20 ms of CPU, 0.08x the floor of bench/cold_import.py
(botocore and one client), for a loop of a few lines.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from hostrelay.observability import logger

BatchResponse = dict[str, list[dict[str, str]]]


@dataclass(frozen=True, slots=True)
class SqsRecord:
    """What a record handler reads of one SQS message."""

    message_id: str
    body: str


class BatchFailed(Exception):
    """Every record of the batch failed: the invocation fails, so SQS delivers it all again
    (a partial response naming every record would do the same, one visibility timeout later)."""

    def __init__(self, errors: list[Exception]) -> None:
        super().__init__(f"all {len(errors)} records failed")
        self.errors = errors


def process_sqs_batch(
    event: Mapping[str, Any], handle: Callable[[SqsRecord], None]
) -> BatchResponse:
    """Handle each record of an SQS event; the response names the records that raised."""
    records = event.get("Records")
    if not records or not isinstance(records, list):
        raise ValueError("not an SQS batch: no Records")
    failed: list[str] = []
    errors: list[Exception] = []
    for raw in records:
        record = SqsRecord(message_id=raw["messageId"], body=raw["body"])
        try:
            handle(record)
        # The partial batch contract: a record that fails goes back to SQS, retried there (its
        # handler is idempotent) and dead-lettered after maxReceiveCount; the rest go on.
        except Exception as error:
            logger.warning(
                "sqs record failed",
                extra={"message_id": record.message_id, "error": type(error).__name__},
            )
            failed.append(record.message_id)
            errors.append(error)
    if errors and len(errors) == len(records):
        raise BatchFailed(errors)
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed]}
