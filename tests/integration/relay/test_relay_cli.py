"""`hostrelay-relay doctor` and `status`: plain answers about this host and its relay."""

from __future__ import annotations

import datetime as dt
import json
import os

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from hostrelay_relay.cli import main

pytestmark = pytest.mark.integration


def _doctor(host, capsys):
    code = main(["doctor", "--config", str(host.config_path)])
    lines = capsys.readouterr().out.splitlines()
    return code, lines


def _line(lines, name):
    [line] = [line for line in lines if f" {name}:" in line]
    return line


def test_doctor_passes_the_relay_checks_on_a_well_set_up_host(new_host, capsys):
    # Given an enrolled host whose broker is up
    host = new_host()

    # When the operator runs doctor
    _code, lines = _doctor(host, capsys)

    # Then every relay check passes (macct checks, if any, speak for the macct plugin)
    for name in (
        "configuration",
        "ca file",
        "client certificate",
        "client key",
        "client key permissions",
        "client certificate validity",
        "envelope public key",
        "broker",
        "state directory",
    ):
        assert _line(lines, name).startswith("ok"), _line(lines, name)
    assert "accepted our certificate" in _line(lines, "broker")


def test_doctor_says_plainly_when_the_certificate_expired(new_host, local_ca, capsys):
    # Given a host whose client certificate expired on 2024-03-01
    host = new_host()
    ca_key = serialization.load_pem_private_key(local_ca.key_path.read_bytes(), None)
    key = ec.generate_private_key(ec.SECP256R1())
    expired = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host.name)]))
        .issuer_name(x509.load_pem_x509_certificate(local_ca.cert_pem).subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc))
        .not_valid_after(dt.datetime(2024, 3, 1, 12, 0, tzinfo=dt.timezone.utc))
        .sign(ca_key, hashes.SHA256())
    )
    host.settings.broker.cert_file.write_bytes(expired.public_bytes(serialization.Encoding.PEM))
    host.settings.broker.key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )

    # When doctor runs
    code, lines = _doctor(host, capsys)

    # Then it fails and says when the certificate expired and what to do
    assert code == 1
    validity = _line(lines, "client certificate validity")
    assert validity.startswith("FAIL")
    assert "EXPIRED on 2024-03-01 12:00 UTC" in validity
    assert "re-enroll" in validity
    assert _line(lines, "broker").startswith("FAIL")


def test_doctor_flags_a_client_key_others_can_read(new_host, capsys):
    # Given a client key left world-readable
    host = new_host()
    host.settings.broker.key_file.chmod(0o644)

    # When doctor runs
    code, lines = _doctor(host, capsys)

    # Then it fails that check and says how to fix it
    assert code == 1
    line = _line(lines, "client key permissions")
    assert line.startswith("FAIL")
    assert "0644" in line and "chmod 600" in line


def test_doctor_reports_an_unreachable_broker(new_host, capsys):
    # Given a config pointing at a port nobody listens on
    from hostrelay_local.broker import free_port

    host = new_host(broker={"port": free_port()})

    # When doctor runs, Then the broker check fails saying it cannot reach it
    code, lines = _doctor(host, capsys)
    assert code == 1
    assert "cannot reach" in _line(lines, "broker")


def test_doctor_reports_an_invalid_config(tmp_path, capsys):
    # Given a config file with a host name that cannot be a topic level
    config = tmp_path / "relay.toml"
    config.write_text('host = "DC 01"\n')

    # When doctor runs
    code = main(["doctor", "--config", str(config)])

    # Then it fails on the configuration and says what is wrong
    out = capsys.readouterr().out
    assert code == 1
    assert out.startswith("FAIL  configuration:")
    assert "DNS label" in out


def test_run_refuses_an_invalid_config_with_a_clear_message(tmp_path, capsys):
    # Given a config file with an unknown setting
    config = tmp_path / "relay.toml"
    config.write_text('host = "dc01"\nheartbeat = 5\n')

    # When the relay is started with it, Then it exits 2 naming the offending key
    with pytest.raises(SystemExit) as exited:
        main(["run", "--config", str(config)])
    assert exited.value.code == 2
    assert "heartbeat: Extra inputs are not permitted" in capsys.readouterr().err


def test_status_shows_jobs_outbox_and_last_connect(
    new_host, start_relay, control_plane, signer, capsys
):
    # Given a relay that ran one ping
    host = new_host()
    relay = start_relay(host)
    envelope = signer.envelope(host.name, "ping")
    control_plane.publish(host.jobs_topic, signer.sign(envelope))
    control_plane.wait_event(host.name, "result", job_id=envelope["job_id"])
    relay.link.flush(5)

    # When the operator asks for its status
    assert main(["status", "--config", str(host.config_path), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert main(["status", "--config", str(host.config_path)]) == 0
    text = capsys.readouterr().out

    # Then it shows the finished job, an empty outbox, the running relay and its last connect
    assert status["finished"] == 1
    assert (status["accepted"], status["running"], status["outbox_depth"]) == (0, 0, 0)
    assert status["relay_pid"] == os.getpid()
    assert status["last_connect_at"] is not None
    assert "0 queued, 0 running, 1 finished" in text
    assert f"running (pid {os.getpid()})" in text


def test_status_before_the_relay_ever_ran_says_so(new_host, capsys):
    # Given a host whose relay never started
    host = new_host()

    # When asking for status, Then it says there is no ledger yet
    assert main(["status", "--config", str(host.config_path)]) == 1
    assert "the relay has not run yet" in capsys.readouterr().err
