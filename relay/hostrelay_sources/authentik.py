"""Authentik: users (service accounts too), groups as a graph (several parents), memberships;
write-back of one group's members.

Calls (Authentik API v3, the operations authentik-client generates from its OpenAPI schema):
core_users_list GET /api/v3/core/users/, core_groups_list GET /api/v3/core/groups/,
core_groups_retrieve GET /api/v3/core/groups/{group_uuid}/, and core_groups_add_user_create /
core_groups_remove_user_create POST /api/v3/core/groups/{group_uuid}/(add|remove)_user/
with {"pk": user}.
Lists are paged by page number: `pagination.next` is the next page, 0 after the last.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from hostrelay_contract.jobs.sources import AuthentikGroupMembersParams
from hostrelay_sources import kinds
from hostrelay_sources.entities import SourceEntity, compact
from hostrelay_sources.errors import Rejected
from hostrelay_sources.https import JsonClient
from hostrelay_sources.retry import RetryPolicy

USER_KIND = kinds.AUTHENTIK_USER
GROUP_KIND = kinds.AUTHENTIK_GROUP
KINDS = kinds.ENTITY_KINDS["authentik"]
SERVICE_ACCOUNT_TYPES = frozenset({"service_account", "internal_service_account"})
MAX_PAGES = 100_000
RawObject = dict[str, Any]


class AuthentikApi:
    def __init__(self, client: JsonClient, page_size: int = 100) -> None:
        self._client = client
        self._page_size = page_size

    @classmethod
    def connect(
        cls,
        base_url: str,
        token: str,
        *,
        page_size: int = 100,
        ca_file: str | None = None,
        retry: RetryPolicy | None = None,
    ) -> AuthentikApi:
        client = JsonClient(
            base_url.rstrip("/") + "/api/v3",
            {"Authorization": f"Bearer {token}"},
            ca_file=ca_file,
            retry=retry or RetryPolicy(),
        )
        return cls(client, page_size)

    @property
    def calls(self) -> int:
        return self._client.calls

    def close(self) -> None:
        self._client.close()

    def _pages(self, path: str, query: Mapping[str, str]) -> Iterator[RawObject]:
        page = 1
        for _ in range(MAX_PAGES):
            body = self._client.request(
                "GET", path, query={**query, "page": page, "page_size": self._page_size}
            ).body
            if not isinstance(body, dict):
                raise Rejected(f"GET {path}: the answer is not a paginated list", status=200)
            yield from (item for item in body.get("results") or [] if isinstance(item, dict))
            following = int((body.get("pagination") or {}).get("next") or 0)
            if following <= page:  # 0 after the last page; never go back
                return
            page = following

    def users(self) -> Iterator[RawObject]:
        return self._pages("/core/users/", {"include_groups": "false", "ordering": "pk"})

    def groups(self) -> Iterator[RawObject]:
        query = {
            "include_users": "false",
            "include_children": "false",
            "include_parents": "false",
            "ordering": "name",
        }
        return self._pages("/core/groups/", query)

    def group(self, group_uuid: str) -> RawObject:
        path = f"/core/groups/{quote(group_uuid, safe='')}/"
        body = self._client.request("GET", path, query={"include_users": "true"}).body
        return body if isinstance(body, dict) else {}

    def add_user(self, group_uuid: str, user_pk: int) -> None:
        self._client.request(
            "POST", f"/core/groups/{quote(group_uuid, safe='')}/add_user/", body={"pk": user_pk}
        )

    def remove_user(self, group_uuid: str, user_pk: int) -> None:
        self._client.request(
            "POST", f"/core/groups/{quote(group_uuid, safe='')}/remove_user/", body={"pk": user_pk}
        )


def _ancestors(group: str, parents: Mapping[str, list[str]], memo: dict[str, set[str]]) -> set[str]:
    """Every group `group` is nested in, through any parent; cycles end where they close."""
    if group in memo:
        return memo[group]
    seen: set[str] = set()
    stack = list(parents.get(group, ()))
    while stack:
        current = stack.pop()
        if current in seen or current == group:
            continue
        seen.add(current)
        stack.extend(parents.get(current, ()))
    memo[group] = seen
    return seen


def user_entity(raw: RawObject, groups: list[str], effective: list[str]) -> SourceEntity:
    user_type = raw.get("type")
    attributes = {
        "pk": raw.get("pk"),
        "username": raw.get("username"),
        "display_name": raw.get("name"),
        "email": raw.get("email"),
        "is_active": raw.get("is_active"),
        "is_superuser": raw.get("is_superuser"),
        "type": user_type,
        "service_account": user_type in SERVICE_ACCOUNT_TYPES,
        "path": raw.get("path"),
        "last_login": raw.get("last_login"),
        "date_joined": raw.get("date_joined"),
        "effective_groups": effective,
    }
    return SourceEntity(
        id=str(raw["uuid"]),
        kind=USER_KIND,
        name=str(raw.get("username") or raw["uuid"]),
        attributes=compact(attributes),
        member_of=groups,
    )


def group_entity(raw: RawObject, parents: list[str], members: list[str]) -> SourceEntity:
    attributes = {
        "num_pk": raw.get("num_pk"),
        "is_superuser": raw.get("is_superuser"),
        "parents": parents,
    }
    return SourceEntity(
        id=str(raw["pk"]),
        kind=GROUP_KIND,
        name=str(raw.get("name") or raw["pk"]),
        attributes=compact(attributes),
        members=members,
        member_of=parents,
    )


def read_authentik(api: AuthentikApi, should_stop: Callable[[], bool]) -> list[SourceEntity] | None:
    """Every group and user. A group's members are its users and its child groups, its
    member_of its parents (a graph: a group may have several); a user's `effective_groups`
    are the groups it is in directly or through nesting. None when stopped midway."""
    groups = [group for group in api.groups() if "pk" in group]
    if should_stop():
        return None
    users = [user for user in api.users() if "uuid" in user]
    if should_stop():
        return None
    known = {str(group["pk"]) for group in groups}
    parents = {
        str(group["pk"]): sorted({str(p) for p in group.get("parents") or []} & known)
        for group in groups
    }
    members: dict[str, list[str]] = defaultdict(list)
    entities: list[SourceEntity] = []
    memo: dict[str, set[str]] = {}
    for user in sorted(users, key=lambda u: str(u["uuid"])):
        direct = sorted({str(g) for g in user.get("groups") or []} & known)
        for group_id in direct:
            members[group_id].append(str(user["uuid"]))
        effective = set(direct)
        for group_id in direct:
            effective |= _ancestors(group_id, parents, memo)
        entities.append(user_entity(user, direct, sorted(effective)))
    children: dict[str, list[str]] = defaultdict(list)
    for group_id, group_parents in sorted(parents.items()):
        for parent in group_parents:
            children[parent].append(group_id)
    for raw in groups:
        group_id = str(raw["pk"])
        entities.append(
            group_entity(raw, parents[group_id], members[group_id] + children[group_id])
        )
    return entities


@dataclass(frozen=True)
class MembershipChange:
    """What a group_members request did (or, in a dry run, would do)."""

    result: dict[str, Any]
    failures: int


def change_group_members(
    api: AuthentikApi, params: AuthentikGroupMembersParams
) -> MembershipChange:
    """Diff the request against the group's current users, then (unless a dry run) apply
    exactly that diff: a repeated request changes nothing. Raises Rejected (status 404) for
    an unknown group."""
    group = api.group(params.group)
    current = {int(pk) for pk in group.get("users") or []}
    to_add = sorted(set(params.add) - current)
    to_remove = sorted(set(params.remove) & current)
    unchanged = sorted((set(params.add) & current) | (set(params.remove) - current))
    result: dict[str, Any] = {
        "group": params.group,
        "group_name": group.get("name"),
        "dry_run": params.dry_run,
        "add": to_add,
        "remove": to_remove,
        "unchanged": unchanged,
    }
    if params.dry_run:
        return MembershipChange(result, 0)
    errors: list[dict[str, Any]] = []
    done = {"added": 0, "removed": 0}
    for user_pk, change, counter in [
        *((pk, api.add_user, "added") for pk in to_add),
        *((pk, api.remove_user, "removed") for pk in to_remove),
    ]:
        try:
            change(params.group, user_pk)
            done[counter] += 1
        except Rejected as exc:  # one unknown user does not stop the others
            errors.append({"user": user_pk, "error": exc.message})
    result |= {**done, "errors": errors}
    return MembershipChange(result, len(errors))
