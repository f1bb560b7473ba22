"""The okta connector end to end: the API, the discovery function and a local Okta fake."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hostrelay_contract.jobs.cloud import OktaGroupMembersResult, SourceSyncResult
from tests.fakes.okta import OktaFake, OktaState
from tests.integration.connectors.conftest import ConnectorStack

pytestmark = pytest.mark.integration

TOKEN = "00okta-test-token-9d1f6c2b7a"  # what no log, job or stored item may contain
SECRET_NAME = "hostrelay/connectors/okta-corp"
ACCOUNT = "123456789012"
SIGNING_KEY_ARN = f"arn:aws:ssm:us-east-1:{ACCOUNT}:parameter/hostrelay/dev/signing-key"
USERS = {
    "00u1alice": "alice.adams@example.test",
    "00u2bob": "bob.brown@example.test",
    "00u3carol": "carol.cole@example.test",
    "00u4dave": "dave.dunn@example.test",
    "00u5erin": "erin.east@example.test",
}


def arrange_org(state: OktaState) -> None:
    """Five users; three Okta-owned groups and one app group, with overlapping members."""
    for user_id, login in USERS.items():
        state.add_user(user_id, login, status="SUSPENDED" if user_id == "00u5erin" else "ACTIVE")
    state.add_group("00g1eng", "Engineering", ["00u1alice", "00u2bob", "00u3carol"])
    state.add_group("00g2ops", "Operations", ["00u3carol", "00u4dave"])
    state.add_group("00g3all", "Everyone", list(USERS))
    state.add_group("00g4app", "Salesforce users", ["00u1alice"], group_type="APP_GROUP")


@pytest.fixture
def okta(tmp_path: Path) -> Iterator[OktaFake]:
    """Given an Okta org (the local fake, over TLS with a test CA)."""
    fake = OktaFake(tmp_path / "okta", TOKEN).start()
    arrange_org(fake.state)
    yield fake
    fake.stop()
    assert fake.state.violations == []


@pytest.fixture
def secret_arn(stack: ConnectorStack, okta: OktaFake) -> str:
    """Given the API token in Secrets Manager, and the discovery function trusting the fake's CA."""
    stack.aws.environments["DiscoveryFunction"]["SOURCE_CA_BUNDLE"] = okta.ca_file
    created = stack.aws.client("secretsmanager").create_secret(Name=SECRET_NAME, SecretString=TOKEN)
    return str(created["ARN"])


def okta_connector(
    stack: ConnectorStack, okta: OktaFake, secret_arn: str, **settings: Any
) -> dict[str, Any]:
    return stack.create_connector(
        name="okta",
        kind="okta",
        target="cloud",
        settings={"org_url": okta.base_url, "credential_arn": secret_arn, **settings},
    )


def run(stack: ConnectorStack, connector: dict[str, Any]) -> dict[str, Any]:
    job = stack.operator.post(f"/v1/connectors/{connector['id']}/run").body
    assert stack.run_cloud_jobs() == {"batchItemFailures": []}
    return stack.reader.get(f"/v1/jobs/{job['id']}").body  # type: ignore[no-any-return]


def write_back(stack: ConnectorStack, connector: dict[str, Any], **params: Any) -> dict[str, Any]:
    created = stack.operator.post(
        "/v1/jobs",
        json_body={
            "type": "okta.group_members",
            "host": "cloud",
            "params": {"connector": connector["id"], **params},
        },
    )
    assert created.status == 201, created.body
    assert stack.run_cloud_jobs() == {"batchItemFailures": []}
    return stack.reader.get(f"/v1/jobs/{created.body['id']}").body  # type: ignore[no-any-return]


def entity(stack: ConnectorStack, entity_id: str) -> dict[str, Any]:
    return stack.reader.get(f"/v1/inventory/entities/{entity_id}").body  # type: ignore[no-any-return]


def related(body: dict[str, Any], relation: str) -> list[str]:
    return [item["id"] for item in body["relations"][relation]["items"]]


def stored_items(stack: ConnectorStack) -> str:
    """Every item of every DynamoDB table, as one string."""
    dynamodb = stack.aws.client("dynamodb")
    dumped = []
    for table in dynamodb.list_tables()["TableNames"]:
        for page in dynamodb.get_paginator("scan").paginate(TableName=table):
            dumped.append(json.dumps(page["Items"], default=str))
    return "\n".join(dumped)


