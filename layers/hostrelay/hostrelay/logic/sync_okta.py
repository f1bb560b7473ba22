"""Okta connector: `okta.sync` fills the inventory, `okta.group_members` writes memberships back.

Entities: `okta.user` (status, profile basics; relation member_of) and `okta.group` (type
OKTA_GROUP / APP_GROUP / BUILT_IN, okta_owned; relation members). A full run reads everything
and deletes what it no longer sees; the runs between full ones read only the users and groups
updated since the last run (`filter=lastUpdated gt`, for groups also `lastMembershipUpdated`),
each changed group's members, and patch `member_of` of the users who joined or left.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from hostrelay.clock import isoformat
from hostrelay.dal.connectors_repo import ConnectorRepository
from hostrelay.dal.okta import OktaOrg, RawObject
from hostrelay.dal.rest_source import SourceRejected
from hostrelay.domain.connector_settings import OktaConnectorSettings
from hostrelay.domain.connectors import Connector, ConnectorKind
from hostrelay.domain.inventory import (
    MEMBER_OF,
    MEMBERS,
    EntityUpsert,
    InventoryEntity,
    SourceReadError,
)
from hostrelay.domain.jobs import Job, JobState
from hostrelay.logic.cloud_jobs import RunEnd, failed
from hostrelay.logic.source_sync import ChangeFeed, ChangeRead, SourceSpec, StoredEntities
from hostrelay_contract.jobs.cloud import OktaGroupMembersParams
from hostrelay_sources.entities import compact

USER_KIND = "okta.user"
GROUP_KIND = "okta.group"
OKTA_OWNED = "OKTA_GROUP"  # APP_GROUP and BUILT_IN memberships are not ours to change
# A full list leaves DEPROVISIONED users out (so a full run deletes them); a filtered list has
# them, and an incremental run deletes them too.
DEPROVISIONED = "DEPROVISIONED"
# Okta's clock is not ours and its lists are eventually consistent: a run reads the changes
# since a little before the previous run started (what it reads twice changes nothing).
CHANGE_OVERLAP = timedelta(minutes=5)
ConnectOkta = Callable[[OktaConnectorSettings], OktaOrg]


def user_entity(raw: RawObject, groups: list[str]) -> EntityUpsert:
    profile = raw.get("profile") or {}
    attributes = {
        "status": raw.get("status"),
        "login": profile.get("login"),
        "email": profile.get("email"),
        "first_name": profile.get("firstName"),
        "last_name": profile.get("lastName"),
        "display_name": profile.get("displayName"),
        "created": raw.get("created"),
        "activated": raw.get("activated"),
        "last_login": raw.get("lastLogin"),
        "last_updated": raw.get("lastUpdated"),
    }
    return EntityUpsert(
        id=str(raw["id"]),
        kind=USER_KIND,
        name=str(profile.get("login") or raw["id"]),
        attributes=compact(attributes),
        relations={MEMBER_OF: sorted(set(groups))},
    )


def group_entity(raw: RawObject, members: list[str]) -> EntityUpsert:
    profile = raw.get("profile") or {}
    group_type = str(raw.get("type") or "")
    attributes = {
        "type": group_type,
        "okta_owned": group_type == OKTA_OWNED,
        "description": profile.get("description"),
        "created": raw.get("created"),
        "last_membership_updated": raw.get("lastMembershipUpdated"),
    }
    return EntityUpsert(
        id=str(raw["id"]),
        kind=GROUP_KIND,
        name=str(profile.get("name") or raw["id"]),
        attributes=compact(attributes),
        relations={MEMBERS: sorted(set(members))},
    )


def read_org(org: OktaOrg, should_stop: Callable[[], bool]) -> list[EntityUpsert] | None:
    """Every user and group with memberships both ways; None when canceled midway."""
    users = [user for user in org.users() if "id" in user]
    groups = [group for group in org.groups() if "id" in group]
    member_of: dict[str, list[str]] = defaultdict(list)
    entities: list[EntityUpsert] = []
    for group in groups:
        if should_stop():
            return None
        members = org.group_member_ids(str(group["id"]))
        for user_id in members:
            member_of[user_id].append(str(group["id"]))
        entities.append(group_entity(group, members))
    entities += [user_entity(user, member_of.get(str(user["id"]), [])) for user in users]
    return entities


def _position(started: datetime) -> dict[str, str]:
    return {"updated_after": isoformat(started - CHANGE_OVERLAP)}


def _with_groups(entity: InventoryEntity, groups: list[str]) -> EntityUpsert:
    """A stored user whose only change is its groups."""
    return EntityUpsert(
        id=entity.id,
        kind=entity.kind,
        name=entity.name,
        dn=entity.dn,
        attributes=entity.attributes,
        relations={**entity.relations, MEMBER_OF: groups},
    )


def read_org_changes(
    org: OktaOrg,
    position: dict[str, str],
    started: datetime,
    stored: StoredEntities,
    should_stop: Callable[[], bool],
) -> ChangeRead | None:
    """The users and groups updated since the position, memberships both ways; None when
    canceled midway."""
    since = datetime.fromisoformat(position["updated_after"])
    users = {str(user["id"]): user for user in org.users(since) if "id" in user}
    groups = [group for group in org.groups(since) if "id" in group]
    members: dict[str, set[str]] = {}
    for group in groups:
        if should_stop():
            return None
        members[str(group["id"])] = set(org.group_member_ids(str(group["id"])))
    known = stored([*members, *users])
    joined: dict[str, set[str]] = defaultdict(set)
    left: dict[str, set[str]] = defaultdict(set)
    for group_id, now in members.items():
        before = known.get(group_id)
        old = set(before.relations.get(MEMBERS, [])) if before is not None else set()
        for user_id in now - old:
            joined[user_id].add(group_id)
        for user_id in old - now:
            left[user_id].add(group_id)
    affected = set(users) | set(joined) | set(left)
    known |= stored(affected - known.keys())
    upserts = [group_entity(group, sorted(members[str(group["id"])])) for group in groups]
    deletes: list[str] = []
    for user_id in sorted(affected):
        before = known.get(user_id)
        old_groups = set(before.relations.get(MEMBER_OF, [])) if before is not None else set()
        groups_now = sorted((old_groups - left[user_id]) | joined[user_id])
        raw = users.get(user_id)
        if raw is not None and raw.get("status") == DEPROVISIONED:
            deletes.append(user_id)
        elif raw is not None:
            upserts.append(user_entity(raw, groups_now))
        elif before is not None:
            upserts.append(_with_groups(before, groups_now))
        # else: a member not read yet (and not changed since): the next full run adds it
    return ChangeRead(upserts, deletes, _position(started))


def okta_connector(connectors: ConnectorRepository, connector_id: str) -> Connector | None:
    connector = connectors.find(connector_id)
    if connector is None or connector.kind is not ConnectorKind.OKTA:
        return None
    return connector


def _read(
    org: OktaOrg, settings: OktaConnectorSettings, should_stop: Callable[[], bool]
) -> list[EntityUpsert] | None:
    return read_org(org, should_stop)


OKTA_SOURCE: SourceSpec[OktaConnectorSettings, OktaOrg] = SourceSpec(
    kind=ConnectorKind.OKTA,
    settings=OktaConnectorSettings,
    entity_kinds=frozenset({USER_KIND, GROUP_KIND}),
    read=_read,
    changes=ChangeFeed(
        position_after_full=lambda org, started: _position(started),
        read_changes=lambda org, settings, position, started, stored, should_stop: read_org_changes(
            org, position, started, stored, should_stop
        ),
    ),
)


class OktaGroupMembers:
    """The okta.group_members handler: diff the request against Okta, then (unless a dry run)
    apply exactly that diff, so a repeated request changes nothing."""

    kind = ConnectorKind.OKTA.value

    def __init__(self, connectors: ConnectorRepository, connect: ConnectOkta) -> None:
        self._connectors = connectors
        self._connect = connect

    def run(self, job: Job, should_stop: Callable[[], bool]) -> RunEnd:
        try:
            params = OktaGroupMembersParams.model_validate(job.params)
        except ValidationError:
            return failed("invalid_params", "bad params")
        connector = okta_connector(self._connectors, params.connector)
        if connector is None:
            return failed("connector_missing", f"no okta connector {params.connector}")
        settings = OktaConnectorSettings.model_validate(connector.settings)
        if not settings.write_back:
            return failed(
                "write_back_disabled",
                f"connector {connector.id} does not allow write-back (settings.write_back)",
            )
        try:
            org = self._connect(settings)
            return self._change(org, params)
        except SourceRejected as exc:
            if exc.status == 404:
                return failed("group_not_found", f"okta group {params.group_id} not found")
            return failed(exc.code, exc.message)
        except SourceReadError as exc:
            return failed(exc.code, exc.message)

    def _change(self, org: OktaOrg, params: OktaGroupMembersParams) -> RunEnd:
        group = org.group(params.group_id)
        if group.get("type") != OKTA_OWNED:
            return failed(
                "group_not_writable",
                f"okta group {params.group_id} is {group.get('type')}: only OKTA_GROUP "
                "memberships can change (app groups follow their application)",
            )
        current = set(org.group_member_ids(params.group_id))
        to_add = sorted(set(params.add) - current)
        to_remove = sorted(set(params.remove) & current)
        unchanged = sorted((set(params.add) & current) | (set(params.remove) - current))
        result: dict[str, Any] = {
            "group_id": params.group_id,
            "group": (group.get("profile") or {}).get("name"),
            "dry_run": params.dry_run,
            "add": to_add,
            "remove": to_remove,
            "unchanged": unchanged,
        }
        if params.dry_run:
            return RunEnd(JobState.SUCCEEDED, result)
        errors: list[dict[str, str]] = []
        done = {"added": 0, "removed": 0}
        for user_id, change, counter in [
            *((u, org.add_member, "added") for u in to_add),
            *((u, org.remove_member, "removed") for u in to_remove),
        ]:
            try:
                change(params.group_id, user_id)
                done[counter] += 1
            except SourceRejected as exc:  # one unknown user does not stop the others
                errors.append({"user_id": user_id, "error": exc.message})
        result |= {**done, "errors": errors}
        if errors:
            return failed("write_back_partial", f"{len(errors)} change(s) failed", result)
        return RunEnd(JobState.SUCCEEDED, result)
