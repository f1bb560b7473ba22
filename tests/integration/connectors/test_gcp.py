"""The gcp connector end to end: Compute on the Google fake, Cloud Storage on the real
gcp-storage-emulator, the discovery function in moto."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import urllib3
from gcp_storage_emulator.server import create_server

from tests.fakes.google import GoogleFake, ServiceAccount
from tests.integration.connectors.cloud_support import (
    assert_secret_nowhere,
    discovery_env,
    entity,
    related,
    run,
)
from tests.integration.connectors.conftest import ConnectorStack

pytestmark = pytest.mark.integration

PROJECT, OTHER = "corp-prod-4711", "corp-lab-0815"
COMPUTE = "//compute.googleapis.com/projects"
BUCKETS = "//storage.googleapis.com/projects/_/buckets"


class StorageEmulator:
    """gcp-storage-emulator in memory on a free port; buckets made through its JSON API."""

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.root = f"http://127.0.0.1:{self.port}"
        self._server = create_server("127.0.0.1", self.port, in_memory=True)
        self._http = urllib3.PoolManager()

    def start(self) -> StorageEmulator:
        self._server.start()  # returns once its listener runs
        return self

    def stop(self) -> None:
        self._server.stop()

    def create_bucket(self, name: str) -> None:
        response = self._http.request(
            "POST",
            f"{self.root}/storage/v1/b?project={PROJECT}",
            body=json.dumps({"name": name}),
            headers={"Content-Type": "application/json"},
        )
        assert response.status == 200, response.data

    def delete_bucket(self, name: str) -> None:
        response = self._http.request("DELETE", f"{self.root}/storage/v1/b/{name}")
        assert response.status in (200, 204), response.data


@pytest.fixture
def account() -> ServiceAccount:
    return ServiceAccount("inventory@corp-prod-4711.iam.gserviceaccount.com")


@pytest.fixture
def google(tmp_path: Path, account: ServiceAccount) -> Iterator[GoogleFake]:
    """Given Compute Engine: two networks and three instances in two zones, one elsewhere."""
    fake = GoogleFake(tmp_path / "google", account).start()
    state = fake.state
    state.add_network(PROJECT, "default", "5001")
    state.add_network(PROJECT, "backend", "5002")
    state.add_instance(PROJECT, "us-central1-a", "web-1", "9001")
    state.add_instance(PROJECT, "us-central1-a", "web-2", "9002", status="TERMINATED")
    state.add_instance(PROJECT, "europe-west1-b", "db-1", "9003", network="backend")
    state.add_network(OTHER, "default", "6001")
    state.add_instance(OTHER, "us-east1-b", "lab-1", "9101")
    yield fake
    fake.stop()


@pytest.fixture
def storage() -> Iterator[StorageEmulator]:
    """Given Cloud Storage (the emulator) with two buckets."""
    emulator = StorageEmulator().start()
    emulator.create_bucket("corp-prod-assets")
    emulator.create_bucket("corp-prod-logs")
    yield emulator
    emulator.stop()


@pytest.fixture
def key_arn(
    stack: ConnectorStack, google: GoogleFake, storage: StorageEmulator, account: ServiceAccount
) -> str:
    discovery_env(
        stack,
        SOURCE_CA_BUNDLE=google.ca_file,
        GOOGLE_TOKEN_URI=google.token_uri,
        GCP_COMPUTE_ROOT=google.base_url,
        GCP_STORAGE_ROOT=storage.root,
    )
    arn = "arn:aws:ssm:us-east-1:123456789012:parameter/hostrelay/dev/connectors/gcp-inventory"
    stack.aws.client("ssm").put_parameter(
        Name="/hostrelay/dev/connectors/gcp-inventory",
        Value=account.key_json(),
        Type="SecureString",
    )
    return arn


def gcp_connector(stack: ConnectorStack, key_arn: str, **settings: Any) -> dict[str, Any]:
    return stack.create_connector(
        name="gcp",
        kind="gcp",
        target="cloud",
        settings={"projects": [PROJECT], "credential_arn": key_arn, **settings},
    )


def test_a_sync_fills_the_inventory_with_instances_networks_and_buckets(
    stack: ConnectorStack,
    google: GoogleFake,
    key_arn: str,
    account: ServiceAccount,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given a connector reading two objects a page, and Compute answering the first call with
    # a 403 rateLimitExceeded (the quota error some Google APIs send instead of a 429)
    connector = gcp_connector(stack, key_arn, page_size=2)
    google.state.throttle_next, google.state.throttle_status = 1, 403
    # When it runs
    job = run(stack, connector)
    # Then it succeeded after the wait, and counts what it found
    assert job["state"] == "SUCCEEDED", job
    assert google.state.throttled == 1
    result = job["result"]
    assert result["by_kind"] == {
        "gcp.compute.instance": 3,
        "gcp.compute.network": 2,
        "gcp.storage.bucket": 2,
    }
    assert result["created"] == result["total"] == 7
    # And it paged Compute: token 1, networks 1 (+1 retry), instances 2; Storage 1
    assert google.state.calls() == 1 + 2 + 2
    assert result["api_calls"] == google.state.calls() + 1
    # And the token was asked for with read-only scopes, as the account itself
    claims = google.state.token_requests[-1]
    assert "sub" not in claims
    assert sorted(claims["scope"].split()) == [
        "https://www.googleapis.com/auth/compute.readonly",
        "https://www.googleapis.com/auth/devstorage.read_only",
    ]
    # And instances carry zone, machine type, status and IPs, and relate to their network
    db = entity(stack, f"{COMPUTE}/{PROJECT}/zones/europe-west1-b/instances/db-1")
    assert (db["kind"], db["name"]) == ("gcp.compute.instance", "db-1")
    assert db["attributes"]["zone"] == "europe-west1-b"
    assert db["attributes"]["machine_type"] == "e2-small"
    assert db["attributes"]["project"] == PROJECT and db["attributes"]["id"] == "9003"
    assert db["attributes"]["external_ips"] == ["203.0.113.10"]
    assert related(db, "networks") == [f"{COMPUTE}/{PROJECT}/global/networks/backend"]
    web2 = entity(stack, f"{COMPUTE}/{PROJECT}/zones/us-central1-a/instances/web-2")
    assert web2["attributes"]["status"] == "TERMINATED"
    network = entity(stack, f"{COMPUTE}/{PROJECT}/global/networks/default")
    assert network["attributes"]["routing_mode"] == "REGIONAL"
    # And buckets come from the storage emulator
    bucket = entity(stack, f"{BUCKETS}/corp-prod-logs")
    assert (bucket["kind"], bucket["name"]) == ("gcp.storage.bucket", "corp-prod-logs")
    assert bucket["attributes"]["storage_class"] == "STANDARD"
    # And the other project was not read
    assert not any(OTHER in path for _, path in google.state.requests)
    assert google.state.violations == []
    private = account.key_json().split('"private_key": "')[1][40:120]
    assert_secret_nowhere(stack, connector, job, [private], caplog, capfd)


def test_projects_are_read_each_and_deletes_are_detected_per_type(
    stack: ConnectorStack, google: GoogleFake, storage: StorageEmulator, key_arn: str
) -> None:
    # Given a connector over both projects, synced once
    connector = gcp_connector(stack, key_arn, projects=[PROJECT, OTHER])
    first = run(stack, connector)["result"]
    assert first["by_kind"]["gcp.compute.instance"] == 4
    # When an instance and a bucket are deleted and it runs again
    google.state.delete_instance(PROJECT, "web-1")
    storage.delete_bucket("corp-prod-assets")
    second = run(stack, connector)["result"]
    # Then exactly those two are deleted
    assert second["deleted"] == 2
    gone = entity(stack, f"{COMPUTE}/{PROJECT}/zones/us-central1-a/instances/web-1")
    assert gone["deleted_at"] is not None
    assert entity(stack, f"{BUCKETS}/corp-prod-assets")["deleted_at"] is not None
    assert (
        entity(stack, f"{COMPUTE}/{OTHER}/zones/us-east1-b/instances/lab-1")["deleted_at"] is None
    )
    assert google.state.violations == []


def test_a_connector_reading_fewer_types_leaves_the_others_alone(
    stack: ConnectorStack, google: GoogleFake, key_arn: str
) -> None:
    connector = gcp_connector(stack, key_arn)
    assert run(stack, connector)["result"]["total"] == 7
    # When the connector is narrowed to buckets and runs again
    body = {
        **connector,
        "settings": {**connector["settings"], "resource_types": ["storage.bucket"]},
    }
    fields = {k: body[k] for k in ("name", "kind", "target", "settings")}
    assert (
        stack.admin.request("PUT", f"/v1/connectors/{connector['id']}", json_body=fields).status
        == 200
    )
    second = run(stack, connector)["result"]
    # Then Compute was not called, and nothing it had found is deleted
    assert second["by_kind"] == {"gcp.storage.bucket": 2} and second["deleted"] == 0
    web1 = entity(stack, f"{COMPUTE}/{PROJECT}/zones/us-central1-a/instances/web-1")
    assert web1["deleted_at"] is None


@pytest.mark.parametrize(
    ("arrange", "code"),
    [
        ("other_key", "bad_credentials"),
        ("compute_denied", "permission_denied"),
        ("throttled_too_long", "source_throttled"),
        ("unreachable", "source_unreachable"),
    ],
)
def test_a_run_that_cannot_read_gcp_fails_clearly_and_deletes_nothing(
    stack: ConnectorStack, google: GoogleFake, key_arn: str, arrange: str, code: str
) -> None:
    connector = gcp_connector(stack, key_arn)
    assert run(stack, connector)["state"] == "SUCCEEDED"
    if arrange == "other_key":
        stranger = ServiceAccount("inventory@corp-prod-4711.iam.gserviceaccount.com")
        stack.aws.client("ssm").put_parameter(
            Name="/hostrelay/dev/connectors/gcp-inventory",
            Value=stranger.key_json(),
            Type="SecureString",
            Overwrite=True,
        )
    elif arrange == "compute_denied":
        google.state.denied.add(f"/compute/v1/projects/{PROJECT}/aggregated")
    elif arrange == "throttled_too_long":
        google.state.throttle_next, google.state.retry_after = 1, "3600"
    else:
        google.stop()
    job = run(stack, connector)
    assert job["state"] == "FAILED"
    assert job["error"]["code"] == code, job["error"]
    # And the run history shows the failed run's error after the good run's counts
    runs = stack.reader.get(f"/v1/connectors/{connector['id']}/runs").body["runs"]
    assert runs[0]["error"]["code"] == code
    assert runs[1]["error"] is None and runs[1]["counts"]["created"] == 7
    web1 = entity(stack, f"{COMPUTE}/{PROJECT}/zones/us-central1-a/instances/web-1")
    assert web1["deleted_at"] is None


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"projects": []}, "settings.projects"),
        ({"projects": ["Bad_Project"]}, "settings.projects.0"),
        ({"projects": [PROJECT, PROJECT]}, "settings"),
        ({"resource_types": ["compute.disk"]}, "settings.resource_types.0"),
        ({"service_account_key": "{}"}, "settings.service_account_key"),
    ],
)
def test_gcp_settings_are_checked(
    stack: ConnectorStack, changes: dict[str, Any], field: str
) -> None:
    settings = {
        "projects": [PROJECT],
        "credential_arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:hostrelay/gcp",
        **changes,
    }
    response = stack.admin.post(
        "/v1/connectors",
        json_body={"name": "gcp", "kind": "gcp", "target": "cloud", "settings": settings},
    )
    assert response.status in (400, 422), response.body
    assert field in [d["field"] for d in response.body["error"]["details"]]
