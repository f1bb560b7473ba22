"""Envelopes that must not run are refused with a reason; garbage never stops the relay."""

from __future__ import annotations

import json
import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

pytestmark = pytest.mark.integration


def _ping_still_works(control_plane, signer, host):
    """A barrier: the relay is alive and has processed everything published before."""
    envelope = signer.envelope(host.name, "ping")
    control_plane.publish(host.jobs_topic, signer.sign(envelope))
    result = control_plane.wait_event(host.name, "result", job_id=envelope["job_id"])
    assert result["outcome"] == "succeeded"


def _assert_nothing_ran(control_plane, relay, host, job_id):
    kinds = {event["kind"] for event in control_plane.job_events(host.name, job_id)}
    assert kinds == {"rejected"}, f"job {job_id} got {kinds}"
    assert relay.ledger.job(job_id, 1) is None


def _signed_by_someone_else(signer, envelope):
    return signer.sign(envelope, key=Ed25519PrivateKey.generate())


def _tampered_after_signing(signer, envelope):
    wire = json.loads(signer.sign(envelope))
    wire["envelope"]["params"] = {"message": "changed in transit"}
    return json.dumps(wire).encode()


def _expired(s, host):
    now = int(time.time())
    return s.sign(s.envelope(host, issued_at=now - 900, expires_at=now - 600))


def _issued_in_future(s, host):
    now = int(time.time())
    return s.sign(s.envelope(host, issued_at=now + 600, expires_at=now + 900))


@pytest.mark.parametrize(
    ("reason", "build"),
    [
        pytest.param(
            "wrong_host", lambda s, host: s.sign(s.envelope("some-other-host")), id="wrong-host"
        ),
        pytest.param("expired", _expired, id="expired"),
        pytest.param("clock_skew", _issued_in_future, id="issued-in-future"),
        pytest.param(
            "unknown_type", lambda s, host: s.sign(s.envelope(host, "no.such.type")), id="unknown"
        ),
        pytest.param(
            "invalid_params",
            lambda s, host: s.sign(s.envelope(host, "ping", {"sleep_s": -1})),
            id="bad-param-value",
        ),
        pytest.param(
            "invalid_params",
            lambda s, host: s.sign(s.envelope(host, "ping", {"surprise": 1})),
            id="unknown-param",
        ),
        pytest.param(
            "invalid_params",
            lambda s, host: s.sign(s.envelope(host, "ping", timeout_s=0)),
            id="zero-timeout",
        ),
    ],
)
def test_envelope_is_rejected_with_reason_and_nothing_runs(
    reason, build, new_host, start_relay, control_plane, signer
):
    # Given a running relay
    host = new_host()
    relay = start_relay(host)

    # When the jobs topic carries an envelope that must not run
    payload = build(signer, host.name)
    job_id = json.loads(payload)["envelope"]["job_id"]
    control_plane.publish(host.jobs_topic, payload)

    # Then the relay says `rejected` with the reason, and nothing ran
    rejected = control_plane.wait_event(host.name, "rejected", job_id=job_id)
    assert rejected["reason"] == reason
    assert rejected["attempt"] == 1
    assert rejected["message"]
    _ping_still_works(control_plane, signer, host)
    _assert_nothing_ran(control_plane, relay, host, job_id)


def _signature_not_base64(signer, envelope):
    wire = json.loads(signer.sign(envelope))
    wire["signature"] = "not base64!"
    return json.dumps(wire).encode()


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(_signed_by_someone_else, id="other-key"),
        pytest.param(_tampered_after_signing, id="tampered"),
        pytest.param(_signature_not_base64, id="signature-not-base64"),
    ],
)
def test_an_envelope_that_does_not_verify_is_rejected_without_naming_a_job(
    forge, new_host, start_relay, control_plane, signer
):
    # Given a running relay, and a real job the control plane is about to send it
    host = new_host()
    relay = start_relay(host)
    real = signer.envelope(host.name, "ping")

    # When an envelope that does not verify arrives first, claiming that job's id
    control_plane.publish(host.jobs_topic, forge(signer, dict(real)))

    # Then the relay reports it as rejected, bad_signature, but names no job
    rejected = control_plane.wait_event(host.name, "rejected", reason="bad_signature")
    assert rejected["job_id"] is None and rejected["attempt"] == 0 and rejected["message"]
    assert control_plane.job_events(host.name, real["job_id"]) == []
    # And counts it
    assert relay.metrics.rejected.values() == {("bad_signature",): 1}
    # And the real envelope of that job still runs
    control_plane.publish(host.jobs_topic, signer.sign(real))
    result = control_plane.wait_event(host.name, "result", job_id=real["job_id"])
    assert result["outcome"] == "succeeded"


def test_invalid_params_message_says_what_is_wrong(new_host, start_relay, control_plane, signer):
    # Given a running relay
    host = new_host()
    start_relay(host)

    # When a ping asks for a negative sleep
    envelope = signer.envelope(host.name, "ping", {"sleep_s": -5})
    control_plane.publish(host.jobs_topic, signer.sign(envelope))

    # Then the rejection names the field and the rule it broke
    rejected = control_plane.wait_event(host.name, "rejected", job_id=envelope["job_id"])
    assert rejected["reason"] == "invalid_params"
    assert "sleep_s" in rejected["message"]
    assert "greater than or equal to 0" in rejected["message"]


