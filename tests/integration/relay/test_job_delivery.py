"""At-most-once runs, cancel and timeout, and no lost events across crashes and broker outages."""

from __future__ import annotations

import signal

import pytest

from hostrelay_relay.ledger import Ledger

pytestmark = pytest.mark.integration


def _results(control_plane, host, job_id):
    return [e for e in control_plane.job_events(host.name, job_id) if e["kind"] == "result"]


def test_redelivered_job_does_not_run_twice(new_host, start_relay, control_plane, signer):
    # Given a ping that ran to completion (accepted as soon as it arrived)
    host = new_host(accepted_hold_s=0)
    start_relay(host)
    envelope = signer.envelope(host.name, "ping")
    control_plane.publish(host.jobs_topic, signer.sign(envelope))
    first = control_plane.wait_event(host.name, "result", job_id=envelope["job_id"])

    # When the same envelope arrives again, and then a freshly signed one for the same attempt
    control_plane.publish(host.jobs_topic, signer.sign(envelope))
    resigned = signer.envelope(host.name, "ping", job_id=envelope["job_id"])
    control_plane.publish(host.jobs_topic, signer.sign(resigned))

    # And a marker job after them: the relay takes its jobs topic in order, so once the
    # marker's result is out, whatever the redeliveries caused has been sent before it
    marker = signer.envelope(host.name, "ping")
    control_plane.publish(host.jobs_topic, signer.sign(marker))
    control_plane.wait_event(host.name, "result", job_id=marker["job_id"])

    # Then the relay repeated the stored result each time instead of running the job again
    results = _results(control_plane, host, envelope["job_id"])
    assert len(results) == 3
    assert {r["event_id"] for r in results} == {first["event_id"]}
    assert {r["result"]["clock"] for r in results} == {first["result"]["clock"]}
    kinds = [e["kind"] for e in control_plane.job_events(host.name, envelope["job_id"])]
    assert kinds.count("accepted") == 1
    assert "rejected" not in kinds


def test_redelivered_running_job_is_acknowledged_not_restarted(
    new_host, start_relay, control_plane, signer
):
    # Given a ping that is still running
    host = new_host()
    start_relay(host)
    envelope = signer.envelope(host.name, "ping", {"sleep_s": 0.6})
    control_plane.publish(host.jobs_topic, signer.sign(envelope))
    control_plane.wait_event(host.name, "accepted", job_id=envelope["job_id"])

    # When it is delivered again
    control_plane.publish(host.jobs_topic, signer.sign(envelope))

    # Then the relay says `accepted` again, and the job finishes exactly once
    control_plane.wait_until(
        lambda: (
            [e["kind"] for e in control_plane.job_events(host.name, envelope["job_id"])]
            == ["accepted", "accepted", "result"]
        )
    )


def test_cancel_stops_a_running_job(new_host, start_relay, control_plane, signer):
    # Given a long ping running on the relay
    host = new_host()
    start_relay(host)
    job = signer.envelope(host.name, "ping", {"sleep_s": 30})
    control_plane.publish(host.jobs_topic, signer.sign(job))
    control_plane.wait_event(host.name, "accepted", job_id=job["job_id"])

    # When the control plane sends a signed cancel for it
    cancel = signer.envelope(host.name, "cancel", job_id=job["job_id"])
    control_plane.publish(host.jobs_topic, signer.sign(cancel))

    # Then the job ends canceled, promptly
    result = control_plane.wait_event(host.name, "result", timeout=5, job_id=job["job_id"])
    assert result["outcome"] == "canceled"
    assert result["error"]["code"] == "canceled"


def test_job_past_its_timeout_is_reported_timed_out(new_host, start_relay, control_plane, signer):
    # Given a relay
    host = new_host()
    start_relay(host)

    # When a ping sleeps longer than the envelope's timeout allows
    job = signer.envelope(host.name, "ping", {"sleep_s": 30}, timeout_s=1)
    control_plane.publish(host.jobs_topic, signer.sign(job))

    # Then it is stopped and reported timed out
    result = control_plane.wait_event(host.name, "result", timeout=5, job_id=job["job_id"])
    assert result["outcome"] == "timed_out"
    assert result["error"]["code"] == "timeout"


