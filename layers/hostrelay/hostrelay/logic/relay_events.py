"""Relay events as the results queue delivers them: the host from the topic, the event read
with the contract's models (hostrelay_contract.events, which the relay builds them with)."""

from __future__ import annotations

import base64
import binascii
import re

from pydantic import BaseModel, ValidationError

from hostrelay.domain.errors import InvalidRequest
from hostrelay.domain.output import OutputBatch
from hostrelay_contract.events import (
    AcceptedEvent,
    BadMessageEvent,
    CertRenewalEvent,
    HeartbeatEvent,
    HelloEvent,
    InventoryEvent,
    OutputEvent,
    ProgressEvent,
    RejectedEvent,
    RelayEvent,
    ResultEvent,
    parse_event,
)
from hostrelay_contract.names import HOST_NAME_PATTERN

__all__ = [
    "AcceptedEvent",
    "BadMessageEvent",
    "CertRenewalEvent",
    "HeartbeatEvent",
    "HelloEvent",
    "InventoryEvent",
    "OutputEvent",
    "ProgressEvent",
    "RejectedEvent",
    "RelayEvent",
    "ResultEvent",
    "output_batch",
    "parse_rule_message",
]

# The host is a topic level the broker authorized: a host name as the contract defines it.
_EVENTS_TOPIC = re.compile(rf"^hostrelay/({HOST_NAME_PATTERN.strip('^$')})/events$")


class RuleMessage(BaseModel):
    """What the IoT topic rule (or the local bridge) puts on the results queue."""

    payload: str
    topic: str


def parse_rule_message(body: str) -> tuple[str, RelayEvent]:
    """(host, event) of a results-queue message; the host comes only from the topic."""
    try:
        message = RuleMessage.model_validate_json(body)
        match = _EVENTS_TOPIC.fullmatch(message.topic)
        if match is None:
            raise InvalidRequest(f"not an events topic: {message.topic[:200]!r}")
        event = parse_event(base64.b64decode(message.payload, validate=True))
    except ValidationError as exc:
        raise InvalidRequest(f"unreadable relay event: {_first_error(exc)}") from None
    except binascii.Error as exc:
        raise InvalidRequest(f"unreadable relay event: payload is not base64: {exc}") from None
    return match.group(1), event


def _first_error(exc: ValidationError) -> str:
    """What is wrong, in a line: the first error's field and message (never the input)."""
    errors = exc.errors(include_url=False, include_input=False)
    first = errors[0]
    where = ".".join(str(part) for part in first["loc"]) or "event"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {first['msg']}"[:300] + more


def output_batch(event: OutputEvent) -> OutputBatch:
    """The chunks of an output event (already checked: the index is sane, the data fits)."""
    return OutputBatch.from_index(event.index(), event.encoding, event.payload())