def test_replayed_nonce_is_rejected(new_host, start_relay, control_plane, signer):
    # Given a job that ran with some nonce
    host = new_host()
    relay = start_relay(host)
    first = signer.envelope(host.name, "ping")
    control_plane.publish(host.jobs_topic, signer.sign(first))
    control_plane.wait_event(host.name, "result", job_id=first["job_id"])

    # When another, validly signed, envelope reuses that nonce
    replay = signer.envelope(host.name, "ping", nonce=first["nonce"])
    control_plane.publish(host.jobs_topic, signer.sign(replay))

    # Then it is rejected as replayed and does not run
    rejected = control_plane.wait_event(host.name, "rejected", job_id=replay["job_id"])
    assert rejected["reason"] == "replayed"
    _ping_still_works(control_plane, signer, host)
    _assert_nothing_ran(control_plane, relay, host, replay["job_id"])


def test_job_type_this_host_cannot_run_is_rejected_as_disabled(
    new_host, start_relay, control_plane, signer, tmp_path
):
    # Given a relay on a host that is not a Samba AD DC (no sam.ldb)
    host = new_host(macct={"sam_ldb": tmp_path / "no-such" / "sam.ldb"})
    relay = start_relay(host)

    # When a machine-account capture is sent to it
    envelope = signer.envelope(host.name, "macct.capture", {})
    control_plane.publish(host.jobs_topic, signer.sign(envelope))

    # Then it is rejected as disabled, saying why
    rejected = control_plane.wait_event(host.name, "rejected", job_id=envelope["job_id"])
    assert rejected["reason"] == "disabled"
    assert "sam.ldb" in rejected["message"]
    _ping_still_works(control_plane, signer, host)
    _assert_nothing_ran(control_plane, relay, host, envelope["job_id"])


def test_signed_envelope_with_wrong_fields_is_rejected_as_malformed(
    new_host, start_relay, control_plane, signer
):
    # Given a running relay
    host = new_host()
    relay = start_relay(host)

    # When a correctly signed envelope lacks a required field
    envelope = signer.envelope(host.name, "ping")
    del envelope["timeout_s"]
    control_plane.publish(host.jobs_topic, signer.sign(envelope))

    # Then it is rejected as malformed and nothing runs
    rejected = control_plane.wait_event(host.name, "rejected", job_id=envelope["job_id"])
    assert rejected["reason"] == "malformed"
    _ping_still_works(control_plane, signer, host)
    _assert_nothing_ran(control_plane, relay, host, envelope["job_id"])


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(b"this is not json", id="text"),
        pytest.param(b"\x80\x81\x82 not utf-8", id="not-utf8"),
        pytest.param(b"x" * (1024 * 1024), id="one-megabyte"),
        pytest.param(b"[" * 100_000, id="deep-nesting"),
        pytest.param(b'{"foo": 1}', id="wrong-schema"),
        pytest.param(b"[1, 2, 3]", id="array"),
        pytest.param(b'{"envelope": "nope", "signature": 7}', id="wrong-types"),
        pytest.param(b"", id="empty"),
    ],
)
def test_garbage_on_jobs_topic_is_reported_and_relay_survives(
    payload, new_host, start_relay, control_plane, signer
):
    # Given a running relay
    host = new_host()
    start_relay(host)

    # When garbage arrives on its jobs topic
    control_plane.publish(host.jobs_topic, payload)

    # Then it reports a bad_message with the size it got, and keeps running jobs
    bad = control_plane.wait_event(host.name, "bad_message")
    assert bad["reason"] == "malformed"
    assert bad["size"] == len(payload)
    assert bad["message"]
    _ping_still_works(control_plane, signer, host)


def test_refused_cancel_is_not_reported_as_a_rejected_job(
    new_host, start_relay, control_plane, signer
):
    # Given a job running on the relay
    host = new_host()
    start_relay(host)
    job = signer.envelope(host.name, "ping", {"sleep_s": 0.5})
    control_plane.publish(host.jobs_topic, signer.sign(job))
    control_plane.wait_event(host.name, "accepted", job_id=job["job_id"])

    # When an expired cancel request for it arrives
    now = int(time.time())
    cancel = signer.envelope(
        host.name, "cancel", job_id=job["job_id"], issued_at=now - 900, expires_at=now - 600
    )
    control_plane.publish(host.jobs_topic, signer.sign(cancel))

    # Then the relay reports a bad message (not "job rejected") and the job completes
    bad = control_plane.wait_event(host.name, "bad_message")
    assert bad["reason"] == "expired"
    assert "cancel" in bad["message"]
    result = control_plane.wait_event(host.name, "result", job_id=job["job_id"])
    assert result["outcome"] == "succeeded"
    kinds = [event["kind"] for event in control_plane.job_events(host.name, job["job_id"])]
    assert "rejected" not in kinds
