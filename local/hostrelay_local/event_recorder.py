"""Records what the control plane puts on the state-change bus, so tests can assert it.

On AWS, operators add their own rules to the bus. Locally a rule sends every hostrelay event
to the `<prefix>-StateChangeRecorder` SQS queue, and an `EventRecorder` reads that queue.
"""

from __future__ import annotations

import collections
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

logger = logging.getLogger(__name__)

RECORDER = "StateChangeRecorder"
EVENT_SOURCE = "hostrelay"  # hostrelay.domain.state_changes.EVENT_SOURCE

Event = dict[str, Any]
_BATCH = 10  # SQS's most messages per ReceiveMessage


def attach_recorder(session: Any, bus_name: str, *, prefix: str = "hostrelay-local") -> str:
    """A queue and a rule on `bus_name` that copies every hostrelay event into it; its URL."""
    _parse_moto_event_paths_once()
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


def _parse_moto_event_paths_once() -> None:
    """moto compiles the same eight JSONPath expressions (a yacc parser each time) for every
    event it delivers to a rule's target: ~50 ms an event, which would slow every job's end
    on the local stack alone. The expressions never change: compile each once. (moto imports
    `jsonpath_ng.ext.parse` inside the function, so the cached one is what it calls.)"""
    import functools

    import jsonpath_ng.ext

    names = vars(jsonpath_ng.ext)
    if not hasattr(names["parse"], "cache_info"):
        names["parse"] = functools.lru_cache(maxsize=64)(names["parse"])


class EventRecorder:
    """The events of the recorder queue, oldest first (the newest `keep` of them).

    `poll()` reads what the queue holds now; `start()` keeps reading it in a thread (the local
    stack does, so the queue never grows); `wait_for()` waits until a condition on everything
    recorded holds.
    """

    # The started reader pauses this long after each batch it takes, so events come ten to a
    # ReceiveMessage instead of one: reading each job's event by itself cost the stack about
    # 7 % of its CPU (a ReceiveMessage and a DeleteMessageBatch through moto per job), on the
    # same GIL as the jobs it records (still 7 % with a 0.1 s pause at 20 jobs a second). A test
    # waiting for an event waits at most this much longer.
    LINGER_S = 0.5

    def __init__(self, sqs: Any, queue_url: str, keep: int = 10_000) -> None:
        self._sqs = sqs
        self.queue_url = queue_url
        self._events: collections.deque[Event] = collections.deque(maxlen=keep)
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def events(self) -> list[Event]:
        with self._changed:
            return list(self._events)

    def start(self) -> EventRecorder:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="state-change-recorder", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if 0 < self._receive(wait_time_s=1) < _BATCH:  # a full batch: more waiting
                    self._stop.wait(self.LINGER_S)
            except (BotoCoreError, ClientError):  # moto going away at shutdown: stop quietly
                if not self._stop.is_set():
                    logger.exception("state change recorder could not read its queue")
                    self._stop.wait(1.0)

    def poll(self) -> list[Event]:
        """Read (and delete) what the queue holds now; every event recorded so far."""
        while self._receive(wait_time_s=0):
            pass
        return self.events

    def _receive(self, wait_time_s: int) -> int:
        got = self._sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=_BATCH, WaitTimeSeconds=wait_time_s
        )
        messages = got.get("Messages", [])
        if not messages:
            return 0
        with self._changed:
            self._events.extend(json.loads(message["Body"]) for message in messages)
            self._changed.notify_all()
        self._sqs.delete_message_batch(
            QueueUrl=self.queue_url,
            Entries=[
                {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
                for index, message in enumerate(messages)
            ],
        )
        return len(messages)

    def of_job(self, job_id: str) -> list[Event]:
        """Recorded `Job State Change` events of one job."""
        return [
            event
            for event in (self.events if self._thread else self.poll())
            if event.get("detail-type") == "Job State Change"
            and event.get("detail", {}).get("job_id") == job_id
        ]

    def wait_for(
        self, condition: Callable[[list[Event]], bool], timeout_s: float = 10.0
    ) -> list[Event]:
        """Until `condition(events)` holds (TimeoutError after `timeout_s`): woken by each
        arrival when started, else long-polling the queue itself."""
        deadline = time.monotonic() + timeout_s
        while True:
            events = self.events if self._thread else self.poll()
            if condition(events):
                return events
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"recorded events never met the condition: {events!r}")
            if self._thread:
                with self._changed:
                    self._changed.wait(timeout=remaining)
            else:
                self._receive(wait_time_s=max(1, min(20, int(remaining))))
