"""Azure Resource Manager calls of the azure connector: a client-credentials token, then
subscription-wide list operations paged by nextLink.

Operations (Azure/azure-rest-api-specs, resource-manager stable):
Microsoft.Compute VirtualMachines_ListAll, Microsoft.Network VirtualNetworks_ListAll,
Microsoft.Storage StorageAccounts_List; the token from the Microsoft identity platform's v2.0
token endpoint (grant_type=client_credentials, scope https://management.azure.com/.default).
The token request is one form POST: no SDK (azure-identity and its msal cost a Lambda's cold
start far more than these few lines).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

from hostrelay.dal.bearer_token import IssuedToken
from hostrelay.dal.rest_source import RestSource, SourceAuthFailed, SourceRejected
from hostrelay.domain.cloud_sources import AzureResourceType

RawObject = dict[str, Any]
ARM_SCOPE = "https://management.azure.com/.default"
# Each list operation and the api-version it is called with (a stable version of its spec).
LIST_OPERATIONS: dict[AzureResourceType, tuple[str, str]] = {
    AzureResourceType.VIRTUAL_MACHINE: ("Microsoft.Compute/virtualMachines", "2024-07-01"),
    AzureResourceType.VIRTUAL_NETWORK: ("Microsoft.Network/virtualNetworks", "2024-05-01"),
    AzureResourceType.STORAGE_ACCOUNT: ("Microsoft.Storage/storageAccounts", "2023-05-01"),
}


def client_credentials_token(
    login: RestSource,
    tenant_id: str,
    client_id: str,
    client_secret: str,
    *,
    clock: Callable[[], float] = time.time,
) -> IssuedToken:
    """An ARM access token for an app registration and when it expires (`expires_in`); a
    refused secret is bad_credentials."""
    asked_at = clock()
    path = f"/{quote(tenant_id, safe='')}/oauth2/v2.0/token"
    form = {
        "grant_type": "client_credentials",
        "client_id": client_id,
        "client_secret": client_secret,
        "scope": ARM_SCOPE,
    }
    try:
        body = login.request("POST", path, form=form).body or {}
    except SourceRejected as exc:
        # 400 invalid_client / unauthorized_client / invalid_request: the secret or the app.
        if exc.status == 400:
            raise SourceAuthFailed(
                f"azure token: the credential was refused ({exc.message})"
            ) from None
        raise
    token = body.get("access_token")
    if not isinstance(token, str) or not token:
        raise SourceAuthFailed("azure token: the token endpoint returned no access_token")
    try:
        lifetime = float(body.get("expires_in", 3599))  # a number (v2) or a string (v1)
    except (TypeError, ValueError):
        lifetime = 3599.0
    return IssuedToken(token, asked_at + lifetime)


class AzureSubscriptions:
    """Subscription-wide listings of ARM resources, with one bearer token."""

    def __init__(self, arm: RestSource, login: RestSource | None = None) -> None:
        self._arm = arm
        self._login = login

    @property
    def calls(self) -> int:
        return self._arm.calls + (self._login.calls if self._login is not None else 0)

    def resources(self, subscription: str, resource_type: AzureResourceType) -> Iterator[RawObject]:
        provider, api_version = LIST_OPERATIONS[resource_type]
        url: str | None = self._arm.url(
            f"/subscriptions/{quote(subscription, safe='')}/providers/{provider}",
            {"api-version": api_version},
        )
        while url:
            body = self._arm.request("GET", url).body or {}
            yield from (item for item in body.get("value") or [] if isinstance(item, dict))
            url = body.get("nextLink") or None
