"""The local fleet: many enrolled relays in few processes, each one a host of its own."""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import NameOID
from ulid import ULID

from hostrelay.envelope import build_envelope, sign_envelope
from hostrelay_local.fleet import FleetProcess
from hostrelay_local.leftovers import end_leftovers, find_leftovers
from hostrelay_local.pki import IssuedCert
from hostrelay_local.stack import LocalStack
from hostrelay_local.stack_process import StackProcess
from hostrelay_relay.ledger import Ledger
from tests.e2e.conftest import FLEET_SIZE, FLEET_TAGS, ApiClient, watching_logs
from tests.integration.relay.conftest import connect_observer

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def client(fleet_stack: LocalStack) -> ApiClient:
    return ApiClient(fleet_stack.api_url, fleet_stack.admin_token)


def _fleet(stack: LocalStack) -> list[str]:
    assert stack.fleet is not None
    return stack.fleet.hosts


def _worker_of(stack: LocalStack, host: str) -> FleetProcess:
    assert stack.fleet is not None
    [process] = [p for p in stack.fleet.processes if host in p.hosts]
    return process


def _relay_dir(stack: LocalStack, host: str) -> Path:
    assert stack.fleet is not None
    return stack.fleet.directory / host


@contextmanager
def _paused(process: FleetProcess) -> Iterator[None]:
    """SIGSTOP a fleet worker (its relays neither read nor reconnect), SIGCONT after."""
    assert process.pid is not None
    os.kill(process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(process.pid, signal.SIGCONT)


def test_every_fleet_host_was_enrolled_with_its_own_identity(
    fleet_stack: LocalStack, client: ApiClient
) -> None:
    # Given the stack started with a fleet of 12 relays in 2 processes
    hosts = _fleet(fleet_stack)
    assert fleet_stack.fleet is not None
    assert len(hosts) == FLEET_SIZE and len(fleet_stack.fleet.processes) == 2

    # Then the control plane knows each of them online, with the certificate it issued
    listed = {host["name"]: host for host in client.get("/v1/hosts").json()["hosts"]}
    for name in hosts:
        assert listed[name]["state"] == "online", listed[name]
        assert listed[name]["cert_expires_at"]
        assert listed[name]["tags"] == FLEET_TAGS  # set at enrollment
    # And each relay has its own key (made in its own 0700 config dir), a certificate naming
    # it, and its own ledger
    subjects, keys = set(), set()
    for name in hosts:
        config = _relay_dir(fleet_stack, name) / "config"
        assert config.stat().st_mode & 0o077 == 0
        assert (config / "client.key").stat().st_mode & 0o077 == 0
        cert = x509.load_pem_x509_certificate((config / "client.pem").read_bytes())
        subjects.add(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)
        keys.add(cert.public_key().public_numbers())
        assert (_relay_dir(fleet_stack, name) / "state" / "ledger.sqlite3").exists()
    assert subjects == set(hosts) and len(keys) == len(hosts)


def test_a_ping_to_every_fleet_host_succeeds(fleet_stack: LocalStack, client: ApiClient) -> None:
    # Given every fleet host online
    hosts = _fleet(fleet_stack)

    # When an operator queues a ping for each of them at once
    job_ids = {host: client.create_job("ping", host, {"message": host}) for host in hosts}

    # Then every job ends SUCCEEDED with its own relay's pong
    for host, job_id in job_ids.items():
        job = client.wait_finished(job_id, timeout_s=60)
        assert (job["host"], job["state"]) == (host, "SUCCEEDED"), job
        assert job["result"]["pong"] is True


def test_a_fleet_host_cannot_read_another_fleet_hosts_jobs(
    fleet_stack: LocalStack, client: ApiClient
) -> None:
    # Given fleet-001 and fleet-002 in different worker processes, and someone holding
    # fleet-001's key and certificate (its own relay paused, so the session is theirs)
    first, second = _fleet(fleet_stack)[:2]
    assert _worker_of(fleet_stack, first) is not _worker_of(fleet_stack, second)
    assert fleet_stack.broker is not None
    config = _relay_dir(fleet_stack, first) / "config"
    identity = IssuedCert(first, 0, config / "client.pem", config / "client.key")
    with _paused(_worker_of(fleet_stack, first)):
        intruder = connect_observer(
            fleet_stack.broker.endpoint,
            identity,
            [f"hostrelay/{second}/jobs", "hostrelay/+/jobs", f"hostrelay/{first}/jobs"],
            client_id=first,
        )
        try:
            # When a job goes to fleet-002, then one to fleet-001
            for_second = client.create_job("ping", second)
            assert client.wait_finished(for_second)["state"] == "SUCCEEDED"
            for_first = client.create_job("ping", first)
            intruder.wait_until(lambda: intruder.messages)
        finally:
            intruder.close()

    # Then fleet-001's identity received fleet-001's job only, never fleet-002's (the job may
    # come more than once: unaccepted, it is published again, and the observer's filters
    # overlap)
    assert {topic for topic, _ in intruder.messages} == {f"hostrelay/{first}/jobs"}
    assert all(for_first in payload.decode() for _, payload in intruder.messages)
    assert not any(for_second in payload.decode() for _, payload in intruder.messages)
    # And fleet-001's own relay, running again, says hello and gets its job re-published
    assert client.wait_finished(for_first, timeout_s=60)["state"] == "SUCCEEDED"


def test_a_forged_envelope_is_rejected_by_the_fleet_relay(
    fleet_stack: LocalStack, client: ApiClient
) -> None:
    # Given a ping envelope for fleet-003 signed with a key that is not the control plane's,
    # published on fleet-003's jobs topic with the control plane's own broker rights
    host = _fleet(fleet_stack)[2]
    job_id = str(ULID())
    envelope = build_envelope(
        job_id=job_id, attempt=1, job_type="ping", host=host, params={}, timeout_s=30, ttl_s=300
    )
    forged = sign_envelope(envelope, Ed25519PrivateKey.generate())

    def rejection_reported(record: logging.LogRecord) -> bool:
        fields = vars(record)
        return (
            record.getMessage() == "relay rejected an unverified envelope"
            and fields.get("host") == host
            and fields.get("reason") == "bad_signature"
        )

    with watching_logs(rejection_reported) as watch:
        iot_data = fleet_stack.aws_client("iot-data")
        iot_data.publish(topic=f"hostrelay/{host}/jobs", qos=1, payload=forged)

        # Then the relay reports the rejection, which reaches the control plane through the
        # broker, the topic rule and the results queue
        assert watch.seen.wait(30), "no rejection reached the control plane"

    # And the relay never accepted or ran it, and stays online
    ledger = Ledger(_relay_dir(fleet_stack, host) / "state" / "ledger.sqlite3", read_only=True)
    try:
        assert ledger.job(job_id, 1) is None
    finally:
        ledger.close()
    assert client.host_state(host) == "online"
    assert client.wait_finished(client.create_job("ping", host))["state"] == "SUCCEEDED"


def test_a_fleet_worker_that_dies_is_restarted_and_its_hosts_come_back(
    fleet_stack: LocalStack, client: ApiClient
) -> None:
    # Given the worker process of the last fleet host, killed outright
    host = _fleet(fleet_stack)[-1]
    worker = _worker_of(fleet_stack, host)
    killed = worker.pid
    assert killed is not None
    os.kill(killed, signal.SIGKILL)
    assert worker.wait_exited(30) == -signal.SIGKILL

    # When the stack's supervisor looks (as `make run` does every half second)
    assert worker.needs_restart()
    fleet_stack.supervise()

    # Then a new worker runs the same hosts, enrolled already (no new enrollment), and a job
    # for one of them, queued meanwhile, succeeds once its relay said hello again
    assert worker.pid not in (None, killed) and worker.is_running()
    job_id = client.create_job("ping", host)
    assert client.wait_finished(job_id, timeout_s=90)["state"] == "SUCCEEDED"
    for name in worker.hosts:
        assert fleet_stack.wait_host_state(name, "online", 60), name


def test_fleet_workers_a_killed_stack_left_are_ended_by_the_next_start(tmp_path: Path) -> None:
    # Given `hostrelay-local run --fleet 2` killed outright (SIGKILL: it stops nothing)
    state_dir = tmp_path / "state"
    stack = StackProcess(
        state_dir, extra_args=["--no-samba", "--no-directory", "--no-relay", "--fleet", "2"]
    ).start()
    workers = [process["pid"] for process in stack.read_state()["fleet"]["processes"]]
    assert stack.pid is not None
    os.kill(stack.pid, signal.SIGKILL)
    stack.stop()
    try:
        left = find_leftovers(state_dir)
        assert {pid: left.get(pid) for pid in workers} == dict.fromkeys(
            workers, "hostrelay_local.fleet_worker"
        )

        # When the next start looks for what the killed one left running
        ended = end_leftovers(state_dir)
    finally:
        end_leftovers(state_dir)  # nothing of this test outlives it, whatever failed

    # Then it ended the fleet worker (and the broker), and nothing of that stack runs
    assert set(ended) >= set(workers)
    assert find_leftovers(state_dir) == {}
