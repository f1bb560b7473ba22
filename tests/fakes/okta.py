"""A stateful fake of the Okta Management API endpoints the okta connector calls.

Each endpoint follows the Okta Management API (okta/okta-management-openapi-spec; newer
releases name the last two assignUserToGroup / unassignUserFromGroup):
- listUsers          GET    /api/v1/users                      (limit <= 200, after, filter)
- listGroups         GET    /api/v1/groups                     (limit <= 10000, after, filter)
- getGroup           GET    /api/v1/groups/{groupId}
- listGroupUsers     GET    /api/v1/groups/{groupId}/users     (limit <= 1000, after)
- addUserToGroup     PUT    /api/v1/groups/{groupId}/users/{userId}  -> 204
- removeUserFromGroup DELETE /api/v1/groups/{groupId}/users/{userId} -> 204
Every request (method, path, query parameters) and every 200 body is checked against
tests/fakes/specs/okta.json, the excerpt of that description for these operations (see
scripts/okta_api_excerpt.py); what breaks it lands in `state.violations`, which the tests
assert empty. The description says nothing of `Link`, the rate-limit headers or limit maxima:
those follow Okta's reference pages.
Paging is Okta's: the body is a bare JSON array, the next page is a `Link: <...>; rel="next"`
header whose `after` cursor is opaque to clients. `filter` takes the expressions the connector
sends, as Okta's reference lists them: `lastUpdated gt "yyyy-MM-dd'T'HH:mm:ss.SSSZ"` (users and
groups), `lastMembershipUpdated gt "…"` (groups), the two joined by `or`; any other expression is
Okta's E0000031. Without a filter, listUsers leaves DEPROVISIONED users out, as Okta does; with
one, it returns users of every status. Changes made through the fake (or its `update_user`,
`set_members`) stamp `lastUpdated` / `lastMembershipUpdated` with `state.clock()`.
Errors are Okta's Error object (errorCode, errorSummary, errorLink, errorId, errorCauses):
E0000011 invalid token (401), E0000006 permission (403), E0000007 not found (404), E0000047
rate limit (429, with the X-Rate-Limit-* headers Okta sends; the reset is an epoch second).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from tests.fakes.api_description import ApiDescription
from tests.fakes.server import FakeApiState, FakeServer, JsonHandler

OKTA_API = ApiDescription.openapi("okta.json")
LIST_LIMITS = {"users": 200, "groups": 10000, "group_users": 1000}
_ROUTES = [
    ("GET", re.compile(r"^/api/v1/users$"), "list_users"),
    ("GET", re.compile(r"^/api/v1/groups$"), "list_groups"),
    ("GET", re.compile(r"^/api/v1/groups/(?P<group>[A-Za-z0-9]+)$"), "get_group"),
    ("GET", re.compile(r"^/api/v1/groups/(?P<group>[A-Za-z0-9]+)/users$"), "list_group_users"),
    ("PUT", re.compile(r"^/api/v1/groups/(?P<group>\w+)/users/(?P<user>\w+)$"), "assign"),
    ("DELETE", re.compile(r"^/api/v1/groups/(?P<group>\w+)/users/(?P<user>\w+)$"), "unassign"),
]
TIMESTAMP = "2025-01-02T03:04:05.000Z"
_TIME = r'"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)"'
_FILTERS = {
    "users": re.compile(rf"^lastUpdated gt {_TIME}$"),
    "groups": re.compile(
        rf"^(?:lastUpdated gt {_TIME}|lastMembershipUpdated gt {_TIME}"
        rf"|lastUpdated gt {_TIME} or lastMembershipUpdated gt {_TIME})$"
    ),
}


def okta_now() -> str:
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


class OktaError(Exception):
    def __init__(self, status: int, code: str, summary: str) -> None:
        super().__init__(summary)
        self.status, self.code, self.summary = status, code, summary


@dataclass(kw_only=True)
class OktaState(FakeApiState):
    token: str
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    members: dict[str, set[str]] = field(default_factory=dict)
    retry_after: str | None = None  # also send Retry-After with a 429 (seconds or a date)
    denied: set[str] = field(default_factory=set)  # path prefixes answered with 403
    clock: Callable[[], str] = okta_now
    violations: list[str] = field(default_factory=list)  # against Okta's OpenAPI document

    def add_user(self, user_id: str, login: str, *, status: str = "ACTIVE") -> None:
        first, _, last = login.partition("@")[0].partition(".")
        self.users[user_id] = {
            "id": user_id,
            "status": status,
            "created": TIMESTAMP,
            "activated": TIMESTAMP,
            "statusChanged": TIMESTAMP,
            "lastLogin": None,
            "lastUpdated": TIMESTAMP,
            "passwordChanged": TIMESTAMP,
            "type": {"id": "oty1"},
            "profile": {
                "firstName": first.title(),
                "lastName": last.title() or "User",
                "email": login,
                "login": login,
                "mobilePhone": None,
            },
            "credentials": {"provider": {"type": "OKTA", "name": "OKTA"}},
            "_links": {"self": {"href": f"/api/v1/users/{user_id}"}},
        }

    def add_group(
        self, group_id: str, name: str, members: list[str], *, group_type: str = "OKTA_GROUP"
    ) -> None:
        self.groups[group_id] = {
            "id": group_id,
            "created": TIMESTAMP,
            "lastUpdated": TIMESTAMP,
            "lastMembershipUpdated": TIMESTAMP,
            "objectClass": ["okta:user_group"],
            "type": group_type,
            "profile": {"name": name, "description": f"{name} group"},
            "_links": {"users": {"href": f"/api/v1/groups/{group_id}/users"}},
        }
        self.members[group_id] = set(members)

    def update_user(self, user_id: str, *, status: str | None = None, **profile: str) -> None:
        user = self.users[user_id]
        if status is not None:
            user["status"] = status
            user["statusChanged"] = self.clock()
        user["profile"].update(profile)
        user["lastUpdated"] = self.clock()

    def set_members(self, group_id: str, members: set[str]) -> None:
        self.members[group_id] = set(members)
        self.groups[group_id]["lastMembershipUpdated"] = self.clock()

    def delete_user(self, user_id: str) -> None:
        del self.users[user_id]
        for members in self.members.values():
            members.discard(user_id)

    def delete_group(self, group_id: str) -> None:
        del self.groups[group_id]
        del self.members[group_id]

    def member_ids(self, group_id: str) -> set[str]:
        return set(self.members[group_id])

    def calls(self, method: str = "GET") -> int:
        return sum(1 for m, _ in self.requests if m == method)


def _page(
    base: str, path: str, items: list[dict[str, Any]], query: dict[str, Any], maximum: int
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    unknown = set(query) - {"limit", "after", "filter"}
    if unknown:
        raise OktaError(400, "E0000031", f"Invalid search criteria: {sorted(unknown)}")
    limit = int(query.get("limit", ["200"])[0])
    if not 1 <= limit <= maximum:
        raise OktaError(400, "E0000001", "Api validation failed: limit")
    after = query.get("after", [""])[0]
    ordered = sorted(items, key=lambda item: str(item["id"]))
    rest = [item for item in ordered if str(item["id"]) > after] if after else ordered
    page = rest[:limit]
    links = [f'<{base}{path}?limit={limit}>; rel="self"']
    if len(rest) > limit:
        more: dict[str, Any] = {"limit": limit, "after": page[-1]["id"]}
        if "filter" in query:
            more["filter"] = query["filter"][0]
        links.append(f'<{base}{path}?{urlencode(more)}>; rel="next"')
    return page, {"Link": ", ".join(links)}


def _filtered(
    endpoint: str, items: list[dict[str, Any]], query: dict[str, Any]
) -> list[dict[str, Any]]:
    """The items an Okta `filter` expression selects (only the forms the connector sends)."""
    if "filter" not in query:
        if endpoint == "users":
            return [item for item in items if item["status"] != "DEPROVISIONED"]
        return items
    expression = query["filter"][0]
    if not _FILTERS[endpoint].match(expression):
        raise OktaError(400, "E0000031", f"Invalid search criteria: filter={expression!r}")
    terms = re.findall(rf"(lastUpdated|lastMembershipUpdated) gt {_TIME}", expression)
    # Okta's timestamps are fixed-width UTC strings: comparing them compares the moments.
    return [item for item in items if any(item[name] > since for name, since in terms)]


def _handler_for(state: OktaState) -> type[JsonHandler]:
    class Handler(JsonHandler):
        def _error(self, error: OktaError, headers: dict[str, str] | None = None) -> None:
            self.send_json(
                error.status,
                {
                    "errorCode": error.code,
                    "errorSummary": error.summary,
                    "errorLink": error.code,
                    "errorId": "oae-fake",
                    "errorCauses": [],
                },
                headers,
            )

        def _route(self) -> None:
            path, query = self.path_and_query()
            with state.lock:
                state.requests.append((self.command, path))
                state.violations += OKTA_API.request_problems(self.command, path, query)
                if self.headers.get("Authorization") != f"SSWS {state.token}":
                    raise OktaError(401, "E0000011", "Invalid token provided")
                if any(path.startswith(prefix) for prefix in state.denied):
                    raise OktaError(
                        403, "E0000006", "You do not have permission to perform the action"
                    )
                if state.throttle_now():
                    headers = {
                        "X-Rate-Limit-Limit": "600",
                        "X-Rate-Limit-Remaining": "0",
                        "X-Rate-Limit-Reset": str(int(time.time()) + 1),
                    }
                    if state.retry_after is not None:
                        headers["Retry-After"] = state.retry_after
                    self._error(OktaError(429, "E0000047", "API call exceeded rate limit"), headers)
                    return
                for method, pattern, name in _ROUTES:
                    found = pattern.match(path)
                    if method == self.command and found:
                        getattr(self, name)(path, query, **found.groupdict())
                        return
            raise OktaError(404, "E0000022", "The endpoint does not support the provided method")

        def _ok(self, path: str, body: Any, headers: dict[str, str] | None = None) -> None:
            """A 200 answer, its body checked against the operation's response schema."""
            state.violations += OKTA_API.response_problems(self.command, path, body)
            self.send_json(200, body, headers)

        def _group(self, group: str) -> dict[str, Any]:
            if group not in state.groups:
                raise OktaError(404, "E0000007", f"Not found: Resource not found: {group} (Group)")
            return state.groups[group]

        def list_users(self, path: str, query: dict[str, Any]) -> None:
            users = _filtered("users", list(state.users.values()), query)
            page, headers = _page(self.base_url(), path, users, query, LIST_LIMITS["users"])
            self._ok(path, page, headers)

        def list_groups(self, path: str, query: dict[str, Any]) -> None:
            groups = _filtered("groups", list(state.groups.values()), query)
            page, headers = _page(self.base_url(), path, groups, query, LIST_LIMITS["groups"])
            self._ok(path, page, headers)

        def get_group(self, path: str, query: dict[str, Any], group: str) -> None:
            self._ok(path, self._group(group))

        def list_group_users(self, path: str, query: dict[str, Any], group: str) -> None:
            self._group(group)
            if "filter" in query:  # listGroupUsers has no filter parameter
                raise OktaError(400, "E0000031", "Invalid search criteria: filter")
            users = [state.users[u] for u in state.members[group] if u in state.users]
            page, headers = _page(self.base_url(), path, users, query, LIST_LIMITS["group_users"])
            self._ok(path, page, headers)

        def assign(self, path: str, query: dict[str, Any], group: str, user: str) -> None:
            if self._group(group)["type"] != "OKTA_GROUP":
                raise OktaError(403, "E0000006", "You do not have permission (app group)")
            if user not in state.users:
                raise OktaError(404, "E0000007", f"Not found: Resource not found: {user} (User)")
            if user not in state.members[group]:
                state.set_members(group, state.members[group] | {user})
            self.send_json(204, None)

        def unassign(self, path: str, query: dict[str, Any], group: str, user: str) -> None:
            if self._group(group)["type"] != "OKTA_GROUP":
                raise OktaError(403, "E0000006", "You do not have permission (app group)")
            if user in state.members[group]:
                state.set_members(group, state.members[group] - {user})
            self.send_json(204, None)

        def _serve(self) -> None:
            try:
                self._route()
            except OktaError as error:
                self._error(error)

        do_GET = do_PUT = do_DELETE = _serve

    return Handler


class OktaFake(FakeServer[OktaState]):
    """Started on a free port with a test CA; `state` is the org tests arrange and inspect."""

    def __init__(self, directory: Path, token: str) -> None:
        state = OktaState(token=token)
        super().__init__(state, _handler_for(state), directory)
