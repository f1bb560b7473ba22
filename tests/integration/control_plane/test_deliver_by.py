"""deliver_by: a job reaches its host before it, or never (clock-driven dispatch and sweeper)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest

from hostrelay.clock import utcnow
from hostrelay.dal.hosts_repo import HostRepository
from hostrelay.domain.jobs import ACCEPT_GRACE, DEFAULT_DELIVERY_WINDOW, JobState
from hostrelay_local.lambda_runtime import FakeLambdaContext
from hostrelay_relay.envelope import EnvelopeRejected, load_public_key, verify_envelope
from tests.integration.control_plane.conftest import ADMIN, Pipeline

HELLO = {"kind": "hello", "relay_version": "0.1.0", "jobs": []}

Published = Callable[[], list[tuple[str, bytes]]]


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[datetime], None]:
    """Set the time the dispatch and sweeper functions read."""
    from hostrelay.logic import dispatch, sweep

    def set_now(moment: datetime) -> None:
        monkeypatch.setattr(dispatch, "utcnow", lambda: moment)
        monkeypatch.setattr(sweep, "utcnow", lambda: moment)

    return set_now


def _sweep(pipeline: Pipeline) -> None:
    pipeline.sweeper({}, FakeLambdaContext(function_name="sweeper"))


def _envelope(payload: bytes) -> dict[str, object]:
    body: dict[str, object] = json.loads(payload)["envelope"]
    return body


def test_job_is_not_delivered_after_deliver_by_when_its_relay_comes_back(
    pipeline: Pipeline, published: Published, clock: Callable[[datetime], None]
) -> None:
    # Given dc01 still looks online but its relay is down, and a ping must reach it in 8 s
    deliver_by = utcnow() + timedelta(seconds=8)
    job = pipeline.create(deliver_by=deliver_by)
    # When the dispatcher publishes it (the broker drops it: nobody is connected)
    pipeline.run_dispatch()
    # Then its envelope expires at deliver_by, not a TTL after it was issued
    [(_, payload)] = published()
    assert _envelope(payload)["expires_at"] == int(deliver_by.timestamp())
    # When the relay comes back 18 s after deliver_by and says hello
    clock(deliver_by + timedelta(seconds=18))
    pipeline.send_events("dc01", HELLO)
    pipeline.run_dispatch()
    # Then the job is not published again
    assert len(published()) == 1
    # And the sweeper leaves it while a relay might still accept the envelope it has
    _sweep(pipeline)
    assert pipeline.jobs.get(job.id, ADMIN).state is JobState.DISPATCHED
    # And ends it EXPIRED once none would
    clock(deliver_by + ACCEPT_GRACE)
    _sweep(pipeline)
    final = pipeline.jobs.get(job.id, ADMIN)
    assert final.state is JobState.EXPIRED
    assert final.error is not None and final.error.code == "expired"
    # And a result that shows up after all cannot revive it
    pipeline.send_events(
        "dc01",
        {"kind": "result", "job_id": job.id, "attempt": 1, "outcome": "succeeded",
         "result": {"pong": True}},
    )  # fmt: skip
    assert pipeline.jobs.get(job.id, ADMIN).state is JobState.EXPIRED


def test_relay_refuses_an_envelope_once_deliver_by_and_its_leeway_passed(
    pipeline: Pipeline, published: Published
) -> None:
    # Given an envelope published for a job due within 8 s
    deliver_by = utcnow() + timedelta(seconds=8)
    pipeline.create(deliver_by=deliver_by)
    pipeline.run_dispatch()
    [(_, payload)] = published()
    pem = pipeline.aws.client("ssm").get_parameter(Name="/hostrelay/dev/signing-public-key")
    key = load_public_key(pem["Parameter"]["Value"].encode())
    # When it reaches the relay after deliver_by plus the relay's clock leeway
    late = deliver_by.timestamp() + 31
    # Then the relay refuses it as expired
    with pytest.raises(EnvelopeRejected) as refused:
        verify_envelope(
            payload,
            public_key=key,
            host="dc01",
            seen_nonce=lambda nonce, expires_at: False,
            now=lambda: late,
            clock_leeway_s=30,
        )
    assert refused.value.reason == "expired"


def test_envelope_of_a_job_due_later_lives_its_ttl(
    pipeline: Pipeline, published: Published
) -> None:
    # Given a job whose deliver_by is an hour away, and one without deliver_by
    pipeline.create(deliver_by=utcnow() + timedelta(hours=1))
    pipeline.create()
    # When both are published
    pipeline.run_dispatch()
    # Then each envelope is valid for the envelope TTL (300 s)
    envelopes = [_envelope(payload) for _, payload in published()]
    assert [e["expires_at"] - e["issued_at"] for e in envelopes] == [300, 300]  # type: ignore[operator]


def test_queued_job_past_deliver_by_expires_when_its_host_says_hello(
    pipeline: Pipeline, published: Published, clock: Callable[[datetime], None]
) -> None:
    # Given a job queued for an offline host, due within 8 s
    HostRepository().mark_offline("dc01")
    deliver_by = utcnow() + timedelta(seconds=8)
    job = pipeline.create(deliver_by=deliver_by)
    pipeline.run_dispatch()
    # When the host says hello 18 s after deliver_by (before any sweeper tick)
    clock(deliver_by + timedelta(seconds=18))
    pipeline.send_events("dc01", HELLO)
    pipeline.run_dispatch()
    # Then nothing was ever published and the job ended EXPIRED at once
    assert published() == []
    final = pipeline.jobs.get(job.id, ADMIN)
    assert final.state is JobState.EXPIRED
    assert final.error is not None and final.error.code == "expired"


def test_accepted_job_runs_on_past_deliver_by(
    pipeline: Pipeline, clock: Callable[[datetime], None]
) -> None:
    # Given a job its relay accepted before deliver_by
    deliver_by = utcnow() + timedelta(seconds=8)
    job = pipeline.create(deliver_by=deliver_by, timeout_s=600)
    pipeline.run_dispatch()
    pipeline.send_events("dc01", {"kind": "accepted", "job_id": job.id, "attempt": 1})
    # When the sweeper ticks well after deliver_by, before its timeout
    clock(deliver_by + ACCEPT_GRACE + timedelta(minutes=1))
    _sweep(pipeline)
    # Then it is still running: deliver_by is about delivery, not about run time
    assert pipeline.jobs.get(job.id, ADMIN).state is JobState.IN_PROGRESS


def test_job_without_deliver_by_waits_for_its_host_seven_days(
    pipeline: Pipeline, clock: Callable[[datetime], None]
) -> None:
    # Given a job without deliver_by for a host that stays offline
    HostRepository().mark_offline("dc01")
    job = pipeline.create()
    pipeline.run_dispatch()
    # When the sweeper ticks just before and just after seven days
    clock(job.created_at + DEFAULT_DELIVERY_WINDOW - timedelta(minutes=1))
    _sweep(pipeline)
    waiting = pipeline.jobs.get(job.id, ADMIN).state
    clock(job.created_at + DEFAULT_DELIVERY_WINDOW)
    _sweep(pipeline)
    # Then it waited, and then ended EXPIRED
    assert waiting is JobState.QUEUED
    assert pipeline.jobs.get(job.id, ADMIN).state is JobState.EXPIRED
