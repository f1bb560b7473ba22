"""PynamoDB storage models; table names are bound from settings at cold start."""

from __future__ import annotations

from typing import Any

from pynamodb.attributes import (
    Attribute,
    JSONAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
    VersionAttribute,
)
from pynamodb.constants import MAP, STRING
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model

from hostrelay.dal.pynamodb_private import forget_connection

_UNBOUND = "unbound"


class JobsByHostState(GlobalSecondaryIndex["JobRecord"]):
    class Meta:
        index_name = "by_host_state"
        projection = AllProjection()

    host = UnicodeAttribute(hash_key=True)
    state_key = UnicodeAttribute(range_key=True)


class ActiveJobsByDeadline(GlobalSecondaryIndex["JobRecord"]):
    """Sparse: only non-terminal jobs carry `active`, so the sweeper reads just those."""

    class Meta:
        index_name = "active_by_deadline"
        projection = AllProjection()

    active = UnicodeAttribute(hash_key=True)
    deadline = UnicodeAttribute(range_key=True)


class JobsByConnector(GlobalSecondaryIndex["JobRecord"]):
    """Sparse: only connector runs carry `connector_id`; newest first by created_at."""

    class Meta:
        index_name = "by_connector"
        projection = AllProjection()

    connector_id = UnicodeAttribute(hash_key=True)
    created_at = UTCDateTimeAttribute(range_key=True)


class JobRecord(Model):
    class Meta:
        table_name = _UNBOUND

    id = UnicodeAttribute(hash_key=True)
    type = UnicodeAttribute()
    host = UnicodeAttribute()
    params = JSONAttribute()
    state = UnicodeAttribute()
    state_key = UnicodeAttribute()
    attempt = NumberAttribute(default=1)
    max_attempts = NumberAttribute(default=1)
    timeout_s = NumberAttribute()
    deliver_by = UTCDateTimeAttribute(null=True)
    idempotency_key = UnicodeAttribute(null=True)
    created_by = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()
    started_at = UTCDateTimeAttribute(null=True)
    finished_at = UTCDateTimeAttribute(null=True)
    dispatched_at = UTCDateTimeAttribute(null=True)
    cancel_requested_at = UTCDateTimeAttribute(null=True)
    progress = JSONAttribute(null=True)
    result = JSONAttribute(null=True)
    error = JSONAttribute(null=True)
    output = JSONAttribute(null=True)
    active = UnicodeAttribute(null=True)
    deadline = UnicodeAttribute(null=True)
    purge_at = TTLAttribute(null=True)
    connector_id = UnicodeAttribute(null=True)
    requeued_at = UTCDateTimeAttribute(null=True)
    # A fleet run's job: its run and the target it serves (dal/run_tables.py).
    run_id = UnicodeAttribute(null=True)
    run_seq = NumberAttribute(null=True)
    version = VersionAttribute()

    by_host_state = JobsByHostState()
    active_by_deadline = ActiveJobsByDeadline()
    by_connector = JobsByConnector()


class StringMapAttribute(Attribute[dict[str, str]]):
    """A DynamoDB map of strings, read back as a plain dict (a raw MapAttribute comes back as
    a MapAttribute object); `Record.attr[key]` still names one entry in conditions."""

    attr_type = MAP

    def serialize(self, value: dict[str, str]) -> dict[str, dict[str, str]]:
        return {key: {STRING: item} for key, item in value.items()}

    def deserialize(self, value: dict[str, dict[str, str]]) -> dict[str, str]:
        return {key: item[STRING] for key, item in value.items()}


class HostRecord(Model):
    class Meta:
        table_name = _UNBOUND

    name = UnicodeAttribute(hash_key=True)
    state = UnicodeAttribute(default="offline")
    roles = ListAttribute(of=UnicodeAttribute, default=list)
    created_at = UTCDateTimeAttribute()
    last_seen = UTCDateTimeAttribute(null=True)
    connected_at = UTCDateTimeAttribute(null=True)
    relay_version = UnicodeAttribute(null=True)
    cert_id = UnicodeAttribute(null=True)
    cert_expires_at = UTCDateTimeAttribute(null=True)
    # A renewed certificate issued but not yet used: {id, expires_at, key_sha256, job_id, pem}.
    pending_cert = JSONAttribute(null=True)
    # When a renewal was last granted: renewals are rate-limited per host against it.
    renewal_granted_at = UTCDateTimeAttribute(null=True)
    revoked_at = UTCDateTimeAttribute(null=True)
    # Host tags {key: value} (domain/tags.py), and a counter every change of them bumps: a tag
    # change is conditional on the counter it read.
    tags = StringMapAttribute(null=True)
    tags_version = NumberAttribute(null=True)


class TokensById(GlobalSecondaryIndex["TokenRecord"]):
    """Token id → token hash, so revoking by id reads one index entry, not the table."""

    class Meta:
        index_name = "by_token_id"
        projection = KeysOnlyProjection()

    token_id = UnicodeAttribute(hash_key=True)


class TokenRecord(Model):
    """An API token, keyed by the SHA-256 of its secret; the secret itself is never stored."""

    class Meta:
        table_name = _UNBOUND

    token_hash = UnicodeAttribute(hash_key=True)
    token_id = UnicodeAttribute()
    name = UnicodeAttribute()
    scopes = ListAttribute(of=UnicodeAttribute)
    job_types = ListAttribute(of=UnicodeAttribute, null=True)
    hosts = ListAttribute(of=UnicodeAttribute, null=True)
    created_by = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()
    expires_at = TTLAttribute(null=True)
    last_used_at = UTCDateTimeAttribute(null=True)
    revoked_at = UTCDateTimeAttribute(null=True)

    by_token_id = TokensById()


class IdempotencyRecord(Model):
    class Meta:
        table_name = _UNBOUND

    key = UnicodeAttribute(hash_key=True)
    job_id = UnicodeAttribute()
    body_sha256 = UnicodeAttribute()
    expires_at = TTLAttribute()


class ChunkIndexEntry(MapAttribute[str, Any]):
    seq = NumberAttribute()
    stream = UnicodeAttribute()
    size = NumberAttribute()


class OutputBatchRecord(Model):
    """The chunks of one `output` event, keyed by host, job, attempt and the last seq they hold.

    Written as the event was sent, by AWS IoT (OutputTopicRule) or by the results function
    (events of older relays, without `last_seq`), so readers check every item (OutputStore).
    """

    class Meta:
        table_name = _UNBOUND

    job_attempt = UnicodeAttribute(hash_key=True)  # "{host}/{job_id}#{attempt}"
    seq = NumberAttribute(range_key=True)  # the last chunk's: a query for seq > n finds n+1
    chunks = ListAttribute(of=ChunkIndexEntry)  # as the event's index: seq, stream, size
    encoding = UnicodeAttribute(default="identity")
    data = UnicodeAttribute()  # base64, as the event carried it
    host = UnicodeAttribute()
    expires_at = TTLAttribute()


def bind_table(model: type[Model], table_name: str, **meta: Any) -> None:
    """Point a model at its table (names come from the function's settings)."""
    model.Meta.table_name = table_name
    for key, value in meta.items():
        setattr(model.Meta, key, value)
    forget_connection(model)
