"""Lambda entry point of the scheduler: one tick starts every connector run that is due."""

from hostrelay import cold_start  # first: no garbage collection until loaded()

# isort: split
from dataclasses import asdict
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from hostrelay.observability import logger, metrics, tracer
from hostrelay.settings import SchedulerSettings, load_settings
from hostrelay.wiring import build_scheduler

scheduler = build_scheduler(load_settings(SchedulerSettings))
cold_start.loaded()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    report = scheduler.tick()
    metrics.add_metric(name="connector_runs_started", unit="Count", value=len(report.started))
    metrics.add_metric(name="connector_runs_skipped", unit="Count", value=len(report.skipped_busy))
    metrics.add_metric(name="connector_runs_failed", unit="Count", value=len(report.failed))
    return asdict(report)
