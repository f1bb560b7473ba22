"""`accepted` held back briefly: a job that ends at once is reported by its result alone."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
from pydantic import Field

from hostrelay_contract.base import StrictParams
from hostrelay_contract.events import encode_event, new_event
from hostrelay_relay.accepted_hold import AcceptedHold
from hostrelay_relay.executor import JobExecutor
from hostrelay_relay.handlers.base import Handler, JobContext
from hostrelay_relay.ledger import Ledger
from hostrelay_relay.settings import RelaySettings


class Sent:
    """What went to the broker, in order: (outbox seq, event kind, job id)."""

    def __init__(self) -> None:
        self.events: list[tuple[int, str, str]] = []
        self.lock = threading.Lock()

    def __call__(self, seq: int, payload: bytes) -> None:
        event = json.loads(payload)
        with self.lock:
            self.events.append((seq, event["kind"], event.get("job_id", "")))

    def kinds(self, job_id: str) -> list[str]:
        with self.lock:
            return [kind for _, kind, job in self.events if job == job_id]


class StepParams(StrictParams):
    sleep_s: float = Field(default=0.0)
    progress: bool = False


class StepHandler(Handler[StepParams]):
    type = "test.step"
    params_model = StepParams

    def run(self, params: StepParams, ctx: JobContext) -> dict[str, Any]:
        if params.progress:
            ctx.progress(1, 2, "half way")
        time.sleep(params.sleep_s)
        return {}


@pytest.fixture
def relay(tmp_path):
    settings = RelaySettings(host="unit", state_dir=tmp_path / "state")
    ledger = Ledger(settings.ledger_path)
    sent = Sent()
    hold = AcceptedHold(sent, hold_s=0.3)
    executor = JobExecutor(settings, ledger, sent, accepted_hold=hold)
    numbers = iter(range(1, 1000))

    def run(**params: Any) -> str:
        job_id = f"J{next(numbers)}"
        accepted = encode_event(new_event("accepted", job_id=job_id, attempt=1))
        seq = ledger.accept_job(
            job_id, 1, "test.step", nonce=job_id, expires_at=2_000_000_000, accepted_event=accepted
        )
        assert seq is not None
        hold.hold((job_id, 1), seq, accepted)
        executor.submit(job_id, 1, StepHandler(settings), StepParams(**params), 30.0)
        return job_id

    yield run, sent, ledger, hold
    executor.shutdown(drain_timeout_s=5)
    hold.close()
    ledger.close()


def wait_for(condition, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_job_ending_within_the_hold_sends_only_its_result(relay):
    run, sent, ledger, hold = relay
    job_id = run()
    wait_for(lambda: "result" in sent.kinds(job_id))
    # nothing is held any more, so nothing else can follow when the hold would have passed
    assert hold.held() == 0
    assert sent.kinds(job_id) == ["result"]
    # and the unsent `accepted` is gone from the outbox with the result's commit
    kinds = [json.loads(entry.payload)["kind"] for entry in ledger.pending(0, 100)]
    assert kinds == ["result"]


def test_job_running_past_the_hold_is_accepted_when_it_passes(relay):
    run, sent, _, _ = relay
    started = time.monotonic()
    job_id = run(sleep_s=0.8)
    wait_for(lambda: "accepted" in sent.kinds(job_id))
    assert 0.25 <= time.monotonic() - started < 0.75
    wait_for(lambda: "result" in sent.kinds(job_id))
    assert sent.kinds(job_id) == ["accepted", "result"]


def test_another_event_of_the_job_releases_accepted_first(relay):
    run, sent, _, _ = relay
    job_id = run(progress=True, sleep_s=0.05)
    wait_for(lambda: "result" in sent.kinds(job_id))
    assert sent.kinds(job_id) == ["accepted", "progress", "result"]
    # in outbox order
    seqs = [seq for seq, _, job in sent.events if job == job_id]
    assert seqs == sorted(seqs)


def test_closing_sends_what_is_still_held_in_outbox_order():
    sent = Sent()
    hold = AcceptedHold(sent, hold_s=60)
    for n in (3, 1, 2):
        hold.hold((f"J{n}", 1), n, encode_event(new_event("accepted", job_id=f"J{n}", attempt=1)))
    hold.close()
    assert [seq for seq, _, _ in sent.events] == [1, 2, 3]
    # and once closed, `accepted` goes out at once
    hold.hold(("J4", 1), 4, encode_event(new_event("accepted", job_id="J4", attempt=1)))
    assert [seq for seq, _, _ in sent.events] == [1, 2, 3, 4]


def test_no_hold_sends_at_once():
    sent = Sent()
    hold = AcceptedHold(sent, hold_s=0)
    hold.hold(("J1", 1), 7, encode_event(new_event("accepted", job_id="J1", attempt=1)))
    assert sent.events == [(7, "accepted", "J1")]
    assert hold.take(("J1", 1)) is None
