"""Lambda entry point of the discovery function: SQS batch of cloud jobs → inventory."""

from hostrelay import cold_start  # first: no garbage collection until loaded()

# isort: split
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from hostrelay.observability import logger, metrics, tracer
from hostrelay.settings import DiscoverySettings, load_settings
from hostrelay.sqs_batch import BatchResponse, SqsRecord, process_sqs_batch
from hostrelay.wiring import build_discovery

discovery = build_discovery(load_settings(DiscoverySettings))
cold_start.loaded()


@tracer.capture_method
def record_handler(record: SqsRecord) -> None:
    outcome = discovery.handle_message(record.body)
    metrics.add_metric(name=f"cloud_job_{outcome}", unit="Count", value=1)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> BatchResponse:
    return process_sqs_batch(event, record_handler)
