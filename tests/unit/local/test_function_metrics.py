"""The local stack's functions publish no metrics, and keep none from one invocation to the next."""

from __future__ import annotations

from pathlib import Path

import pytest

from hostrelay_local.functions import FunctionRuntime
from hostrelay_local.template import FunctionSpec

# A handler like the control plane's: Powertools' log_metrics around it, one metric a call.
HANDLER = """
from hostrelay.observability import metrics

@metrics.log_metrics
def handler(event, context):
    metrics.add_metric(name="pinged", unit="Count", value=1)
    return event["n"]
"""


@pytest.fixture
def runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FunctionRuntime:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")  # as LocalStack sets it
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "hostrelay-test")
    (tmp_path / "app.py").write_text(HANDLER)
    spec = FunctionSpec(
        logical_id="MetricsFunction",
        code_uri=tmp_path,
        handler="app.handler",
        environment={},
        timeout_s=3,
    )
    return FunctionRuntime(spec, {})


def test_a_hundred_and_fifty_invocations_print_no_emf_and_leave_no_metric_behind(
    runtime: FunctionRuntime, capfd: pytest.CaptureFixture[str]
) -> None:
    from hostrelay.observability import metrics

    # Powertools prints a metric's EMF blob at its 100th value even with metrics disabled,
    # and its disabled flush clears nothing: without the runtime's clearing, call 100 prints.
    assert [runtime.invoke({"n": n}) for n in range(150)] == list(range(150))

    assert '"_aws"' not in capfd.readouterr().out
    assert metrics.metric_set == {}
