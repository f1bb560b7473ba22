"""The relay's metrics: a small thread-safe registry written out in Prometheus text format."""

from __future__ import annotations

import bisect
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Seconds: from a ping (milliseconds) to a long directory sync or exec job.
DURATION_BUCKETS = (0.005, 0.025, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0, 600.0, 3600.0)
SYNC_CHANGES = ("created", "updated", "deleted")
# Elder's connector counters, for every sync job a relay runs, by connector and kind.
SYNC_JOB_KINDS = {"ldap.sync": "ldap", "connector.sync": None}  # None: the result names it
SYNC_OPERATIONS = ("created", "updated", "unchanged", "deleted")

LabelValues = tuple[str, ...]


def format_value(value: float) -> str:
    """A sample value as Prometheus writes it: integers without a fraction, +Inf, NaN."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 2**53:
        return str(int(value))
    return repr(value)


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _labels(names: Iterable[str], values: Iterable[str]) -> str:
    pairs = [f'{name}="{_escape_label(value)}"' for name, value in zip(names, values, strict=True)]
    return "{" + ",".join(pairs) + "}" if pairs else ""


class _Metric:
    kind = ""

    def __init__(self, name: str, help_text: str, label_names: tuple[str, ...]) -> None:
        self.name = name
        self.help = help_text
        self.label_names = label_names
        self._lock = threading.Lock()

    def _key(self, labels: Mapping[str, str]) -> LabelValues:
        if set(labels) != set(self.label_names):
            raise ValueError(f"{self.name} takes labels {self.label_names}, not {sorted(labels)}")
        return tuple(str(labels[name]) for name in self.label_names)

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {_escape_help(self.help)}", f"# TYPE {self.name} {self.kind}"]

    def samples(self) -> list[str]:
        raise NotImplementedError


class Counter(_Metric):
    """Only goes up; one value per combination of label values."""

    kind = "counter"

    def __init__(self, name: str, help_text: str, label_names: tuple[str, ...] = ()) -> None:
        super().__init__(name, help_text, label_names)
        # An unlabelled counter reads 0 until it first counts, rather than being absent.
        self._values: dict[LabelValues, float] = {} if label_names else {(): 0.0}

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        if amount < 0:
            raise ValueError("a counter cannot go down")
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, **labels: str) -> float:
        with self._lock:
            return self._values.get(self._key(labels), 0.0)

    def values(self) -> dict[LabelValues, float]:
        with self._lock:
            return dict(self._values)

    def samples(self) -> list[str]:
        return [
            f"{self.name}{_labels(self.label_names, key)} {format_value(value)}"
            for key, value in sorted(self.values().items())
        ]


class Gauge(_Metric):
    """A value that goes up and down: set directly, or read from a function at each scrape."""

    kind = "gauge"

    def __init__(self, name: str, help_text: str, label_names: tuple[str, ...] = ()) -> None:
        super().__init__(name, help_text, label_names)
        self._values: dict[LabelValues, float] = {}
        self._function: Callable[[], float] | None = None

    def set(self, value: float, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            self._values[key] = value

    def set_function(self, function: Callable[[], float] | None) -> None:
        """Read the (unlabelled) value from `function` when scraped; None stops that."""
        if self.label_names:
            raise ValueError("only an unlabelled gauge can be read from a function")
        with self._lock:
            self._function = function

    def samples(self) -> list[str]:
        with self._lock:
            values, function = dict(self._values), self._function
        if function is not None:
            values[()] = float(function())
        return [
            f"{self.name}{_labels(self.label_names, key)} {format_value(value)}"
            for key, value in sorted(values.items())
        ]


class Histogram(_Metric):
    """Observations counted into cumulative buckets, with their sum and count."""

    kind = "histogram"

    def __init__(
        self,
        name: str,
        help_text: str,
        label_names: tuple[str, ...] = (),
        buckets: Iterable[float] = DURATION_BUCKETS,
    ) -> None:
        if "le" in label_names:
            raise ValueError("`le` is the bucket label of a histogram")
        super().__init__(name, help_text, label_names)
        self.buckets = tuple(sorted(buckets))
        # label values -> (count per bucket, not cumulative; the last is +Inf), sum
        self._series: dict[LabelValues, tuple[list[int], float]] = {}

    def observe(self, value: float, **labels: str) -> None:
        key = self._key(labels)
        slot = bisect.bisect_left(self.buckets, value)
        with self._lock:
            counts, total = self._series.get(key) or ([0] * (len(self.buckets) + 1), 0.0)
            counts[slot] += 1
            self._series[key] = (counts, total + value)

    def count(self, **labels: str) -> int:
        with self._lock:
            series = self._series.get(self._key(labels))
        return sum(series[0]) if series else 0

    def samples(self) -> list[str]:
        with self._lock:
            series = {key: (list(counts), total) for key, (counts, total) in self._series.items()}
        lines = []
        for key, (counts, total) in sorted(series.items()):
            cumulative = 0
            bounds = [*map(format_value, self.buckets), "+Inf"]
            for bound, count in zip(bounds, counts, strict=True):
                cumulative += count
                labels = _labels((*self.label_names, "le"), (*key, bound))
                lines.append(f"{self.name}_bucket{labels} {cumulative}")
            plain = _labels(self.label_names, key)
            lines.append(f"{self.name}_sum{plain} {format_value(total)}")
            lines.append(f"{self.name}_count{plain} {cumulative}")
        return lines


class MetricsRegistry:
    """Metrics in the order they were registered, written out together."""

    def __init__(self) -> None:
        self._metrics: list[_Metric] = []
        self._lock = threading.Lock()

    def _add(self, metric: Any) -> Any:
        with self._lock:
            if any(known.name == metric.name for known in self._metrics):
                raise ValueError(f"metric {metric.name} is already registered")
            self._metrics.append(metric)
        return metric

    def counter(self, name: str, help_text: str, labels: tuple[str, ...] = ()) -> Counter:
        metric: Counter = self._add(Counter(name, help_text, labels))
        return metric

    def gauge(self, name: str, help_text: str, labels: tuple[str, ...] = ()) -> Gauge:
        metric: Gauge = self._add(Gauge(name, help_text, labels))
        return metric

    def histogram(
        self,
        name: str,
        help_text: str,
        labels: tuple[str, ...] = (),
        buckets: Iterable[float] = DURATION_BUCKETS,
    ) -> Histogram:
        metric: Histogram = self._add(Histogram(name, help_text, labels, buckets))
        return metric

    def exposition(self) -> str:
        """Every metric in the Prometheus text exposition format (version 0.0.4)."""
        with self._lock:
            metrics = list(self._metrics)
        lines: list[str] = []
        for metric in metrics:
            lines += metric.header()
            lines += metric.samples()
        return "\n".join(lines) + "\n"


class RelayMetrics:
    """What the relay counts, fed by the executor (jobs), the intake (rejections) and the link."""

    def __init__(self, host: str, version: str) -> None:
        registry = self.registry = MetricsRegistry()
        self.info = registry.gauge(
            "hostrelay_relay_info", "The relay's version and host name.", ("version", "host")
        )
        self.info.set(1, version=version, host=host)
        self.jobs = registry.counter(
            "hostrelay_relay_jobs_total",
            "Jobs this relay finished, by type and outcome.",
            ("type", "outcome"),
        )
        self.jobs_running = registry.gauge(
            "hostrelay_relay_jobs_running", "Jobs whose handler is running now."
        )
        self.handler_duration = registry.histogram(
            "hostrelay_relay_handler_duration_seconds",
            "How long handlers ran, from start to result.",
            ("type",),
        )
        self.sync_entities = registry.counter(
            "hostrelay_relay_sync_entities_total",
            "Directory entities ldap.sync found created, updated or deleted.",
            ("connector", "change"),
        )
        connector = ("connector", "kind")
        self.connector_syncs = registry.counter(
            "connector_sync_total", "Connector sync runs, by outcome.", (*connector, "status")
        )
        self.connector_entities = registry.counter(
            "connector_entities_synced",
            "Entities a connector sync created, updated, left unchanged or deleted.",
            (*connector, "operation"),
        )
        self.connector_errors = registry.counter(
            "connector_sync_errors_total", "Connector sync runs that failed.", connector
        )
        self.connector_last_sync = registry.gauge(
            "connector_last_sync_timestamp",
            "When a connector's last successful sync finished (Unix seconds).",
            connector,
        )
        self.connector_duration = registry.histogram(
            "connector_sync_duration_seconds", "How long connector syncs ran.", connector
        )
        self.reconnects = registry.counter(
            "hostrelay_relay_reconnects_total", "Broker sessions started after the first one."
        )
        self.outbox_depth = registry.gauge(
            "hostrelay_relay_outbox_depth", "Events written but not yet acknowledged by the broker."
        )
        self.rejected = registry.counter(
            "hostrelay_relay_envelopes_rejected_total",
            "Messages on the jobs topic that were refused, by reason.",
            ("reason",),
        )

    def job_finished(
        self, job_type: str, outcome: str, duration_s: float | None, result: Mapping[str, Any]
    ) -> None:
        """A job ended (duration None: its handler never ran)."""
        self.jobs.inc(type=job_type, outcome=outcome)
        if duration_s is not None:
            self.handler_duration.observe(duration_s, type=job_type)
        if job_type == "ldap.sync" and outcome == "succeeded":
            connector = result.get("connector")
            for change in SYNC_CHANGES:
                amount = result.get(change)
                if isinstance(connector, str) and isinstance(amount, int) and amount > 0:
                    self.sync_entities.inc(amount, connector=connector, change=change)

        if job_type in SYNC_JOB_KINDS:
            self._connector_sync(job_type, outcome, duration_s, result)

    def _connector_sync(
        self, job_type: str, outcome: str, duration_s: float | None, result: Mapping[str, Any]
    ) -> None:
        kind = SYNC_JOB_KINDS[job_type] or result.get("kind")
        connector = result.get("connector")
        if not isinstance(connector, str) or not isinstance(kind, str):
            return  # refused before it knew its connector
        labels = {"connector": connector, "kind": kind}
        status = "success" if outcome == "succeeded" else outcome
        self.connector_syncs.inc(1, status=status, **labels)
        if outcome != "succeeded":
            self.connector_errors.inc(1, **labels)
            return
        self.connector_last_sync.set(time.time(), **labels)
        if duration_s is not None:
            self.connector_duration.observe(duration_s, **labels)
        for operation in SYNC_OPERATIONS:
            amount = result.get(operation)
            if isinstance(amount, int) and amount > 0:
                self.connector_entities.inc(amount, operation=operation, **labels)

    def envelope_refused(self, reason: str) -> None:
        self.rejected.inc(reason=reason)

    def session_started(self, first: bool) -> None:
        if not first:
            self.reconnects.inc()

    def exposition(self) -> str:
        return self.registry.exposition()
