"""Lambda entry point of the HTTP API: API Gateway HTTP API (v2) event → routers."""

from hostrelay import cold_start  # first: no garbage collection until loaded()

# isort: split
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from hostrelay.api.app import build_resolver
from hostrelay.observability import logger, metrics, tracer
from hostrelay.settings import ApiSettings, load_settings
from hostrelay.wiring import build_api_services

resolver = build_resolver(build_api_services(load_settings(ApiSettings)))
cold_start.loaded()


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return resolver.resolve(event, context)
