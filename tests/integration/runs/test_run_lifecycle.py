"""Runs end in one terminal state: offline hosts expire, continuous runs grow, cancel stops,
and duplicate deliveries change nothing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest

from hostrelay.clock import isoformat, utcnow
from hostrelay.dal.hosts_repo import HostRepository
from tests.integration.control_plane.conftest import ADMIN
from tests.integration.runs.conftest import Fleet, max_in_flight, tag_host

HELLO = {"kind": "hello", "relay_version": "0.1.0", "jobs": []}


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[datetime], None]:
    """Set the time the dispatch and sweeper functions read."""
    from hostrelay.logic import dispatch, run_orchestration, sweep

    def set_now(moment: datetime) -> None:
        for module in (dispatch, sweep, run_orchestration):
            monkeypatch.setattr(module, "utcnow", lambda: moment)

    return set_now


def test_offline_target_expires_at_deliver_by_and_the_run_still_ends(
    fleet: Fleet, clock: Callable[[datetime], None]
) -> None:
    # Given two online hosts and one whose relay is offline
    online = fleet.enroll(["web01", "web02"])
    fleet.enroll(["off01"])
    HostRepository().mark_offline("off01")
    deliver_by = utcnow() + timedelta(seconds=30)
    # When a run targets all three, EXPIRED counting as an error, one error tolerated
    run = fleet.start(
        targets={"hosts": [*online, "off01"]},
        max_errors=1,
        deliver_by=isoformat(deliver_by).replace("Z", "+00:00"),
    )
    fleet.drive(run["id"], lambda host: None if host == "off01" else "succeeded")
    # Then the offline target holds one place in flight until deliver_by
    assert fleet.run(run["id"])["in_flight"] == 1
    assert [t["state"] for t in fleet.targets(run["id"], state="QUEUED")] == ["QUEUED"]
    # When the sweeper ticks just after deliver_by
    clock(deliver_by + timedelta(seconds=1))
    fleet.sweep()
    # Then the target is EXPIRED, counted as the one tolerated error, and the run has ended
    done = fleet.run(run["id"])
    assert done["counts"] == {"SUCCEEDED": 2, "EXPIRED": 1}
    assert (done["state"], done["errors"], done["in_flight"]) == ("FAILED", 1, 0)
    [expired] = fleet.targets(run["id"], state="EXPIRED")
    assert (expired["host"], expired["error"]["code"]) == ("off01", "expired")


def test_a_job_the_dispatcher_expires_is_counted_at_once_and_the_window_moves_on(
    fleet: Fleet, clock: Callable[[datetime], None]
) -> None:
    # Given off01's relay is offline, and a run of one at a time over off01 then web01
    fleet.enroll(["off01", "web01"])
    HostRepository().mark_offline("off01")
    run = fleet.start(targets={"hosts": ["off01", "web01"]}, max_concurrency=1, max_errors=1)
    assert fleet.dispatch() == []  # off01's job stays QUEUED: its host is offline
    [queued] = fleet.targets(run["id"], state="QUEUED")
    job = fleet.pipeline.jobs.get(queued["job_id"], ADMIN)
    # When off01 comes back after its job's delivery window and says hello, so the
    # dispatcher is asked to publish a job it may no longer deliver
    clock(job.deliver_until + timedelta(seconds=1))
    fleet.pipeline.send_events("off01", HELLO)
    assert fleet.dispatch() == []
    # Then, with no sweeper tick, the run counts the target EXPIRED and web01's job started
    now = fleet.run(run["id"])
    assert now["counts"] == {"EXPIRED": 1, "IN_FLIGHT": 1}
    assert (now["errors"], now["in_flight"]) == (1, 1)
    [expired] = fleet.targets(run["id"], state="EXPIRED")
    assert (expired["host"], expired["error"]["code"]) == ("off01", "expired")
    # And web01's job is on its way: answered, it ends the run
    [(host, job_id)] = fleet.dispatch()
    assert host == "web01"
    fleet.answer(host, job_id, "succeeded")
    done = fleet.run(run["id"])
    assert (done["state"], done["counts"]) == ("FAILED", {"EXPIRED": 1, "SUCCEEDED": 1})


def test_expired_not_counted_as_error_is_a_per_run_choice(
    fleet: Fleet, clock: Callable[[datetime], None]
) -> None:
    # Given two offline hosts, and a run with max_errors 0 that does not count EXPIRED
    fleet.enroll(["off01", "off02"])
    for host in ("off01", "off02"):
        HostRepository().mark_offline(host)
    deliver_by = utcnow() + timedelta(seconds=30)
    run = fleet.start(
        targets={"hosts": ["off01", "off02"]},
        max_concurrency=1,
        expired_counts_as_error=False,
        deliver_by=isoformat(deliver_by).replace("Z", "+00:00"),
    )
    fleet.dispatch()
    # When deliver_by passes: the first expires, the window moves to the second, which expires
    clock(deliver_by + timedelta(seconds=1))
    fleet.sweep()
    fleet.sweep()
    # Then the run was not aborted (no errors) but did not succeed either
    done = fleet.run(run["id"])
    assert done["counts"] == {"EXPIRED": 2}
    assert (done["state"], done["errors"]) == ("FAILED", 0)


def test_targets_not_started_by_deliver_by_end_expired_without_a_job(
    fleet: Fleet, clock: Callable[[datetime], None]
) -> None:
    # Given three offline hosts and a run of one at a time that must reach them in 30 s
    hosts = fleet.enroll(["off01", "off02", "off03"])
    for host in hosts:
        HostRepository().mark_offline(host)
    deliver_by = utcnow() + timedelta(seconds=30)
    run = fleet.start(
        targets={"hosts": hosts},
        max_concurrency=1,
        max_errors=5,
        deliver_by=isoformat(deliver_by).replace("Z", "+00:00"),
    )
    fleet.dispatch()
    # When one sweeper tick comes after deliver_by
    clock(deliver_by + timedelta(seconds=1))
    fleet.sweep()
    # Then all three ended EXPIRED in that tick: the first's job expired, the two others
    # never got one, and the run is over
    done = fleet.run(run["id"])
    assert (done["state"], done["counts"]) == ("FAILED", {"EXPIRED": 3})
    targets = fleet.targets(run["id"])
    assert [t["state"] for t in targets] == ["EXPIRED"] * 3
    assert [t["error"]["code"] for t in targets] == ["expired"] * 3
    assert [bool(t["job_id"]) for t in targets] == [True, False, False]


def test_continuous_run_gives_a_newly_tagged_host_its_job_within_one_sweeper_tick(
    fleet: Fleet,
) -> None:
    # Given dc01 tagged role=dc, and a continuous run over role=dc
    fleet.enroll(["dc01"], tags={"role": "dc"})
    run = fleet.start(targets={"tags": {"role": "dc"}}, continuous=True)
    fleet.drive(run["id"], lambda host: "succeeded")
    # Then the run stays open after its one target succeeded
    assert fleet.run(run["id"])["state"] == "IN_PROGRESS"
    # When dc02 enrolls and then gains the tag, and the sweeper ticks once
    fleet.enroll(["dc02", "web01"])
    tag_host("dc02", {"role": "dc", "site": "b"})
    report = fleet.sweep()
    # Then dc02 (not web01) is a target with a job on its way
    assert report["run_targets_added"] == 1
    targets = {t["host"]: t for t in fleet.targets(run["id"])}
    assert set(targets) == {"dc01", "dc02"}
    assert targets["dc02"]["state"] == "QUEUED" and targets["dc02"]["job_id"]
    fleet.drive(run["id"], lambda host: "succeeded")
    assert fleet.run(run["id"])["counts"] == {"SUCCEEDED": 2}
    # And another tick adds nothing twice
    assert fleet.sweep()["run_targets_added"] == 0
    # When the run is canceled, it ends CANCELED
    canceled = fleet.api.post(f"/v1/runs/{run['id']}/cancel")
    assert (canceled.status, canceled.body["state"]) == (202, "CANCELED")


def test_duplicate_deliveries_of_every_message_change_nothing(fleet: Fleet) -> None:
    # Given every dispatch message, relay result and sweeper tick delivered twice
    fleet.duplicate = True
    hosts = fleet.enroll(f"agent{n:02d}" for n in range(12))
    run = fleet.start(targets={"hosts": hosts}, max_concurrency=3, max_errors=2)
    # When the relays answer (agent00 and agent05 fail)
    fleet.drive(run["id"], lambda h: "failed" if h in ("agent00", "agent05") else "succeeded")
    fleet.sweep()
    # Then each target got exactly one job, counted once
    targets = fleet.targets(run["id"])
    job_ids = [t["job_id"] for t in targets]
    assert len(set(job_ids)) == len(job_ids) == 12
    done = fleet.run(run["id"])
    assert done["counts"] == {"SUCCEEDED": 10, "FAILED": 2}
    assert (done["state"], done["total"], done["errors"]) == ("FAILED", 12, 2)
    # And the window held (3 in flight at most) though every message came twice
    jobs = [fleet.pipeline.jobs.get(job_id, ADMIN) for job_id in job_ids]
    assert max_in_flight((j.created_at, j.finished_at) for j in jobs) == 3
    # And a job's end reported to its run again changes nothing
    from hostrelay.settings import ApiSettings, load_settings
    from hostrelay.wiring import build_api_services

    before = fleet.run(run["id"])
    runs = build_api_services(load_settings(ApiSettings)).runs
    assert runs is not None
    runs()._orchestrator.job_finished(jobs[0])
    assert fleet.run(run["id"]) == before


def test_cancel_ends_pending_targets_at_once_and_in_flight_ones_on_confirmation(
    fleet: Fleet,
) -> None:
    # Given a run of 6 targets, 2 in flight and DISPATCHED
    hosts = fleet.enroll(f"agent{n}" for n in range(6))
    run = fleet.start(targets={"hosts": hosts}, max_concurrency=2)
    dispatched = fleet.dispatch()
    # When it is canceled
    response = fleet.api.post(f"/v1/runs/{run['id']}/cancel")
    # Then the 4 pending targets are CANCELED, the 2 in flight are being canceled
    assert response.status == 202
    assert response.body["stopping"] == "CANCELED"
    assert response.body["counts"] == {"CANCELED": 4, "IN_FLIGHT": 2}
    assert response.body["state"] == "IN_PROGRESS"
    # When the relays confirm the cancels
    for host, job_id in dispatched:
        fleet.answer(host, job_id, "canceled")
    # Then the run ended CANCELED, every target CANCELED, nothing else started
    done = fleet.run(run["id"])
    assert (done["state"], done["counts"]) == ("CANCELED", {"CANCELED": 6})
    assert done["reason"].startswith("canceled by token:")
    assert fleet.dispatch() == []
    # And a second cancel is a conflict
    assert fleet.api.post(f"/v1/runs/{run['id']}/cancel").status == 409


def test_silent_host_times_out_and_the_run_ends_within_timeout_plus_grace(
    fleet: Fleet, clock: Callable[[datetime], None]
) -> None:
    # Given a run of 3 targets, one at a time, with a 30 s job timeout; web01's relay takes
    # its job and never answers
    hosts = fleet.enroll(["web01", "web02", "web03"])
    run = fleet.start(targets={"hosts": hosts}, max_concurrency=1, timeout_s=30)
    [(host, job_id)] = fleet.dispatch()
    fleet.pipeline.send_events(host, {"kind": "accepted", "job_id": job_id, "attempt": 1})
    # When the sweeper ticks after the timeout and its grace
    clock(utcnow() + timedelta(seconds=30 + 16))
    fleet.sweep()
    # Then the target is TIMED_OUT, which is a failure over max_errors 0: the run is ABORTED
    # and the other two were never started
    done = fleet.run(run["id"])
    assert (done["state"], done["counts"]) == ("ABORTED", {"TIMED_OUT": 1, "SKIPPED": 2})
    assert fleet.dispatch() == []


def test_one_tick_adds_more_new_hosts_than_one_transaction_holds(fleet: Fleet) -> None:
    # Given a continuous run over role=agent with a window of 5, and no host carrying the tag
    fleet.enroll(["dc01"], tags={"role": "dc"})
    run = fleet.start(targets={"tags": {"role": "agent"}}, continuous=True, max_concurrency=5)
    assert run["total"] == 0
    # When 120 hosts enroll with the tag and the sweeper ticks once
    fleet.enroll((f"agent{n:03d}" for n in range(120)), tags={"role": "agent"})
    report = fleet.sweep()
    # Then all 120 are targets, each once and in order, and the window started its first 5
    assert report["run_targets_added"] == 120
    grown = fleet.run(run["id"])
    assert (grown["total"], grown["in_flight"], grown["counts"]["PENDING"]) == (120, 5, 115)
    targets = fleet.targets(run["id"])
    assert [t["host"] for t in targets] == [f"agent{n:03d}" for n in range(120)]
    # And a second tick adds none of them again
    assert fleet.sweep()["run_targets_added"] == 0
