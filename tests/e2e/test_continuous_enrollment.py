"""Continuous runs meet the real enrollment flow: a host enrolled with the run's tags while it
is open gets its job within one sweeper tick; no other host does, and no run that is over."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hostrelay_local.event_sources import scheduled_event
from hostrelay_local.local_relay import LocalRelay, RelayOptions
from hostrelay_local.stack import REGION, LocalStack, StackOptions
from tests.e2e.conftest import ApiClient, watching_logs

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

SWEEPER = "SweeperFunction"
# Longer than the module runs: no schedule ticks by itself, the tests tick the sweeper.
NEVER_S = 24 * 3600.0
HELLO_TIMEOUT_S = 60.0
EVENT_TIMEOUT_S = 60.0


class Enrolling:
    """Hosts enrolled as an admin and a host's relay do it: `POST /v1/enrollments {host, tags}`,
    then the relay's own enrollment code with that one-time token (its key made in its own
    config dir, a CSR sent, the certificate installed), then `hostrelay-relay run`."""

    def __init__(self, stack: LocalStack, api: ApiClient, directory: Path) -> None:
        self.stack = stack
        self.api = api
        self.directory = directory
        self.relays: dict[str, LocalRelay] = {}

    def offer(self, host: str, tags: dict[str, str], *, replace: bool = False) -> str:
        body: dict[str, Any] = {"host": host, "tags": tags, "roles": ["agent"]}
        if replace:
            body["replace"] = True
        response = self.api.post("/v1/enrollments", body)
        assert response.status_code == 201, response.text
        return str(response.json()["token"])

    def enroll(self, host: str, tags: dict[str, str], *, replace: bool = False) -> LocalRelay:
        """The host takes its certificate (the control plane now knows it, with its tags); its
        relay does not run yet."""
        relay = self.relays.get(host) or LocalRelay(
            host, self.directory / host, RelayOptions(heartbeat_s=5, health=False)
        )
        self.relays[host] = relay
        relay.enroll_in_process(self.stack.api_url, self.offer(host, tags, replace=replace))
        return relay

    def connect(self, host: str) -> None:
        """Start the host's relay and wait until the control plane has its hello."""
        relay = self.relays[host]

        def hello_of_host(record: logging.LogRecord) -> bool:
            return record.getMessage() == "relay said hello" and vars(record).get("host") == host

        with watching_logs(hello_of_host) as watch:
            relay.stop()  # a re-enrolled host's relay starts again with its new certificate
            relay.start()
            assert watch.seen.wait(HELLO_TIMEOUT_S), relay.log_tail()

    def enroll_and_connect(self, host: str, tags: dict[str, str]) -> None:
        self.enroll(host, tags)
        self.connect(host)

    def stop(self) -> None:
        for relay in self.relays.values():
            relay.stop()


@pytest.fixture(scope="module")
def quiet_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """Given the local stack (no dc01) whose schedules never tick by themselves."""
    options = StackOptions(
        api_port=0,
        with_samba=False,
        with_directory=False,
        with_relay=False,
        heartbeat_s=5,
        schedule_period_s=NEVER_S,
    )
    with LocalStack(tmp_path_factory.mktemp("hostrelay-continuous"), options) as running:
        yield running


@pytest.fixture(scope="module")
def admin(quiet_stack: LocalStack) -> ApiClient:
    return ApiClient(quiet_stack.api_url, quiet_stack.admin_token)


@pytest.fixture(scope="module")
def hosts(
    quiet_stack: LocalStack, admin: ApiClient, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Enrolling]:
    enrolling = Enrolling(quiet_stack, admin, tmp_path_factory.mktemp("hosts"))
    try:
        yield enrolling
    finally:
        enrolling.stop()


def sweeper_tick(stack: LocalStack) -> dict[str, Any]:
    """One tick of the sweeper function, as its schedule invokes it."""
    arn = f"arn:aws:scheduler:{REGION}:123456789012:schedule/default/sweeper-test"
    report: dict[str, Any] = stack.functions[SWEEPER].invoke(scheduled_event(arn, REGION))
    return report


def start_run(admin: ApiClient, **body: Any) -> dict[str, Any]:
    body.setdefault("type", "ping")
    body.setdefault("params", {})
    response = admin.post("/v1/runs", body)
    assert response.status_code == 201, response.text
    run: dict[str, Any] = response.json()
    return run


def targets_of(admin: ApiClient, run_id: str) -> dict[str, dict[str, Any]]:
    response = admin.get(f"/v1/runs/{run_id}/targets")
    assert response.status_code == 200, response.text
    assert not response.json().get("next_token")
    return {target["host"]: target for target in response.json()["targets"]}


def jobs_of(admin: ApiClient, host: str) -> list[dict[str, Any]]:
    response = admin.get(f"/v1/jobs?host={host}")
    assert response.status_code == 200, response.text
    jobs: list[dict[str, Any]] = response.json()["jobs"]
    return jobs


def job_ended(stack: LocalStack, job_id: str) -> dict[str, Any]:
    """The job's `Job State Change` event (it reached a terminal state), waited for on the
    recorded bus."""
    recorder = stack.state_changes
    assert recorder is not None
    recorder.wait_for(lambda _: bool(recorder.of_job(job_id)), EVENT_TIMEOUT_S)
    [event] = recorder.of_job(job_id)
    detail: dict[str, Any] = event["detail"]
    return detail


