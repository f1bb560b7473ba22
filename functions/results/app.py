"""Lambda entry point of the results function: SQS batch of relay events → jobs and hosts."""

from hostrelay import cold_start  # first: no garbage collection until loaded()

# isort: split
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from hostrelay.observability import logger, metrics, tracer
from hostrelay.settings import ResultsSettings, load_settings
from hostrelay.sqs_batch import SqsRecord, process_sqs_batch
from hostrelay.wiring import build_event_batch

batch = build_event_batch(load_settings(ResultsSettings))
cold_start.loaded()


def count(applied: tuple[str, str] | None) -> None:
    if applied is None:
        # Garbage never succeeds later: dropped (counted) instead of poisoning the queue.
        metrics.add_metric(name="events_unreadable", unit="Count", value=1)
        return
    kind, outcome = applied
    metrics.add_metric(name=f"event_{kind}_{outcome}", unit="Count", value=1)


@tracer.capture_method
def record_handler(record: SqsRecord) -> None:
    count(batch.apply(record.message_id, record.body))


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if "Records" not in event:  # ResultsTopicRule's Lambda action: one event, no batch
        count(batch.apply_direct(event))
        return {}
    batch.prepare(event.get("Records", []))
    return process_sqs_batch(event, record_handler)
