"""Connectors through the real ApiFunction handler: CRUD, validation, run now, run history."""

from __future__ import annotations

import pytest

from hostrelay.dal.hosts_repo import HostRepository
from hostrelay.logic.cloud_jobs import CloudJobRequest
from hostrelay.logic.dispatch import DispatchRequest
from tests.integration.connectors.conftest import LDAP_SETTINGS, ConnectorStack

pytestmark = pytest.mark.integration


def test_admin_creates_reads_lists_replaces_and_deletes_a_connector(stack: ConnectorStack) -> None:
    # Given an admin creates an ldap connector on a schedule
    created = stack.create_connector(schedule="rate(15 minutes)")
    # Then it is stored with clean settings and a first run 15 minutes out
    assert created["kind"] == "ldap" and created["target"] == "dc01"
    assert created["settings"]["credential"] == "ad-sync"
    assert created["settings"]["page_size"] == 200
    assert created["next_run_at"] is not None
    path = f"/v1/connectors/{created['id']}"
    # And readers can see it, alone and in the list
    assert stack.reader.get(path).body == created
    assert [c["id"] for c in stack.reader.get("/v1/connectors").body["connectors"]] == [
        created["id"]
    ]
    # When the admin replaces it (new name, disabled)
    body = {
        "name": "renamed",
        "kind": "ldap",
        "target": "dc01",
        "settings": {**LDAP_SETTINGS, "user_filter": "(department=IT)"},
        "schedule": "rate(15 minutes)",
        "enabled": False,
    }
    replaced = stack.admin.request("PUT", path, json_body=body)
    assert replaced.status == 200
    assert replaced.body["name"] == "renamed"
    assert replaced.body["settings"]["user_filter"] == "(department=IT)"
    # Then a disabled connector has no next run
    assert replaced.body["enabled"] is False and replaced.body["next_run_at"] is None
    # When it is deleted, it is gone
    assert stack.admin.delete(path).status == 204
    assert stack.reader.get(path).status == 404
    assert stack.admin.delete(path).status == 404


@pytest.mark.parametrize(
    "schedule",
    ["rate(5 minute)", "rate(0 minutes)", "cron(0 12 * * * *)", "cron(0 12 * *)", "every day"],
)
def test_bad_schedule_expression_is_422_naming_the_field(
    stack: ConnectorStack, schedule: str
) -> None:
    response = stack.admin.post(
        "/v1/connectors",
        json_body={
            "name": "x",
            "kind": "ldap",
            "target": "dc01",
            "settings": LDAP_SETTINGS,
            "schedule": schedule,
        },
    )
    assert response.status == 422
    assert response.body["error"]["details"][0]["field"] == "schedule"


@pytest.mark.parametrize("secret_key", ["password", "bind_password", "secret", "clientSecret"])
def test_secrets_in_settings_are_refused_with_a_clear_422(
    stack: ConnectorStack, secret_key: str
) -> None:
    # When an admin tries to store a password in the connector
    response = stack.admin.post(
        "/v1/connectors",
        json_body={
            "name": "x",
            "kind": "ldap",
            "target": "dc01",
            "settings": {**LDAP_SETTINGS, secret_key: "hunter2"},
        },
    )
    # Then it is refused, naming the field, and the secret is not echoed back
    assert response.status == 422
    assert "secrets" in response.body["error"]["message"]
    assert response.body["error"]["details"] == [
        {"field": f"settings.{secret_key}", "message": "secrets are not accepted"}
    ]
    assert "hunter2" not in str(response.body)
    assert stack.reader.get("/v1/connectors").body["connectors"] == []


def test_ldap_target_must_be_an_enrolled_host(stack: ConnectorStack) -> None:
    for target in ("dc99", "cloud"):
        response = stack.admin.post(
            "/v1/connectors",
            json_body={"name": "x", "kind": "ldap", "target": target, "settings": LDAP_SETTINGS},
        )
        assert response.status == 422
        assert response.body["error"]["details"][0]["field"] == "target"
    # And a revoked host is no target either
    HostRepository().revoke("dc01")
    response = stack.admin.post(
        "/v1/connectors",
        json_body={"name": "x", "kind": "ldap", "target": "dc01", "settings": LDAP_SETTINGS},
    )
    assert response.status == 422


def test_aws_connector_targets_the_cloud_with_valid_settings(stack: ConnectorStack) -> None:
    east = ["us-east-1"]
    bad = [
        ("dc01", {"regions": east}, "target"),
        ("cloud", {"regions": []}, "settings.regions"),
        ("cloud", {"regions": ["mars-1"]}, "settings.regions.0"),
        ("cloud", {"regions": east, "assume_role_arn": "nope"}, "settings.assume_role_arn"),
        ("cloud", {"regions": east, "resource_types": ["ec2.nat"]}, "settings.resource_types.0"),
    ]
    for target, settings, field in bad:
        response = stack.admin.post(
            "/v1/connectors",
            json_body={"name": "aws", "kind": "aws", "target": target, "settings": settings},
        )
        assert response.status == 422, (settings, response.body)
        assert response.body["error"]["details"][0]["field"] == field
    good = stack.create_connector(
        name="aws",
        kind="aws",
        target="cloud",
        settings={"regions": ["us-east-1", "eu-west-1"], "resource_types": ["ec2.vpc"]},
        schedule="cron(0 3 * * ? *)",
    )
    assert good["next_run_at"].endswith("03:00:00Z")


def test_scopes_admin_writes_operator_runs_reader_reads(stack: ConnectorStack) -> None:
    connector = stack.create_connector()
    body = {"name": "x", "kind": "ldap", "target": "dc01", "settings": LDAP_SETTINGS}
    assert stack.operator.post("/v1/connectors", json_body=body).status == 403
    assert stack.reader.post(f"/v1/connectors/{connector['id']}/run").status == 403
    assert stack.operator.delete(f"/v1/connectors/{connector['id']}").status == 403
    assert stack.operator.post(f"/v1/connectors/{connector['id']}/run").status == 202


