"""Records what the control plane puts on the state-change bus, so tests can assert it.

On AWS, operators add their own rules to the bus. Locally a rule sends every hostrelay event
to the `<prefix>-StateChangeRecorder` SQS queue, and an `EventRecorder` reads that queue.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

RECORDER = "StateChangeRecorder"
EVENT_SOURCE = "hostrelay"  # hostrelay.domain.state_changes.EVENT_SOURCE

Event = dict[str, Any]


def attach_recorder(session: Any, bus_name: str, *, prefix: str = "hostrelay-local") -> str:
    """A queue and a rule on `bus_name` that copies every hostrelay event into it; its URL."""
    sqs = session.client("sqs")
    name = f"{prefix}-{RECORDER}"
    url: str = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events = session.client("events")
    events.put_rule(
        Name=name,
        EventBusName=bus_name,
        EventPattern=json.dumps({"source": [EVENT_SOURCE]}),
        State="ENABLED",
    )
    events.put_targets(Rule=name, EventBusName=bus_name, Targets=[{"Id": "recorder", "Arn": arn}])
    return url


class EventRecorder:
    """The events of the recorder queue, in arrival order; `poll()` reads what is there,
    `wait_for()` polls until a condition on everything recorded holds."""

    def __init__(self, sqs: Any, queue_url: str) -> None:
        self._sqs = sqs
        self.queue_url = queue_url
        self._events: list[Event] = []
        self._lock = threading.Lock()

    @property
    def events(self) -> list[Event]:
        with self._lock:
            return list(self._events)

    def poll(self, wait_time_s: int = 0) -> list[Event]:
        """Read (and delete) what the queue holds now; returns every event recorded so far."""
        while True:
            got = self._sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_time_s
            )
            messages = got.get("Messages", [])
            if not messages:
                return self.events
            with self._lock:
                self._events.extend(json.loads(message["Body"]) for message in messages)
            self._sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
                    for index, message in enumerate(messages)
                ],
            )
            wait_time_s = 0

    def of_job(self, job_id: str) -> list[Event]:
        """Recorded `Job State Change` events of one job."""
        return [
            event
            for event in self.poll()
            if event.get("detail-type") == "Job State Change"
            and event.get("detail", {}).get("job_id") == job_id
        ]

    def wait_for(
        self, condition: Callable[[list[Event]], bool], timeout_s: float = 10.0
    ) -> list[Event]:
        """Long-poll the queue until `condition(events)` holds; TimeoutError if it does not."""
        import time

        deadline = time.monotonic() + timeout_s
        while True:
            events = self.poll()
            if condition(events):
                return events
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"recorded events never met the condition: {events!r}")
            self.poll(wait_time_s=max(1, min(20, int(remaining))))
