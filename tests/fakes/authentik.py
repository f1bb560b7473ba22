"""A stateful fake of the Authentik API v3 endpoints the authentik connector calls.

Each endpoint is one operation of Authentik's OpenAPI schema, and every request and answer is
checked against the models authentik-client generates from it (a fake that drifts from the
real API fails the test that used it):
- core_users_list        GET  /api/v3/core/users/                     (page, page_size, ...)
- core_groups_list       GET  /api/v3/core/groups/                    (page, page_size, ...)
- core_groups_retrieve   GET  /api/v3/core/groups/{group_uuid}/
- core_groups_add_user_create    POST /api/v3/core/groups/{group_uuid}/add_user/     -> 204
- core_groups_remove_user_create POST /api/v3/core/groups/{group_uuid}/remove_user/  -> 204
  (both with a UserAccountRequest body, {"pk": user})
Lists are paginated by page number: {"pagination": {next, previous, count, current,
total_pages, start_index, end_index}, "results": [...], "autocomplete": {}}; `next` is 0 on
the last page. Errors are DRF's {"detail": ...}: 401 for a bad token (Authentik's token
authentication answers with `WWW-Authenticate: Bearer`), 403 for a missing permission, 404;
throttling is a 429 with Retry-After.
"""

from __future__ import annotations

import inspect
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from authentik_client.api.core_api import CoreApi
from authentik_client.models.group import Group
from authentik_client.models.paginated_group_list import PaginatedGroupList
from authentik_client.models.paginated_user_list import PaginatedUserList
from authentik_client.models.user_account_request import UserAccountRequest

from tests.fakes.server import FakeApiState, FakeServer, JsonHandler

TIMESTAMP = "2026-01-02T03:04:05.000000Z"
_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_ROUTES = [
    ("GET", re.compile(r"^/api/v3/core/users/$"), "core_users_list"),
    ("GET", re.compile(r"^/api/v3/core/groups/$"), "core_groups_list"),
    ("GET", re.compile(rf"^/api/v3/core/groups/(?P<group>{_UUID})/$"), "core_groups_retrieve"),
    (
        "POST",
        re.compile(rf"^/api/v3/core/groups/(?P<group>{_UUID})/add_user/$"),
        "core_groups_add_user_create",
    ),
    (
        "POST",
        re.compile(rf"^/api/v3/core/groups/(?P<group>{_UUID})/remove_user/$"),
        "core_groups_remove_user_create",
    ),
]
_CLIENT_ONLY = {"_request_timeout", "_request_auth", "_content_type", "_headers", "_host_index"}


def operation_query_params(operation: str) -> set[str]:
    """The query parameters the generated client's `operation` accepts."""
    parameters = inspect.signature(getattr(CoreApi, operation)).parameters
    return set(parameters) - _CLIENT_ONLY - {"self", "group_uuid", "user_account_request"}


