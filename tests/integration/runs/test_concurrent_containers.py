"""A second container working from what it read before another's write changes nothing."""

from __future__ import annotations

import pytest

from hostrelay.clock import utcnow
from hostrelay.dal.dispatch_queue import DispatchQueue
from hostrelay.dal.hosts_repo import HostRepository
from hostrelay.dal.jobs_repo import JobRepository
from hostrelay.dal.runs_repo import RunRepository
from hostrelay.domain.errors import StaleWrite
from hostrelay.domain.jobs import Job, JobState
from hostrelay.domain.runs import Run, TargetState
from hostrelay.logic.run_orchestration import RunOrchestrator
from tests.integration.runs.conftest import Fleet


def test_stale_run_copy_neither_counts_an_end_nor_starts_a_target(fleet: Fleet) -> None:
    # Given a run of 3 targets, 2 in flight, and a copy of the run a second container read
    hosts = fleet.enroll(["web01", "web02", "web03"])
    run_id = fleet.start(targets={"hosts": hosts}, max_concurrency=2)["id"]
    runs = RunRepository()
    stale = runs.get(run_id)
    dispatched = dict(fleet.dispatch())
    # When the first container counts web01's end (and starts web03)
    fleet.answer("web01", dispatched["web01"], "succeeded")
    current = runs.get(run_id)
    assert current.version > stale.version
    # Then the second container's end of web02, written from its stale copy, is refused
    target = runs.target(run_id, 1)
    finished = target.model_copy(update={"state": TargetState.SUCCEEDED, "finished_at": utcnow()})
    counts = dict(stale.counts)
    counts[TargetState.IN_FLIGHT] -= 1
    counts[TargetState.SUCCEEDED] = 1
    with pytest.raises(StaleWrite):
        runs.finish_target(stale, {"counts": counts}, finished)
    # And so is a start from the stale copy: no job is written for it
    third = runs.target(run_id, 2)
    now = utcnow()
    job = Job(
        id="01ARZ3NDEKTSV4RRFFQ69G5FAV", type="ping", host="web03", params={},
        state=JobState.QUEUED, timeout_s=60, created_by="test", created_at=now, updated_at=now,
        run_id=run_id, run_seq=2,
    )  # fmt: skip
    started = third.model_copy(
        update={"state": TargetState.IN_FLIGHT, "job_id": job.id, "started_at": now}
    )
    with pytest.raises(StaleWrite):
        runs.start_targets(
            stale, {"next_seq": stale.next_seq + 1}, [(started, JobRepository().to_record(job))]
        )
    assert JobRepository().get_many([job.id]) == {}
    # And the run and its targets are as the first container left them
    assert runs.get(run_id) == current
    assert runs.target(run_id, 1).state is TargetState.IN_FLIGHT


class _ReadBefore(RunRepository):
    """A second container's runs: its first read of the run is the copy it took earlier."""

    def __init__(self, earlier: Run) -> None:
        self._earlier: list[Run] = [earlier]

    def get(self, run_id: str) -> Run:
        if self._earlier and self._earlier[0].id == run_id:
            return self._earlier.pop()
        return super().get(run_id)


def test_a_second_sweeper_adding_the_same_host_from_a_stale_copy_changes_nothing(
    fleet: Fleet,
) -> None:
    # Given a continuous run over role=dc whose job on dc01 succeeded, dc02 newly tagged
    # role=dc, and a second sweeper container that read the run before the first one's tick
    fleet.enroll(["dc01"], tags={"role": "dc"})
    run_id = fleet.start(targets={"tags": {"role": "dc"}}, continuous=True)["id"]
    fleet.drive(run_id, lambda host: "succeeded")
    fleet.enroll(["dc02"], tags={"role": "dc"})
    second = RunOrchestrator(
        _ReadBefore(RunRepository().get(run_id)),
        JobRepository(),
        HostRepository(),
        DispatchQueue(fleet.pipeline.aws.ref("DispatchQueue"), carries_jobs=True),
    )
    # When the first container's tick adds dc02 and starts its job, then the second's tick
    # adds dc02 from its stale copy, and dc02's relay answers
    assert fleet.sweep()["run_targets_added"] == 1
    [(host, job_id)] = fleet.dispatch()
    assert second.sweep().added == 0
    fleet.answer(host, job_id, "succeeded")
    # Then dc02 kept its one job and the run counted its end: nothing is left in flight
    targets = {t["host"]: t for t in fleet.targets(run_id)}
    assert (targets["dc02"]["job_id"], targets["dc02"]["state"]) == (job_id, "SUCCEEDED")
    assert fleet.run(run_id)["counts"] == {"SUCCEEDED": 2}
    assert fleet.dispatch() == []
    # And a cancel ends the run at once
    canceled = fleet.api.post(f"/v1/runs/{run_id}/cancel")
    assert (canceled.status, canceled.body["state"]) == (202, "CANCELED")
