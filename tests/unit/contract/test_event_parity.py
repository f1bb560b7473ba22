"""Every event the relay can send is read by the control plane, and both refuse the same
malformed ones: the relay builds events and the results function parses them with the one
set of models in hostrelay_contract.events.

Relay side: events made by the relay's own code (executor, intake refusals, hello and
heartbeat, certificate renewal). Control plane side: the results queue message the IoT
topic rule makes of them, read by `parse_rule_message`.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import Field, ValidationError

from hostrelay.domain.errors import InvalidRequest
from hostrelay.envelope import build_envelope, sign_envelope
from hostrelay.logic.relay_events import output_batch, parse_rule_message
from hostrelay_contract.base import StrictParams
from hostrelay_contract.envelope import REJECT_REASONS
from hostrelay_contract.events import MAX_MESSAGE, encode_event, new_event
from hostrelay_contract.inventory import InventoryUpsert
from hostrelay_relay.cert_rotation import RENEWAL_EVENT, CertificateRotation
from hostrelay_relay.daemon import hello_fields, refusal_event
from hostrelay_relay.directory.batches import BatchCutter
from hostrelay_relay.directory.entities import DirectoryEntry, build_entity, serialise
from hostrelay_relay.envelope import EnvelopeRejected, load_public_key, verify_envelope
from hostrelay_relay.executor import JobExecutor, finish_interrupted_jobs
from hostrelay_relay.handlers.base import Handler, JobContext, JobError
from hostrelay_relay.ledger import JobState, Ledger, LedgerJob
from hostrelay_relay.mqtt_link import heartbeat_event, hello_event
from hostrelay_relay.settings import RelaySettings
from tests.unit.enrollment.test_cert_rotation import START, Clock, issue, key_pem

HOST = "dc01"
KEY = Ed25519PrivateKey.generate()
PUBLIC_KEY = load_public_key(
    KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
)


def rule_message(event: dict[str, Any], host: str = HOST) -> str:
    """What EventsTopicRule puts on the results queue for an event the relay published."""
    payload = base64.b64encode(encode_event(event, strict=True)).decode()
    return json.dumps({"payload": payload, "topic": f"hostrelay/{host}/events"})


def read_on_control_plane(event: dict[str, Any]) -> Any:
    host, parsed = parse_rule_message(rule_message(event))
    assert host == HOST and parsed.kind == event["kind"]
    # Nothing the relay sends is lost on the way: every field it sets is a modelled field.
    assert set(event) <= set(type(parsed).model_fields), event["kind"]
    return parsed


# ---------------------------------------------------------------- events the relay makes


class Params(StrictParams):
    value: int = Field(default=0)


class FunctionHandler(Handler[Params]):
    type = "test.fn"
    params_model = Params

    def __init__(self, settings: RelaySettings, fn: Any) -> None:
        super().__init__(settings)
        self.fn = fn

    def run(self, params: Params, ctx: JobContext) -> dict[str, Any]:
        result: dict[str, Any] = self.fn(ctx)
        return result


def chatty(ctx: JobContext) -> dict[str, Any]:
    ctx.report_progress(1, 3, "reading")
    ctx.report_progress(2, None, "p" * 5000)  # an over-long message is cut, not refused
    ctx.report_output("stdout", b"a line of text that compresses well\n" * 4000)
    ctx.report_output("stderr", b"a warning\n")
    sync_inventory(ctx)
    return {"ok": True}


def sync_inventory(ctx: JobContext) -> None:
    """Entities as ldap.sync makes them (a user, and a group too big for one event, sent as
    member pages), cut into events by its batch cutter, sent through report_event."""
    user = DirectoryEntry("u1", "user", "CN=U,DC=x", "U", {"mail": "u@x", "memberOf": ["g"]})
    group = DirectoryEntry("g1", "group", "CN=G,DC=x", "G", {})
    members = [f"CN=member {n:05d},OU=People,DC=example,DC=org" for n in range(4000)]
    cutter = BatchCutter(lambda batch: ctx.report_event("inventory", batch.to_event_body("c1")))
    for entity in (build_entity(user, None, ["g1"]), build_entity(group, members, [])):
        cutter.upsert(entity, len(serialise(entity)))
    cutter.delete("gone")
    cutter.flush()


def noisy(ctx: JobContext) -> dict[str, Any]:
    ctx.report_output("stdout", os.urandom(20 * 1024))  # incompressible: sent as it is
    return {}


def failing(ctx: JobContext) -> dict[str, Any]:
    raise JobError("exit_code", "x" * 10_000, result={"exit_code": 3})


def crashing(ctx: JobContext) -> dict[str, Any]:
    raise RuntimeError("a bug in the handler")


def waiting(ctx: JobContext) -> dict[str, Any]:
    ctx.cancel_event.wait(30)
    return {}


def accept(ledger: Ledger, job_id: str, job_type: str) -> None:
    """Record a job as intake does, with the `accepted` event intake makes."""
    accepted = encode_event(new_event("accepted", job_id=job_id, attempt=1))
    ledger.accept_job(
        job_id, 1, job_type, nonce=job_id, expires_at=2_000_000_000, accepted_event=accepted
    )


def executor_events(tmp_path: Path) -> list[dict[str, Any]]:
    """What the executor sends for jobs that report, fail, crash, time out and are canceled,
    and what a relay start-up says of jobs a previous process left unfinished."""
    settings = RelaySettings(host=HOST, state_dir=tmp_path / "state", max_concurrent_jobs=4)
    ledger = Ledger(settings.ledger_path)
    results: dict[str, threading.Event] = {}

    def send(seq: int, payload: bytes) -> None:
        event = json.loads(payload)
        if event["kind"] == "result":
            results[event["job_id"]].set()

    executor = JobExecutor(settings, ledger, send=send)
    jobs = {
        "chatty": chatty,
        "noisy": noisy,
        "failing": failing,
        "crashing": crashing,
        "slow": waiting,
    }
    jobs["canceled"] = waiting
    for job_id, fn in jobs.items():
        results[job_id] = threading.Event()
        accept(ledger, job_id, "test.fn")
        timeout_s = 0.2 if job_id == "slow" else 30.0
        executor.submit(job_id, 1, FunctionHandler(settings, fn), Params(), timeout_s)
    executor.cancel("canceled", 1)
    assert all(done.wait(30) for done in results.values())
    executor.shutdown(drain_timeout_s=5)
    for job_id, state in (("RUN", JobState.RUNNING), ("WAIT", JobState.ACCEPTED)):
        accept(ledger, job_id, "ping")
        if state == JobState.RUNNING:
            ledger.mark_running(job_id, 1)
    finish_interrupted_jobs(ledger)
    events = [json.loads(entry.payload) for entry in ledger.pending(0, 100_000)]
    ledger.close()
    return events


def refusal_events() -> list[dict[str, Any]]:
    """What intake sends for each message it refuses, from the relay's own checks."""
    now = time.time()

    def envelope(job_type: str = "ping", host: str = HOST, **timing: float) -> dict[str, Any]:
        return build_envelope(
            job_id="J1", attempt=1, job_type=job_type, host=host, params={}, timeout_s=60,
            ttl_s=300, now=timing.get("now", now),
        )  # fmt: skip

    good = sign_envelope(envelope(), KEY)
    forged = sign_envelope(envelope(), Ed25519PrivateKey.generate())
    payloads = [
        b"not json",
        b"[1, 2]",
        forged,
        sign_envelope(envelope(host="dc02"), KEY),
        sign_envelope(envelope(now=now - 3600), KEY),
        sign_envelope(envelope(now=now + 3600), KEY),
        sign_envelope(envelope("cancel", host="dc02"), KEY),
        sign_envelope({**envelope(), "job_id": "J" * 100}, KEY),  # no id an event can carry
        sign_envelope({**envelope(), "attempt": -1}, KEY),
        good,  # seen before: replayed
    ]
    refused = []
    for payload in payloads:
        with pytest.raises(EnvelopeRejected) as caught:
            verify_envelope(payload, public_key=PUBLIC_KEY, host=HOST, seen_nonce=lambda n, e: True)
        refused.append((caught.value, payload))
    # Reasons intake finds after verifying, with a message as long as a validation error's.
    for reason in ("unknown_type", "invalid_params", "disabled"):
        refused.append((EnvelopeRejected(reason, "why " * 3000, "J1", 1), good))
    assert {exc.reason for exc, _ in refused} == set(REJECT_REASONS)
    return [refusal_event(exc, payload) for exc, payload in refused]


