"""One SQS batch of relay events for the results function: parsed once, output stored first."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from hostrelay.domain.errors import InvalidRequest
from hostrelay.logic.ingest import EventIngester, OutputIncomplete
from hostrelay.logic.relay_events import OutputEvent, RelayEvent, parse_rule_message
from hostrelay.observability import logger

# ResultsQueue's maxReceiveCount: on its last delivery a result no longer waits for output.
RESULT_DELIVERIES = 5
# The message id of an event the topic rule handed over directly (not through the queue).
DIRECT = "direct"


class OutputNotStored(RuntimeError):
    """The batched write of the batch's output events failed; SQS delivers it again."""


class EventBatch:
    """A chatty job fills a batch with `output` events: `prepare` stores all of them in a few
    DynamoDB calls (instead of two per event) before any other event of the batch is
    applied, so a result in the same batch finds its output complete. `apply` then gives
    each message's outcome, in the batch's order, as the batch processor asks for them.
    """

    def __init__(
        self, ingester: EventIngester, requeue: Callable[[str], None] | None = None
    ) -> None:
        self._ingester = ingester
        self._requeue = requeue
        self._parsed: dict[str, tuple[str, RelayEvent] | InvalidRequest] = {}
        self._stored: dict[str, str | OutputNotStored] = {}
        self._final: set[str] = set()  # messages on their last delivery

    def prepare(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Parse every record of the SQS event and store its output events together."""
        self._parsed.clear()
        self._stored.clear()
        self._final.clear()
        self._ingester.begin_batch()
        outputs: list[tuple[str, tuple[str, OutputEvent]]] = []
        for record in records:
            message_id = record.get("messageId")
            if not message_id:
                continue  # the batch processor reports it
            receives = str(record.get("attributes", {}).get("ApproximateReceiveCount", "1"))
            if not receives.isdigit() or int(receives) >= RESULT_DELIVERIES:
                self._final.add(message_id)
            parsed = _parse(str(record.get("body", "")))
            self._parsed[message_id] = parsed
            if isinstance(parsed, tuple) and isinstance(parsed[1], OutputEvent):
                outputs.append((message_id, (parsed[0], parsed[1])))
        if not outputs:
            return
        try:
            outcomes: list[str | OutputNotStored] = list(
                self._ingester.store_outputs([event for _, event in outputs])
            )
        except Exception as exc:
            logger.exception("storing output events failed", extra={"events": len(outputs)})
            outcomes = [OutputNotStored(str(exc))] * len(outputs)
        self._stored.update(zip((message_id for message_id, _ in outputs), outcomes, strict=True))

    def apply(self, message_id: str, body: str) -> tuple[str, str] | None:
        """(event kind, outcome) of one message; None for garbage, which is logged and
        dropped (it never gets better later). Raises OutputNotStored when its output could
        not be written and OutputIncomplete when a result's output is not all stored yet
        (both: retry)."""
        parsed = self._parsed.pop(message_id, None) or _parse(body)
        if isinstance(parsed, InvalidRequest):
            logger.warning("unreadable relay event dropped", extra={"reason": parsed.message})
            return None
        host, event = parsed
        stored = self._stored.pop(message_id, None)
        if isinstance(stored, OutputNotStored):
            raise stored
        final = message_id in self._final
        return event.kind, stored or self._ingester.apply(host, event, final_delivery=final)

    def apply_direct(self, message: Mapping[str, Any]) -> tuple[str, str] | None:
        """One event a topic rule invoked the function with (the rule's output, as the queue
        would carry it). A result whose output is not all stored yet is handed to the
        results queue (`requeue`), which delivers it again like any queued event; without
        one, it raises and the invocation is retried."""
        body = json.dumps(dict(message))
        self.prepare([{"messageId": DIRECT, "body": body}])
        try:
            return self.apply(DIRECT, body)
        except (OutputIncomplete, OutputNotStored):
            if self._requeue is None:
                raise
            self._requeue(body)
            parsed = _parse(body)
            return (parsed[1].kind if isinstance(parsed, tuple) else "unknown"), "requeued"


def _parse(body: str) -> tuple[str, RelayEvent] | InvalidRequest:
    try:
        return parse_rule_message(body)
    except InvalidRequest as exc:
        return exc
