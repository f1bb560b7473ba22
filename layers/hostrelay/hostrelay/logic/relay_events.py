"""Events a relay publishes, as the control plane reads them (see docs/protocol.md)."""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from hostrelay.domain.errors import InvalidRequest
from hostrelay.domain.output import MAX_CHUNK_BYTES, MAX_CHUNKS_PER_BATCH, OutputBatch
from hostrelay_contract.events import EVENT_VERSION, Outcome
from hostrelay_contract.names import HOST_NAME_PATTERN

# The host is a topic level the broker authorized: a host name as the contract defines it.
_EVENTS_TOPIC = re.compile(rf"^hostrelay/({HOST_NAME_PATTERN.strip('^$')})/events$")


class _Event(BaseModel):
    model_config = ConfigDict(extra="ignore")
    v: Literal[1] = EVENT_VERSION
    event_id: str = Field(min_length=1, max_length=64)
    sent_at: float = 0.0


class _JobEvent(_Event):
    job_id: str = Field(min_length=1, max_length=64)
    attempt: int = Field(ge=1)


class HelloEvent(_Event):
    kind: Literal["hello"]
    relay_version: str = Field(default="", max_length=64)
    jobs: list[dict[str, Any]] = Field(default_factory=list)
    clock: float | None = None
    cert_id: str | None = Field(
        default=None, max_length=64, description="SHA-256 of the certificate it connected with"
    )


class HeartbeatEvent(_Event):
    kind: Literal["heartbeat"]
    relay_version: str = Field(default="", max_length=64)
    running: int = 0


class AcceptedEvent(_JobEvent):
    kind: Literal["accepted"]


class ProgressEvent(_JobEvent):
    kind: Literal["progress"]
    done: int = 0
    total: int | None = None
    message: str = Field(default="", max_length=1024)


MAX_EVENT_DATA_BYTES = 96 * 1024  # decoded `data`; the relay keeps it under 88 KiB


class ChunkEntry(BaseModel):
    """One chunk in an `output` event's index; its bytes are in the event's `data`."""

    seq: int = Field(ge=0)
    stream: Literal["stdout", "stderr"]
    size: int = Field(ge=0, le=MAX_CHUNK_BYTES)


class OutputEvent(_JobEvent):
    """Consecutive output chunks of a job: their index, and their bytes in one `data` field.

    `data` is base64 of the chunks' bytes back to back, zlib-compressed when `encoding` says
    so. Relays before 0.2 sent one chunk as top-level `seq`, `stream` and `data`. Relays
    now add `first_seq` and `last_seq`: such output events go straight into the output
    table (OutputTopicRule), so this model only sees those of older relays.
    """

    kind: Literal["output"]
    chunks: list[ChunkEntry] = Field(min_length=1, max_length=MAX_CHUNKS_PER_BATCH)
    encoding: Literal["identity", "zlib"] = "identity"
    data: str = Field(max_length=4 * MAX_EVENT_DATA_BYTES // 3 + 4)
    first_seq: int | None = None
    last_seq: int | None = None

    @model_validator(mode="before")
    @classmethod
    def _single_chunk(cls, value: Any) -> Any:
        if isinstance(value, dict) and "chunks" not in value and "seq" in value:
            data = value.get("data")
            size = len(base64.b64decode(data, validate=True)) if isinstance(data, str) else 0
            chunk = {"seq": value.get("seq"), "stream": value.get("stream"), "size": size}
            return {**value, "chunks": [chunk]}
        return value

    _batch: OutputBatch | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _consistent(self) -> OutputEvent:
        batch = OutputBatch.from_index(
            [(c.seq, c.stream, c.size) for c in self.chunks],
            self.encoding,
            base64.b64decode(self.data, validate=True),
        )
        if (self.first_seq, self.last_seq) not in ((None, None), (batch.first_seq, batch.last_seq)):
            raise ValueError("first_seq and last_seq must be those of the chunks")
        batch.raw()  # the data must expand to exactly what the index says
        self._batch = batch
        return self

    def batch(self) -> OutputBatch:
        assert self._batch is not None  # set by the validator
        return self._batch


class ErrorBody(BaseModel):
    code: str = Field(max_length=64)
    message: str = Field(max_length=4096)
    retryable: bool = False


class OutputSummary(BaseModel):
    size: int = 0
    sha256: str | None = None
    chunks: int = 0


class ResultEvent(_JobEvent):
    kind: Literal["result"]
    outcome: Outcome
    result: dict[str, Any] | None = None
    error: ErrorBody | None = None
    output: OutputSummary | None = None
    started_at: float | None = Field(
        default=None, description="unix time the handler started on the relay (null: never)"
    )


class RejectedEvent(_Event):
    kind: Literal["rejected"]
    job_id: str | None = None
    attempt: int = 0
    reason: str = Field(max_length=64)
    message: str = Field(default="", max_length=4096)


class BadMessageEvent(_Event):
    kind: Literal["bad_message"]
    reason: str = Field(default="", max_length=64)
    message: str = Field(default="", max_length=4096)
    size: int = 0


class CertRenewalEvent(_Event):
    """The relay asks for its next certificate (at 2/3 of the current one's lifetime)."""

    kind: Literal["cert_renewal"]
    csr: str = Field(max_length=16 * 1024)


class InventoryEvent(_JobEvent):
    model_config = ConfigDict(extra="allow")
    kind: Literal["inventory"]


RelayEvent = Annotated[
    HelloEvent
    | HeartbeatEvent
    | AcceptedEvent
    | ProgressEvent
    | OutputEvent
    | ResultEvent
    | RejectedEvent
    | BadMessageEvent
    | CertRenewalEvent
    | InventoryEvent,
    Field(discriminator="kind"),
]
_EVENT_ADAPTER: TypeAdapter[RelayEvent] = TypeAdapter(RelayEvent)


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
        raw = base64.b64decode(message.payload, validate=True)
        event = _EVENT_ADAPTER.validate_python(json.loads(raw))
    except (ValidationError, binascii.Error, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"unreadable relay event: {str(exc)[:300]}") from None
    return match.group(1), event