def session_events(tmp_path: Path) -> list[dict[str, Any]]:
    """`hello` (with and without a certificate id, with more jobs than it lists),
    `heartbeat` and `cert_renewal`, as the link and the certificate rotation make them."""
    unfinished = [LedgerJob(f"J{n}", 1, "ping", JobState.ACCEPTED, None, None) for n in range(1005)]
    key = ec.generate_private_key(ec.SECP256R1())
    tmp_path.mkdir()
    (tmp_path / "client.key").write_bytes(key_pem(key))
    (tmp_path / "client.pem").write_bytes(issue(key.public_key(), HOST, START, 90))
    settings = RelaySettings.model_validate(
        {
            "host": HOST,
            "state_dir": tmp_path / "state",
            "broker": {"cert_file": tmp_path / "client.pem", "key_file": tmp_path / "client.key"},
        }
    )
    rotation = CertificateRotation(settings, clock=Clock(START + dt.timedelta(days=61)))
    request = rotation.renewal_request()
    assert request is not None
    return [
        hello_event("ab" * 32, hello_fields(unfinished)),
        hello_event(None, hello_fields([])),
        heartbeat_event(3, 12.345),
        new_event(RENEWAL_EVENT, **request),
    ]


# ---------------------------------------------------------------- parity


def test_every_event_the_relay_sends_is_read_by_the_control_plane(tmp_path: Path) -> None:
    # Given the events the relay's own code makes for everything that can happen
    events = executor_events(tmp_path / "jobs") + refusal_events()
    events += session_events(tmp_path / "session")

    # When the control plane reads each one from the results queue
    parsed = [read_on_control_plane(event) for event in events]

    # Then it reads every kind the relay sends, with what the relay said
    kinds = {event.kind for event in parsed}
    assert kinds == {
        "hello", "heartbeat", "accepted", "progress", "output", "result", "rejected",
        "bad_message", "cert_renewal", "inventory",
    }  # fmt: skip
    outcomes = {
        (e.job_id, e.outcome, e.error and e.error.code) for e in parsed if e.kind == "result"
    }
    assert outcomes == {
        ("chatty", "succeeded", None),
        ("noisy", "succeeded", None),
        ("failing", "failed", "exit_code"),
        ("crashing", "failed", "handler_crashed"),
        ("slow", "timed_out", "timeout"),
        ("canceled", "canceled", "canceled"),
        ("RUN", "failed", "relay_restarted"),
        ("WAIT", "failed", "relay_stopped"),
    }
    # Long free text is cut to the limit, never a reason to lose the event
    assert (
        max(len(e.error.message) for e in parsed if e.kind == "result" and e.error) == MAX_MESSAGE
    )
    assert max(len(e.message) for e in parsed if e.kind == "rejected") == MAX_MESSAGE
    # The output arrives whole, in both encodings
    outputs = [e for e in parsed if e.kind == "output"]
    assert {e.encoding for e in outputs} == {"zlib", "identity"}
    chunks = [chunk for e in outputs if e.job_id == "chatty" for chunk in output_batch(e).chunks()]
    assert [chunk.seq for chunk in chunks] == list(range(len(chunks)))
    stdout = b"".join(chunk.data for chunk in chunks if chunk.stream == "stdout")
    assert stdout == b"a line of text that compresses well\n" * 4000
    assert [chunk.data for chunk in chunks if chunk.stream == "stderr"] == [b"a warning\n"]
    # Each upsert an inventory event carries is one the inventory reads, member pages too
    upserts = [
        InventoryUpsert.model_validate(upsert)
        for event in parsed
        if event.kind == "inventory"
        for upsert in event.upserts
    ]
    pages = [u.members_page for u in upserts if u.members_page is not None]
    assert len(pages) > 1 and {page.count for page in pages} == {len(pages)}
    assert sum(len(u.members or []) for u in upserts if u.id == "g1") == 4000
    [hello] = [e for e in parsed if e.kind == "hello" and e.cert_id]
    assert (len(hello.jobs), hello.jobs_omitted) == (1000, 5)
    # A signature that does not verify names no job (the control plane could end it)
    assert [e.job_id for e in parsed if e.kind == "rejected" and e.reason == "bad_signature"] == [
        None
    ]


