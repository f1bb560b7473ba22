"""A stateful fake of the Google endpoints the workspace and gcp connectors call.

One HTTPS server plays three of Google's hosts (the tests point each root at it):
- the OAuth token endpoint (oauth2.googleapis.com/token): a JWT-bearer grant (RFC 7523) whose
  assertion is verified with the test service account's public key, audience and scopes;
- the Admin SDK Directory API: users.list, groups.list, members.list (paged: maxResults,
  pageToken → nextPageToken) and orgunits.list;
- Compute Engine: instances.aggregatedList and networks.list (paged the same way).
Every request and every response is checked against Google's discovery documents
(tests/fakes/api_description.py); what breaks them lands in `state.violations`. Errors are
Google's JSON error objects; throttling is a 429 RESOURCE_EXHAUSTED (or the 403
rateLimitExceeded some APIs send) with an optional Retry-After.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import jwt

from tests.fakes.api_description import ApiDescription
from tests.fakes.server import FakeApiState, FakeServer, JsonHandler

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
TOKEN_PATH = "/token"
# The audience Google's token endpoint requires of an assertion, wherever it is posted.
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
DIRECTORY = ApiDescription.google("admin.directory_v1")
COMPUTE = ApiDescription.google("compute.v1")
# Directory list maxima Google documents beside the discovery document's own.
GROUP_PAGE_MAX = MEMBER_PAGE_MAX = 200
COMPUTE_HOST = "https://www.googleapis.com/compute/v1"
TIMESTAMP = "2025-01-02T03:04:05.000Z"


@dataclass
class ServiceAccount:
    """A service account key pair; `key_json` is what the connector's secret holds."""

    email: str
    private_key_id: str = field(default_factory=lambda: secrets.token_hex(20))
    key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )

    def key_json(self, token_uri: str = "https://oauth2.googleapis.com/token") -> str:
        pem = self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        return json.dumps(
            {
                "type": "service_account",
                "project_id": "hostrelay-test",
                "private_key_id": self.private_key_id,
                "private_key": pem,
                "client_email": self.email,
                "client_id": "100000000000000000001",
                "auth_uri": "https://accounts.google.com/o/oauth2/auth",
                "token_uri": token_uri,
            }
        )

    def public_pem(self) -> str:
        return (
            self.key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )


class GoogleError(Exception):
    def __init__(self, status: int, message: str, reason: str, api_status: str) -> None:
        super().__init__(message)
        self.status, self.message, self.reason, self.api_status = (
            status,
            message,
            reason,
            api_status,
        )

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "code": self.status,
                "message": self.message,
                "errors": [{"message": self.message, "domain": "global", "reason": self.reason}],
                "status": self.api_status,
            }
        }


def _unauthenticated() -> GoogleError:
    return GoogleError(
        401, "Request had invalid authentication credentials.", "authError", "UNAUTHENTICATED"
    )


def _forbidden() -> GoogleError:
    return GoogleError(
        403, "Not Authorized to access this resource/api", "forbidden", "PERMISSION_DENIED"
    )


