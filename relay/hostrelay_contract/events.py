"""The relay's events (docs/protocol.md): their models, ULID event ids, building and encoding.

The relay builds every event through `new_event`, which checks it against its kind's model;
the control plane reads them with `parse_event`: one definition, so an event one side
refuses the other refuses too.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import os
import time
from collections.abc import Callable
from typing import Annotated, Any, Final, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    TypeAdapter,
    model_validator,
)

from hostrelay_contract.envelope import JobId
from hostrelay_contract.inventory import InventoryBody
from hostrelay_contract.output import (
    MAX_CHUNK_BYTES,
    MAX_CHUNKS_PER_EVENT,
    MAX_EVENT_DATA_BYTES,
    check_chunk_index,
    expand,
)

EVENT_VERSION: Final = 1
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

# Kinds the relay itself emits; a handler's report_event may not impersonate them.
CORE_KINDS = frozenset(
    {"hello", "heartbeat", "accepted", "progress", "output", "result", "rejected", "bad_message"}
)
COMMON_FIELDS = frozenset({"v", "kind", "event_id", "sent_at", "job_id", "attempt"})
Outcome = Literal["succeeded", "failed", "timed_out", "canceled"]
HELLO_MAX_JOBS: Final = 1000  # ~70 KB: AWS IoT Core refuses messages over 128 KB
MAX_ID: Final = 64
MAX_MESSAGE: Final = 4096
MAX_CSR: Final = 16 * 1024


def _cut(limit: int) -> Callable[[Any], Any]:
    def cut(value: Any) -> Any:
        return value[:limit] if isinstance(value, str) else value

    return cut


# Free text (an error's or a rejection's message) is cut to its limit, never a reason to
# lose the event it explains; identifiers and codes over their limit are refused.
Message = Annotated[str, BeforeValidator(_cut(MAX_MESSAGE)), Field(max_length=MAX_MESSAGE)]
Id = Annotated[str, Field(min_length=1, max_length=MAX_ID)]
Code = Annotated[str, Field(max_length=MAX_ID)]


class _Event(BaseModel):
    # Fields a newer relay adds are ignored, not refused: relays upgrade after the cloud.
    model_config = ConfigDict(extra="ignore", defer_build=True)

    v: Literal[1] = EVENT_VERSION
    event_id: Id
    sent_at: float = 0.0


class _JobEvent(_Event):
    job_id: JobId
    attempt: int = Field(ge=1)


class HelloJob(BaseModel):
    """A job the relay's ledger holds unfinished."""

    model_config = ConfigDict(extra="ignore", defer_build=True)

    job_id: JobId
    attempt: int = Field(ge=1)
    state: Code


class HelloEvent(_Event):
    """Sent on every (re)connect: the relay's version, clock, certificate and open jobs."""

    kind: Literal["hello"]
    relay_version: Code = ""
    jobs: list[HelloJob] = Field(default_factory=list, max_length=HELLO_MAX_JOBS)
    jobs_omitted: int = Field(default=0, ge=0)
    clock: float | None = None
    cert_id: str | None = Field(
        default=None, max_length=MAX_ID, description="SHA-256 of the certificate it connected with"
    )


class HeartbeatEvent(_Event):
    kind: Literal["heartbeat"]
    relay_version: Code = ""
    running: int = Field(default=0, ge=0)
    uptime_s: float | None = None


class AcceptedEvent(_JobEvent):
    kind: Literal["accepted"]


class ProgressEvent(_JobEvent):
    kind: Literal["progress"]
    done: int = 0
    total: int | None = None
    message: Annotated[str, BeforeValidator(_cut(1024)), Field(max_length=1024)] = ""


class ChunkEntry(BaseModel):
    """One chunk in an `output` event's index; its bytes are in the event's `data`."""

    model_config = ConfigDict(defer_build=True)

    seq: int = Field(ge=0)
    stream: Literal["stdout", "stderr"]
    size: int = Field(ge=0, le=MAX_CHUNK_BYTES)


