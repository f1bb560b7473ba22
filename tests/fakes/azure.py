"""A stateful fake of the Azure endpoints the azure connector calls.

One HTTPS server plays both hosts (the tests point each root at it):
- the Microsoft identity platform's v2.0 token endpoint, `POST /{tenant}/oauth2/v2.0/token`
  with grant_type=client_credentials (form-encoded); errors as it sends them (400
  invalid_client AADSTS7000215 for a wrong secret, 400 unauthorized_client AADSTS700016 for
  an unknown app, `{error, error_description, error_codes}`);
- Azure Resource Manager: VirtualMachines_ListAll, VirtualNetworks_ListAll,
  StorageAccounts_List of a subscription, paged by `nextLink` (an absolute URL with a
  `$skiptoken`), errors as ARM's `{error: {code, message}}` (401 InvalidAuthenticationToken;
  401 ExpiredAuthenticationToken once `state.clock` passes a token's `expires_in`; 403
  AuthorizationFailed, 404 SubscriptionNotFound, 429 with Retry-After).
Requests and responses are checked against tests/fakes/specs/azure_arm.json, an excerpt of
the Azure REST API specs; what breaks it lands in `state.violations`.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

from tests.fakes.api_description import ApiDescription
from tests.fakes.server import FakeApiState, FakeServer, JsonHandler

ARM = ApiDescription.openapi("azure_arm.json")
ARM_SCOPE = "https://management.azure.com/.default"
PROVIDERS = {
    "virtualMachines": "Microsoft.Compute/virtualMachines",
    "virtualNetworks": "Microsoft.Network/virtualNetworks",
    "storageAccounts": "Microsoft.Storage/storageAccounts",
}


class ArmError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass
class AzureState(FakeApiState):
    tenant_id: str
    client_id: str
    client_secret: str
    page_size: int = 2  # ARM chooses page sizes; small here so paging is exercised
    subscriptions: dict[str, dict[str, list[dict[str, Any]]]] = field(default_factory=dict)
    readable: set[str] = field(default_factory=set)  # subscriptions the app has Reader on
    tokens: dict[str, float] = field(default_factory=dict)  # access token → expires at
    clock: Callable[[], float] = time.time  # what "expired" is measured by
    token_forms: list[dict[str, str]] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)

    def _add(self, subscription: str, collection: str, resource: dict[str, Any]) -> None:
        self.readable.add(subscription)
        kinds = self.subscriptions.setdefault(subscription, {c: [] for c in PROVIDERS})
        kinds[collection].append(resource)

    @staticmethod
    def resource_id(subscription: str, group: str, provider: str, name: str) -> str:
        return f"/subscriptions/{subscription}/resourceGroups/{group}/providers/{provider}/{name}"

    def add_vm(self, subscription: str, group: str, name: str, *, os_type: str = "Linux") -> None:
        rid = self.resource_id(subscription, group, PROVIDERS["virtualMachines"], name)
        self._add(
            subscription,
            "virtualMachines",
            {
                "id": rid,
                "name": name,
                "type": "Microsoft.Compute/virtualMachines",
                "location": "westeurope",
                "tags": {"env": "prod"},
                "zones": ["1"],
                "properties": {
                    "vmId": secrets.token_hex(4) + "-0000-4000-8000-" + secrets.token_hex(6),
                    "hardwareProfile": {"vmSize": "Standard_B2s"},
                    "storageProfile": {
                        "imageReference": {
                            "publisher": "Canonical",
                            "offer": "ubuntu-24_04-lts",
                            "sku": "server",
                            "version": "latest",
                        },
                        "osDisk": {
                            "osType": os_type,
                            "name": f"{name}-os",
                            "createOption": "FromImage",
                        },
                        "dataDisks": [],
                    },
                    "osProfile": {"computerName": name, "adminUsername": "azureuser"},
                    "networkProfile": {
                        "networkInterfaces": [
                            {
                                "id": self.resource_id(
                                    subscription,
                                    group,
                                    "Microsoft.Network/networkInterfaces",
                                    f"{name}-nic",
                                )
                            }
                        ]
                    },
                    "provisioningState": "Succeeded",
                    "timeCreated": "2025-01-02T03:04:05.0000000+00:00",
                },
            },
        )

    def add_vnet(self, subscription: str, group: str, name: str, prefix: str) -> None:
        rid = self.resource_id(subscription, group, PROVIDERS["virtualNetworks"], name)
        self._add(
            subscription,
            "virtualNetworks",
            {
                "id": rid,
                "name": name,
                "type": "Microsoft.Network/virtualNetworks",
                "location": "westeurope",
                "etag": 'W/"fake"',
                "properties": {
                    "provisioningState": "Succeeded",
                    "resourceGuid": "00000000-0000-4000-8000-000000000001",
                    "addressSpace": {"addressPrefixes": [prefix]},
                    "subnets": [
                        {
                            "id": f"{rid}/subnets/default",
                            "name": "default",
                            "etag": 'W/"fake"',
                            "type": "Microsoft.Network/virtualNetworks/subnets",
                            "properties": {
                                "addressPrefix": prefix,
                                "provisioningState": "Succeeded",
                            },
                        }
                    ],
                    "enableDdosProtection": False,
                },
            },
        )

    def add_storage_account(self, subscription: str, group: str, name: str) -> None:
        rid = self.resource_id(subscription, group, PROVIDERS["storageAccounts"], name)
        self._add(
            subscription,
            "storageAccounts",
            {
                "id": rid,
                "name": name,
                "type": "Microsoft.Storage/storageAccounts",
                "location": "westeurope",
                "tags": {},
                "sku": {"name": "Standard_LRS", "tier": "Standard"},
                "kind": "StorageV2",
                "properties": {
                    "provisioningState": "Succeeded",
                    "primaryEndpoints": {"blob": f"https://{name}.blob.core.windows.net/"},
                    "primaryLocation": "westeurope",
                    "statusOfPrimary": "available",
                    "creationTime": "2025-01-02T03:04:05.0000000Z",
                    "supportsHttpsTrafficOnly": True,
                    "minimumTlsVersion": "TLS1_2",
                    "allowBlobPublicAccess": False,
                    "accessTier": "Hot",
                },
            },
        )

    def delete(self, subscription: str, collection: str, name: str) -> None:
        items = self.subscriptions[subscription][collection]
        items[:] = [item for item in items if item["name"] != name]

    def calls(self, prefix: str = "/") -> int:
        return sum(1 for _, path in self.requests if path.startswith(prefix))


def _handler_for(state: AzureState) -> type[JsonHandler]:
    class Handler(JsonHandler):
        content_type = "application/json; charset=utf-8"

        def do_POST(self) -> None:
            path, _ = self.path_and_query()
            form = {k: v[0] for k, v in parse_qs(self.payload().decode()).items()}
            with state.lock:
                state.requests.append(("POST", path))
                status, body = self._token(path, form)
            self.send_json(status, body)

        def _token(self, path: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
            if path != f"/{state.tenant_id}/oauth2/v2.0/token":
                return 400, _aad_error("invalid_request", 90002, "Tenant not found.")
            state.token_forms.append({k: v for k, v in form.items() if k != "client_secret"})
            if form.get("grant_type") != "client_credentials" or form.get("scope") != ARM_SCOPE:
                return 400, _aad_error("invalid_request", 900144, "grant_type or scope invalid.")
            if form.get("client_id") != state.client_id:
                return 400, _aad_error(
                    "unauthorized_client", 700016, "Application not found in the directory."
                )
            if form.get("client_secret") != state.client_secret:
                return 401, _aad_error("invalid_client", 7000215, "Invalid client secret provided.")
            token = "eyJ0eXAiOiJKV1QifQ.fake." + secrets.token_urlsafe(24)
            state.tokens[token] = state.clock() + 3599
            return 200, {"token_type": "Bearer", "expires_in": 3599, "access_token": token}

        def do_GET(self) -> None:
            path, query = self.path_and_query()
            with state.lock:
                state.requests.append(("GET", path))
                checked = {k: v for k, v in query.items() if k != "$skiptoken"}
                state.violations += ARM.request_problems("GET", path, checked)
                headers: dict[str, str] = {}
                try:
                    body = self._list(path, query)
                    status = 200
                    state.violations += ARM.response_problems("GET", path, body)
                except ArmError as error:
                    status = error.status
                    body = {"error": {"code": error.code, "message": error.message}}
                    if status == 429:
                        headers["Retry-After"] = state.retry_after
            self.send_json(status, body, headers)

        def _list(self, path: str, query: dict[str, list[str]]) -> dict[str, Any]:
            authorization = self.headers.get("Authorization", "")
            expires_at = state.tokens.get(authorization.removeprefix("Bearer "))
            if expires_at is None:
                raise ArmError(401, "InvalidAuthenticationToken", "The access token is invalid.")
            if state.clock() >= expires_at:
                raise ArmError(401, "ExpiredAuthenticationToken", "The access token expiry UTC")
            segments = path.strip("/").split("/")
            if len(segments) != 5 or segments[0] != "subscriptions":
                raise ArmError(404, "InvalidResourceType", "The resource type was not found.")
            subscription, collection = segments[1], segments[4]
            if subscription not in state.subscriptions:
                raise ArmError(
                    404, "SubscriptionNotFound", f"Subscription {subscription} not found"
                )
            if subscription not in state.readable:
                raise ArmError(
                    403,
                    "AuthorizationFailed",
                    f"The client does not have authorization to perform action over scope "
                    f"'/subscriptions/{subscription}'",
                )
            if state.throttle_now():
                raise ArmError(429, "TooManyRequests", "The request is being throttled.")
            items = state.subscriptions[subscription].get(collection)
            if items is None:
                raise ArmError(404, "InvalidResourceType", "The resource type was not found.")
            start = int(query.get("$skiptoken", ["0"])[0])
            end = start + state.page_size
            body: dict[str, Any] = {"value": items[start:end]}
            if end < len(items):
                following = {"api-version": query["api-version"][0], "$skiptoken": str(end)}
                body["nextLink"] = f"{self.base_url()}{path}?{urlencode(following)}"
            return body

    return Handler


def _aad_error(error: str, code: int, description: str) -> dict[str, Any]:
    return {
        "error": error,
        "error_description": f"AADSTS{code}: {description}",
        "error_codes": [code],
        "timestamp": "2025-01-02 03:04:05Z",
        "trace_id": "00000000-0000-4000-8000-000000000000",
        "correlation_id": "00000000-0000-4000-8000-000000000000",
    }


class AzureFake(FakeServer[AzureState]):
    """Started on a free port with a test CA; `state` is what tests arrange and inspect."""

    def __init__(self, directory: Path, tenant_id: str, client_id: str, secret: str) -> None:
        state = AzureState(tenant_id, client_id, secret)
        super().__init__(state, _handler_for(state), directory)

    resource_id_of = staticmethod(AzureState.resource_id)
