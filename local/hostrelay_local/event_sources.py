"""Event sources of the template's functions: SQS event source mappings and schedules."""

from __future__ import annotations

import hashlib
import json
import logging
import queue
import re
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from hostrelay_local.functions import FunctionRuntime

logger = logging.getLogger(__name__)

_RATE = re.compile(r"^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$")
_UNIT_S = {"minute": 60, "hour": 3600, "day": 86400}
_ERROR_BACKOFF_S = 1.0


def lambda_message_attributes(attributes: dict[str, Any]) -> dict[str, Any]:
    """SQS API message attributes in the shape an SQS-triggered Lambda sees them."""
    converted = {}
    for name, value in attributes.items():
        converted[name] = {
            "stringValue": value.get("StringValue"),
            "binaryValue": value.get("BinaryValue"),
            "stringListValues": value.get("StringListValues", []),
            "binaryListValues": value.get("BinaryListValues", []),
            "dataType": value.get("DataType", "String"),
        }
    return converted


def sqs_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """The event Lambda's SQS event source mapping builds from one received batch."""
    records = []
    for message in messages:
        body = message.get("Body", "")
        records.append(
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": body,
                "attributes": dict(message.get("Attributes", {})),
                "messageAttributes": lambda_message_attributes(
                    message.get("MessageAttributes", {})
                ),
                "md5OfBody": message.get("MD5OfBody") or hashlib.md5(body.encode()).hexdigest(),  # noqa: S324
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
        )
    return {"Records": records}


def failed_message_ids(result: Any, message_ids: list[str]) -> set[str]:
    """Which messages of a batch to leave on the queue, per ReportBatchItemFailures.

    A response that names an identifier not in the batch (or an empty one) fails the whole
    batch, as Lambda does; a response without `batchItemFailures` means all succeeded.
    """
    if not isinstance(result, dict) or not result.get("batchItemFailures"):
        return set()
    failed: set[str] = set()
    for item in result["batchItemFailures"]:
        identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not identifier or identifier not in message_ids:
            return set(message_ids)
        failed.add(identifier)
    return failed


