"""Azure connector: `discovery.azure` reads virtual machines, virtual networks and storage
accounts of each subscription.

Entity ids are ARM resource ids, lowercased (ARM treats them case-insensitively and does not
always return one casing). Every run is a full read of the types the connector asks for;
what a complete run no longer sees is deleted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hostrelay.dal.azure_arm import AzureSubscriptions, RawObject
from hostrelay.domain.cloud_sources import AzureConnectorSettings, AzureResourceType
from hostrelay.domain.connectors import ConnectorKind
from hostrelay.domain.inventory import EntityUpsert
from hostrelay.logic.source_sync import SourceSpec
from hostrelay_sources.entities import compact


def resource_group(resource_id: str) -> str | None:
    parts = resource_id.split("/")
    lowered = [part.lower() for part in parts]
    if "resourcegroups" in lowered:
        index = lowered.index("resourcegroups") + 1
        return parts[index] if index < len(parts) else None
    return None


def _common(subscription: str, raw: RawObject) -> dict[str, Any]:
    return {
        "subscription": subscription,
        "resource_group": resource_group(str(raw["id"])),
        "location": raw.get("location"),
        "tags": raw.get("tags"),
    }


def vm_attributes(raw: RawObject) -> dict[str, Any]:
    properties = raw.get("properties") or {}
    storage = properties.get("storageProfile") or {}
    image = storage.get("imageReference") or {}
    return {
        "vm_id": properties.get("vmId"),
        "vm_size": (properties.get("hardwareProfile") or {}).get("vmSize"),
        "os_type": (storage.get("osDisk") or {}).get("osType"),
        "image": ":".join(str(image[k]) for k in ("publisher", "offer", "sku") if image.get(k))
        or None,
        "computer_name": (properties.get("osProfile") or {}).get("computerName"),
        "provisioning_state": properties.get("provisioningState"),
        "zones": raw.get("zones"),
    }


def vnet_attributes(raw: RawObject) -> dict[str, Any]:
    properties = raw.get("properties") or {}
    subnets = properties.get("subnets") or []
    return {
        "address_prefixes": (properties.get("addressSpace") or {}).get("addressPrefixes"),
        "subnets": {
            str(subnet.get("name")): (subnet.get("properties") or {}).get("addressPrefix")
            for subnet in subnets
            if subnet.get("name")
        },
        "provisioning_state": properties.get("provisioningState"),
    }


def storage_attributes(raw: RawObject) -> dict[str, Any]:
    properties = raw.get("properties") or {}
    return {
        "account_kind": raw.get("kind"),
        "sku": (raw.get("sku") or {}).get("name"),
        "https_only": properties.get("supportsHttpsTrafficOnly"),
        "minimum_tls_version": properties.get("minimumTlsVersion"),
        "allow_blob_public_access": properties.get("allowBlobPublicAccess"),
        "blob_endpoint": (properties.get("primaryEndpoints") or {}).get("blob"),
        "provisioning_state": properties.get("provisioningState"),
        "created": properties.get("creationTime"),
    }


_ATTRIBUTES: dict[AzureResourceType, Callable[[RawObject], dict[str, Any]]] = {
    AzureResourceType.VIRTUAL_MACHINE: vm_attributes,
    AzureResourceType.VIRTUAL_NETWORK: vnet_attributes,
    AzureResourceType.STORAGE_ACCOUNT: storage_attributes,
}


def resource_entity(
    resource_type: AzureResourceType, subscription: str, raw: RawObject
) -> EntityUpsert:
    attributes = {**_common(subscription, raw), **_ATTRIBUTES[resource_type](raw)}
    return EntityUpsert(
        id=str(raw["id"]).lower(),
        kind=resource_type.kind,
        name=str(raw.get("name") or raw["id"]),
        attributes=compact(attributes),
        relations={},
    )


def read_subscriptions(
    client: AzureSubscriptions, settings: AzureConnectorSettings, should_stop: Callable[[], bool]
) -> list[EntityUpsert] | None:
    """Every resource of the asked types in every subscription; None when canceled midway."""
    entities: list[EntityUpsert] = []
    for subscription in settings.scopes():
        for resource_type in settings.types():
            if should_stop():
                return None
            entities += [
                resource_entity(resource_type, subscription, raw)
                for raw in client.resources(subscription, resource_type)
                if raw.get("id")
            ]
    return entities


AZURE_SOURCE: SourceSpec[AzureConnectorSettings, AzureSubscriptions] = SourceSpec(
    kind=ConnectorKind.AZURE,
    settings=AzureConnectorSettings,
    entity_kinds=frozenset(resource_type.kind for resource_type in AzureResourceType),
    read=read_subscriptions,
    read_kinds=lambda settings: frozenset(t.kind for t in settings.types()),
)
