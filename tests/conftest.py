"""Fixtures shared by every test: AWS resources in moto, created from template.yaml."""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import botocore.loaders
import botocore.session
import pytest
from moto import mock_aws

from hostrelay_local.aws_resources import LocalResources, create_resources, function_environment
from hostrelay_local.lambda_runtime import LambdaHandler, load_handler
from hostrelay_local.moto_endpoint import tune_moto
from hostrelay_local.template import Template, load_template

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_REGION", "us-east-1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "hostrelay")
os.environ.setdefault("POWERTOOLS_DEV", "false")

FUNCTIONS = ("ApiFunction", "DispatchFunction", "ResultsFunction", "SweeperFunction")


@functools.cache
def _shared_loader(search_path_string: str | None = None) -> botocore.loaders.Loader:
    return botocore.loaders.create_loader(search_path_string)


@pytest.fixture(scope="session", autouse=True)
def _botocore_models_read_once() -> Iterator[None]:
    """Every botocore session of the test process shares one data loader.

    botocore parses its JSON service models and endpoint rules afresh for each new session,
    and the tests make hundreds (each `aws` fixture rebinds every table and client, pynamodb
    opens a session per table); parsing them was most of many a test's time. The files never
    change during a run, and sessions already share a loader's cache among their clients.
    """
    if not callable(getattr(botocore.session, "create_loader", None)):
        raise RuntimeError(
            "botocore.session.create_loader is gone: this botocore release needs another way"
            " to share its data loader between sessions (tests/conftest.py)"
        )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(botocore.session, "create_loader", _shared_loader)
        yield


@pytest.fixture(scope="session", autouse=True)
def _moto_as_the_local_stack_runs_it() -> None:
    """The tests' moto carries the local stack's patches (moto_endpoint.tune_moto): the same
    one-request-at-a-time DynamoDB and per-item transaction rollback the stack serves, so a
    test proves what `hostrelay-local run` does, and a transaction does not copy whole tables."""
    tune_moto()


@pytest.fixture(scope="session")
def template() -> Template:
    return load_template()


@dataclass
class AwsStack:
    """moto-backed resources of template.yaml plus each function's resolved environment."""

    resources: LocalResources
    template: Template
    environments: dict[str, dict[str, str]]

    def handler(self, logical_id: str) -> LambdaHandler:
        spec = next(f for f in self.template.functions() if f.logical_id == logical_id)
        return load_handler(spec, self.environments[logical_id])

    def ref(self, logical_id: str) -> str:
        return self.resources.refs[logical_id]

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name="us-east-1")


@pytest.fixture
def aws(template: Template, monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsStack]:
    """Given a fresh moto account with every resource template.yaml declares."""
    from hostrelay.dal.aws_clients import client
    from hostrelay.settings import load_settings

    with mock_aws():
        client.cache_clear()
        load_settings.cache_clear()
        resources = create_resources(
            boto3.session.Session(region_name="us-east-1"), template=template
        )
        environments = {name: function_environment(template, name, resources) for name in FUNCTIONS}
        merged: dict[str, str] = {}
        for env in environments.values():
            merged.update(env)
        merged.pop("POWERTOOLS_SERVICE_NAME", None)
        for key, value in merged.items():
            monkeypatch.setenv(key, value)
        yield AwsStack(resources=resources, template=template, environments=environments)
        client.cache_clear()
        load_settings.cache_clear()


def sqs_event(
    bodies: list[str], queue_arn: str = "arn:aws:sqs:us-east-1:123456789012:q"
) -> dict[str, Any]:
    """An SQS event as Lambda delivers it to a function."""
    return {
        "Records": [
            {
                "messageId": f"msg-{index}",
                "receiptHandle": f"rh-{index}",
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "0"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": "us-east-1",
            }
            for index, body in enumerate(bodies)
        ]
    }


@pytest.fixture
def make_sqs_event() -> Any:
    return sqs_event


_TESTS_DIR = Path(__file__).parent
_MARK_BY_DIRECTORY = {"integration": "integration", "e2e": "e2e"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test under tests/integration or tests/e2e carries that marker (so `-m` selects
    by what a test needs), whether or not its file says so."""
    for item in items:
        try:
            top = item.path.relative_to(_TESTS_DIR).parts[0]
        except ValueError:
            continue
        if top in _MARK_BY_DIRECTORY:
            item.add_marker(_MARK_BY_DIRECTORY[top])
