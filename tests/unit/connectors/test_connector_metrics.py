"""The connector counters a cloud run prints as EMF: Elder's names, by connector and kind."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from hostrelay.domain.jobs import Job, JobErrorInfo, JobState
from hostrelay.logic.cloud_jobs import RunEnd, record_sync_metrics

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _job() -> Job:
    return Job(
        id="job-1",
        type="okta.sync",
        host="cloud",
        params={"connector": "con-1"},
        state=JobState.IN_PROGRESS,
        timeout_s=900,
        created_by="scheduler",
        created_at=NOW,
        updated_at=NOW,
        connector_id="con-1",
    )


def _emitted(out: str) -> dict[str, dict[str, Any]]:
    """Each printed EMF document by its one metric's name: its value and its dimensions."""
    metrics: dict[str, dict[str, Any]] = {}
    for line in out.splitlines():
        document = json.loads(line)
        directive = document["_aws"]["CloudWatchMetrics"][0]
        (name,) = [metric["Name"] for metric in directive["Metrics"]]
        dimensions = {key: document[key] for key in directive["Dimensions"][0]}
        metrics.setdefault(name, {"values": [], "dimensions": []})
        value = document[name]  # one value, printed alone or as a list of one
        metrics[name]["values"].append(value[0] if isinstance(value, list) else value)
        metrics[name]["dimensions"].append(dimensions)
    return metrics


@pytest.fixture(autouse=True)
def _namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "hostrelay")


def test_a_successful_run_prints_every_counter_by_connector_and_kind(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a run that created 3 entities, updated 2 and deleted 1
    result = {"created": 3, "updated": 2, "unchanged": 0, "deleted": 1, "errors": []}
    # When its metrics are recorded
    record_sync_metrics("okta", _job(), RunEnd(JobState.SUCCEEDED, result), 1.5)
    metrics = _emitted(capsys.readouterr().out)
    # Then Elder's five counters are there, each by connector and kind
    assert set(metrics) == {
        "connector_sync_total",
        "connector_sync_errors_total",
        "connector_sync_duration_seconds",
        "connector_last_sync_timestamp",
        "connector_entities_synced",
    }
    for metric in metrics.values():
        for dimensions in metric["dimensions"]:
            assert (dimensions["kind"], dimensions["connector"]) == ("okta", "con-1")
    assert metrics["connector_sync_total"]["values"] == [1]
    assert metrics["connector_sync_total"]["dimensions"][0]["status"] == "success"
    assert metrics["connector_sync_errors_total"]["values"] == [0]
    assert metrics["connector_sync_duration_seconds"]["values"] == [1.5]
    # And entities synced carry their operation
    synced = metrics["connector_entities_synced"]
    by_operation = {
        d["operation"]: v for d, v in zip(synced["dimensions"], synced["values"], strict=True)
    }
    assert by_operation == {"created": 3, "updated": 2, "unchanged": 0, "deleted": 1}


def test_a_failed_run_counts_as_failed_with_its_error(capsys: pytest.CaptureFixture[str]) -> None:
    error = JobErrorInfo(code="bad_credentials", message="okta refused the token")
    record_sync_metrics("okta", _job(), RunEnd(JobState.FAILED, None, error), 0.2)
    metrics = _emitted(capsys.readouterr().out)
    assert metrics["connector_sync_total"]["dimensions"][0]["status"] == "failed"
    assert metrics["connector_sync_errors_total"]["values"] == [1]
    assert "connector_entities_synced" not in metrics
