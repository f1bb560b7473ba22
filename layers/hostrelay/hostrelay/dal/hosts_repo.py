"""Host records: presence (online/offline), relay version, certificate, revocation."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any

from pynamodb.exceptions import DoesNotExist, PutError, UpdateError
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action

from hostrelay.clock import utcnow
from hostrelay.dal.tables import HostRecord
from hostrelay.domain.errors import NotFound
from hostrelay.domain.hosts import Host, HostState

# How long a results container may skip re-writing presence it wrote itself. Far below the
# sweeper's silence limit (3 heartbeats, at least 15 s), so an active host never looks silent.
PRESENCE_REFRESH_S = 5.0


def _carrying(tags: Mapping[str, str]) -> Condition | None:
    """The condition "the host's tags include every `key: value` of `tags`" (None: any)."""
    condition: Condition | None = None
    for key, value in sorted(tags.items()):
        term = HostRecord.tags[key] == value
        condition = term if condition is None else condition & term
    return condition


class HostRepository:
    def __init__(
        self,
        presence_refresh_s: float = 0.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._presence_refresh_s = presence_refresh_s
        self._monotonic = monotonic
        # Per container: host -> (when this container last marked it online, relay version).
        self._presence_written: dict[str, tuple[float, str | None]] = {}

    def get(self, name: str) -> Host:
        host = self.find(name)
        if host is None:
            raise NotFound(f"host {name} not found")
        return host

    def find(self, name: str) -> Host | None:
        try:
            return Host.model_validate(HostRecord.get(name, consistent_read=True))
        except DoesNotExist:
            return None

    def find_many(self, names: Iterable[str]) -> dict[str, Host]:
        """The hosts of `names` that exist, by name (consistent reads, 100 a request)."""
        return {
            record.name: Host.model_validate(record)
            for record in HostRecord.batch_get(list(dict.fromkeys(names)), consistent_read=True)
        }

    def all(self, tags: Mapping[str, str] | None = None) -> Iterator[Host]:
        """Every host, or those carrying every `key: value` of `tags` (filtered by DynamoDB)."""
        for record in HostRecord.scan(filter_condition=_carrying(tags or {})):
            yield Host.model_validate(record)

    def names_with_tags(self, tags: Mapping[str, str]) -> list[str]:
        """Names of the hosts that carry every `key: value` of `tags` (AND), revoked hosts
        left out (they can never take a job); sorted. Empty `tags` match every host.

        One scan filtered in DynamoDB, reading names only: a fleet's hosts table is small.
        """
        condition = HostRecord.state != HostState.REVOKED.value
        if tags:
            condition &= _carrying(tags)
        return sorted(
            record.name
            for record in HostRecord.scan(filter_condition=condition, attributes_to_get=["name"])
        )

    def replace_tags(self, name: str, tags: Mapping[str, str], *, read_version: int) -> bool:
        """Write a host's whole tag set, on condition nobody changed its tags since they were
        read at `read_version`; False when somebody did (or the host is gone)."""
        version_unchanged = (
            HostRecord.tags_version == read_version
            if read_version
            else HostRecord.tags_version.does_not_exist()
        )
        action = HostRecord.tags.set(dict(tags)) if tags else HostRecord.tags.remove()
        return self._update_if(
            name,
            [action, HostRecord.tags_version.set(read_version + 1)],
            HostRecord.name.exists() & version_unchanged,
        )

    def register(self, name: str, roles: list[str] | None = None) -> Host:
        """Create the host if it does not exist yet (enrollment and the local stack)."""
        record = HostRecord(name=name, roles=roles or [], created_at=utcnow(), state="offline")
        try:
            record.save(condition=HostRecord.name.does_not_exist())
        except PutError as exc:
            if exc.cause_response_code != "ConditionalCheckFailedException":
                raise
            return self.get(name)
        return Host.model_validate(record)

    def seen(
        self,
        name: str,
        *,
        now: datetime | None = None,
        relay_version: str | None = None,
        connected: bool = False,
    ) -> bool:
        """Mark a host alive; returns True when it was offline before (it just came back).

        Revoked and unknown hosts are left alone whatever they send. Without a new connection
        or relay version, a host this repository marked online less than `presence_refresh_s`
        ago is not written again.
        """
        started = self._monotonic()
        written = self._presence_written.get(name)
        if (
            written is not None
            and not connected
            and started - written[0] < self._presence_refresh_s
            and (not relay_version or relay_version == written[1])
        ):
            return False
        now = now or utcnow()
        actions: list[Action] = [
            HostRecord.last_seen.set(now),
            HostRecord.state.set(HostState.ONLINE.value),
        ]
        if relay_version:
            actions.append(HostRecord.relay_version.set(relay_version))
        if connected:
            actions.append(HostRecord.connected_at.set(now))
        # One conditional write in the usual case (online already), a second when it was not.
        if self._update_if(name, actions, HostRecord.state == HostState.ONLINE.value):
            was_offline = False
        elif self._update_if(
            name,
            actions,
            HostRecord.name.exists() & (HostRecord.state != HostState.REVOKED.value),
        ):
            was_offline = True
        else:
            return False
        known_version = relay_version or (written[1] if written is not None else None)
        self._presence_written[name] = (started, known_version)
        return was_offline

    @staticmethod
    def _update_if(name: str, actions: list[Action], condition: Condition) -> bool:
        try:
            HostRecord(name=name).update(actions=actions, condition=condition)
        except UpdateError as exc:
            if exc.cause_response_code != "ConditionalCheckFailedException":
                raise
            return False
        return True

    def mark_offline(self, name: str, *, last_seen_before: datetime | None = None) -> bool:
        """Online → offline, optionally only if it has not been seen since a moment."""
        condition = HostRecord.state == HostState.ONLINE.value
        if last_seen_before is not None:
            condition &= HostRecord.last_seen < last_seen_before
        try:
            HostRecord(name=name).update(
                actions=[HostRecord.state.set(HostState.OFFLINE.value)], condition=condition
            )
        except UpdateError as exc:
            if exc.cause_response_code != "ConditionalCheckFailedException":
                raise
            return False
        return True

    def set_certificate(
        self,
        name: str,
        cert_id: str,
        expires_at: datetime,
        roles: list[str] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        """A newly enrolled (or re-enrolled) host: its certificate, and not revoked any more;
        `tags` (if not None) replace its tags."""
        actions: list[Action] = [
            HostRecord.cert_id.set(cert_id),
            HostRecord.cert_expires_at.set(expires_at),
            HostRecord.revoked_at.remove(),
            HostRecord.pending_cert.remove(),
        ]
        record = self.get(name)
        if record.state == HostState.REVOKED:
            actions.append(HostRecord.state.set(HostState.OFFLINE.value))
        if roles is not None:
            actions.append(HostRecord.roles.set(roles))  # type: ignore[arg-type]
        if tags is not None:
            actions.append(HostRecord.tags.set(dict(tags)) if tags else HostRecord.tags.remove())
            actions.append(HostRecord.tags_version.add(1))
        HostRecord(name=name).update(actions=actions)

    def set_pending_certificate(self, name: str, pending: dict[str, Any] | None) -> bool:
        """Record a renewed certificate the host has not used yet; False if it is revoked."""
        action = (
            HostRecord.pending_cert.set(pending)
            if pending is not None
            else HostRecord.pending_cert.remove()
        )
        try:
            HostRecord(name=name).update(
                actions=[action],
                condition=HostRecord.name.exists() & (HostRecord.state != HostState.REVOKED.value),
            )
        except UpdateError as exc:
            if exc.cause_response_code != "ConditionalCheckFailedException":
                raise
            return False
        return True

    def claim_renewal(self, name: str, now: datetime, *, granted_before: datetime) -> bool:
        """Grant a renewal now unless one was granted at or after `granted_before`.

        One conditional write: of two renewals racing for a host, at most one is granted.
        False too for revoked and unknown hosts.
        """
        condition = (
            HostRecord.name.exists()
            & (HostRecord.state != HostState.REVOKED.value)
            & (
                HostRecord.renewal_granted_at.does_not_exist()
                | (HostRecord.renewal_granted_at < granted_before)
            )
        )
        return self._update_if(name, [HostRecord.renewal_granted_at.set(now)], condition)

    def promote_pending_certificate(
        self, name: str, *, old_cert_id: str | None, new_cert_id: str, expires_at: datetime
    ) -> bool:
        """The host connected with its pending certificate: it becomes the current one.

        Conditional on the current certificate still being `old_cert_id`, so two deliveries
        of the same hello promote once.
        """
        condition = (
            HostRecord.cert_id == old_cert_id
            if old_cert_id
            else HostRecord.cert_id.does_not_exist()
        )
        try:
            HostRecord(name=name).update(
                actions=[
                    HostRecord.cert_id.set(new_cert_id),
                    HostRecord.cert_expires_at.set(expires_at),
                    HostRecord.pending_cert.remove(),
                ],
                condition=condition & (HostRecord.state != HostState.REVOKED.value),
            )
        except UpdateError as exc:
            if exc.cause_response_code != "ConditionalCheckFailedException":
                raise
            return False
        return True

    def revoke(self, name: str) -> Host:
        self.get(name)  # NotFound for an unknown host
        HostRecord(name=name).update(
            actions=[
                HostRecord.state.set(HostState.REVOKED.value),
                HostRecord.revoked_at.set(utcnow()),
                HostRecord.pending_cert.remove(),
            ]
        )
        return self.get(name)
