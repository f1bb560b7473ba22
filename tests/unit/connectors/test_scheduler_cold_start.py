"""A scheduler container starts without the connector kinds' settings models.

Every tick reads the due connectors, and most find none: each kind's settings model (and the
job models they reuse) is imported by the first connector that needs it (logic/connectors.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

ENVIRONMENT = {
    "AWS_REGION": "us-east-1",
    "JOBS_TABLE": "jobs",
    "HOSTS_TABLE": "hosts",
    "CONNECTORS_TABLE": "connectors",
    "IDEMPOTENCY_TABLE": "idempotency",
    "DISPATCH_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/dispatch",
    "CLOUD_JOBS_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/cloud-jobs",
    "POWERTOOLS_TRACE_DISABLED": "true",
}

# A cold start in a fresh interpreter, then the settings models' first use.
SCRIPT = """
import json, sys
from hostrelay.settings import SchedulerSettings, load_settings
from hostrelay.wiring import build_scheduler

def loaded():
    return sorted(m for m in sys.modules if m.startswith(("hostrelay", "hostrelay_contract")))

build_scheduler(load_settings(SchedulerSettings))
at_start = loaded()
from hostrelay.logic.connectors import settings_models
models = {kind.value: model.__name__ for kind, model in settings_models().items()}
print(json.dumps({"at_start": at_start, "after": loaded(), "models": models}))
"""

SETTINGS_MODULES = {
    "hostrelay.domain.connector_settings",
    "hostrelay.domain.cloud_sources",
    "hostrelay_contract.jobs.ldap",
    "hostrelay_contract.jobs.sources",
}


def test_the_scheduler_starts_without_the_settings_models_and_loads_them_on_first_use() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env={**os.environ, **ENVIRONMENT},
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert "hostrelay.logic.connectors" in report["at_start"]
    assert not SETTINGS_MODULES & set(report["at_start"])
    assert set(report["after"]) >= SETTINGS_MODULES
    assert report["models"]["kubernetes"] == "KubernetesConnectorSettings"
    assert len(report["models"]) == 8