def test_relay_killed_mid_job_reports_it_after_restart_and_loses_no_event(
    own_broker, persistent_control_plane, new_host, spawn_relay, signer
):
    control_plane = persistent_control_plane
    # Given a relay process with a long job running and a short one about to finish,
    # and a control plane that keeps its session across a broker restart
    host = new_host(own_broker)
    relay = spawn_relay(host)
    control_plane.wait_event(host.name, "hello")
    long_job = signer.envelope(host.name, "ping", {"sleep_s": 60})
    short_job = signer.envelope(host.name, "ping", {"sleep_s": 1.0})
    control_plane.publish(host.jobs_topic, signer.sign(long_job))
    control_plane.publish(host.jobs_topic, signer.sign(short_job))
    control_plane.wait_event(host.name, "accepted", job_id=short_job["job_id"])
    control_plane.wait_event(host.name, "accepted", job_id=long_job["job_id"])

    # When the broker goes away, the short job finishes during the outage (its result can
    # only wait in the outbox), and then the relay is killed outright
    own_broker.stop()
    ledger = Ledger(host.settings.ledger_path, read_only=True)
    control_plane.wait_until(lambda: ledger.job(short_job["job_id"], 1).state == "finished")
    assert ledger.outbox_depth() >= 1
    ledger.close()
    relay.send_signal(signal.SIGKILL)
    relay.wait(10)
    own_broker.start()
    spawn_relay(host)

    # Then the result queued before the crash arrives, and the job the crash interrupted is
    # reported failed: not retryable, since it may have partially run
    short_result = control_plane.wait_event(
        host.name, "result", timeout=20, job_id=short_job["job_id"]
    )
    assert short_result["outcome"] == "succeeded"
    long_result = control_plane.wait_event(host.name, "result", job_id=long_job["job_id"])
    assert long_result["outcome"] == "failed"
    assert long_result["error"] == {
        "code": "relay_restarted",
        "message": "relay stopped while the job was running; it may have partially run",
        "retryable": False,
    }


def test_events_queued_during_broker_outage_arrive_in_order(
    own_broker, persistent_control_plane, new_host, start_relay, signer
):
    control_plane = persistent_control_plane
    # Given a job streaming 40 progress events, one every 50 ms, and a control plane whose
    # session survives a broker restart (as the IoT topic rule always listens)
    host = new_host(own_broker)
    relay = start_relay(host)
    job = signer.envelope(host.name, "test.ticker", {"count": 40, "interval_s": 0.05})
    control_plane.publish(host.jobs_topic, signer.sign(job))

    def progress():
        events = control_plane.job_events(host.name, job["job_id"])
        first_seen = {e["event_id"]: e for e in events if e["kind"] == "progress"}
        return [e["done"] for e in first_seen.values()]

    control_plane.wait_until(lambda: len(progress()) >= 5)

    # When the broker is down for a while mid-stream, so events pile up in the outbox
    own_broker.stop()
    control_plane.wait_until(lambda: not relay.link.connected.is_set())
    control_plane.wait_until(lambda: relay.ledger.outbox_depth() >= 5)
    own_broker.start()

    # Then every progress event arrives exactly in the order it was made, none missing
    control_plane.wait_until(lambda: _results(control_plane, host, job["job_id"]), timeout=20)
    assert progress() == list(range(40))
    hellos = [e for e in control_plane.events(host.name) if e["kind"] == "hello"]
    assert len(hellos) >= 2, "the relay says hello on every connection"


def test_hello_after_reconnect_lists_the_running_job(
    own_broker, persistent_control_plane, new_host, start_relay, signer
):
    control_plane = persistent_control_plane
    # Given a relay running a long job (cut short when the test ends)
    host = new_host(own_broker, drain_timeout_s=0.2)
    relay = start_relay(host)
    job = signer.envelope(host.name, "ping", {"sleep_s": 30})
    control_plane.publish(host.jobs_topic, signer.sign(job))
    control_plane.wait_event(host.name, "accepted", job_id=job["job_id"])

    # When the broker restarts and the relay reconnects
    own_broker.stop()
    control_plane.wait_until(lambda: not relay.link.connected.is_set())
    own_broker.start()

    # Then its hello tells the control plane the job is still running
    def hello_listing_the_job():
        return [e for e in control_plane.events(host.name) if e["kind"] == "hello" and e["jobs"]]

    [hello] = control_plane.wait_until(hello_listing_the_job, timeout=15)
    assert hello["jobs"] == [{"job_id": job["job_id"], "attempt": 1, "state": "running"}]
    assert hello["jobs_omitted"] == 0


def test_sigterm_drains_a_running_job_and_exits_zero(new_host, spawn_relay, control_plane, signer):
    # Given a relay process running a short job
    host = new_host()
    relay = spawn_relay(host)
    control_plane.wait_event(host.name, "hello")
    job = signer.envelope(host.name, "ping", {"sleep_s": 1.5})
    control_plane.publish(host.jobs_topic, signer.sign(job))
    control_plane.wait_event(host.name, "accepted", job_id=job["job_id"])

    # When it is asked to stop
    relay.send_signal(signal.SIGTERM)

    # Then the job completes, its result is delivered, the relay says offline and exits 0
    assert relay.wait(15) == 0
    result = control_plane.wait_event(host.name, "result", job_id=job["job_id"])
    assert result["outcome"] == "succeeded"
    control_plane.wait_until(lambda: control_plane.statuses(host.name)[-1:] == [b"offline"])
