"""Authentik and Kubernetes connectors run by the cloud: `authentik.sync` (a full read applied
as a snapshot), `kubernetes.sync` (full, or between full runs the changes since the last one)
and `authentik.group_members` (write-back).

The same sources run on a relay as `connector.sync`; both read with hostrelay_sources.
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import ValidationError

from hostrelay.dal.connectors_repo import ConnectorRepository
from hostrelay.dal.self_hosted_sources import CloudSourceSession, source_errors
from hostrelay.domain.connector_settings import (
    AuthentikConnectorSettings,
    KubernetesConnectorSettings,
)
from hostrelay.domain.connectors import ConnectorKind
from hostrelay.domain.inventory import MEMBER_OF, MEMBERS, EntityUpsert, SourceReadError
from hostrelay.domain.jobs import Job, JobState
from hostrelay.logic.cloud_jobs import RunEnd, failed
from hostrelay.logic.source_sync import ChangeFeed, ChangeRead, SourceSpec
from hostrelay_contract.jobs.sources import AuthentikGroupMembersParams
from hostrelay_sources import authentik, kubernetes
from hostrelay_sources.entities import SourceEntity
from hostrelay_sources.errors import Rejected

ConnectSource = Callable[
    [AuthentikConnectorSettings | KubernetesConnectorSettings], CloudSourceSession
]


def entity_upsert(entity: SourceEntity) -> EntityUpsert:
    relations = {MEMBER_OF: entity.member_of}
    if entity.members is not None:
        relations[MEMBERS] = entity.members
    return EntityUpsert(
        id=entity.id,
        kind=entity.kind,
        name=entity.name,
        attributes=entity.attributes,
        relations=relations,
    )


def _read(
    session: CloudSourceSession,
    settings: AuthentikConnectorSettings | KubernetesConnectorSettings,
    should_stop: Callable[[], bool],
) -> list[EntityUpsert] | None:
    read = session.read(should_stop)
    if read.entities is None:
        return None
    return [entity_upsert(entity) for entity in read.entities]


AUTHENTIK_SOURCE: SourceSpec[AuthentikConnectorSettings, CloudSourceSession] = SourceSpec(
    kind=ConnectorKind.AUTHENTIK,
    settings=AuthentikConnectorSettings,
    entity_kinds=authentik.KINDS,
    read=_read,
)


def _read_changes(
    session: CloudSourceSession, position: dict[str, str], should_stop: Callable[[], bool]
) -> ChangeRead | None:
    """Kubernetes: one watch per resource from its saved resourceVersion (deletes included)."""
    changes = session.read_changes(position, should_stop)
    if changes is None:
        return None
    upserts = [entity_upsert(entity) for entity in changes.changed]
    return ChangeRead(upserts, changes.deleted, changes.versions)


KUBERNETES_SOURCE: SourceSpec[KubernetesConnectorSettings, CloudSourceSession] = SourceSpec(
    kind=ConnectorKind.KUBERNETES,
    settings=KubernetesConnectorSettings,
    entity_kinds=kubernetes.KINDS,
    read=_read,
    changes=ChangeFeed(
        position_after_full=lambda session, started: dict(session.positions),
        read_changes=lambda session, settings, position, started, stored, should_stop: (
            _read_changes(session, position, should_stop)
        ),
    ),
)


class AuthentikGroupMembers:
    """The authentik.group_members handler: diff the request against the group, then (unless
    a dry run) apply exactly that diff, so a repeated request changes nothing."""

    kind = ConnectorKind.AUTHENTIK.value

    def __init__(self, connectors: ConnectorRepository, connect: ConnectSource) -> None:
        self._connectors = connectors
        self._connect = connect

    def run(self, job: Job, should_stop: Callable[[], bool]) -> RunEnd:
        try:
            params = AuthentikGroupMembersParams.model_validate(job.params)
        except ValidationError:
            return failed("invalid_params", "bad params")
        connector = self._connectors.find(params.connector)
        if connector is None or connector.kind is not ConnectorKind.AUTHENTIK:
            return failed("connector_missing", f"no authentik connector {params.connector}")
        settings = AuthentikConnectorSettings.model_validate(connector.settings)
        if not settings.write_back:
            return failed(
                "write_back_disabled",
                f"connector {connector.id} does not allow write-back (settings.write_back)",
            )
        try:
            api = self._connect(settings).authentik()
            with source_errors():
                try:
                    change = authentik.change_group_members(api, params)
                except Rejected as exc:
                    if exc.status == 404:
                        return failed(
                            "group_not_found", f"authentik group {params.group} not found"
                        )
                    raise
                finally:
                    api.close()
        except SourceReadError as exc:
            return failed(exc.code, exc.message)
        if change.failures:
            return failed(
                "write_back_partial", f"{change.failures} change(s) failed", change.result
            )
        return RunEnd(JobState.SUCCEEDED, change.result)