def test_run_now_queues_an_ldap_sync_for_the_target_host(stack: ConnectorStack) -> None:
    connector = stack.create_connector()
    # When an operator runs the connector now
    response = stack.operator.post(f"/v1/connectors/{connector['id']}/run")
    # Then a job for dc01 carries the settings and the connector id, on its way to dispatch
    assert response.status == 202
    job = response.body
    assert (job["type"], job["host"], job["state"]) == ("ldap.sync", "dc01", "QUEUED")
    assert job["params"] == {**LDAP_SETTINGS, "connector": connector["id"], **_defaults()}
    assert [b["job_id"] for b in stack.queue_bodies("DispatchQueue")] == [job["id"]]
    # And a second run while this one is queued is a conflict
    again = stack.operator.post(f"/v1/connectors/{connector['id']}/run")
    assert again.status == 409
    assert again.body["error"]["details"][0]["job_id"] == job["id"]


def test_aws_run_goes_to_the_cloud_jobs_queue(stack: ConnectorStack) -> None:
    connector = stack.create_connector(
        kind="aws", target="cloud", settings={"regions": ["eu-west-1"]}
    )
    job = stack.operator.post(f"/v1/connectors/{connector['id']}/run").body
    assert (job["type"], job["host"]) == ("discovery.aws", "cloud")
    assert job["params"] == {"connector": connector["id"], "regions": ["eu-west-1"]}
    assert stack.queue_bodies("DispatchQueue") == []
    assert [b["job_id"] for b in stack.queue_bodies("CloudJobsQueue")] == [job["id"]]


def test_each_queue_carries_the_job_only_if_its_consumer_reads_it(
    stack: ConnectorStack,
) -> None:
    # Given a connector whose runs go to a host and one whose runs go to the cloud
    ldap = stack.create_connector()
    aws = stack.create_connector(kind="aws", target="cloud", settings={"regions": ["eu-west-1"]})
    # When both are run now
    host_job = stack.operator.post(f"/v1/connectors/{ldap['id']}/run").body
    cloud_job = stack.operator.post(f"/v1/connectors/{aws['id']}/run").body
    # Then the dispatcher's message carries the job as written, so it need not read it back
    [dispatch] = [DispatchRequest.model_validate(b) for b in stack.queue_bodies("DispatchQueue")]
    assert dispatch.job is not None
    assert (dispatch.job.id, dispatch.job.params) == (host_job["id"], host_job["params"])
    # And the cloud-jobs message carries none: its consumer's model (which forbids unknown
    # fields) reads it, and the function runs the job it reads from the table
    [body] = stack.queue_bodies("CloudJobsQueue")
    assert "job" not in body
    assert CloudJobRequest.model_validate(body).job_id == cloud_job["id"]


def test_run_history_shows_counts_and_errors_newest_first(stack: ConnectorStack) -> None:
    connector = stack.create_connector()
    run_path = f"/v1/connectors/{connector['id']}/run"
    # Given a first run that failed and a second one that succeeded with counts
    first = stack.operator.post(run_path).body
    stack.send_events(
        "dc01",
        {"kind": "result", "job_id": first["id"], "attempt": 1, "outcome": "failed",
         "error": {"code": "ldap_bind", "message": "invalid credentials"}},
    )  # fmt: skip
    second = stack.operator.post(run_path).body
    counts = {"created": 3, "updated": 1, "deleted": 0, "unchanged": 7, "total": 11}
    stack.send_events(
        "dc01",
        {"kind": "result", "job_id": second["id"], "attempt": 1, "outcome": "succeeded",
         "result": {"connector": connector["id"], "mode": "full", **counts}},
    )  # fmt: skip
    # When a reader asks for the runs, one per page
    page = stack.reader.get(f"/v1/connectors/{connector['id']}/runs", query={"limit": 1})
    assert page.status == 200
    [newest] = page.body["runs"]
    assert (newest["job_id"], newest["state"]) == (second["id"], "SUCCEEDED")
    assert newest["counts"] == counts and newest["error"] is None
    rest = stack.reader.get(
        f"/v1/connectors/{connector['id']}/runs",
        query={"limit": 5, "next_token": page.body["next_token"]},
    )
    [older] = rest.body["runs"]
    assert (older["job_id"], older["state"]) == (first["id"], "FAILED")
    assert older["error"] == {"code": "ldap_bind", "message": "invalid credentials"}
    # And the connector remembers its last run
    assert stack.reader.get(f"/v1/connectors/{connector['id']}").body["last_job_id"] == second["id"]


def test_unknown_connector_is_404_everywhere(stack: ConnectorStack) -> None:
    for method, suffix in (("GET", ""), ("POST", "/run"), ("GET", "/runs"), ("DELETE", "")):
        response = stack.admin.request(method, f"/v1/connectors/NOPE{suffix}")
        assert response.status == 404, (method, suffix)


def _defaults() -> dict[str, object]:
    return {
        "start_tls": False,
        "flavor": "auto",
        "mode": "auto",
        "full_scan_every": 10,
    }


def test_openapi_documents_the_connector_and_inventory_routes(stack: ConnectorStack) -> None:
    document = stack.reader.get("/v1/openapi.json").body
    for path in (
        "/v1/connectors",
        "/v1/connectors/{connector_id}",
        "/v1/connectors/{connector_id}/run",
        "/v1/connectors/{connector_id}/runs",
        "/v1/inventory/entities",
        "/v1/inventory/entities/{entity_id}",
        "/v1/inventory/counts",
    ):
        assert path in document["paths"], path