def valid_events() -> dict[str, dict[str, Any]]:
    data = b"hello\n"
    return {
        "result": new_event("result", job_id="J1", attempt=1, outcome="succeeded", result={}),
        "output": new_event(
            "output", job_id="J1", attempt=1, first_seq=0, last_seq=0, encoding="identity",
            chunks=[{"seq": 0, "stream": "stdout", "size": len(data)}],
            data=base64.b64encode(data).decode(),
        ),
        "inventory": new_event("inventory", job_id="J1", attempt=1, connector="c1"),
        "hello": new_event("hello", relay_version="1.0", jobs=[]),
        "cert_renewal": new_event("cert_renewal", csr="-----BEGIN CERTIFICATE REQUEST-----"),
        "rejected": new_event("rejected", job_id=None, attempt=0, reason="bad_signature"),
    }  # fmt: skip


# (event, fields to change or, with None, to drop)
MALFORMED = [
    ("result", {"kind": "resutl"}),
    ("result", {"job_id": None}),
    ("result", {"attempt": 0}),
    ("result", {"outcome": "done"}),
    ("result", {"error": {"message": "no code"}}),
    ("result", {"error": {"code": "c" * 65, "message": ""}}),
    ("result", {"result": [1, 2]}),
    ("output", {"chunks": []}),
    ("output", {"chunks": [{"seq": 0, "stream": "stdin", "size": 6}]}),
    ("output", {"chunks": [{"seq": 0, "stream": "stdout", "size": 7}]}),
    ("output", {"chunks": [{"seq": 0, "stream": "stdout", "size": 17 * 1024}]}),
    ("output", {"last_seq": 3}),
    ("output", {"data": "not base64!"}),
    ("output", {"encoding": "zlib"}),
    ("output", {"encoding": "gzip"}),
    ("inventory", {"connector": None}),
    ("inventory", {"connector": "../etc"}),
    ("inventory", {"deletes": [""]}),
    ("hello", {"jobs": [{"job_id": "J1", "attempt": 0, "state": "accepted"}]}),
    ("hello", {"relay_version": "v" * 65}),
    ("cert_renewal", {"csr": ""}),
    ("cert_renewal", {"csr": "C" * (16 * 1024 + 1)}),
    ("rejected", {"reason": None}),
    ("rejected", {"attempt": -1}),
]