def run_ended(stack: LocalStack, run_id: str) -> dict[str, Any]:
    """The run's `Run State Change` event, waited for on the recorded bus."""
    recorder = stack.state_changes
    assert recorder is not None

    def of_run(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            event["detail"]
            for event in events
            if event.get("detail-type") == "Run State Change"
            and event["detail"].get("run_id") == run_id
        ]

    [detail] = of_run(recorder.wait_for(lambda events: bool(of_run(events)), EVENT_TIMEOUT_S))
    return detail


def cancel(admin: ApiClient, run_id: str) -> None:
    response = admin.post(f"/v1/runs/{run_id}/cancel", {})
    assert response.status_code == 202, response.text


def test_a_host_enrolling_with_the_tags_gets_its_job_of_the_open_run_within_one_tick(
    quiet_stack: LocalStack, admin: ApiClient, hosts: Enrolling
) -> None:
    # Given a continuous ping run over pool=a, open with no target yet
    run = start_run(admin, targets={"tags": {"pool": "a"}}, continuous=True)
    assert (run["state"], run["total"]) == ("IN_PROGRESS", 0)

    # When three hosts enroll through the real flow while it is open: a-early with the run's
    # tag (and another), connected; b-other with pool=b, connected; a-late with the run's tag,
    # its certificate taken but its relay not connected yet
    hosts.enroll_and_connect("a-early", {"pool": "a", "site": "north"})
    hosts.enroll_and_connect("b-other", {"pool": "b"})
    hosts.enroll("a-late", {"pool": "a"})
    # And the sweeper ticks once
    report = sweeper_tick(quiet_stack)

    # Then the two hosts carrying pool=a are the run's targets, each with a job; b-other is not
    assert report["run_targets_added"] == 2
    targets = targets_of(admin, run["id"])
    assert set(targets) == {"a-early", "a-late"}
    assert all(target["job_id"] for target in targets.values())
    assert jobs_of(admin, "b-other") == []
    # And a-early's relay runs its job, with no other tick
    early = job_ended(quiet_stack, targets["a-early"]["job_id"])
    assert (early["host"], early["state"]) == ("a-early", "SUCCEEDED")
    # And a-late's job waits for its relay: once it connects and says hello, it runs too
    assert targets_of(admin, run["id"])["a-late"]["state"] == "QUEUED"
    hosts.connect("a-late")
    late = job_ended(quiet_stack, targets["a-late"]["job_id"])
    assert (late["host"], late["state"]) == ("a-late", "SUCCEEDED")

    # And a second tick adds nothing
    assert sweeper_tick(quiet_stack)["run_targets_added"] == 0
    # And the run counted both: canceled, it ends CANCELED with two targets SUCCEEDED
    cancel(admin, run["id"])
    ended = run_ended(quiet_stack, run["id"])
    assert (ended["state"], ended["counts"]) == ("CANCELED", {"SUCCEEDED": 2})
    assert {t["state"] for t in targets_of(admin, run["id"]).values()} == {"SUCCEEDED"}


def test_a_target_host_enrolled_again_gets_no_second_job(
    quiet_stack: LocalStack, admin: ApiClient, hosts: Enrolling
) -> None:
    # Given c-again enrolled with pool=c and a continuous run over pool=c whose job on it
    # succeeded
    hosts.enroll_and_connect("c-again", {"pool": "c"})
    run = start_run(admin, targets={"tags": {"pool": "c"}}, continuous=True)
    [first] = targets_of(admin, run["id"]).values()
    assert job_ended(quiet_stack, first["job_id"])["state"] == "SUCCEEDED"

    # When c-again is enrolled again (same name and tags, a new one-time token and
    # certificate), its relay reconnects and says hello, and the sweeper ticks
    hosts.enroll("c-again", {"pool": "c"}, replace=True)
    hosts.connect("c-again")
    report = sweeper_tick(quiet_stack)

    # Then it is still the run's one target, with its one job
    assert report["run_targets_added"] == 0
    [again] = targets_of(admin, run["id"]).values()
    assert (again["host"], again["job_id"], again["state"]) == (
        "c-again",
        first["job_id"],
        "SUCCEEDED",
    )
    assert [job["id"] for job in jobs_of(admin, "c-again")] == [first["job_id"]]
    cancel(admin, run["id"])
    assert run_ended(quiet_stack, run["id"])["counts"] == {"SUCCEEDED": 1}


def test_a_host_enrolling_after_the_run_was_canceled_or_aborted_gets_no_job(
    quiet_stack: LocalStack, admin: ApiClient, hosts: Enrolling
) -> None:
    # Given two continuous runs over pool=d that are over: one canceled, one aborted by the
    # rejection of its command on d-first (not an allowed command: max_errors 0)
    canceled = start_run(admin, targets={"tags": {"pool": "d"}}, continuous=True)
    cancel(admin, canceled["id"])
    assert run_ended(quiet_stack, canceled["id"])["state"] == "CANCELED"
    hosts.enroll_and_connect("d-first", {"pool": "d"})
    aborted = start_run(
        admin,
        type="exec",
        params={"argv": ["/usr/bin/false"]},
        targets={"tags": {"pool": "d"}},
        continuous=True,
        max_errors=0,
    )
    assert run_ended(quiet_stack, aborted["id"])["state"] == "ABORTED"

    # When d-late enrolls with pool=d, its relay connects and says hello, and the sweeper ticks
    hosts.enroll_and_connect("d-late", {"pool": "d"})
    report = sweeper_tick(quiet_stack)

    # Then neither run took it, and it has no job at all
    assert report["run_targets_added"] == 0
    assert set(targets_of(admin, canceled["id"])) == set()
    assert set(targets_of(admin, aborted["id"])) == {"d-first"}
    assert jobs_of(admin, "d-late") == []
