"""PynamoDB models of the runs table: one `run` item and one `t#<seq>` item per target."""

from __future__ import annotations

from pynamodb.attributes import (
    BooleanAttribute,
    JSONAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
    VersionAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, LocalSecondaryIndex
from pynamodb.models import Model

RUN_ITEM = "run"
LISTED = "run"
ACTIVE = "1"


def target_item(seq: int) -> str:
    return f"t#{seq:06d}"


def state_item(state: str, seq: int | None = None) -> str:
    """A target's key in `targets_by_state`: its state, then its item (start order); without
    `seq`, the prefix every target in `state` shares."""
    return f"{state}#" if seq is None else f"{state}#{target_item(seq)}"


class RunsNewestFirst(GlobalSecondaryIndex["RunRecord"]):
    """Every run item (they all carry `listed`), by id: ULIDs sort by creation time."""

    class Meta:
        index_name = "by_created"
        projection = AllProjection()

    listed = UnicodeAttribute(hash_key=True)
    run_id = UnicodeAttribute(range_key=True)


class ActiveRuns(GlobalSecondaryIndex["RunRecord"]):
    """Sparse: only IN_PROGRESS runs carry `active`, so the sweeper reads just those."""

    class Meta:
        index_name = "active_runs"
        projection = AllProjection()

    active = UnicodeAttribute(hash_key=True)
    run_id = UnicodeAttribute(range_key=True)


class RunsByCreator(GlobalSecondaryIndex["RunRecord"]):
    """Every run item by who started it, by id: the runs a service token lists."""

    class Meta:
        index_name = "by_creator"
        projection = AllProjection()

    created_by = UnicodeAttribute(hash_key=True)
    run_id = UnicodeAttribute(range_key=True)


class TargetsByState(LocalSecondaryIndex["RunTargetRecord"]):
    """A run's targets of one state, in start order (local: read consistently)."""

    class Meta:
        index_name = "targets_by_state"
        projection = AllProjection()

    run_id = UnicodeAttribute(hash_key=True)
    state_item = UnicodeAttribute(range_key=True)


class RunRecord(Model):
    class Meta:
        table_name = "unbound"

    run_id = UnicodeAttribute(hash_key=True)
    item = UnicodeAttribute(range_key=True, default=RUN_ITEM)
    type = UnicodeAttribute()
    params = JSONAttribute()
    targets = JSONAttribute()
    max_concurrency = JSONAttribute()  # an int, or a percentage string
    max_errors = JSONAttribute()
    timeout_s = NumberAttribute()
    deliver_by = UTCDateTimeAttribute(null=True)
    continuous = BooleanAttribute(default=False)
    expired_counts_as_error = BooleanAttribute(default=True)
    idempotency_key = UnicodeAttribute(null=True)
    created_by = UnicodeAttribute()
    allowed_hosts = JSONAttribute(null=True)
    state = UnicodeAttribute()
    stopping = UnicodeAttribute(null=True)
    reason = UnicodeAttribute(null=True)
    total = NumberAttribute(default=0)
    next_seq = NumberAttribute(default=0)
    counts = JSONAttribute()
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()
    finished_at = UTCDateTimeAttribute(null=True)
    listed = UnicodeAttribute(default=LISTED)
    active = UnicodeAttribute(null=True)
    version = VersionAttribute()

    by_created = RunsNewestFirst()
    by_creator = RunsByCreator()
    active_runs = ActiveRuns()


class RunTargetRecord(Model):
    class Meta:
        table_name = "unbound"

    run_id = UnicodeAttribute(hash_key=True)
    item = UnicodeAttribute(range_key=True)  # target_item(seq)
    seq = NumberAttribute()
    host = UnicodeAttribute()
    state = UnicodeAttribute()
    job_id = UnicodeAttribute(null=True)
    error = JSONAttribute(null=True)
    started_at = UTCDateTimeAttribute(null=True)
    finished_at = UTCDateTimeAttribute(null=True)
    state_item = UnicodeAttribute()  # state_item(state, seq)

    by_state = TargetsByState()
