"""Lambda entry point of the results function: SQS batch of relay events → jobs and hosts."""

from hostrelay import cold_start  # first: no garbage collection until loaded()

# isort: split
from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from hostrelay.observability import logger, metrics, tracer
from hostrelay.settings import ResultsSettings, load_settings
from hostrelay.wiring import build_event_batch

batch = build_event_batch(load_settings(ResultsSettings))
processor = BatchProcessor(event_type=EventType.SQS)
cold_start.loaded()


def count(applied: tuple[str, str] | None) -> None:
    if applied is None:
        # Garbage never succeeds later: dropped (counted) instead of poisoning the queue.
        metrics.add_metric(name="events_unreadable", unit="Count", value=1)
        return
    kind, outcome = applied
    metrics.add_metric(name=f"event_{kind}_{outcome}", unit="Count", value=1)


@tracer.capture_method
def record_handler(record: SQSRecord) -> None:
    count(batch.apply(record.message_id, record.body))


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if "Records" not in event:  # ResultsTopicRule's Lambda action: one event, no batch
        count(batch.apply_direct(event))
        return {}
    batch.prepare(event.get("Records", []))
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