def test_a_sync_fills_the_inventory_with_users_groups_and_memberships(
    stack: ConnectorStack,
    okta: OktaFake,
    secret_arn: str,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given a connector reading two objects a page, and Okta throttling the first call
    connector = okta_connector(stack, okta, secret_arn, page_size=2)
    okta.state.throttle_next = 1
    # When it runs
    job = run(stack, connector)
    # Then it succeeded after waiting out the rate limit, and counts what it found
    assert job["state"] == "SUCCEEDED", job
    assert okta.state.throttled == 1
    result = job["result"]
    SourceSyncResult.model_validate(result)  # the shape the contract documents
    assert result["by_kind"] == {"okta.group": 4, "okta.user": 5}
    assert result["created"] == result["total"] == 9 and result["errors"] == []
    # And it paged: users 3 pages, groups 2, members of each group 2+1+3+1 pages, + the retry
    assert result["api_calls"] == okta.state.calls() == 3 + 2 + (2 + 1 + 3 + 1) + 1
    # And users carry their status and profile, and the groups they are in
    carol = entity(stack, "00u3carol")
    assert (carol["kind"], carol["name"]) == ("okta.user", "carol.cole@example.test")
    assert carol["attributes"]["status"] == "ACTIVE"
    assert carol["attributes"]["first_name"] == "Carol"
    assert sorted(related(carol, "member_of")) == ["00g1eng", "00g2ops", "00g3all"]
    assert entity(stack, "00u5erin")["attributes"]["status"] == "SUSPENDED"
    # And groups are marked Okta-owned or app groups, with their members
    engineering = entity(stack, "00g1eng")
    assert engineering["attributes"]["type"] == "OKTA_GROUP"
    assert engineering["attributes"]["okta_owned"] is True
    assert related(engineering, "members") == ["00u1alice", "00u2bob", "00u3carol"]
    app = entity(stack, "00g4app")
    assert (app["attributes"]["type"], app["attributes"]["okta_owned"]) == ("APP_GROUP", False)
    # And the run history shows the counts
    runs = stack.reader.get(f"/v1/connectors/{connector['id']}/runs").body["runs"]
    assert runs[0]["counts"]["created"] == 9 and runs[0]["error"] is None
    # And the token is nowhere: not in the connector, the job, the logs or any stored item
    shown = stack.reader.get(f"/v1/connectors/{connector['id']}").body
    assert TOKEN not in json.dumps(shown) and TOKEN not in json.dumps(job)
    logged = json.dumps([record.__dict__ for record in caplog.records], default=str)
    assert "source sync finished" in logged and "source request retried" in logged
    captured = capfd.readouterr()  # EMF metrics and anything else printed
    assert "connector_sync_total" in captured.out
    assert TOKEN not in logged + captured.out + captured.err
    assert TOKEN not in stored_items(stack)


def test_the_next_run_marks_what_okta_no_longer_has_deleted(
    stack: ConnectorStack, okta: OktaFake, secret_arn: str
) -> None:
    connector = okta_connector(stack, okta, secret_arn, full_sync_every=1)
    assert run(stack, connector)["state"] == "SUCCEEDED"
    # When a user and a group are deleted in Okta and the connector runs again
    okta.state.delete_user("00u2bob")
    okta.state.delete_group("00g2ops")
    second = run(stack, connector)["result"]
    # Then exactly those two are deleted; the groups bob was in lost him
    assert second["deleted"] == 2
    assert entity(stack, "00u2bob")["deleted_at"] is not None
    assert entity(stack, "00g2ops")["deleted_at"] is not None
    assert related(entity(stack, "00g1eng"), "members") == ["00u1alice", "00u3carol"]
    assert related(entity(stack, "00u3carol"), "member_of") == ["00g1eng", "00g3all"]
    assert second["updated"] == 4  # Engineering, Everyone, carol and dave changed
    assert entity(stack, "00u1alice")["deleted_at"] is None


def test_between_full_runs_a_run_reads_only_what_changed_and_the_next_full_run_deletes(
    stack: ConnectorStack, okta: OktaFake, secret_arn: str
) -> None:
    # Given a connector that reads everything every second run, after its first (full) run
    okta.state.add_user("00u6frank", "frank.fox@example.test")
    connector = okta_connector(stack, okta, secret_arn, page_size=2, full_sync_every=2)
    first = run(stack, connector)["result"]
    assert (first["mode"], first["created"]) == ("full", 10)
    full_calls = first["api_calls"]
    # When in Okta erin is reactivated, dave joins Engineering and bob leaves it, carol is
    # deprovisioned, and frank (in no group) and a group are deleted
    okta.state.update_user("00u5erin", status="ACTIVE")
    okta.state.set_members("00g1eng", {"00u1alice", "00u3carol", "00u4dave"})
    okta.state.update_user("00u3carol", status="DEPROVISIONED")
    okta.state.delete_user("00u6frank")
    okta.state.delete_group("00g2ops")
    okta.state.requests.clear()
    second = run(stack, connector)["result"]
    # Then the run read only the changed users and groups, and the changed group's members
    assert second["mode"] == "incremental"
    listed = [path for method, path in okta.state.requests if method == "GET"]
    assert sorted(set(listed)) == [
        "/api/v1/groups",
        "/api/v1/groups/00g1eng/users",
        "/api/v1/users",
    ]
    assert second["api_calls"] == okta.state.calls() == 1 + 1 + 2 < full_calls
    # And applied them: erin's status; memberships both ways; carol deprovisioned is deleted
    assert entity(stack, "00u5erin")["attributes"]["status"] == "ACTIVE"
    assert related(entity(stack, "00g1eng"), "members") == ["00u1alice", "00u3carol", "00u4dave"]
    assert sorted(related(entity(stack, "00u4dave"), "member_of")) == [
        "00g1eng",
        "00g2ops",
        "00g3all",
    ]
    assert sorted(related(entity(stack, "00u2bob"), "member_of")) == ["00g3all"]
    assert entity(stack, "00u3carol")["deleted_at"] is not None
    assert (second["created"], second["deleted"]) == (0, 1)
    # But what was deleted in Okta is still there: only a full run can see it is gone
    assert entity(stack, "00u6frank")["deleted_at"] is None
    assert entity(stack, "00g2ops")["deleted_at"] is None
    # When the connector runs again (its second run since the full one)
    third = run(stack, connector)["result"]
    # Then it read everything and deleted what Okta no longer has
    assert third["mode"] == "full"
    assert entity(stack, "00u6frank")["deleted_at"] is not None
    assert entity(stack, "00g2ops")["deleted_at"] is not None
    assert sorted(related(entity(stack, "00u4dave"), "member_of")) == ["00g1eng", "00g3all"]
    assert entity(stack, "00u1alice")["deleted_at"] is None


def test_changing_the_settings_makes_the_next_run_full(
    stack: ConnectorStack, okta: OktaFake, secret_arn: str
) -> None:
    connector = okta_connector(stack, okta, secret_arn)
    assert run(stack, connector)["result"]["mode"] == "full"
    assert run(stack, connector)["result"]["mode"] == "incremental"
    # When the connector is pointed at the org with another page size
    body = {
        "name": "okta",
        "kind": "okta",
        "target": "cloud",
        "settings": {**connector["settings"], "page_size": 100},
    }
    path = f"/v1/connectors/{connector['id']}"
    assert stack.admin.request("PUT", path, json_body=body).status == 200
    # Then the next run reads everything again
    assert run(stack, connector)["result"]["mode"] == "full"


@pytest.mark.parametrize(
    ("arrange", "code"),
    [
        ("bad_token", "bad_credentials"),
        ("no_permission", "permission_denied"),
        ("unreachable", "source_unreachable"),
        ("missing_secret", "credential_unavailable"),
    ],
)
def test_a_run_that_cannot_read_okta_fails_clearly_and_deletes_nothing(
    stack: ConnectorStack, okta: OktaFake, secret_arn: str, arrange: str, code: str
) -> None:
    # Given a connector that synced once
    connector = okta_connector(stack, okta, secret_arn)
    assert run(stack, connector)["state"] == "SUCCEEDED"
    settings = dict(connector["settings"])
    secrets = stack.aws.client("secretsmanager")
    # When Okta refuses the token, lacks a permission, cannot be reached, or the secret is gone
    if arrange == "bad_token":
        secrets.put_secret_value(SecretId=secret_arn, SecretString="00revoked-token")
    elif arrange == "no_permission":
        okta.state.denied.add("/api/v1/groups")
    elif arrange == "unreachable":
        okta.stop()
    else:
        missing = secret_arn.replace("okta-corp", "okta-gone")
        settings["credential_arn"] = missing
    body = {"name": "okta", "kind": "okta", "target": "cloud", "settings": settings}
    path = f"/v1/connectors/{connector['id']}"
    assert stack.admin.request("PUT", path, json_body=body).status == 200
    job = run(stack, connector)
    # Then the run failed with an error that says why, and the inventory is untouched
    assert job["state"] == "FAILED"
    assert job["error"]["code"] == code, job["error"]
    assert "00revoked-token" not in json.dumps(job) and TOKEN not in json.dumps(job)
    runs = stack.reader.get(f"{path}/runs").body["runs"]
    assert runs[0]["error"]["code"] == code
    assert entity(stack, "00u1alice")["deleted_at"] is None


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"api_token": TOKEN}, "settings.api_token"),
        ({"org_url": "http://example.okta.com"}, "settings.org_url"),
        ({"org_url": "https://user:pw@example.okta.com"}, "settings.org_url"),
        (
            {"credential_arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:other/x"},
            "settings.credential_arn",
        ),
        (
            {"credential_arn": SIGNING_KEY_ARN},
            "settings.credential_arn",
        ),
        ({"page_size": 500}, "settings.page_size"),
    ],
)
def test_okta_settings_are_checked_and_never_take_a_token(
    stack: ConnectorStack, changes: dict[str, Any], field: str
) -> None:
    settings = {
        "org_url": "https://example.okta.com",
        "credential_arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:hostrelay/okta",
        **changes,
    }
    response = stack.admin.post(
        "/v1/connectors",
        json_body={"name": "okta", "kind": "okta", "target": "cloud", "settings": settings},
    )
    assert response.status in (400, 422), response.body
    assert field in [d["field"] for d in response.body["error"]["details"]]
    assert TOKEN not in json.dumps(response.body)
    assert stack.reader.get("/v1/connectors").body["connectors"] == []


