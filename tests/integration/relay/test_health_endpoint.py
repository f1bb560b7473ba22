"""The relay's health endpoint: /healthz checks, /metrics for Prometheus, /status as JSON."""

from __future__ import annotations

import http.client
import json
import os

import pytest

from hostrelay_relay import __version__
from hostrelay_relay.cli import main
from hostrelay_relay.health_server import parse_listen

pytestmark = pytest.mark.integration


def _get(relay, path):
    host, port = parse_listen(relay.health.address)
    connection = http.client.HTTPConnection(host, port, timeout=5)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type"), response.read().decode()
    finally:
        connection.close()


def _healthz(relay):
    status, content_type, body = _get(relay, "/healthz")
    assert content_type == "application/json"
    return status, json.loads(body)


def test_healthz_is_ok_while_connected_and_names_the_broker_when_it_goes(
    own_broker, new_host, start_relay, persistent_control_plane
):
    # Given a relay connected to its broker (its hello acknowledged)
    host = new_host(own_broker)
    relay = start_relay(host)
    control_plane = persistent_control_plane
    control_plane.wait_until(lambda: _healthz(relay)[0] == 200)

    # Then /healthz passes every check
    status, body = _healthz(relay)
    assert status == 200
    assert body["status"] == "ok"
    assert body["failing"] == []
    assert {check["name"]: check["ok"] for check in body["checks"]} == {
        "broker": True,
        "ledger": True,
        "heartbeat": True,
    }

    # When the broker stops
    own_broker.stop()

    # Then /healthz answers 503 and says it is the broker that fails, and nothing else
    control_plane.wait_until(lambda: _healthz(relay)[0] == 503)
    status, body = _healthz(relay)
    assert status == 503
    assert body["status"] == "failing"
    assert body["failing"] == ["broker"]
    [broker] = [check for check in body["checks"] if check["name"] == "broker"]
    assert broker["detail"] == "not connected to the broker"


def test_metrics_count_a_completed_ping_and_a_rejection(
    new_host, start_relay, control_plane, signer
):
    # Given a relay that ran a ping and refused an envelope for another host
    host = new_host()
    relay = start_relay(host)
    ping = signer.envelope(host.name, "ping")
    control_plane.publish(host.jobs_topic, signer.sign(ping))
    control_plane.wait_event(host.name, "result", job_id=ping["job_id"])
    stranger = signer.envelope("some-other-host", "ping")
    control_plane.publish(host.jobs_topic, signer.sign(stranger))
    control_plane.wait_event(host.name, "rejected", job_id=stranger["job_id"])

    # When Prometheus scrapes it
    status, content_type, text = _get(relay, "/metrics")

    # Then it gets the text format with the ping, the rejection and the relay's identity
    assert status == 200
    assert content_type == "text/plain; version=0.0.4; charset=utf-8"
    samples = dict(line.rsplit(" ", 1) for line in text.splitlines() if not line.startswith("#"))
    assert samples['hostrelay_relay_jobs_total{type="ping",outcome="succeeded"}'] == "1"
    assert samples['hostrelay_relay_envelopes_rejected_total{reason="wrong_host"}'] == "1"
    assert samples['hostrelay_relay_handler_duration_seconds_count{type="ping"}'] == "1"
    assert samples[f'hostrelay_relay_info{{version="{__version__}",host="{host.name}"}}'] == "1"
    assert samples["hostrelay_relay_jobs_running"] == "0"
    assert samples["hostrelay_relay_reconnects_total"] == "0"
    assert int(samples["hostrelay_relay_outbox_depth"]) >= 0
    assert "# TYPE hostrelay_relay_handler_duration_seconds histogram" in text


def test_status_shows_the_running_job_and_the_connection(
    new_host, start_relay, control_plane, signer, capsys
):
    # Given a relay running a ping that takes a while
    host = new_host()
    relay = start_relay(host)
    job = signer.envelope(host.name, "ping", {"sleep_s": 3})
    control_plane.publish(host.jobs_topic, signer.sign(job))
    control_plane.wait_event(host.name, "accepted", job_id=job["job_id"])

    def running_and_acknowledged():
        document = json.loads(_get(relay, "/status")[2])
        return document["running_jobs"] and document["last_heartbeat_ack_at"]

    control_plane.wait_until(running_and_acknowledged)

    # When /status is asked
    status, content_type, body = _get(relay, "/status")
    document = json.loads(body)

    # Then it names the host, the connection, the running job and the counts
    assert status == 200
    assert content_type == "application/json"
    assert document["host"] == host.name
    assert document["version"] == __version__
    assert document["pid"] == os.getpid()
    assert document["connected"] is True
    assert document["uptime_s"] >= 0
    assert document["last_heartbeat_ack_at"] is not None
    [running] = document["running_jobs"]
    assert (running["job_id"], running["type"]) == (job["job_id"], "ping")
    assert running["started_at"] > 0
    assert document["running"] == 1
    assert document["outbox_depth"] >= 0
    assert document["counts"]["envelopes_rejected"] == {}

    # and `hostrelay-relay status` shows what the running relay says of itself
    assert main(["status", "--config", str(host.config_path), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["source"] == "relay"
    assert shown["connected"] is True
    assert [job_["job_id"] for job_ in shown["running_jobs"]] == [job["job_id"]]
    assert main(["status", "--config", str(host.config_path)]) == 0
    text = capsys.readouterr().out
    assert "broker:       connected" in text
    assert f"running:      {job['job_id']} (ping)" in text


def test_unknown_paths_are_not_found(new_host, start_relay):
    relay = start_relay(new_host())
    status, _, body = _get(relay, "/nothing-here")
    assert status == 404
    assert json.loads(body) == {"error": "not found"}


def test_the_endpoint_can_be_switched_off(new_host, start_relay):
    # Given a relay whose health endpoint is disabled
    relay = start_relay(new_host(health={"enabled": False}))

    # Then it runs without one
    assert relay.health is None
    assert relay.link.connected.is_set()
