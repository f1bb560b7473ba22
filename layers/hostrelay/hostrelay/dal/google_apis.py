"""Google REST calls of the workspace and gcp connectors (list methods, paged by pageToken).

Methods, as Google's discovery documents name them:
- admin directory_v1: users.list GET admin/directory/v1/users, groups.list GET
  admin/directory/v1/groups, members.list GET admin/directory/v1/groups/{groupKey}/members,
  orgunits.list GET admin/directory/v1/customer/{customerId}/orgunits (not paged);
- compute v1: instances.aggregatedList GET compute/v1/projects/{project}/aggregated/instances,
  networks.list GET compute/v1/projects/{project}/global/networks;
- storage v1: buckets.list GET storage/v1/b?project=.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote

from hostrelay.dal.bearer_token import RefreshingToken
from hostrelay.dal.rest_source import RestSource

RawObject = dict[str, Any]

WORKSPACE_SCOPES = (
    "https://www.googleapis.com/auth/admin.directory.user.readonly",
    "https://www.googleapis.com/auth/admin.directory.group.readonly",
    "https://www.googleapis.com/auth/admin.directory.orgunit.readonly",
)
GCP_SCOPES = (
    "https://www.googleapis.com/auth/compute.readonly",
    "https://www.googleapis.com/auth/devstorage.read_only",
)
# Largest maxResults each list method accepts (its discovery document's maximum).
MAX_USERS_PAGE = 500
MAX_GROUPS_PAGE = 200
MAX_MEMBERS_PAGE = 200
MAX_COMPUTE_PAGE = 500
MAX_BUCKETS_PAGE = 1000


def _segment(value: str) -> str:
    return quote(value, safe="")


def pages(source: RestSource, path: str, query: Mapping[str, Any], items_key: str) -> Iterator[Any]:
    """Every item of a Google list method: the same query again with each nextPageToken."""
    token: str | None = None
    while True:
        asked = dict(query) if token is None else {**query, "pageToken": token}
        body = source.request("GET", path, query=asked).body or {}
        items = body.get(items_key)
        if isinstance(items, list):
            yield from items
        elif isinstance(items, dict):  # aggregatedList: {scope: {items_key...}}
            yield from items.items()
        token = body.get("nextPageToken") or None
        if token is None:
            return


class WorkspaceDirectory:
    """The Admin SDK Directory API of one customer, with a token for an admin's delegation."""

    def __init__(
        self,
        source: RestSource,
        customer: str,
        page_size: int = 500,
        token: RefreshingToken | None = None,
    ) -> None:
        self._source = source
        self._customer = customer
        self._page_size = page_size
        self._token = token

    @property
    def calls(self) -> int:
        return (self._token.fetches if self._token else 0) + self._source.calls

    def _size(self, maximum: int) -> int:
        return min(self._page_size, maximum)

    def users(self) -> Iterator[RawObject]:
        query = {"customer": self._customer, "maxResults": self._size(MAX_USERS_PAGE)}
        return pages(self._source, "/admin/directory/v1/users", query, "users")

    def groups(self) -> Iterator[RawObject]:
        query = {"customer": self._customer, "maxResults": self._size(MAX_GROUPS_PAGE)}
        return pages(self._source, "/admin/directory/v1/groups", query, "groups")

    def members(self, group_id: str) -> Iterator[RawObject]:
        path = f"/admin/directory/v1/groups/{_segment(group_id)}/members"
        return pages(self._source, path, {"maxResults": self._size(MAX_MEMBERS_PAGE)}, "members")

    def org_units(self) -> list[RawObject]:
        path = f"/admin/directory/v1/customer/{_segment(self._customer)}/orgunits"
        body = self._source.request("GET", path, query={"type": "all"}).body or {}
        return [unit for unit in body.get("organizationUnits") or [] if isinstance(unit, dict)]


class GcpProjects:
    """Compute Engine and Cloud Storage of the projects a service account can read."""

    def __init__(
        self,
        compute: RestSource,
        storage: RestSource,
        page_size: int = 500,
        token: RefreshingToken | None = None,
    ) -> None:
        self._compute = compute
        self._storage = storage
        self._page_size = page_size
        self._token = token

    @property
    def calls(self) -> int:
        fetches = self._token.fetches if self._token else 0
        return fetches + self._compute.calls + self._storage.calls

    def instances(self, project: str) -> Iterator[tuple[str, RawObject]]:
        """(zone URL part, instance) of every instance in every zone of `project`."""
        path = f"/compute/v1/projects/{_segment(project)}/aggregated/instances"
        query = {"maxResults": min(self._page_size, MAX_COMPUTE_PAGE)}
        for scope, scoped in pages(self._compute, path, query, "items"):
            for instance in (scoped or {}).get("instances") or []:
                yield str(scope), instance

    def networks(self, project: str) -> Iterator[RawObject]:
        path = f"/compute/v1/projects/{_segment(project)}/global/networks"
        query = {"maxResults": min(self._page_size, MAX_COMPUTE_PAGE)}
        return pages(self._compute, path, query, "items")

    def buckets(self, project: str) -> Iterator[RawObject]:
        query = {"project": project, "maxResults": min(self._page_size, MAX_BUCKETS_PAGE)}
        return pages(self._storage, "/storage/v1/b", query, "items")
