"""A cold API container imports only the routers and models of the requests it serves."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

HEALTH_EVENT = Path(__file__).resolve().parents[3] / "events" / "api_health.json"

# Every optional table set, so that every router exists; nothing is contacted for a 401.
ENVIRONMENT = {
    "JOBS_TABLE": "jobs",
    "HOSTS_TABLE": "hosts",
    "TOKENS_TABLE": "tokens",
    "IDEMPOTENCY_TABLE": "idempotency",
    "OUTPUT_TABLE": "output",
    "ENROLLMENTS_TABLE": "enrollments",
    "AUDIT_TABLE": "audit",
    "RUNS_TABLE": "runs",
    "CONNECTORS_TABLE": "connectors",
    "INVENTORY_TABLE": "inventory",
    "DISPATCH_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/dispatch",
    "SIGNING_PUBLIC_KEY_PARAM": "/hostrelay/test/signing-public-key",
    "POWERTOOLS_TRACE_DISABLED": "true",
}

# Runs in a fresh interpreter: a cold start, then the requests, then what got imported.
SCRIPT = """
import json, sys
from hostrelay.api.app import build_resolver
from hostrelay.settings import ApiSettings, load_settings
from hostrelay.wiring import build_api_services

resolver = build_resolver(build_api_services(load_settings(ApiSettings)))
template = json.loads(open(sys.argv[1]).read())
statuses, body = [], ""
for path in sys.argv[2:]:
    event = json.loads(json.dumps(template))
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    response = resolver.resolve(event, None)
    statuses.append(response["statusCode"])
    body = response["body"]
loaded = sorted(
    m for m in sys.modules
    if m.startswith(
        ("hostrelay.api.", "hostrelay.logic.", "hostrelay_contract.", "aws_lambda_powertools.")
    )
)
print(json.dumps({"statuses": statuses, "loaded": loaded, "last_body": body}))
"""


# Modules of Powertools' event_handler package that the HTTP API does not use.
OTHER_RESOLVERS = {"appsync", "bedrock_agent", "bedrock_agent_function", "vpc_lattice"}


@dataclass
class ColdContainer:
    statuses: list[int]
    loaded: set[str]
    last_body: str


def cold_container(*paths: str) -> ColdContainer:
    env = {**os.environ, "AWS_REGION": "us-east-1", **ENVIRONMENT}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(HEALTH_EVENT), *paths],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(done.stdout.strip().splitlines()[-1])
    return ColdContainer(report["statuses"], set(report["loaded"]), report["last_body"])


def under(package: str, modules: set[str]) -> set[str]:
    return {name.removeprefix(f"{package}.") for name in modules if name.startswith(f"{package}.")}


def test_a_jobs_request_loads_the_jobs_router_and_models_only() -> None:
    # Given a cold container, When its first request is a job's GET (without a token)
    container = cold_container("/v1/jobs/01J0000000000000000000000Z")
    # Then it is answered (401 comes first), having imported the jobs router and its models,
    # and neither the other resources' routers and models nor their logic (nor job output's)
    assert container.statuses == [401]
    assert under("hostrelay.api.routers", container.loaded) == {"meta", "jobs", "collections"}
    assert under("hostrelay.api.models", container.loaded) == {"base", "errors", "meta", "jobs"}
    optional_logic = {"runs", "connectors", "inventory", "enrollment", "hosts", "macct"}
    assert not under("hostrelay.logic", container.loaded) & {*optional_logic, "job_output"}
    assert "jobs" in under("hostrelay.logic", container.loaded)  # built for the jobs router
    # nor Powertools' other resolvers and event classes (hostrelay/api/__init__.py)
    assert not under("aws_lambda_powertools.event_handler", container.loaded) & OTHER_RESOLVERS
    assert not under("aws_lambda_powertools.utilities.data_classes", container.loaded) & {
        "s3_event",
        "sqs_event",
        "appsync_resolver_event",
    }


def test_a_tokens_request_loads_neither_the_job_service_nor_the_job_types() -> None:
    # Given a cold container, When its first request lists tokens (without a token)
    container = cold_container("/v1/tokens")
    # Then it is answered having imported the tokens router, and not the job service (built
    # by the first request that needs it, hostrelay/wiring.py) nor every job type's models
    assert container.statuses == [401]
    assert under("hostrelay.api.routers", container.loaded) == {"meta", "tokens"}
    assert "jobs" not in under("hostrelay.logic", container.loaded)
    assert "job_types" not in under("hostrelay_contract", container.loaded)


def test_the_openapi_document_is_the_same_whichever_routers_were_included_first() -> None:
    # Given a cold container asked for the document at once, and one whose first requests
    # went to the console and the runs (so their routers were included first)
    fresh = cold_container("/v1/openapi.json")
    used = cold_container("/console/", "/v1/runs", "/v1/openapi.json")
    # Then both served the document byte for byte alike, listing every router's routes
    assert fresh.statuses == [200]
    assert used.statuses == [200, 401, 200]
    assert used.last_body == fresh.last_body
    paths = json.loads(fresh.last_body)["paths"]
    for path in ("/v1/jobs", "/v1/hosts", "/v1/tokens", "/v1/audit", "/v1/enrollments"):
        assert path in paths
    for path in ("/v1/macct/repair", "/v1/whoami", "/v1/connectors", "/v1/inventory/counts"):
        assert path in paths
    assert list(paths).index("/v1/jobs") < list(paths).index("/v1/runs")
    # and documenting every route did not need Powertools' other resolvers either
    assert not under("aws_lambda_powertools.event_handler", used.loaded) & OTHER_RESOLVERS


# Builds the services a cold container has, then the ones its first requests build, and
# names every table bound meanwhile.
BINDING_SCRIPT = """
import json
import hostrelay.wiring as wiring
from hostrelay.settings import ApiSettings, load_settings

services = wiring.build_api_services(load_settings(ApiSettings))
bound = []
real_bind = wiring.bind_table
def spy(model, table_name, **meta):
    bound.append(model.__name__)
    real_bind(model, table_name, **meta)
wiring.bind_table = spy
services.jobs(); services.hosts(); services.output(); services.macct()
print(json.dumps(bound))
"""


def test_services_built_by_a_first_request_rebind_no_table() -> None:
    # Given a cold container's services, When its first requests build the job, host, output
    # and macct services, Then they use the tables bound at cold start: binding one again
    # would drop the connection earlier requests opened to it (dal/pynamodb_private.py)
    env = {**os.environ, "AWS_REGION": "us-east-1", **ENVIRONMENT}
    done = subprocess.run(
        [sys.executable, "-c", BINDING_SCRIPT], env=env, capture_output=True, text=True, check=True
    )
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
