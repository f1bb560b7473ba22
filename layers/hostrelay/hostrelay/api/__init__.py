"""HTTP API of the control plane: routers per resource, bearer auth, one error mapping."""

from hostrelay.deferred_package_init import defer_package_init

# Powertools' `event_handler` package imports every resolver it has (AppSync, Bedrock, VPC
# Lattice, ...) and `utilities.data_classes` every event class it has (about 40), while the
# API uses one resolver and api_gateway seven event classes: 15 ms of the API's 197 ms cold
# import as deployed (bench/cold_import.py --site, against a floor of 145 ms). The names below
# come from their submodules; anything else loads the whole package, as a plain import would.
# tests/unit/api/test_deferred_powertools.py checks both maps against the installed release.
_HANDLER = "aws_lambda_powertools.event_handler"
_EVENTS = "aws_lambda_powertools.utilities.data_classes"
EVENT_HANDLER_NAMES = {
    **dict.fromkeys(
        (
            "ALBResolver",
            "APIGatewayHttpResolver",
            "ApiGatewayResolver",
            "APIGatewayRestResolver",
            "CORSConfig",
            "Response",
        ),
        f"{_HANDLER}.api_gateway",
    ),
    "Request": f"{_HANDLER}.request",
    "Depends": f"{_HANDLER}.depends",
    "DependencyResolutionError": f"{_HANDLER}.depends",
}
EVENT_CLASS_NAMES = {
    "ALBEvent": f"{_EVENTS}.alb_event",
    "APIGatewayProxyEvent": f"{_EVENTS}.api_gateway_proxy_event",
    "APIGatewayProxyEventV2": f"{_EVENTS}.api_gateway_proxy_event",
    "BedrockAgentEvent": f"{_EVENTS}.bedrock_agent_event",
    "LambdaFunctionUrlEvent": f"{_EVENTS}.lambda_function_url_event",
    "VPCLatticeEvent": f"{_EVENTS}.vpc_lattice",
    "VPCLatticeEventV2": f"{_EVENTS}.vpc_lattice",
}
defer_package_init(_HANDLER, EVENT_HANDLER_NAMES)
defer_package_init(_EVENTS, EVENT_CLASS_NAMES)
