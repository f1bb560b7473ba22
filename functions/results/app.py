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

from hostrelay.domain.errors import InvalidRequest
from hostrelay.logic.relay_events import OutputEvent, RelayEvent, parse_rule_message
from hostrelay.observability import logger, metrics, tracer
from hostrelay.settings import ResultsSettings, load_settings
from hostrelay.wiring import build_ingester

ingester = build_ingester(load_settings(ResultsSettings))
processor = BatchProcessor(event_type=EventType.SQS)
cold_start.loaded()


class OutputNotStored(RuntimeError):
    """The batched write of this invocation's output events failed; SQS delivers it again."""


# Per invocation: what each message holds, and what the batched output write did with it.
_parsed: dict[str, tuple[str, RelayEvent] | InvalidRequest] = {}
_stored: dict[str, str | OutputNotStored] = {}


def _parse(body: str) -> tuple[str, RelayEvent] | InvalidRequest:
    try:
        return parse_rule_message(body)
    except InvalidRequest as exc:
        return exc


def store_outputs(records: list[dict[str, Any]]) -> None:
    """Parse the batch and store all its `output` events first, in one batched write.

    A chatty job fills a batch with output events; storing them together is a few
    DynamoDB calls instead of two per event, and a result in the same batch then finds
    its output complete.
    """
    _parsed.clear()
    _stored.clear()
    outputs: list[tuple[str, tuple[str, OutputEvent]]] = []
    for record in records:
        message_id = record.get("messageId")
        if not message_id:
            continue  # the processor reports it
        parsed = _parse(record.get("body", ""))
        _parsed[message_id] = parsed
        if isinstance(parsed, tuple) and isinstance(parsed[1], OutputEvent):
            outputs.append((message_id, (parsed[0], parsed[1])))
    if not outputs:
        return
    try:
        outcomes: list[str | OutputNotStored] = list(
            ingester.store_outputs([event for _, event in outputs])
        )
    except Exception as exc:
        logger.exception("storing output events failed", extra={"events": len(outputs)})
        outcomes = [OutputNotStored(str(exc))] * len(outputs)
    _stored.update(zip((message_id for message_id, _ in outputs), outcomes, strict=True))


@tracer.capture_method
def record_handler(record: SQSRecord) -> None:
    parsed = _parsed.pop(record.message_id, None) or _parse(record.body)
    if isinstance(parsed, InvalidRequest):
        # Garbage never succeeds later: drop it (counted) instead of poisoning the queue.
        logger.warning("unreadable relay event dropped", extra={"reason": parsed.message})
        metrics.add_metric(name="events_unreadable", unit="Count", value=1)
        return
    host, event = parsed
    stored = _stored.pop(record.message_id, None)
    if isinstance(stored, OutputNotStored):
        raise stored
    outcome = stored or ingester.apply(host, event)
    metrics.add_metric(name=f"event_{event.kind}_{outcome}", unit="Count", value=1)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    store_outputs(event.get("Records", []))
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