@dataclass(kw_only=True)
class GoogleState(FakeApiState):
    account: ServiceAccount
    delegated_admins: set[str] = field(default_factory=set)  # subjects delegation allows
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    members: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # (id, type)
    org_units: dict[str, dict[str, Any]] = field(default_factory=dict)
    instances: dict[str, dict[str, list[dict[str, Any]]]] = field(default_factory=dict)
    networks: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    tokens: dict[str, set[str]] = field(default_factory=dict)  # access token → scopes
    token_expiry: dict[str, float] = field(default_factory=dict)  # access token → expires at
    clock: Callable[[], float] = time.time  # what "expired" is measured by
    token_requests: list[dict[str, Any]] = field(default_factory=list)  # verified claims
    violations: list[str] = field(default_factory=list)
    throttle_status: int = 429
    retry_after: str | None = "1"
    denied: set[str] = field(default_factory=set)  # path prefixes answered with 403

    # -- Workspace
    def add_org_unit(self, unit_id: str, path: str, parent_id: str, parent_path: str) -> None:
        self.org_units[unit_id] = {
            "kind": "admin#directory#orgUnit",
            "etag": '"fake"',
            "name": path.rsplit("/", 1)[-1],
            "description": f"{path} unit",
            "orgUnitPath": path,
            "orgUnitId": unit_id,
            "parentOrgUnitPath": parent_path,
            "parentOrgUnitId": parent_id,
        }

    def add_user(
        self, user_id: str, email: str, *, suspended: bool = False, org_unit_path: str = "/"
    ) -> None:
        given, _, family = email.partition("@")[0].partition(".")
        self.users[user_id] = {
            "kind": "admin#directory#user",
            "id": user_id,
            "etag": '"fake"',
            "primaryEmail": email,
            "name": {
                "givenName": given.title(),
                "familyName": family.title() or "User",
                "fullName": f"{given.title()} {family.title() or 'User'}",
            },
            "isAdmin": False,
            "isDelegatedAdmin": False,
            "lastLoginTime": TIMESTAMP,
            "creationTime": TIMESTAMP,
            "agreedToTerms": True,
            "suspended": suspended,
            "archived": False,
            "changePasswordAtNextLogin": False,
            "ipWhitelisted": False,
            "emails": [{"address": email, "primary": True}],
            "customerId": "C01abcdef",
            "orgUnitPath": org_unit_path,
            "isMailboxSetup": True,
            "includeInGlobalAddressList": True,
        }

    def add_group(self, group_id: str, email: str, members: list[tuple[str, str]]) -> None:
        self.groups[group_id] = {
            "kind": "admin#directory#group",
            "id": group_id,
            "etag": '"fake"',
            "email": email,
            "name": email.partition("@")[0].title(),
            "directMembersCount": str(len(members)),
            "description": f"{email} group",
            "adminCreated": True,
        }
        self.members[group_id] = list(members)

    def delete_user(self, user_id: str) -> None:
        del self.users[user_id]
        for group in self.members.values():
            group[:] = [m for m in group if m[0] != user_id]

    # -- Compute
    def add_network(self, project: str, name: str, network_id: str) -> None:
        self.networks.setdefault(project, []).append(
            {
                "kind": "compute#network",
                "id": network_id,
                "creationTimestamp": "2025-01-02T03:04:05.000-08:00",
                "name": name,
                "selfLink": f"{COMPUTE_HOST}/projects/{project}/global/networks/{name}",
                "selfLinkWithId": f"{COMPUTE_HOST}/projects/{project}/global/networks/{network_id}",
                "autoCreateSubnetworks": True,
                "subnetworks": [
                    f"{COMPUTE_HOST}/projects/{project}/regions/us-central1/subnetworks/{name}"
                ],
                "routingConfig": {"routingMode": "REGIONAL"},
                "networkFirewallPolicyEnforcementOrder": "AFTER_CLASSIC_FIREWALL",
                "mtu": 1460,
            }
        )

    def add_instance(
        self,
        project: str,
        zone: str,
        name: str,
        instance_id: str,
        *,
        network: str = "default",
        status: str = "RUNNING",
    ) -> None:
        prefix = f"{COMPUTE_HOST}/projects/{project}"
        self.instances.setdefault(project, {}).setdefault(zone, []).append(
            {
                "kind": "compute#instance",
                "id": instance_id,
                "creationTimestamp": "2025-01-02T03:04:05.000-08:00",
                "name": name,
                "machineType": f"{prefix}/zones/{zone}/machineTypes/e2-small",
                "status": status,
                "zone": f"{prefix}/zones/{zone}",
                "networkInterfaces": [
                    {
                        "kind": "compute#networkInterface",
                        "network": f"{prefix}/global/networks/{network}",
                        "subnetwork": f"{prefix}/regions/us-central1/subnetworks/{network}",
                        "networkIP": f"10.128.0.{len(self.instances[project][zone]) + 2}",
                        "name": "nic0",
                        "accessConfigs": [
                            {
                                "kind": "compute#accessConfig",
                                "type": "ONE_TO_ONE_NAT",
                                "name": "External NAT",
                                "natIP": "203.0.113.10",
                                "networkTier": "PREMIUM",
                            }
                        ],
                        "fingerprint": "ZmFrZQ==",
                        "stackType": "IPV4_ONLY",
                    }
                ],
                "labels": {"env": "test"},
                "selfLink": f"{prefix}/zones/{zone}/instances/{name}",
                "cpuPlatform": "Intel Broadwell",
                "deletionProtection": False,
            }
        )

    def delete_instance(self, project: str, name: str) -> None:
        for instances in self.instances.get(project, {}).values():
            instances[:] = [i for i in instances if i["name"] != name]

    def calls(self, prefix: str = "/") -> int:
        return sum(1 for _, path in self.requests if path.startswith(prefix))


