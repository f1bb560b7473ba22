"""Lambda entry point of the sweeper: one scheduled tick of timeouts, expiries, presence."""

from hostrelay import cold_start  # first: no garbage collection until loaded()

# isort: split
from dataclasses import asdict
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from hostrelay.observability import logger, metrics, tracer
from hostrelay.settings import SweeperSettings, load_settings
from hostrelay.wiring import build_sweeper

sweeper = build_sweeper(load_settings(SweeperSettings))
cold_start.loaded()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    report = sweeper.sweep()
    metrics.add_metric(name="jobs_timed_out", unit="Count", value=report.timed_out)
    metrics.add_metric(name="jobs_expired", unit="Count", value=report.expired)
    metrics.add_metric(name="jobs_requeued", unit="Count", value=report.requeued)
    metrics.add_metric(name="hosts_went_offline", unit="Count", value=len(report.hosts_offline))
    metrics.add_metric(name="run_ends_repaired", unit="Count", value=report.run_ends_repaired)
    metrics.add_metric(name="run_targets_added", unit="Count", value=report.run_targets_added)
    return asdict(report)
