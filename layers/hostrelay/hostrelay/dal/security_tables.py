"""PynamoDB models of enrollments and the audit trail."""

from __future__ import annotations

from pynamodb.attributes import (
    JSONAttribute,
    ListAttribute,
    TTLAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.models import Model

from hostrelay.dal.tables import StringMapAttribute


class EnrollmentRecord(Model):
    """A one-shot enrollment, keyed by the SHA-256 of its token (never the token itself)."""

    class Meta:
        table_name = "unbound"

    token_hash = UnicodeAttribute(hash_key=True)
    enrollment_id = UnicodeAttribute()
    host = UnicodeAttribute()
    roles = ListAttribute(of=UnicodeAttribute, default=list)
    replace = UnicodeAttribute(default="false")
    # The host's tags once enrolled; absent: a re-enrolled host keeps the tags it has.
    tags = StringMapAttribute(null=True)
    created_by = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()
    valid_until = UTCDateTimeAttribute()
    consumed_at = UTCDateTimeAttribute(null=True)
    expires_at = TTLAttribute()


class AuditRecord(Model):
    """Who did what: one item per action, partitioned by day for cheap range reads."""

    class Meta:
        table_name = "unbound"

    day = UnicodeAttribute(hash_key=True)
    event_id = UnicodeAttribute(range_key=True)
    at = UTCDateTimeAttribute()
    actor = UnicodeAttribute()
    action = UnicodeAttribute()
    target = UnicodeAttribute()
    details = JSONAttribute(null=True)
    expires_at = TTLAttribute(null=True)
