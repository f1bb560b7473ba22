"""Workspace connector: `workspace.sync` reads users, groups, memberships and org units.

Entities: `workspace.user` (suspended flag, profile basics; relations member_of, org_unit),
`workspace.group` (relation members: users and nested groups) and `workspace.org_unit`
(relations parent and children: the org unit tree). Every run is a full read (the Directory
API has no change feed a service account can page), so deletes are what a run no longer sees.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

from hostrelay.dal.google_apis import RawObject, WorkspaceDirectory
from hostrelay.domain.cloud_sources import (
    CHILDREN,
    ORG_UNIT,
    PARENT,
    WORKSPACE_GROUP,
    WORKSPACE_ORG_UNIT,
    WORKSPACE_USER,
    WorkspaceConnectorSettings,
)
from hostrelay.domain.connectors import ConnectorKind
from hostrelay.domain.inventory import MEMBER_OF, MEMBERS, EntityUpsert
from hostrelay.logic.source_sync import SourceSpec
from hostrelay_sources.entities import compact

ROOT_PATH = "/"


def user_entity(raw: RawObject, groups: list[str], org_unit: str | None) -> EntityUpsert:
    name = raw.get("name") or {}
    attributes = {
        "primary_email": raw.get("primaryEmail"),
        "suspended": bool(raw.get("suspended", False)),
        "archived": raw.get("archived"),
        "is_admin": raw.get("isAdmin"),
        "org_unit_path": raw.get("orgUnitPath"),
        "given_name": name.get("givenName"),
        "family_name": name.get("familyName"),
        "full_name": name.get("fullName"),
        "creation_time": raw.get("creationTime"),
        "last_login_time": raw.get("lastLoginTime"),
        "customer_id": raw.get("customerId"),
    }
    relations = {MEMBER_OF: sorted(set(groups))}
    if org_unit is not None:
        relations[ORG_UNIT] = [org_unit]
    return EntityUpsert(
        id=str(raw["id"]),
        kind=WORKSPACE_USER,
        name=str(raw.get("primaryEmail") or raw["id"]),
        attributes=compact(attributes),
        relations=relations,
    )


def group_entity(raw: RawObject, members: list[RawObject]) -> EntityUpsert:
    attributes = {
        "email": raw.get("email"),
        "description": raw.get("description"),
        "direct_members_count": raw.get("directMembersCount"),
        "admin_created": raw.get("adminCreated"),
        "member_types": sorted({str(m.get("type")) for m in members if m.get("type")}),
    }
    return EntityUpsert(
        id=str(raw["id"]),
        kind=WORKSPACE_GROUP,
        name=str(raw.get("email") or raw.get("name") or raw["id"]),
        attributes=compact({**attributes, "display_name": raw.get("name")}),
        relations={MEMBERS: sorted({str(m["id"]) for m in members if "id" in m})},
    )


def org_unit_entity(raw: RawObject, children: list[str]) -> EntityUpsert:
    relations = {CHILDREN: sorted(set(children))}
    if raw.get("parentOrgUnitId"):
        relations[PARENT] = [str(raw["parentOrgUnitId"])]
    attributes = {
        "path": raw.get("orgUnitPath"),
        "parent_path": raw.get("parentOrgUnitPath"),
        "description": raw.get("description"),
        "block_inheritance": raw.get("blockInheritance"),
    }
    return EntityUpsert(
        id=str(raw["orgUnitId"]),
        kind=WORKSPACE_ORG_UNIT,
        name=str(raw.get("orgUnitPath") or raw.get("name") or raw["orgUnitId"]),
        attributes=compact(attributes),
        relations=relations,
    )


def _org_unit_tree(units: list[RawObject]) -> list[RawObject]:
    """The listed org units plus the root ("/"), which `type=all` does not list but every
    top-level unit names as its parent."""
    roots = {
        str(unit["parentOrgUnitId"])
        for unit in units
        if unit.get("parentOrgUnitPath") == ROOT_PATH and unit.get("parentOrgUnitId")
    }
    listed = {str(unit["orgUnitId"]) for unit in units}
    root = [
        {"orgUnitId": root_id, "orgUnitPath": ROOT_PATH, "name": ROOT_PATH}
        for root_id in sorted(roots - listed)
    ]
    return root + units


def read_workspace(
    directory: WorkspaceDirectory, should_stop: Callable[[], bool]
) -> list[EntityUpsert] | None:
    """Every org unit, group (with members) and user; None when canceled midway."""
    units = _org_unit_tree([u for u in directory.org_units() if u.get("orgUnitId")])
    children: dict[str, list[str]] = defaultdict(list)
    for unit in units:
        if unit.get("parentOrgUnitId"):
            children[str(unit["parentOrgUnitId"])].append(str(unit["orgUnitId"]))
    unit_by_path = {str(u.get("orgUnitPath")): str(u["orgUnitId"]) for u in units}
    entities = [org_unit_entity(unit, children.get(str(unit["orgUnitId"]), [])) for unit in units]
    member_of: dict[str, list[str]] = defaultdict(list)
    for group in directory.groups():
        if "id" not in group:
            continue
        if should_stop():
            return None
        members = [m for m in directory.members(str(group["id"])) if "id" in m]
        for member in members:
            member_of[str(member["id"])].append(str(group["id"]))
        entities.append(group_entity(group, members))
    for user in directory.users():
        if "id" not in user:
            continue
        unit_id = unit_by_path.get(str(user.get("orgUnitPath") or ROOT_PATH))
        entities.append(user_entity(user, member_of.get(str(user["id"]), []), unit_id))
    return entities


def _read(
    directory: WorkspaceDirectory,
    settings: WorkspaceConnectorSettings,
    should_stop: Callable[[], bool],
) -> list[EntityUpsert] | None:
    return read_workspace(directory, should_stop)


WORKSPACE_SOURCE: SourceSpec[WorkspaceConnectorSettings, WorkspaceDirectory] = SourceSpec(
    kind=ConnectorKind.WORKSPACE,
    settings=WorkspaceConnectorSettings,
    entity_kinds=frozenset({WORKSPACE_USER, WORKSPACE_GROUP, WORKSPACE_ORG_UNIT}),
    read=_read,
)