def _page(items: list[Any], query: dict[str, list[str]], maximum: int) -> tuple[list[Any], str]:
    size = min(int(query.get("maxResults", [str(maximum)])[0]) or maximum, maximum)
    token = query.get("pageToken", [""])[0]
    start = int(base64.urlsafe_b64decode(token.encode()).decode()) if token else 0
    end = start + size
    following = base64.urlsafe_b64encode(str(end).encode()).decode() if end < len(items) else ""
    return items[start:end], following


def _handler_for(state: GoogleState) -> type[JsonHandler]:
    class Handler(JsonHandler):
        content_type = "application/json; charset=UTF-8"

        def do_POST(self) -> None:
            path, _ = self.path_and_query()
            form = parse_qs(self.payload().decode())
            with state.lock:
                state.requests.append(("POST", path))
                if path != TOKEN_PATH:
                    self.send_json(404, _forbidden().body())
                    return
                status, body = self._token(form)
            self.send_json(status, body)

        def _token(self, form: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
            """The JWT-bearer grant as Google's token endpoint answers it."""
            if form.get("grant_type", [""])[0] != JWT_BEARER:
                return 400, {
                    "error": "unsupported_grant_type",
                    "error_description": "Invalid grant_type",
                }
            try:
                claims = jwt.decode(
                    form.get("assertion", [""])[0],
                    certs=state.account.public_pem(),
                    audience=GOOGLE_TOKEN_AUDIENCE,
                )
            except ValueError:
                return 400, {
                    "error": "invalid_grant",
                    "error_description": "Invalid JWT Signature.",
                }
            if claims.get("iss") != state.account.email:
                return 400, {"error": "invalid_grant", "error_description": "Invalid issuer"}
            state.token_requests.append(claims)
            subject = claims.get("sub")
            if subject is not None and subject not in state.delegated_admins:
                return 401, {
                    "error": "unauthorized_client",
                    "error_description": "Client is unauthorized to retrieve access tokens "
                    "using this method, or client not authorized for any of the scopes requested.",
                }
            token = "ya29.fake-" + secrets.token_urlsafe(24)
            state.tokens[token] = set(str(claims.get("scope", "")).split())
            state.token_expiry[token] = state.clock() + 3599
            return 200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"}

        def do_GET(self) -> None:
            path, query = self.path_and_query()
            with state.lock:
                state.requests.append(("GET", path))
                api = COMPUTE if path.startswith("/compute/") else DIRECTORY
                state.violations += api.request_problems("GET", path, query)
                try:
                    status, body, headers = self._get(path, query)
                except GoogleError as error:
                    status, body, headers = error.status, error.body(), {}
                if status == 200:
                    state.violations += api.response_problems("GET", path, body)
            self.send_json(status, body, headers)

        def _get(self, path: str, query: dict[str, list[str]]) -> tuple[int, Any, dict[str, str]]:
            authorization = self.headers.get("Authorization", "")
            token = authorization.removeprefix("Bearer ")
            scopes = state.tokens.get(token)
            if not authorization.startswith("Bearer ") or scopes is None:
                raise _unauthenticated()
            if state.clock() >= state.token_expiry[token]:
                raise _unauthenticated()  # Google answers an expired token the same way
            if any(path.startswith(prefix) for prefix in state.denied):
                raise _forbidden()
            if state.throttle_now():
                error = GoogleError(
                    state.throttle_status,
                    "Quota exceeded for quota metric 'Queries' and limit 'Queries per minute'",
                    "rateLimitExceeded",
                    "RESOURCE_EXHAUSTED" if state.throttle_status == 429 else "PERMISSION_DENIED",
                )
                headers = {"Retry-After": state.retry_after} if state.retry_after else {}
                return error.status, error.body(), headers
            segments = path.strip("/").split("/")
            if segments[:3] == ["admin", "directory", "v1"]:
                needed = "https://www.googleapis.com/auth/admin.directory"
                if not any(scope.startswith(needed) for scope in scopes):
                    raise _forbidden()
                return (200, *self._directory(segments[3:], query))
            if segments[:2] == ["compute", "v1"]:
                if "https://www.googleapis.com/auth/compute.readonly" not in scopes:
                    raise _forbidden()
                return (200, *self._compute(segments[2:], query))
            raise GoogleError(404, "Not Found", "notFound", "NOT_FOUND")

        def _directory(
            self, segments: list[str], query: dict[str, list[str]]
        ) -> tuple[Any, dict[str, str]]:
            if segments == ["users"]:
                items = sorted(state.users.values(), key=lambda u: u["primaryEmail"])
                page, following = _page(items, query, 500)
                return _listing("admin#directory#users", "users", page, following), {}
            if segments == ["groups"]:
                items = sorted(state.groups.values(), key=lambda g: g["email"])
                page, following = _page(items, query, GROUP_PAGE_MAX)
                return _listing("admin#directory#groups", "groups", page, following), {}
            if len(segments) == 3 and segments[0] == "groups" and segments[2] == "members":
                if segments[1] not in state.groups:
                    raise GoogleError(404, "Resource Not Found: groupKey", "notFound", "NOT_FOUND")
                members = [self._member(i, t) for i, t in state.members[segments[1]]]
                page, following = _page(members, query, MEMBER_PAGE_MAX)
                return _listing("admin#directory#members", "members", page, following), {}
            if len(segments) == 3 and segments[0] == "customer" and segments[2] == "orgunits":
                units = list(state.org_units.values())
                return {
                    "kind": "admin#directory#orgUnits",
                    "etag": '"fake"',
                    "organizationUnits": units,
                }, {}
            raise GoogleError(404, "Not Found", "notFound", "NOT_FOUND")

        @staticmethod
        def _member(member_id: str, member_type: str) -> dict[str, Any]:
            email = (
                state.users[member_id]["primaryEmail"]
                if member_type == "USER"
                else state.groups[member_id]["email"]
            )
            return {
                "kind": "admin#directory#member",
                "etag": '"fake"',
                "id": member_id,
                "email": email,
                "role": "MEMBER",
                "type": member_type,
                "status": "ACTIVE",
                "delivery_settings": "ALL_MAIL",
            }

        def _compute(
            self, segments: list[str], query: dict[str, list[str]]
        ) -> tuple[Any, dict[str, str]]:
            if len(segments) != 4 or segments[0] != "projects":
                raise GoogleError(404, "Not Found", "notFound", "NOT_FOUND")
            project, collection = segments[1], "/".join(segments[2:])
            link = f"{COMPUTE_HOST}/projects/{project}/{collection}"
            if collection == "aggregated/instances":
                scoped = [
                    (f"zones/{zone}", instance)
                    for zone, instances in sorted(state.instances.get(project, {}).items())
                    for instance in instances
                ]
                page, following = _page(scoped, query, 500)
                items: dict[str, Any] = {}
                for scope, instance in page:
                    items.setdefault(scope, {"instances": []})["instances"].append(instance)
                body = {"kind": "compute#instanceAggregatedList", "id": link, "items": items}
                body["selfLink"] = link
            elif collection == "global/networks":
                page, following = _page(state.networks.get(project, []), query, 500)
                body = {"kind": "compute#networkList", "id": link, "items": page, "selfLink": link}
            else:
                raise GoogleError(404, "Not Found", "notFound", "NOT_FOUND")
            if following:
                body["nextPageToken"] = following
            return body, {}

    return Handler


def _listing(kind: str, key: str, page: list[Any], following: str) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": kind, "etag": '"fake"', key: page}
    if following:
        body["nextPageToken"] = following
    return body


class GoogleFake(FakeServer[GoogleState]):
    """Started on a free port with a test CA; `state` is what tests arrange and inspect."""

    def __init__(self, directory: Path, account: ServiceAccount) -> None:
        state = GoogleState(account=account)
        super().__init__(state, _handler_for(state), directory)
        self.token_uri = self.base_url + TOKEN_PATH