def test_an_okta_connector_runs_in_the_cloud(stack: ConnectorStack) -> None:
    response = stack.admin.post(
        "/v1/connectors",
        json_body={
            "name": "okta",
            "kind": "okta",
            "target": "dc01",
            "settings": {
                "org_url": "https://example.okta.com",
                "credential_arn": "arn:aws:ssm:us-east-1:123456789012:parameter/hostrelay/dev/"
                "connectors/okta",
            },
        },
    )
    assert response.status in (400, 422)
    assert response.body["error"]["details"][0]["field"] == "target"


def test_write_back_shows_a_dry_run_diff_then_applies_exactly_it_once(
    stack: ConnectorStack, okta: OktaFake, secret_arn: str, capfd: pytest.CaptureFixture[str]
) -> None:
    connector = okta_connector(stack, okta, secret_arn, write_back=True)
    request = {"group_id": "00g2ops", "add": ["00u1alice", "00u3carol"], "remove": ["00u4dave"]}
    # When an operator asks for the change without saying dry_run
    dry = write_back(stack, connector, **request)
    # Then it is a dry run: the diff is shown and Okta is unchanged
    assert dry["state"] == "SUCCEEDED", dry
    assert dry["result"] == {
        "group_id": "00g2ops",
        "group": "Operations",
        "dry_run": True,
        "add": ["00u1alice"],
        "remove": ["00u4dave"],
        "unchanged": ["00u3carol"],
    }
    assert okta.state.member_ids("00g2ops") == {"00u3carol", "00u4dave"}
    assert okta.state.calls("PUT") == okta.state.calls("DELETE") == 0
    # When it is applied
    applied = write_back(stack, connector, **request, dry_run=False)
    # Then exactly the diff changed, and who asked is on the job and in the audit trail
    assert applied["state"] == "SUCCEEDED", applied
    OktaGroupMembersResult.model_validate(dry["result"])
    OktaGroupMembersResult.model_validate(applied["result"])
    assert (applied["result"]["added"], applied["result"]["removed"]) == (1, 1)
    assert applied["created_by"].endswith("/ops")
    trail = stack.admin.get("/v1/audit", query={"action": "job.create"}).body["events"]
    audited = {e["target"]: e["actor"] for e in trail}
    assert audited[f"job:{applied['id']}"] == applied["created_by"]
    assert okta.state.member_ids("00g2ops") == {"00u1alice", "00u3carol"}
    assert (okta.state.calls("PUT"), okta.state.calls("DELETE")) == (1, 1)
    # When the same request is applied again, nothing changes
    again = write_back(stack, connector, **request, dry_run=False)
    assert (again["result"]["added"], again["result"]["removed"]) == (0, 0)
    assert (okta.state.calls("PUT"), okta.state.calls("DELETE")) == (1, 1)
    assert okta.state.member_ids("00g2ops") == {"00u1alice", "00u3carol"}
    # And no write-back counted as a sync run in the connector metrics
    assert "connector_sync_total" not in capfd.readouterr().out