@pytest.mark.parametrize(("kind", "change"), MALFORMED, ids=lambda v: str(v)[:40])
def test_a_malformed_event_is_refused_by_the_relay_and_by_the_control_plane(
    kind: str, change: dict[str, Any]
) -> None:
    # Given a valid event of `kind` with one thing wrong
    event = valid_events()[kind]
    for name, value in change.items():
        if value is None:
            event.pop(name, None)
        else:
            event[name] = value
    fields = {k: v for k, v in event.items() if k not in {"v", "event_id", "sent_at", "kind"}}

    # When the relay builds it, Then it refuses to (a handler bug, not a lost event)
    with pytest.raises(ValueError) as on_the_relay:
        new_event(str(event["kind"]), **fields)

    # When the control plane reads it anyway, Then it is an unreadable event (dropped),
    # for the same field
    with pytest.raises(InvalidRequest, match="unreadable relay event") as on_the_cloud:
        parse_rule_message(rule_message(event))
    if isinstance(on_the_relay.value, ValidationError) and on_the_relay.value.errors()[0]["loc"]:
        field = on_the_relay.value.errors()[0]["loc"][0]
        assert f"{event['kind']}.{field}" in on_the_cloud.value.message


@pytest.mark.parametrize("change", [{"v": 2}, {"event_id": ""}, {"event_id": "E" * 65}])
def test_the_common_fields_the_relay_sets_are_checked_on_the_control_plane(
    change: dict[str, Any],
) -> None:
    event = {**valid_events()["result"], **change}
    with pytest.raises(InvalidRequest, match="unreadable relay event"):
        parse_rule_message(rule_message(event))