class OutputEvent(_JobEvent):
    """Consecutive output chunks of a job: their index, and their bytes in one `data` field.

    `data` is base64 of the chunks' bytes back to back, zlib-compressed when `encoding` says
    so, and must expand to exactly the sizes the index names. Relays before 0.2 sent one
    chunk as top-level `seq`, `stream` and `data`; relays now add `first_seq` and `last_seq`
    (such events go straight into the output table through OutputTopicRule).
    """

    kind: Literal["output"]
    chunks: list[ChunkEntry] = Field(min_length=1, max_length=MAX_CHUNKS_PER_EVENT)
    encoding: Literal["identity", "zlib"] = "identity"
    data: str = Field(max_length=4 * MAX_EVENT_DATA_BYTES // 3 + 4)
    first_seq: int | None = None
    last_seq: int | None = None
    _payload: bytes = PrivateAttr(default=b"")

    @model_validator(mode="before")
    @classmethod
    def _single_chunk(cls, value: Any) -> Any:
        if isinstance(value, dict) and "chunks" not in value and "seq" in value:
            data = value.get("data")
            size = len(_b64decode(data)) if isinstance(data, str) else 0
            chunk = {"seq": value.get("seq"), "stream": value.get("stream"), "size": size}
            return {**value, "chunks": [chunk]}
        return value

    @model_validator(mode="after")
    def _consistent(self) -> OutputEvent:
        index = self.index()
        check_chunk_index(index, self.encoding)
        first, last = index[0][0], index[-1][0]
        if (self.first_seq, self.last_seq) not in ((None, None), (first, last)):
            raise ValueError("first_seq and last_seq must be those of the chunks")
        self._payload = _b64decode(self.data)
        expand(self.encoding, self._payload, sum(size for _, _, size in index))
        return self

    def index(self) -> list[tuple[int, str, int]]:
        """(seq, stream, size) of each chunk."""
        return [(chunk.seq, chunk.stream, chunk.size) for chunk in self.chunks]

    def payload(self) -> bytes:
        """`data` decoded: the chunks' bytes, compressed as `encoding` says."""
        return self._payload


class ErrorBody(BaseModel):
    model_config = ConfigDict(extra="ignore", defer_build=True)

    code: Code
    message: Message
    retryable: bool = False


class OutputSummary(BaseModel):
    model_config = ConfigDict(extra="ignore", defer_build=True)

    size: int = Field(default=0, ge=0)
    sha256: str | None = Field(default=None, max_length=MAX_ID)
    chunks: int = Field(default=0, ge=0)


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
    """An envelope the relay refused; job_id is None when its signature did not verify."""

    kind: Literal["rejected"]
    job_id: JobId | None = None
    attempt: int = Field(default=0, ge=0)
    reason: Code
    message: Message = ""


class BadMessageEvent(_Event):
    """Garbage on the jobs topic that is no envelope, or a refused cancel request."""

    kind: Literal["bad_message"]
    reason: Code = ""
    message: Message = ""
    size: int = Field(default=0, ge=0)


class CertRenewalEvent(_Event):
    """The relay asks for its next certificate (at 2/3 of the current one's lifetime)."""

    kind: Literal["cert_renewal"]
    csr: str = Field(min_length=1, max_length=MAX_CSR)


class InventoryEvent(_JobEvent, InventoryBody):
    """Sent by ldap.sync and connector.sync through `report_event`."""

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
EVENT_MODELS: Final[dict[str, type[_Event]]] = {
    model.model_fields["kind"].annotation.__args__[0]: model  # type: ignore[union-attr]
    for model in (
        HelloEvent,
        HeartbeatEvent,
        AcceptedEvent,
        ProgressEvent,
        OutputEvent,
        ResultEvent,
        RejectedEvent,
        BadMessageEvent,
        CertRenewalEvent,
        InventoryEvent,
    )
}


def _b64decode(data: str) -> bytes:
    try:
        return base64.b64decode(data, validate=True)
    except binascii.Error as exc:
        raise ValueError(f"data is not base64: {exc}") from None


@functools.cache
def _adapter() -> TypeAdapter[RelayEvent]:
    return TypeAdapter(RelayEvent)


def parse_event(raw: bytes) -> RelayEvent:
    """The event these bytes (as published) are; pydantic.ValidationError when they are none
    (not JSON, an unknown kind, or fields its model refuses)."""
    return _adapter().validate_json(raw)


def new_ulid(now: float | None = None) -> str:
    """A ULID: 48-bit millisecond time and 80 random bits, Crockford base32 (26 chars)."""
    millis = int((time.time() if now is None else now) * 1000)
    value = (millis << 80) | int.from_bytes(os.urandom(10), "big")
    return "".join(_CROCKFORD[(value >> shift) & 0x1F] for shift in range(125, -1, -5))


def new_event(kind: str, **fields: Any) -> dict[str, Any]:
    """An event of `kind` with a fresh event_id and sent_at, plus the kind's own fields.

    ValueError (pydantic.ValidationError names the fields) when the control plane would
    refuse it: an unknown kind, or fields its model does not accept.
    """
    now = time.time()
    event = {"v": EVENT_VERSION, "kind": kind, "event_id": new_ulid(now), "sent_at": now, **fields}
    model = EVENT_MODELS.get(kind)
    if model is None:
        raise ValueError(f"unknown event kind {kind[:40]!r}")
    # Judged as JSON, the form the control plane reads (`{1: ...}` arrives as `{"1": ...}`).
    try:
        model.model_validate_json(encode_event(event))
    except TypeError as exc:  # json.dumps: a value JSON cannot carry
        raise ValueError(f"{kind} event is not JSON: {exc}") from None
    return event


def encode_event(event: dict[str, Any], *, strict: bool = False) -> bytes:
    """The bytes published on the events topic (compact JSON, UTF-8).

    strict: refuse NaN and infinities (ValueError) instead of writing them as non-JSON.
    """
    return json.dumps(
        event, separators=(",", ":"), ensure_ascii=False, allow_nan=not strict
    ).encode()