def test_write_back_refuses_app_groups_and_connectors_without_write_back(
    stack: ConnectorStack, okta: OktaFake, secret_arn: str
) -> None:
    read_only = okta_connector(stack, okta, secret_arn)
    refused = write_back(stack, read_only, group_id="00g1eng", add=["00u4dave"], dry_run=False)
    assert refused["error"]["code"] == "write_back_disabled"
    writable = okta_connector(stack, okta, secret_arn, write_back=True)
    app = write_back(stack, writable, group_id="00g4app", add=["00u4dave"], dry_run=False)
    assert app["error"]["code"] == "group_not_writable"
    missing = write_back(stack, writable, group_id="00g9none", add=["00u4dave"])
    assert missing["error"]["code"] == "group_not_found"
    assert okta.state.calls("PUT") == 0
    assert okta.state.member_ids("00g4app") == {"00u1alice"}
    # And a request that names nobody, or one user both ways, is refused by the API
    for params in (
        {"group_id": "00g1eng"},
        {"group_id": "00g1eng", "add": ["a1"], "remove": ["a1"]},
    ):
        response = stack.operator.post(
            "/v1/jobs",
            json_body={
                "type": "okta.group_members",
                "host": "cloud",
                "params": {"connector": writable["id"], **params},
            },
        )
        assert response.status in (400, 422), response.body
