"""Jobs through the whole local stack: HTTP API → dispatch → mosquitto → relay dc01 → results."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from hostrelay_local.stack import LocalStack
from tests.e2e.conftest import ApiClient

pytestmark = pytest.mark.e2e


def _dispatcher_done(stack: LocalStack) -> bool:
    """No invocation of the dispatch function (the API's) is pending and no message waits on
    the dispatch queue or is being handled: the dispatcher is done."""
    import boto3

    if stack.async_invocations_pending:
        return False

    assert stack.resources is not None
    sqs = boto3.client("sqs", region_name="us-east-1")  # in this process: the stack's moto
    attributes = sqs.get_queue_attributes(
        QueueUrl=stack.resources.refs["DispatchQueue"],
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ],
    )["Attributes"]
    return all(value == "0" for value in attributes.values())


def test_relay_was_enrolled_through_the_api(stack: LocalStack, api: ApiClient) -> None:
    # Given the stack started relay dc01
    host = api.get("/v1/hosts/dc01").json()

    # Then dc01 went through enrollment: its record carries the certificate IoT issued it,
    # and its key never left its own config directory
    assert host["state"] == "online"
    assert host["cert_expires_at"]
    assert stack.relay is not None
    assert (stack.relay.config_dir / "client.key").stat().st_mode & 0o077 == 0


def test_ping_job_reaches_succeeded(api: ApiClient) -> None:
    # Given relay dc01 is online
    # When an operator queues a ping for dc01
    job_id = api.create_job("ping", "dc01", {"message": "hello from e2e"})

    # Then the job ends SUCCEEDED with the relay's pong
    job = api.wait_finished(job_id)
    assert job["state"] == "SUCCEEDED", job
    assert job["result"]["pong"] is True
    assert job["result"]["message"] == "hello from e2e"
    assert job["started_at"] and job["finished_at"]


def test_a_ping_job_puts_exactly_one_job_state_change_event(
    stack: LocalStack, api: ApiClient
) -> None:
    assert stack.state_changes is not None
    # When a ping job runs to its end through the stack
    job = api.wait_finished(api.create_job("ping", "dc01"))
    assert job["state"] == "SUCCEEDED"
    # Then the bus got a Job State Change for it, with the documented detail (docs/events.md)
    recorder = stack.state_changes
    recorder.wait_for(lambda events: any(e["detail"].get("job_id") == job["id"] for e in events))
    [event] = recorder.of_job(job["id"])
    assert (event["source"], event["detail-type"]) == ("hostrelay", "Job State Change")
    detail = event["detail"]
    assert detail["version"] == "1"
    assert (detail["job_id"], detail["type"], detail["host"]) == (job["id"], "ping", "dc01")
    assert detail["state"] == "SUCCEEDED"
    # (a result the results function reads in one batch with its `accepted` ends a DISPATCHED job)
    assert detail["previous_state"] in {"DISPATCHED", "IN_PROGRESS"}
    assert detail["finished_at"] == job["finished_at"] and detail["error"] is None
    assert detail["duration_s"] >= 0
    # And no second one follows: by the time a later job's event is out, still one
    marker = api.wait_finished(api.create_job("ping", "dc01"))
    recorder.wait_for(lambda events: any(e["detail"].get("job_id") == marker["id"] for e in events))
    assert len(recorder.of_job(job["id"])) == 1


def test_root_and_health_answer_like_api_gateway(stack: LocalStack, api: ApiClient) -> None:
    # Given the HTTP API
    # When a client calls the root, which no route (`/{proxy+}`) covers, and the health check
    root = api.session.get(stack.api_url + "/", timeout=10)
    health = api.session.get(stack.api_url + "/v1/health", timeout=10)

    # Then API Gateway's own 404 comes back for the root, and the function answers the rest
    assert root.status_code == 404
    assert root.json() == {"message": "Not Found"}
    assert health.status_code == 200
    assert health.headers["apigw-requestid"]


def test_job_for_a_stopped_relay_waits_queued_and_runs_after_its_hello(
    stack: LocalStack, api: ApiClient
) -> None:
    assert stack.relay is not None
    # Given relay dc01 was stopped and the sweeper has since marked the host offline
    stack.relay.stop()
    try:
        deadline = time.monotonic() + 60
        while api.host_state("dc01") != "offline" and time.monotonic() < deadline:
            time.sleep(0.5)
        assert api.host_state("dc01") == "offline"

        # When a ping is queued for it
        job_id = api.create_job("ping", "dc01")

        # Then the dispatcher takes it and leaves it QUEUED while the relay is away
        deadline = time.monotonic() + 30
        while not _dispatcher_done(stack):
            assert time.monotonic() < deadline, "the dispatcher never took the job"
            time.sleep(0.1)
        assert api.job(job_id)["state"] == "QUEUED"

        # When the relay comes back and says hello
        stack.relay.start()

        # Then the job is delivered and succeeds, and the host is online again
        job = api.wait_finished(job_id, timeout_s=60)
        assert job["state"] == "SUCCEEDED", job
        assert api.host_state("dc01") == "online"
    finally:
        stack.relay.start()  # harmless when already running


def _hostrelay_cli() -> list[str]:
    script = Path(sys.executable).with_name("hostrelay")
    if script.exists():
        return [str(script)]
    found = shutil.which("hostrelay")
    if found is None:
        pytest.skip("the hostrelay CLI is not installed")
    return [found]


def test_cli_runs_ping_and_waits_for_success(stack: LocalStack) -> None:
    pytest.importorskip("hostrelay_cli.main")
    # Given the CLI pointed at the local stack with the admin token
    env = dict(os.environ, HOSTRELAY_URL=stack.api_url, HOSTRELAY_TOKEN=stack.admin_token)

    # When an operator runs a ping and waits for it
    done = subprocess.run(
        [*_hostrelay_cli(), "jobs", "run", "ping", "--host", "dc01", "--wait"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    # Then the command exits 0
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_host_certificate_cannot_take_over_the_bridges_session(
    stack: LocalStack, api: ApiClient, tmp_path: Path
) -> None:
    assert stack.broker is not None
    bridge_id = stack.broker.topic_rules[0].common_name
    # Given a certificate the stack's CA issued to a host
    intruder = stack.broker.issue_host_identity("intruder", tmp_path)

    # When that host connects with the topic-rule bridge's client id
    connected = threading.Event()
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=bridge_id, clean_session=True,
        protocol=mqtt.MQTTv311,
    )  # fmt: skip
    client.tls_set(
        ca_certs=str(stack.broker.endpoint.ca_file),
        certfile=str(intruder.cert_path),
        keyfile=str(intruder.key_path),
    )
    client.on_connect = lambda c, userdata, flags, reason, props: connected.set()
    client.connect(stack.broker.endpoint.host, stack.broker.port)
    client.loop_start()
    try:
        assert connected.wait(10)

        # Then the broker names its session after its certificate, the bridge keeps its own,
        # and results still come back
        log = stack.broker.log_path.read_text()
        assert "as intruder (" in log
        assert f"Client {bridge_id} already connected, closing old connection" not in log
        job = api.wait_finished(api.create_job("ping", "dc01"))
        assert job["state"] == "SUCCEEDED", job
    finally:
        client.disconnect()
        client.loop_stop()
