"""LINBO conveniences: capture and repair requests that never queue a duplicate repair."""

from __future__ import annotations

from dataclasses import dataclass, field

from hostrelay.dal.jobs_repo import JobRepository
from hostrelay.domain.jobs import Job, JobState
from hostrelay.domain.principal import Principal
from hostrelay.logic.jobs import JobService, NewJob
from hostrelay_contract.names import normalize_computer_name

REPAIR = "macct.repair"
CAPTURE = "macct.capture"
_PENDING = (JobState.QUEUED, JobState.DISPATCHED, JobState.IN_PROGRESS)


def account_key(name: str) -> str:
    """The form the relay compares names in: upper case, without the trailing `$`."""
    try:
        return normalize_computer_name(name)
    except ValueError:  # a stored name the relay refused: it covers no valid computer
        return name.upper()


@dataclass
class RepairRequestOutcome:
    """Which job repairs each computer (by account key); `created` is the new job, if any."""

    created: Job | None
    reused: list[Job] = field(default_factory=list)
    computers: dict[str, str] = field(default_factory=dict)


class MacctService:
    def __init__(self, jobs: JobService, repository: JobRepository) -> None:
        self._jobs = jobs
        self._repository = repository

    def pending_repairs(self, host: str) -> dict[str, Job]:
        """Computer → the pending repair job that already covers it on this host."""
        covered: dict[str, Job] = {}
        for state in _PENDING:
            for job in self._repository.by_host_and_state(host, state, job_type=REPAIR):
                for name in job.params.get("computers", []):
                    covered.setdefault(account_key(str(name)), job)
        return covered

    def request_repair(
        self,
        host: str,
        image: str,
        computers: list[str],
        principal: Principal,
        *,
        school: str | None = None,
        dry_run: bool = False,
    ) -> RepairRequestOutcome:
        """Like LINBO: a computer that already has a pending repair keeps that job."""
        pending = {} if dry_run else self.pending_repairs(host)
        outcome = RepairRequestOutcome(created=None)
        missing: dict[str, str] = {}
        for name in computers:
            key = account_key(name)
            job = pending.get(key)
            if job is None:
                missing.setdefault(key, name)
                continue
            outcome.computers[key] = job.id
            if all(job.id != seen.id for seen in outcome.reused):
                outcome.reused.append(job)
        if missing:
            params: dict[str, object] = {
                "image": image,
                "computers": list(missing.values()),
                "dry_run": dry_run,
            }
            if school is not None:
                params["school"] = school
            job, _ = self._jobs.create(
                NewJob(type=REPAIR, host=host, params=params, max_attempts=3), principal
            )
            outcome.created = job
            outcome.computers.update(dict.fromkeys(missing, job.id))
        return outcome

    def request_capture(self, host: str, image: str, computer: str, principal: Principal) -> Job:
        job, _ = self._jobs.create(
            NewJob(type=CAPTURE, host=host, params={"image": image, "computer": computer}),
            principal,
        )
        return job
