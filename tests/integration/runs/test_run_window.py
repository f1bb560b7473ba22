"""The sliding window and the error limit, through the real handlers on moto."""

from __future__ import annotations

from tests.integration.control_plane.conftest import ADMIN
from tests.integration.runs.conftest import Fleet, max_in_flight


def _job_intervals(fleet: Fleet, run_id: str) -> list[tuple]:
    jobs = [
        fleet.pipeline.jobs.get(target["job_id"], ADMIN)
        for target in fleet.targets(run_id)
        if target["job_id"]
    ]
    return [(job.created_at, job.finished_at) for job in jobs]


def test_window_of_five_over_fifty_targets_never_exceeds_five(fleet: Fleet) -> None:
    # Given 50 hosts tagged role=agent
    fleet.enroll((f"agent{n:02d}" for n in range(50)), tags={"role": "agent"})
    # When a ping run targets them with max_concurrency 5, and relays answer one at a time
    run = fleet.start(targets={"tags": {"role": "agent"}}, max_concurrency=5)
    assert (run["total"], run["in_flight"], run["window"]) == (50, 5, 5)
    fleet.drive(run["id"], lambda host: "succeeded")
    # Then the run SUCCEEDED, every target SUCCEEDED
    done = fleet.run(run["id"])
    assert done["state"] == "SUCCEEDED"
    assert done["counts"] == {"SUCCEEDED": 50}
    assert (done["in_flight"], done["errors"]) == (0, 0)
    # And, from the jobs' own timestamps (created QUEUED .. finished), never more than 5 of
    # them were in flight, and 5 were
    intervals = _job_intervals(fleet, run["id"])
    assert len(intervals) == 50
    assert max_in_flight(intervals) == 5


def test_third_failure_over_max_errors_two_aborts_and_starts_nothing_after(fleet: Fleet) -> None:
    # Given 20 hosts, of which bad00..bad05 fail every job
    names = fleet.enroll(f"bad{n:02d}" for n in range(6))
    names += fleet.enroll(f"good{n:02d}" for n in range(14))
    run = fleet.start(targets={"hosts": names}, max_concurrency=2, max_errors=2)
    # When the relays answer one job at a time
    fleet.drive(run["id"], lambda host: "failed" if host.startswith("bad") else "succeeded")
    # Then the run is ABORTED with the reason
    done = fleet.run(run["id"])
    assert done["state"] == "ABORTED"
    assert "exceed max_errors=2" in done["reason"]
    # And no job was created after the third failure ended
    targets = fleet.targets(run["id"])
    jobs = {
        t["job_id"]: fleet.pipeline.jobs.get(t["job_id"], ADMIN) for t in targets if t["job_id"]
    }
    failures = sorted(j.finished_at for j in jobs.values() if j.state.value == "FAILED")
    assert all(job.created_at <= failures[2] for job in jobs.values())
    # And the job that was in flight then finished (bad00, bad01 start; each failure starts
    # the next; the third failure, bad02's, leaves bad03 running: it fails too)
    assert len(jobs) == len(failures) == 4
    # And the counts add up: every target in exactly one terminal state
    counts = done["counts"]
    assert sum(counts.values()) == done["total"] == 20
    assert counts == {"FAILED": 4, "SKIPPED": 16}
    assert {t["state"] for t in targets} <= {"SUCCEEDED", "FAILED", "SKIPPED"}
    assert done["in_flight"] == 0


def test_a_wide_window_fills_at_most_100_starts_per_call(fleet: Fleet) -> None:
    # Given 120 hosts and a run with max_concurrency "100%" (a window of 120)
    hosts = fleet.enroll(f"node{n:03d}" for n in range(120))
    run = fleet.start(targets={"hosts": hosts}, max_concurrency="100%")
    # Then the request started 100 targets, not all 120
    assert (run["window"], run["in_flight"], run["counts"]["PENDING"]) == (120, 100, 20)
    # When one job ends, the window fills: 99 in flight plus the 20 left
    fleet.step(lambda host: "succeeded")
    after = fleet.run(run["id"])
    assert (after["in_flight"], after["counts"].get("PENDING", 0)) == (119, 0)
