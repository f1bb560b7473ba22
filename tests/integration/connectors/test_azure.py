"""The azure connector end to end: the API, the discovery function and an Azure fake."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.azure import AzureFake
from tests.integration.connectors.cloud_support import (
    assert_secret_nowhere,
    discovery_env,
    entity,
    put_secret,
    run,
)
from tests.integration.connectors.conftest import ConnectorStack

pytestmark = pytest.mark.integration

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT = "0f6b2b7e-3c1a-4b7e-9d8e-5a1b2c3d4e5f"
SECRET = "Zq8~azure-client-secret-for-tests.Xy"  # what no log, job or item may contain
PROD = "11111111-2222-4333-8444-555555555555"
LAB = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"


def vm_id(subscription: str, group: str, name: str) -> str:
    return AzureFake.resource_id_of(subscription, group, "Microsoft.Compute/virtualMachines", name)


@pytest.fixture
def azure(tmp_path: Path) -> Iterator[AzureFake]:
    """Given two subscriptions: prod (3 VMs, 2 vnets, 1 storage account) and lab (1 VM)."""
    fake = AzureFake(tmp_path / "azure", TENANT, CLIENT, SECRET).start()
    state = fake.state
    for name in ("web-1", "web-2"):
        state.add_vm(PROD, "rg-web", name)
    state.add_vm(PROD, "rg-db", "db-1", os_type="Windows")
    state.add_vnet(PROD, "rg-net", "vnet-hub", "10.0.0.0/16")
    state.add_vnet(PROD, "rg-net", "vnet-spoke", "10.1.0.0/16")
    state.add_storage_account(PROD, "rg-data", "corpdata001")
    state.add_vm(LAB, "rg-lab", "lab-1")
    yield fake
    fake.stop()


@pytest.fixture
def secret_arn(stack: ConnectorStack, azure: AzureFake) -> str:
    discovery_env(
        stack,
        SOURCE_CA_BUNDLE=azure.ca_file,
        AZURE_LOGIN_ROOT=azure.base_url,
        AZURE_ARM_ROOT=azure.base_url,
    )
    return put_secret(stack, "hostrelay/connectors/azure", SECRET)


def azure_connector(stack: ConnectorStack, secret_arn: str, **settings: Any) -> dict[str, Any]:
    return stack.create_connector(
        name="azure",
        kind="azure",
        target="cloud",
        settings={
            "tenant_id": TENANT,
            "client_id": CLIENT,
            "subscriptions": [PROD],
            "credential_arn": secret_arn,
            **settings,
        },
    )


def test_a_sync_fills_the_inventory_with_vms_vnets_and_storage_accounts(
    stack: ConnectorStack,
    azure: AzureFake,
    secret_arn: str,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given a connector for prod, and ARM throttling the first list call
    connector = azure_connector(stack, secret_arn)
    azure.state.throttle_next = 1
    # When it runs
    job = run(stack, connector)
    # Then it succeeded after waiting out the Retry-After, and counts what it found
    assert job["state"] == "SUCCEEDED", job
    assert azure.state.throttled == 1
    result = job["result"]
    assert result["by_kind"] == {
        "azure.compute.virtual_machine": 3,
        "azure.network.virtual_network": 2,
        "azure.storage.account": 1,
    }
    assert result["created"] == result["total"] == 6
    # And it followed nextLink: token 1, VMs 2 pages (+1 retry), vnets 1, storage 1
    assert result["api_calls"] == azure.state.calls() == 1 + 3 + 1 + 1
    # And the token was a client-credentials grant for ARM, for this app
    assert azure.state.token_forms == [
        {
            "grant_type": "client_credentials",
            "client_id": CLIENT,
            "scope": "https://management.azure.com/.default",
        }
    ]
    # And VMs carry size, OS, image and resource group; vnets their address space
    db = entity(stack, vm_id(PROD, "rg-db", "db-1").lower())
    assert (db["kind"], db["name"]) == ("azure.compute.virtual_machine", "db-1")
    attributes = db["attributes"]
    assert (attributes["vm_size"], attributes["os_type"]) == ("Standard_B2s", "Windows")
    assert attributes["resource_group"] == "rg-db" and attributes["subscription"] == PROD
    assert attributes["image"] == "Canonical:ubuntu-24_04-lts:server"
    hub = entity(
        stack,
        AzureFake.resource_id_of(
            PROD, "rg-net", "Microsoft.Network/virtualNetworks", "vnet-hub"
        ).lower(),
    )
    assert hub["attributes"]["address_prefixes"] == ["10.0.0.0/16"]
    assert hub["attributes"]["subnets"] == {"default": "10.0.0.0/16"}
    account = entity(
        stack,
        AzureFake.resource_id_of(
            PROD, "rg-data", "Microsoft.Storage/storageAccounts", "corpdata001"
        ).lower(),
    )
    assert account["attributes"]["https_only"] is True
    assert account["attributes"]["minimum_tls_version"] == "TLS1_2"
    # And the lab subscription was not read, and the fake matched the REST specs throughout
    assert not any(LAB in path for _, path in azure.state.requests)
    assert azure.state.violations == []
    assert_secret_nowhere(stack, connector, job, [SECRET], caplog, capfd)


def test_subscriptions_are_read_each_and_deletes_are_detected(
    stack: ConnectorStack, azure: AzureFake, secret_arn: str
) -> None:
    connector = azure_connector(stack, secret_arn, subscriptions=[PROD, LAB])
    assert run(stack, connector)["result"]["by_kind"]["azure.compute.virtual_machine"] == 4
    # When a VM and a storage account are deleted and the connector runs again
    azure.state.delete(PROD, "virtualMachines", "web-2")
    azure.state.delete(PROD, "storageAccounts", "corpdata001")
    second = run(stack, connector)["result"]
    # Then exactly those two are deleted
    assert second["deleted"] == 2 and second["unchanged"] == 5
    assert entity(stack, vm_id(PROD, "rg-web", "web-2").lower())["deleted_at"] is not None
    assert entity(stack, vm_id(LAB, "rg-lab", "lab-1").lower())["deleted_at"] is None
    assert azure.state.violations == []


@pytest.mark.parametrize(
    ("arrange", "code"),
    [
        ("wrong_secret", "bad_credentials"),
        ("no_reader_role", "permission_denied"),
        ("unreachable", "source_unreachable"),
        ("missing_secret", "credential_unavailable"),
    ],
)
def test_a_run_that_cannot_read_azure_fails_clearly_and_deletes_nothing(
    stack: ConnectorStack, azure: AzureFake, secret_arn: str, arrange: str, code: str
) -> None:
    connector = azure_connector(stack, secret_arn)
    assert run(stack, connector)["state"] == "SUCCEEDED"
    secrets = stack.aws.client("secretsmanager")
    if arrange == "wrong_secret":
        secrets.put_secret_value(SecretId=secret_arn, SecretString="an-expired-secret")
    elif arrange == "no_reader_role":
        azure.state.readable.discard(PROD)
    elif arrange == "unreachable":
        azure.stop()
    else:
        secrets.delete_secret(SecretId=secret_arn, ForceDeleteWithoutRecovery=True)
    job = run(stack, connector)
    assert job["state"] == "FAILED"
    assert job["error"]["code"] == code, job["error"]
    assert SECRET not in str(job) and "an-expired-secret" not in str(job)
    runs = stack.reader.get(f"/v1/connectors/{connector['id']}/runs").body["runs"]
    assert runs[0]["error"]["code"] == code
    assert entity(stack, vm_id(PROD, "rg-db", "db-1").lower())["deleted_at"] is None


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"client_secret": SECRET}, "settings.client_secret"),
        ({"tenant_id": "contoso.onmicrosoft.com"}, "settings.tenant_id"),
        ({"subscriptions": []}, "settings.subscriptions"),
        ({"subscriptions": ["not-a-guid"]}, "settings.subscriptions.0"),
        ({"resource_types": ["compute.disk"]}, "settings.resource_types.0"),
    ],
)
def test_azure_settings_are_checked_and_never_take_a_secret(
    stack: ConnectorStack, changes: dict[str, Any], field: str
) -> None:
    settings = {
        "tenant_id": TENANT,
        "client_id": CLIENT,
        "subscriptions": [PROD],
        "credential_arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:hostrelay/az",
        **changes,
    }
    response = stack.admin.post(
        "/v1/connectors",
        json_body={"name": "az", "kind": "azure", "target": "cloud", "settings": settings},
    )
    assert response.status in (400, 422), response.body
    assert field in [d["field"] for d in response.body["error"]["details"]]
    assert SECRET not in str(response.body)
    assert stack.reader.get("/v1/connectors").body["connectors"] == []
