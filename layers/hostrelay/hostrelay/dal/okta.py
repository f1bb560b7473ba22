"""Okta management API calls of the okta connector (Users and Groups APIs, paged by Link).

Operations (Okta Management API, okta/okta-management-openapi-spec management-minimal.yaml):
listUsers GET /api/v1/users and listGroups GET /api/v1/groups (both with an optional `filter`
expression: `lastUpdated gt "<time>"`, for groups also `lastMembershipUpdated gt "<time>"`,
joined by `or`), getGroup GET /api/v1/groups/{id},
listGroupUsers GET /api/v1/groups/{id}/users, assignUserToGroup and unassignUserFromGroup
PUT/DELETE /api/v1/groups/{groupId}/users/{userId}.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from hostrelay.dal.rest_source import RestSource, next_link

RawObject = dict[str, Any]


def okta_time(moment: datetime) -> str:
    """Okta's filter timestamp: yyyy-MM-dd'T'HH:mm:ss.SSSZ."""
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


class OktaOrg:
    def __init__(self, source: RestSource, page_size: int = 200) -> None:
        self._source = source
        self._page_size = page_size

    @classmethod
    def connect(cls, base_url: str, token: str, *, page_size: int, **options: Any) -> OktaOrg:
        return cls(RestSource(base_url, {"Authorization": f"SSWS {token}"}, **options), page_size)

    @property
    def calls(self) -> int:
        return self._source.calls

    def _pages(self, path: str, query: dict[str, Any] | None = None) -> Iterator[RawObject]:
        """Every object of a list endpoint, following Link rel="next" to the end."""
        url: str | None = self._source.url(path, {"limit": self._page_size, **(query or {})})
        while url:
            response = self._source.request("GET", url)
            yield from (item for item in response.body or [] if isinstance(item, dict))
            url = next_link(response.headers)

    def users(self, updated_after: datetime | None = None) -> Iterator[RawObject]:
        """Every user (Okta leaves DEPROVISIONED ones out), or every user of any status
        updated after the moment given."""
        if updated_after is None:
            return self._pages("/api/v1/users")
        return self._pages(
            "/api/v1/users", {"filter": f'lastUpdated gt "{okta_time(updated_after)}"'}
        )

    def groups(self, updated_after: datetime | None = None) -> Iterator[RawObject]:
        """Every group, or those whose profile or memberships changed after the moment given."""
        if updated_after is None:
            return self._pages("/api/v1/groups")
        since = okta_time(updated_after)
        expression = f'lastUpdated gt "{since}" or lastMembershipUpdated gt "{since}"'
        return self._pages("/api/v1/groups", {"filter": expression})

    def group(self, group_id: str) -> RawObject:
        body = self._source.request("GET", f"/api/v1/groups/{quote(group_id, safe='')}").body
        return body if isinstance(body, dict) else {}

    def group_member_ids(self, group_id: str) -> list[str]:
        path = f"/api/v1/groups/{quote(group_id, safe='')}/users"
        return [str(user["id"]) for user in self._pages(path) if "id" in user]

    def add_member(self, group_id: str, user_id: str) -> None:
        self._source.request("PUT", self._member_path(group_id, user_id))

    def remove_member(self, group_id: str, user_id: str) -> None:
        self._source.request("DELETE", self._member_path(group_id, user_id))

    @staticmethod
    def _member_path(group_id: str, user_id: str) -> str:
        return f"/api/v1/groups/{quote(group_id, safe='')}/users/{quote(user_id, safe='')}"
