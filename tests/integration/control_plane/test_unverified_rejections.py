"""A rejection names a job only when the relay verified the envelope that named it."""

from __future__ import annotations

from hostrelay.domain.jobs import JobState
from tests.integration.control_plane.conftest import ADMIN, Pipeline


def test_a_rejection_for_a_bad_signature_never_ends_the_job_it_claims(pipeline: Pipeline) -> None:
    # Given a job dispatched to dc01
    job = pipeline.create()
    pipeline.run_dispatch()

    # When dc01 reports, as older relays did, a forged envelope that claimed this job
    pipeline.send_events(
        "dc01",
        {"kind": "rejected", "job_id": job.id, "attempt": 1, "reason": "bad_signature",
         "message": "envelope signature does not verify"},
        {"kind": "rejected", "job_id": None, "attempt": 0, "reason": "bad_signature",
         "message": "envelope signature does not verify"},
    )  # fmt: skip

    # Then the job is untouched: still DISPATCHED, no error
    current = pipeline.jobs.get(job.id, ADMIN)
    assert current.state is JobState.DISPATCHED and current.error is None

    # And a rejection of the verified envelope still ends it
    pipeline.send_events(
        "dc01",
        {"kind": "rejected", "job_id": job.id, "attempt": 1, "reason": "expired",
         "message": "envelope expired"},
    )  # fmt: skip
    assert pipeline.jobs.get(job.id, ADMIN).state is JobState.REJECTED
