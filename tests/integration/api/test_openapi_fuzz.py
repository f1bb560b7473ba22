"""Fuzzes every operation of the served OpenAPI document: no input may cause a 5xx (issue #16).

Schemathesis generates requests from /v1/openapi.json (valid ones, and ones that break the
schema on purpose) and sends them with an admin token through the local HTTP gateway to the
real ApiFunction over moto. Each response must not be a server error, must use a status code
and content type the document declares for it, and must match the documented schema.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.integration.api.conftest import ServedApi

pytestmark = pytest.mark.integration

# Bounded for 2 shared cores: about 25 operations x 2 modes x this many cases.
MAX_EXAMPLES_PER_MODE = 30
# Operations not started by then are left out with a warning: a slow machine cannot hang CI.
TIME_BUDGET_S = 150.0
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def fuzz_operation(operation: Any, mode: GenerationMode, api: ServedApi) -> int:
    """Sends the generated cases; returns how many were sent."""
    sent = 0
    auth = {"Authorization": f"Bearer {api.admin_token}"}

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=MAX_EXAMPLES_PER_MODE,
        deadline=None,
        derandomize=True,  # the same cases on every run: a failure here reproduces
        database=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: the report names the case
        suppress_health_check=list(HealthCheck),
    )
    def check(case: Any) -> None:
        nonlocal sent
        sent += 1
        case.call_and_validate(base_url=api.url, headers=auth, checks=CHECKS, timeout=30)

    check()
    return sent


def test_no_generated_request_gets_a_server_error(served_api: ServedApi) -> None:
    # Given the API's own OpenAPI document, served over HTTP
    schema = schemathesis.openapi.from_url(f"{served_api.url}/v1/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20, "the document lists the API's operations"
    # When every operation gets generated valid and invalid requests
    started = time.monotonic()
    failures: list[str] = []
    fuzzed = sent = 0
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            if time.monotonic() - started > TIME_BUDGET_S:
                break
            try:
                sent += fuzz_operation(operation, mode, served_api)
            except Unsatisfiable:
                pass  # an operation without parameters or body has nothing to break
            except (FailureGroup, AssertionError) as failure:  # what a failed check raises
                failures.append(f"{operation.label} ({mode.value}): {failure}")
            fuzzed += 1
    # Then no response is a server error or outside what the document promises
    assert not failures, "\n\n".join(failures)
    assert sent >= 5 * fuzzed, f"only {sent} requests were generated for {fuzzed} runs"
    if fuzzed < 2 * len(operations):
        warnings.warn(
            f"fuzz time budget spent after {fuzzed} of {2 * len(operations)} operation runs",
            stacklevel=1,
        )
