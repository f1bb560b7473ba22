"""A signed ping travels control plane → broker → relay → broker → control plane."""

from __future__ import annotations

import json
import os

import pytest

from hostrelay_relay import __version__
from hostrelay_relay.cli import main
from hostrelay_relay.ledger import Ledger

pytestmark = pytest.mark.integration


def test_ping_job_runs_end_to_end(new_host, start_relay, control_plane, signer):
    # Given a relay connected to the broker with its own client certificate
    host = new_host(accepted_hold_s=0)
    start_relay(host)
    hello = control_plane.wait_event(host.name, "hello")
    assert hello["relay_version"] == __version__
    assert hello["jobs"] == []
    assert hello["jobs_omitted"] == 0

    # When the control plane publishes a signed ping for that host
    envelope = signer.envelope(host.name, "ping", {"message": "hi there"})
    control_plane.publish(host.jobs_topic, signer.sign(envelope))

    # Then the relay accepts it and reports a successful result with the echoed message
    job_id = envelope["job_id"]
    accepted = control_plane.wait_event(host.name, "accepted", job_id=job_id)
    result = control_plane.wait_event(host.name, "result", job_id=job_id)
    assert accepted["attempt"] == 1
    assert result["outcome"] == "succeeded"
    assert result["error"] is None
    assert result["result"]["pong"] is True
    assert result["result"]["message"] == "hi there"
    assert result["output"] is None
    # and events name the job but never the host (the topic does)
    assert "host" not in result
    kinds = [event["kind"] for event in control_plane.job_events(host.name, job_id)]
    assert kinds == ["accepted", "result"]


def test_job_ending_within_the_accepted_hold_sends_its_result_alone(
    new_host, start_relay, control_plane, signer
):
    # Given a relay that holds `accepted` back for a second
    host = new_host(accepted_hold_s=1.0)
    relay = start_relay(host)
    control_plane.wait_event(host.name, "hello")

    # When a ping that ends at once and one that runs for 1.5 s arrive
    quick = signer.envelope(host.name, "ping")
    slow = signer.envelope(host.name, "ping", {"sleep_s": 1.5})
    control_plane.publish(host.jobs_topic, signer.sign(quick))
    control_plane.publish(host.jobs_topic, signer.sign(slow))

    # Then the quick one is reported by its result alone, and its `accepted` left no trace
    control_plane.wait_event(host.name, "result", job_id=quick["job_id"])
    assert [e["kind"] for e in control_plane.job_events(host.name, quick["job_id"])] == ["result"]
    # while the slow one is accepted once the hold passed, and then ends
    control_plane.wait_event(host.name, "result", job_id=slow["job_id"], timeout=10)
    kinds = [e["kind"] for e in control_plane.job_events(host.name, slow["job_id"])]
    assert kinds == ["accepted", "result"]
    relay.stop()
    assert Ledger(host.settings.ledger_path).outbox_depth() == 0


def test_relay_announces_itself_online_and_offline(new_host, start_relay, control_plane):
    # Given a running relay
    host = new_host()
    relay = start_relay(host)
    control_plane.wait_until(lambda: b"online" in control_plane.statuses(host.name))

    # When it stops cleanly
    relay.stop()

    # Then its retained status says offline
    control_plane.wait_until(lambda: control_plane.statuses(host.name)[-1:] == [b"offline"])


def test_relay_sends_heartbeats_while_connected(new_host, start_relay, control_plane):
    # Given a relay configured to beat every 0.2 s
    host = new_host(heartbeat_s=0.2)
    start_relay(host)

    # When a moment passes
    beats = control_plane.wait_until(
        lambda: [e for e in control_plane.events(host.name) if e["kind"] == "heartbeat"][2:]
    )

    # Then heartbeats arrive, each with the relay version and its running job count
    assert all(beat["running"] == 0 and beat["relay_version"] == __version__ for beat in beats)
    assert all(beat["uptime_s"] >= 0 for beat in beats)


def test_second_relay_on_the_same_state_directory_refuses_to_start(new_host, start_relay, capsys):
    # Given a relay running for a host
    host = new_host()
    start_relay(host)

    # When a second relay process is started with the same configuration
    from hostrelay_relay.daemon import RelayAlreadyRunning, RelayDaemon

    second = RelayDaemon(host.settings)

    # Then it refuses instead of sharing the ledger, and status still names the first one
    with pytest.raises(RelayAlreadyRunning, match="another relay is using"):
        second.start()
    assert main(["status", "--config", str(host.config_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["relay_pid"] == os.getpid()
