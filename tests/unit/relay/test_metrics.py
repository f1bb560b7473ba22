"""Relay metrics: a thread-safe registry written out in the Prometheus text format."""

from __future__ import annotations

import re
import threading

import pytest

from hostrelay_relay.metrics import MetricsRegistry, RelayMetrics, format_value

# One sample line of the text format: name, optional {labels}, value.
_SAMPLE = re.compile(
    r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\[\\"n])*",?)*\})? '
    r"(-?[0-9.e+-]+|\+Inf|-Inf|NaN)$"
)


def _assert_valid_exposition(text: str) -> None:
    """Every line is a HELP, a TYPE or a sample; a metric's TYPE precedes its samples."""
    assert text.endswith("\n")
    typed: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in {"counter", "gauge", "histogram"}
            typed.add(name)
            continue
        assert _SAMPLE.match(line), line
        name = line.split("{")[0].split(" ")[0]
        assert name in typed or re.sub(r"_(bucket|sum|count)$", "", name) in typed, line


def test_labelled_counter_is_written_with_help_type_and_sorted_samples():
    # Given a counter with two label sets
    registry = MetricsRegistry()
    jobs = registry.counter("demo_jobs_total", "Jobs done.", ("type", "outcome"))
    jobs.inc(type="ping", outcome="succeeded")
    jobs.inc(2, type="exec", outcome="failed")
    jobs.inc(type="ping", outcome="succeeded")

    # When it is written out, Then it is the Prometheus text format, exactly
    assert registry.exposition() == (
        "# HELP demo_jobs_total Jobs done.\n"
        "# TYPE demo_jobs_total counter\n"
        'demo_jobs_total{type="exec",outcome="failed"} 2\n'
        'demo_jobs_total{type="ping",outcome="succeeded"} 2\n'
    )


def test_label_values_and_help_are_escaped():
    registry = MetricsRegistry()
    counter = registry.counter("demo_total", "Line one\nback\\slash", ("reason",))
    counter.inc(reason='say "hi"\\now\n')
    text = registry.exposition()
    assert "# HELP demo_total Line one\\nback\\\\slash\n" in text
    assert 'demo_total{reason="say \\"hi\\"\\\\now\\n"} 1\n' in text
    _assert_valid_exposition(text)


def test_histogram_buckets_are_cumulative_with_inf_sum_and_count():
    # Given durations observed below, on and above the bucket bounds
    registry = MetricsRegistry()
    durations = registry.histogram("demo_seconds", "Durations.", ("type",), buckets=(0.1, 1.0))
    for value in (0.05, 0.1, 0.5, 3.0):
        durations.observe(value, type="ping")

    # Then each bucket counts everything at or below its bound
    assert registry.exposition().splitlines()[2:] == [
        'demo_seconds_bucket{type="ping",le="0.1"} 2',
        'demo_seconds_bucket{type="ping",le="1"} 3',
        'demo_seconds_bucket{type="ping",le="+Inf"} 4',
        'demo_seconds_sum{type="ping"} 3.65',
        'demo_seconds_count{type="ping"} 4',
    ]


def test_gauge_can_be_read_from_a_function_at_scrape_time():
    registry = MetricsRegistry()
    depth = registry.gauge("demo_depth", "Depth.")
    values = iter([3, 5])
    depth.set_function(lambda: next(values))
    assert registry.exposition().endswith("demo_depth 3\n")
    assert registry.exposition().endswith("demo_depth 5\n")
    depth.set_function(None)
    assert registry.exposition().endswith("# TYPE demo_depth gauge\n")


def test_values_are_formatted_as_prometheus_reads_them():
    assert format_value(3.0) == "3"
    assert format_value(0.25) == "0.25"
    assert format_value(float("inf")) == "+Inf"
    assert format_value(float("-inf")) == "-Inf"
    assert format_value(float("nan")) == "NaN"


def test_mistakes_in_use_are_refused():
    registry = MetricsRegistry()
    counter = registry.counter("demo_total", "Demo.", ("reason",))
    with pytest.raises(ValueError):
        registry.counter("demo_total", "Again.")
    with pytest.raises(ValueError):
        counter.inc(other="x")
    with pytest.raises(ValueError):
        counter.inc(-1, reason="x")
    with pytest.raises(ValueError):
        registry.histogram("demo_seconds", "Demo.", ("le",))


def test_counting_from_many_threads_loses_nothing():
    # Given a counter and a histogram updated from eight threads at once
    registry = MetricsRegistry()
    counter = registry.counter("demo_total", "Demo.", ("worker",))
    histogram = registry.histogram("demo_seconds", "Demo.")

    def work(number: int) -> None:
        for _ in range(5000):
            counter.inc(worker=str(number % 2))
            histogram.observe(0.01)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then every update is counted
    assert counter.value(worker="0") + counter.value(worker="1") == 40_000
    assert histogram.count() == 40_000


def test_relay_metrics_cover_jobs_sync_changes_rejections_and_info():
    # Given the relay's metrics after a ping, an ldap.sync and a rejection
    metrics = RelayMetrics("dc01", "1.2.3")
    metrics.job_finished("ping", "succeeded", 0.002, {"pong": True})
    sync_result = {"connector": "corp", "created": 3, "updated": 1, "deleted": 0, "total": 9}
    metrics.job_finished("ldap.sync", "succeeded", 4.5, sync_result)
    metrics.job_finished("exec", "failed", None, {})
    metrics.envelope_refused("bad_signature")
    metrics.session_started(first=True)
    metrics.session_started(first=False)
    metrics.jobs_running.set_function(lambda: 1)
    metrics.outbox_depth.set_function(lambda: 7)

    # When scraped
    text = metrics.exposition()

    # Then each named series is there, in valid exposition format
    _assert_valid_exposition(text)
    for line in (
        'hostrelay_relay_info{version="1.2.3",host="dc01"} 1',
        'hostrelay_relay_jobs_total{type="ping",outcome="succeeded"} 1',
        'hostrelay_relay_jobs_total{type="exec",outcome="failed"} 1',
        "hostrelay_relay_jobs_running 1",
        'hostrelay_relay_handler_duration_seconds_count{type="ldap.sync"} 1',
        'hostrelay_relay_sync_entities_total{connector="corp",change="created"} 3',
        'hostrelay_relay_sync_entities_total{connector="corp",change="updated"} 1',
        "hostrelay_relay_reconnects_total 1",
        "hostrelay_relay_outbox_depth 7",
        'hostrelay_relay_envelopes_rejected_total{reason="bad_signature"} 1',
    ):
        assert line + "\n" in text, line
    # a job that never ran has no duration
    assert 'handler_duration_seconds_count{type="exec"}' not in text
