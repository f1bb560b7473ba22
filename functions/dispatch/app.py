"""Lambda entry point of the dispatch function: SQS batch or API invocation → sign → publish."""

from hostrelay import cold_start  # first: no garbage collection until loaded()

# isort: split
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from hostrelay.observability import logger, metrics, tracer
from hostrelay.settings import DispatchSettings, load_settings
from hostrelay.sqs_batch import BatchResponse, SqsRecord, process_sqs_batch
from hostrelay.wiring import build_dispatcher

dispatcher = build_dispatcher(load_settings(DispatchSettings))
cold_start.loaded()


@tracer.capture_method
def record_handler(record: SqsRecord) -> None:
    outcome = dispatcher.handle_message(record.body)
    metrics.add_metric(name=f"dispatch_{outcome}", unit="Count", value=1)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> BatchResponse | dict[str, Any]:
    if "Records" not in event:  # the API's asynchronous invocation for a fresh job
        # An error propagates: Lambda retries, then sends it to the dispatch queue.
        outcome = dispatcher.handle_invocation(event)
        metrics.add_metric(name=f"dispatch_{outcome}", unit="Count", value=1)
        return {}
    return process_sqs_batch(event, record_handler)