class SqsEventSource:
    """An SQS event source mapping: long-polls a queue and invokes the function per batch.

    Successes are deleted; failed messages stay and come back after the queue's visibility
    timeout (and move to the dead-letter queue after maxReceiveCount), as on AWS.
    """

    def __init__(
        self,
        function: FunctionRuntime,
        sqs: Any,
        queue_url: str,
        queue_arn: str,
        *,
        batch_size: int = 10,
        report_batch_item_failures: bool = True,
        pollers: int = 1,
        wait_time_s: int = 1,
        region: str = "us-east-1",
    ) -> None:
        self.function = function
        self._sqs = sqs
        self._queue_url = queue_url
        self._queue_arn = queue_arn
        self._batch_size = max(1, min(10, batch_size))
        self._partial = report_batch_item_failures
        self._wait_time_s = wait_time_s
        self._region = region
        self._stopping = threading.Event()
        self._threads = [
            threading.Thread(target=self._poll, name=f"sqs-{function.name}-{n}", daemon=True)
            for n in range(max(1, pollers))
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join(self._wait_time_s + 10)

    def _poll(self) -> None:
        while not self._stopping.is_set():
            try:
                messages = self._sqs.receive_message(
                    QueueUrl=self._queue_url,
                    MaxNumberOfMessages=self._batch_size,
                    WaitTimeSeconds=self._wait_time_s,
                    MessageSystemAttributeNames=["All"],
                    MessageAttributeNames=["All"],
                ).get("Messages", [])
            except (BotoCoreError, ClientError):
                if self._stopping.is_set():
                    return
                logger.warning("sqs receive failed", extra={"function": self.function.name})
                self._stopping.wait(_ERROR_BACKOFF_S)
                continue
            if messages:
                self._process(messages)

    def _process(self, messages: list[dict[str, Any]]) -> None:
        ids = [m["MessageId"] for m in messages]
        try:
            result = self.function.invoke(sqs_event(messages, self._queue_arn, self._region))
        except Exception:
            # A failed invocation leaves the whole batch for redelivery, as on AWS.
            logger.exception("function invocation failed", extra={"function": self.function.name})
            return
        failed = failed_message_ids(result, ids) if self._partial else set()
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            self._delete(done)

    def _delete(self, messages: list[dict[str, Any]]) -> None:
        entries = [
            {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(messages)
        ]
        try:
            self._sqs.delete_message_batch(QueueUrl=self._queue_url, Entries=entries)
        except (BotoCoreError, ClientError):
            logger.warning("sqs delete failed", extra={"function": self.function.name})


def schedule_period_s(expression: str) -> float | None:
    """Seconds between ticks of a `rate(...)` expression; None for cron (not run locally)."""
    match = _RATE.fullmatch(expression.strip())
    if match is None:
        return None
    unit = match.group(2).rstrip("s")
    return int(match.group(1)) * _UNIT_S[unit]


def scheduled_event(rule_arn: str, region: str, account: str = "123456789012") -> dict[str, Any]:
    """An EventBridge "Scheduled Event"."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [rule_arn],
        "detail": {},
    }


class ScheduleEventSource:
    """Invokes a function every `period_s` seconds (the first tick one period after start)."""

    def __init__(
        self,
        function: FunctionRuntime,
        period_s: float,
        *,
        schedule_name: str,
        region: str = "us-east-1",
    ) -> None:
        self.function = function
        self.period_s = period_s
        self._rule_arn = f"arn:aws:scheduler:{region}:123456789012:schedule/default/{schedule_name}"
        self._region = region
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._tick, name=f"schedule-{function.name}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(self.function.spec.timeout_s + 5)

    def _tick(self) -> None:
        next_at = time.monotonic() + self.period_s
        while not self._stopping.wait(max(0.0, next_at - time.monotonic())):
            next_at += self.period_s
            try:
                self.function.invoke(scheduled_event(self._rule_arn, self._region))
            except Exception:
                logger.exception(
                    "scheduled invocation failed", extra={"function": self.function.name}
                )


class AsyncInvoker:
    """Lambda's asynchronous invocations (`Event` type, what a topic rule's `Lambda` action
    makes, and the API's of the dispatch function): queued, then run by a few workers; a
    failed one is tried twice more, as Lambda does (at once here, not after a minute or two),
    then handed to `on_failure` (the function's on-failure destination) or logged and dropped.

    Invocations wait until `ready` (the functions are loaded after the bridges start).
    """

    ATTEMPTS = 3

    def __init__(
        self,
        functions: dict[str, FunctionRuntime],
        workers: int = 2,
        on_failure: Callable[[str, dict[str, Any], str], None] | None = None,
    ) -> None:
        self._functions = functions
        self._on_failure = on_failure  # (function, event, error message)
        self.ready = threading.Event()
        self._queue: queue.Queue[tuple[str, dict[str, Any]] | None] = queue.Queue()
        self._threads = [
            threading.Thread(target=self._work, name=f"invoke-async-{n}", daemon=True)
            for n in range(max(1, workers))
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join(10)

    def invoke(self, function: str, event: dict[str, Any]) -> None:
        self._queue.put((function, event))

    @property
    def pending(self) -> int:
        """Invocations queued or running."""
        return self._queue.unfinished_tasks

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            try:
                self._run(*item)
            finally:
                self._queue.task_done()
        self._queue.task_done()  # the stop sentinel

    def _run(self, name: str, event: dict[str, Any]) -> None:
        self.ready.wait()
        runtime = self._functions.get(name)
        if runtime is None:
            logger.warning("async invocation of an unknown function", extra={"function": name})
            return
        error = ""
        for attempt in range(1, self.ATTEMPTS + 1):
            try:
                runtime.invoke(event)
                return
            except Exception as exc:
                logger.exception(
                    "async invocation failed", extra={"function": name, "attempt": attempt}
                )
                error = f"{type(exc).__name__}: {exc}"
        if self._on_failure is not None:
            self._on_failure(name, event, error)
        else:
            logger.error("async invocation dropped", extra={"function": name})


def failure_record(function_arn: str, event: dict[str, Any], error: str, attempts: int) -> str:
    """What Lambda sends an asynchronous invocation's on-failure destination (SQS): the
    invocation record, the request in `requestPayload`."""
    return json.dumps(
        {
            "version": "1.0",
            "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": f"{function_arn}:$LATEST",
                "condition": "RetriesExhausted",
                "approximateInvokeCount": attempts,
            },
            "requestPayload": event,
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": "Unhandled",
            },
            "responsePayload": {"errorMessage": error},
        }
    )
