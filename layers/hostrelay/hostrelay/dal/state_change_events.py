"""Puts `Job State Change` and `Run State Change` events on the EventBridge bus."""

from __future__ import annotations

import json

from botocore.exceptions import BotoCoreError, ClientError

from hostrelay.dal.aws_clients import client
from hostrelay.domain.jobs import Job
from hostrelay.domain.state_changes import (
    EVENT_SOURCE,
    JOB_STATE_CHANGE,
    RUN_STATE_CHANGE,
    JobStateChange,
    RunStateChange,
    event_detail,
)
from hostrelay.observability import logger, metrics

NOT_PUT_METRIC = "state_change_events_not_put"


class StateChangePublisher:
    """Best effort by design: the state change is already stored when its event is put, so
    a failed put is logged and counted (metric `state_change_events_not_put`), never raised.
    An empty bus name publishes nothing (a deployment without the bus)."""

    def __init__(self, bus_name: str) -> None:
        self._bus_name = bus_name

    @property
    def enabled(self) -> bool:
        return bool(self._bus_name)

    def job_finished(self, job: Job, previous_state: str) -> bool:
        """The job reached a terminal state (call once, after the write that put it there)."""
        return self._put(JOB_STATE_CHANGE, JobStateChange.of(job, previous_state), job.id)

    def run_finished(self, run: RunStateChange) -> bool:
        """The run reached a terminal state (call once, after the write that put it there)."""
        return self._put(RUN_STATE_CHANGE, run, run.run_id)

    def _put(self, detail_type: str, detail: JobStateChange | RunStateChange, about: str) -> bool:
        if not self._bus_name:
            return False
        entry = {
            "EventBusName": self._bus_name,
            "Source": EVENT_SOURCE,
            "DetailType": detail_type,
            "Detail": json.dumps(event_detail(detail), separators=(",", ":")),
        }
        try:
            answer = client("events").put_events(Entries=[entry])
            failure = answer["Entries"][0].get("ErrorCode") if answer["FailedEntryCount"] else None
        except (BotoCoreError, ClientError) as exc:
            failure = type(exc).__name__
            if isinstance(exc, ClientError):
                failure = exc.response.get("Error", {}).get("Code", failure)
        if failure is None:
            return True
        logger.warning(
            "state change event not put",
            extra={"detail_type": detail_type, "id": about, "error": failure},
        )
        metrics.add_metric(name=NOT_PUT_METRIC, unit="Count", value=1)
        return False
