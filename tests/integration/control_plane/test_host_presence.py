"""Host presence writes: one conditional update, and none again for a few seconds per container."""

from __future__ import annotations

import pytest

from hostrelay.dal.hosts_repo import PRESENCE_REFRESH_S, HostRepository
from hostrelay.dal.tables import HostRecord
from hostrelay.domain.jobs import JobState
from tests.integration.control_plane.conftest import ADMIN, Pipeline

pytestmark = pytest.mark.integration


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def last_seen(name: str) -> object:
    return HostRecord.get(name, consistent_read=True).last_seen


def test_a_host_seen_again_within_seconds_is_not_written_again(pipeline: Pipeline) -> None:
    # Given a results container that just marked dc01 online
    clock = FakeMonotonic()
    hosts = HostRepository(presence_refresh_s=PRESENCE_REFRESH_S, monotonic=clock)
    assert hosts.seen("dc01") is False
    first = last_seen("dc01")
    # When dc01 reports again a second later
    clock.now += 1
    hosts.seen("dc01")
    # Then presence is not written again
    assert last_seen("dc01") == first
    # But after the refresh interval it is, and a new connection is always recorded
    clock.now += PRESENCE_REFRESH_S
    hosts.seen("dc01")
    refreshed = last_seen("dc01")
    assert refreshed != first
    hosts.seen("dc01", connected=True)
    assert HostRecord.get("dc01", consistent_read=True).connected_at is not None


def test_a_new_relay_version_is_recorded_at_once(pipeline: Pipeline) -> None:
    hosts = HostRepository(presence_refresh_s=PRESENCE_REFRESH_S, monotonic=FakeMonotonic())
    hosts.seen("dc01", relay_version="1.0.0")
    hosts.seen("dc01", relay_version="1.1.0")
    assert HostRepository().get("dc01").relay_version == "1.1.0"


def test_an_offline_host_comes_back_and_revoked_or_unknown_hosts_stay_as_they_are(
    pipeline: Pipeline,
) -> None:
    hosts = HostRepository()
    # Given dc01 offline, dc02 revoked, and no host named ghost
    hosts.mark_offline("dc01")
    hosts.register("dc02")
    hosts.revoke("dc02")
    # When each is seen
    came_back = hosts.seen("dc01")
    # Then dc01 is online again (it was offline), dc02 stays revoked, ghost is not created
    assert came_back is True and hosts.get("dc01").state == "online"
    assert hosts.seen("dc02") is False and hosts.get("dc02").state == "revoked"
    assert hosts.seen("ghost") is False and hosts.find("ghost") is None


def test_job_events_leave_presence_to_heartbeats(pipeline: Pipeline) -> None:
    # Given dc01 online, last seen at its connection, with a job dispatched to it
    job = pipeline.create()
    pipeline.run_dispatch()
    connected = last_seen("dc01")
    # When its relay reports the job accepted and ended
    pipeline.send_events(
        "dc01",
        {"kind": "accepted", "job_id": job.id, "attempt": 1},
        {"kind": "result", "job_id": job.id, "attempt": 1, "outcome": "succeeded",
         "result": {"pong": True}, "error": None},
    )  # fmt: skip
    # Then the job ended without a presence write: the host item is as its connection left it
    assert pipeline.jobs.get(job.id, ADMIN).state is JobState.SUCCEEDED
    assert last_seen("dc01") == connected
    # And its next heartbeat moves last_seen
    pipeline.send_events("dc01", {"kind": "heartbeat", "relay_version": "0.1.0", "running": 0})
    assert last_seen("dc01") > connected