class ApiError(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


@dataclass(kw_only=True)
class AuthentikState(FakeApiState):
    token: str
    users: dict[int, dict[str, Any]] = field(default_factory=dict)
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    members: dict[str, set[int]] = field(default_factory=dict)
    denied: set[str] = field(default_factory=set)  # path prefixes answered with 403

    def add_user(self, pk: int, username: str, *, user_type: str = "internal") -> str:
        user_uuid = str(uuid.UUID(int=pk))
        self.users[pk] = {
            "pk": pk,
            "username": username,
            "name": username.replace(".", " ").title(),
            "is_active": True,
            "last_login": None,
            "date_joined": TIMESTAMP,
            "is_superuser": False,
            "email": f"{username}@example.test",
            "avatar": "data:image/svg+xml;base64,",
            "attributes": {},
            "uid": f"uid{pk:08d}",
            "path": "users" if user_type == "internal" else "goauthentik.io/service-accounts",
            "type": user_type,
            "uuid": user_uuid,
            "password_change_date": TIMESTAMP,
            "last_updated": TIMESTAMP,
        }
        return user_uuid

    def add_group(
        self, group_uuid: str, name: str, users: list[int], *, parents: list[str] | None = None
    ) -> None:
        self.groups[group_uuid] = {
            "pk": group_uuid,
            "num_pk": len(self.groups) + 1,
            "name": name,
            "is_superuser": False,
            "parents": list(parents or []),
            "attributes": {},
            "roles": [],
        }
        self.members[group_uuid] = set(users)

    def delete_user(self, pk: int) -> None:
        del self.users[pk]
        for members in self.members.values():
            members.discard(pk)

    def delete_group(self, group_uuid: str) -> None:
        del self.groups[group_uuid]
        del self.members[group_uuid]
        for group in self.groups.values():
            if group_uuid in group["parents"]:
                group["parents"].remove(group_uuid)

    def calls(self, method: str | None = None) -> int:
        return sum(1 for m, _ in self.requests if method is None or m == method)

    # ------------------------------------------------------------ serialisers

    def user_body(self, pk: int, include_groups: bool) -> dict[str, Any]:
        groups = sorted(g for g, members in self.members.items() if pk in members)
        return {
            **self.users[pk],
            "groups": groups,
            "groups_obj": [self._partial_group(g) for g in groups] if include_groups else None,
            "roles": [],
            "roles_obj": None,
        }

    def _partial_group(self, group_uuid: str) -> dict[str, Any]:
        group = self.groups[group_uuid]
        return {
            "pk": group_uuid,
            "num_pk": group["num_pk"],
            "name": group["name"],
            "is_superuser": False,
            "attributes": {},
        }

    def group_body(self, group_uuid: str, query: dict[str, list[str]]) -> dict[str, Any]:
        group = self.groups[group_uuid]
        children = sorted(g for g, other in self.groups.items() if group_uuid in other["parents"])
        include_users = query.get("include_users", ["true"])[0] == "true"
        return {
            **group,
            "parents_obj": None,
            "users": sorted(self.members[group_uuid]),
            "users_obj": [] if include_users else None,
            "roles_obj": [],
            "inherited_roles_obj": None,
            "children": children,
            "children_obj": None,
        }


def _page(
    keys: list[Any], query: dict[str, list[str]], body_of: Callable[[Any], dict[str, Any]]
) -> dict[str, Any]:
    """One page of `keys` (already in the list's order), each turned into its body."""
    page = int(query.get("page", ["1"])[0])
    size = int(query.get("page_size", ["20"])[0])
    if page < 1 or not 1 <= size <= 1000:
        raise ApiError(404, "Invalid page.")
    total_pages = max(1, -(-len(keys) // size))
    if page > total_pages:
        raise ApiError(404, "Invalid page.")
    start = (page - 1) * size
    results = [body_of(key) for key in keys[start : start + size]]
    return {
        "pagination": {
            "next": page + 1 if page < total_pages else 0,
            "previous": page - 1,
            "count": len(keys),
            "current": page,
            "total_pages": total_pages,
            "start_index": start + 1 if results else 0,
            "end_index": start + len(results),
        },
        "results": results,
        "autocomplete": {},
    }


def _handler_for(state: AuthentikState) -> type[JsonHandler]:
    class Handler(JsonHandler):
        def _route(self) -> None:
            path, query = self.path_and_query()
            payload = self.payload()
            with state.lock:
                state.requests.append((self.command, path))
                if self.headers.get("Authorization") != f"Bearer {state.token}":
                    raise ApiError(401, "Token invalid/expired")
                if any(path.startswith(prefix) for prefix in state.denied):
                    raise ApiError(403, "You do not have permission to perform this action.")
                if state.throttle_now():
                    self.send_json(
                        429,
                        {"detail": "Request was throttled."},
                        {"Retry-After": state.retry_after},
                    )
                    return
                for method, pattern, operation in _ROUTES:
                    found = pattern.match(path)
                    if method == self.command and found:
                        unknown = set(query) - operation_query_params(operation)
                        assert not unknown, f"{operation} has no query parameters {unknown}"
                        getattr(self, operation)(query, payload, **found.groupdict())
                        return
            raise ApiError(404, "Not found.")

        def _group(self, group: str) -> dict[str, Any]:
            if group not in state.groups:
                raise ApiError(404, "No Group matches the given query.")
            return state.groups[group]

        def core_users_list(self, query: dict[str, list[str]], payload: bytes) -> None:
            include_groups = query.get("include_groups", ["true"])[0] == "true"
            body = _page(sorted(state.users), query, lambda pk: state.user_body(pk, include_groups))
            PaginatedUserList.from_dict(body)  # the schema's shape, or the test fails
            self.send_json(200, body)

        def core_groups_list(self, query: dict[str, list[str]], payload: bytes) -> None:
            ordered = sorted(state.groups, key=lambda g: (state.groups[g]["name"], g))
            body = _page(ordered, query, lambda group: state.group_body(group, query))
            PaginatedGroupList.from_dict(body)
            self.send_json(200, body)

        def core_groups_retrieve(
            self, query: dict[str, list[str]], payload: bytes, group: str
        ) -> None:
            self._group(group)
            body = state.group_body(group, query)
            Group.from_dict(body)
            self.send_json(200, body)

        def _user_of(self, payload: bytes) -> int:
            request = UserAccountRequest.from_dict(json.loads(payload))
            assert request is not None
            if request.pk not in state.users:
                raise ApiError(404, "Not found.")
            return int(request.pk)

        def core_groups_add_user_create(
            self, query: dict[str, list[str]], payload: bytes, group: str
        ) -> None:
            self._group(group)
            state.members[group].add(self._user_of(payload))
            self.send_json(204, None)

        def core_groups_remove_user_create(
            self, query: dict[str, list[str]], payload: bytes, group: str
        ) -> None:
            self._group(group)
            state.members[group].discard(self._user_of(payload))
            self.send_json(204, None)

        def _serve(self) -> None:
            try:
                self._route()
            except ApiError as error:
                self.send_json(error.status, {"detail": error.detail})

        do_GET = do_POST = _serve

    return Handler


class AuthentikFake(FakeServer[AuthentikState]):
    """Started on a free port with a test CA; `state` is the instance tests arrange."""

    def __init__(self, directory: Path, token: str) -> None:
        state = AuthentikState(token=token)
        super().__init__(state, _handler_for(state), directory)
