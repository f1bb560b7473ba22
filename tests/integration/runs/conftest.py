"""Fixtures for fleet runs: the real API, dispatch, results and sweeper handlers on moto, and a
fleet of hosts whose relays answer the jobs published to them."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest

from hostrelay.dal.hosts_repo import HostRepository
from hostrelay.dal.tables import HostRecord
from hostrelay_local.lambda_runtime import FakeLambdaContext
from tests.conftest import AwsStack, sqs_event
from tests.integration.api.conftest import Api, Tokens, api, api_handler, tokens
from tests.integration.control_plane.conftest import Pipeline, pipeline, published

# The API's and the pipeline's fixtures, shared with this directory.
__all__ = ["api", "api_handler", "pipeline", "published", "tokens"]

# What a fake relay answers for a host: "succeeded", "failed", or None (it never answers).
Outcome = Callable[[str], str | None]


def tag_host(name: str, tags: dict[str, str]) -> None:
    """Give a host tags, as PATCH /v1/hosts/{name} of the `tags` branch does."""
    HostRecord(name=name).update(actions=[HostRecord.tags.set(tags)])


@dataclass
class Fleet:
    """Enrolled, online hosts and relays that answer what the dispatcher publishes."""

    pipeline: Pipeline
    api: Api
    published: Callable[[], list[tuple[str, bytes]]]
    answered: set[str] = field(default_factory=set)
    # Deliver every message the run orchestration consumes twice (SQS is at-least-once).
    duplicate: bool = False
    # Published jobs not answered yet: (host, job_id).
    waiting: list[tuple[str, str]] = field(default_factory=list)

    def enroll(self, names: Iterable[str], tags: dict[str, str] | None = None) -> list[str]:
        hosts = HostRepository()
        enrolled = []
        for name in names:
            hosts.register(name)
            hosts.seen(name, connected=True)
            if tags:
                tag_host(name, tags)
            enrolled.append(name)
        return enrolled

    def start(self, **body: Any) -> dict[str, Any]:
        body.setdefault("type", "ping")
        body.setdefault("params", {})
        response = self.api.post("/v1/runs", json_body=body)
        assert response.status in (200, 201), response.body
        return response.body  # type: ignore[no-any-return]

    def run(self, run_id: str) -> dict[str, Any]:
        response = self.api.get(f"/v1/runs/{run_id}")
        assert response.status == 200, response.body
        return response.body  # type: ignore[no-any-return]

    def targets(self, run_id: str, **query: Any) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        token = None
        while True:
            page = self.api.get(f"/v1/runs/{run_id}/targets", query={**query, "next_token": token})
            assert page.status == 200, page.body
            found.extend(page.body["targets"])
            token = page.body.get("next_token")
            if not token:
                return found

    def dispatch(self) -> list[tuple[str, str]]:
        """Run the dispatcher; returns (host, job_id) of the envelopes it newly published."""
        bodies = [json.dumps(b) for b in self.pipeline.queue_bodies("DispatchQueue")]
        if self.duplicate:
            bodies += bodies
        if bodies:
            self.pipeline.dispatch(sqs_event(bodies), FakeLambdaContext(function_name="dispatch"))
        new = []
        for topic, payload in self.published():
            envelope = json.loads(payload)["envelope"]
            if "job_id" not in envelope or envelope["job_id"] in self.answered:
                continue
            self.answered.add(envelope["job_id"])
            new.append((topic.split("/")[1], envelope["job_id"]))
        return new

    def answer(self, host: str, job_id: str, outcome: str) -> None:
        result: dict[str, Any] = {
            "kind": "result",
            "job_id": job_id,
            "attempt": 1,
            "outcome": outcome,
            "result": {},
        }
        if outcome == "failed":
            result["error"] = {"code": "failed_on_purpose", "message": "test failure"}
        self.pipeline.send_events(host, result)
        if self.duplicate:
            self.pipeline.send_events(host, result, receive_count=2)

    def sweep(self) -> dict[str, Any]:
        """One tick of the sweeper function (twice when duplicating)."""
        report: dict[str, Any] = {}
        for _ in range(2 if self.duplicate else 1):
            report = self.pipeline.sweeper({}, FakeLambdaContext(function_name="sweeper"))
        return report

    def step(self, outcome: Outcome) -> bool:
        """Dispatch, then answer one published job; False when there was none to answer."""
        self.waiting.extend(self.dispatch())
        for host, job_id in self.waiting:
            answer = outcome(host)
            if answer is not None:
                self.waiting.remove((host, job_id))
                self.answer(host, job_id, answer)
                return True
        return False

    def drive(self, run_id: str, outcome: Outcome) -> None:
        """Dispatch and answer one job at a time (the window slides one target at a time)
        until nothing published is left to answer."""
        while self.step(outcome):
            pass


def max_in_flight(intervals: Iterable[tuple[datetime, datetime]]) -> int:
    """The most intervals open at once; an interval ending at t closes before one opening at t."""
    edges = []
    for start, end in intervals:
        edges.append((start, 1))
        edges.append((end, -1))
    edges.sort(key=lambda edge: (edge[0], edge[1]))
    peak = current = 0
    for _, delta in edges:
        current += delta
        peak = max(peak, current)
    return peak


@pytest.fixture
def fleet(aws: AwsStack, pipeline: Pipeline, published, api: Api, tokens: Tokens) -> Fleet:
    """Given the control plane with host dc01 online and an operator token."""
    return Fleet(
        pipeline=pipeline,
        api=Api(api.handler, token=tokens.create("operator", name="ops")),
        published=published,
    )
