"""The workspace connector end to end: the API, the discovery function and a Google fake."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.google import GoogleFake, ServiceAccount
from tests.integration.connectors.cloud_support import (
    assert_secret_nowhere,
    discovery_env,
    entity,
    put_secret,
    related,
    run,
)
from tests.integration.connectors.conftest import ConnectorStack

pytestmark = pytest.mark.integration

ADMIN = "admin@example.test"
ROOT, STAFF, TEACHERS = "id:03ph8a2z0", "id:03ph8a2z1", "id:03ph8a2z2"


def arrange_workspace(fake: GoogleFake) -> None:
    """Org units / → /staff → /staff/teachers; five users; three groups, one nested."""
    state = fake.state
    state.delegated_admins.add(ADMIN)
    state.add_org_unit(STAFF, "/staff", ROOT, "/")
    state.add_org_unit(TEACHERS, "/staff/teachers", STAFF, "/staff")
    state.add_user("101", "alice.adams@example.test", org_unit_path="/staff/teachers")
    state.add_user("102", "bob.brown@example.test", org_unit_path="/staff")
    state.add_user("103", "carol.cole@example.test", suspended=True)
    state.add_user("104", "dave.dunn@example.test")
    state.add_user("105", "erin.east@example.test", org_unit_path="/staff/teachers")
    state.add_group("g1", "teachers@example.test", [("101", "USER"), ("105", "USER")])
    state.add_group("g2", "staff@example.test", [("102", "USER"), ("g1", "GROUP")])
    state.add_group("g3", "all@example.test", [(u, "USER") for u in ("101", "102", "103", "104")])


@pytest.fixture
def account() -> ServiceAccount:
    return ServiceAccount("sync@hostrelay-test.iam.gserviceaccount.com")


@pytest.fixture
def google(tmp_path: Path, account: ServiceAccount) -> Iterator[GoogleFake]:
    fake = GoogleFake(tmp_path / "google", account).start()
    arrange_workspace(fake)
    yield fake
    fake.stop()


@pytest.fixture
def key_arn(stack: ConnectorStack, google: GoogleFake, account: ServiceAccount) -> str:
    """Given the service account key in Secrets Manager and the discovery function pointed at
    the fake (token endpoint and Directory API)."""
    discovery_env(
        stack,
        SOURCE_CA_BUNDLE=google.ca_file,
        GOOGLE_TOKEN_URI=google.token_uri,
        WORKSPACE_API_ROOT=google.base_url,
    )
    return put_secret(stack, "hostrelay/connectors/workspace", account.key_json())


def workspace_connector(stack: ConnectorStack, key_arn: str, **settings: Any) -> dict[str, Any]:
    return stack.create_connector(
        name="workspace",
        kind="workspace",
        target="cloud",
        settings={"admin_email": ADMIN, "credential_arn": key_arn, **settings},
    )


def test_a_sync_fills_the_inventory_with_users_groups_and_the_org_unit_tree(
    stack: ConnectorStack,
    google: GoogleFake,
    key_arn: str,
    account: ServiceAccount,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given a connector reading two objects a page, and Google throttling the first call
    connector = workspace_connector(stack, key_arn, page_size=2)
    google.state.throttle_next = 1
    # When it runs
    job = run(stack, connector)
    # Then it succeeded after waiting out the throttling, and counts what it found
    assert job["state"] == "SUCCEEDED", job
    assert google.state.throttled == 1
    result = job["result"]
    assert result["by_kind"] == {
        "workspace.group": 3,
        "workspace.org_unit": 3,
        "workspace.user": 5,
    }
    assert result["created"] == result["total"] == 11
    # And it paged: token 1, org units 1, groups 2, members 1+1+2, users 3, + the retry
    assert result["api_calls"] == google.state.calls() == 1 + 1 + 2 + 4 + 3 + 1
    # And the token was asked for as the admin, with read-only directory scopes only
    claims = google.state.token_requests[-1]
    assert claims["sub"] == ADMIN and claims["iss"] == account.email
    assert all(s.endswith(".readonly") for s in claims["scope"].split())
    # And users carry the suspended flag, their org unit and groups
    carol = entity(stack, "103")
    assert (carol["kind"], carol["name"]) == ("workspace.user", "carol.cole@example.test")
    assert carol["attributes"]["suspended"] is True
    assert entity(stack, "104")["attributes"]["suspended"] is False
    alice = entity(stack, "101")
    assert related(alice, "member_of") == ["g1", "g3"]
    assert related(alice, "org_unit") == [TEACHERS]
    assert alice["attributes"]["org_unit_path"] == "/staff/teachers"
    # And org units form the hierarchy, the root included
    assert related(entity(stack, TEACHERS), "parent") == [STAFF]
    assert related(entity(stack, STAFF), "parent") == [ROOT]
    assert related(entity(stack, ROOT), "children") == [STAFF]
    # And a group's members include the nested group
    assert related(entity(stack, "g2"), "members") == ["102", "g1"]
    # And the run history shows the counts
    runs = stack.reader.get(f"/v1/connectors/{connector['id']}/runs").body["runs"]
    assert runs[0]["counts"]["created"] == 11 and runs[0]["error"] is None
    # And every request and answer matched Google's discovery document
    assert google.state.violations == []
    # And the key is nowhere
    key = account.key_json()
    private = key.split('"private_key": "')[1][40:120]
    assert_secret_nowhere(stack, connector, job, [private], caplog, capfd)


def test_the_next_run_marks_what_workspace_no_longer_has_deleted(
    stack: ConnectorStack, google: GoogleFake, key_arn: str
) -> None:
    connector = workspace_connector(stack, key_arn)
    assert run(stack, connector)["state"] == "SUCCEEDED"
    # When a user is deleted in Workspace and the connector runs again
    google.state.delete_user("104")
    second = run(stack, connector)["result"]
    # Then exactly that user is deleted, and the group it was in lost it
    assert second["deleted"] == 1
    assert entity(stack, "104")["deleted_at"] is not None
    assert related(entity(stack, "g3"), "members") == ["101", "102", "103"]
    assert entity(stack, "101")["deleted_at"] is None
    assert google.state.violations == []


@pytest.mark.parametrize(
    ("arrange", "code"),
    [
        ("other_key", "bad_credentials"),
        ("not_delegated", "permission_denied"),
        ("api_denied", "permission_denied"),
        ("unreachable", "source_unreachable"),
        ("not_a_key", "credential_unavailable"),
    ],
)
def test_a_run_that_cannot_read_workspace_fails_clearly_and_deletes_nothing(
    stack: ConnectorStack, google: GoogleFake, key_arn: str, arrange: str, code: str
) -> None:
    # Given a connector that synced once
    connector = workspace_connector(stack, key_arn)
    assert run(stack, connector)["state"] == "SUCCEEDED"
    secrets = stack.aws.client("secretsmanager")
    # When its key is replaced by another account's, delegation or the API is withdrawn,
    # Google cannot be reached, or the secret holds no key
    if arrange == "other_key":
        stranger = ServiceAccount("sync@hostrelay-test.iam.gserviceaccount.com")
        secrets.put_secret_value(SecretId=key_arn, SecretString=stranger.key_json())
    elif arrange == "not_delegated":
        google.state.delegated_admins.clear()
    elif arrange == "api_denied":
        google.state.denied.add("/admin/directory/v1/groups")
    elif arrange == "unreachable":
        google.stop()
    else:
        secrets.put_secret_value(SecretId=key_arn, SecretString="not json at all")
    job = run(stack, connector)
    # Then the run failed with an error that says why, and the inventory is untouched
    assert job["state"] == "FAILED"
    assert job["error"]["code"] == code, job["error"]
    runs = stack.reader.get(f"/v1/connectors/{connector['id']}/runs").body["runs"]
    assert runs[0]["error"]["code"] == code
    assert entity(stack, "101")["deleted_at"] is None


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"private_key": "-----BEGIN PRIVATE KEY-----"}, "settings.private_key"),
        ({"admin_email": "not-an-email"}, "settings.admin_email"),
        ({"customer": "my customer"}, "settings.customer"),
        ({"page_size": 501}, "settings.page_size"),
        (
            {"credential_arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:other/x"},
            "settings.credential_arn",
        ),
    ],
)
def test_workspace_settings_are_checked_and_never_take_a_key(
    stack: ConnectorStack, changes: dict[str, Any], field: str
) -> None:
    settings = {
        "admin_email": ADMIN,
        "credential_arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:hostrelay/ws",
        **changes,
    }
    response = stack.admin.post(
        "/v1/connectors",
        json_body={"name": "ws", "kind": "workspace", "target": "cloud", "settings": settings},
    )
    assert response.status in (400, 422), response.body
    assert field in [d["field"] for d in response.body["error"]["details"]]
    assert stack.reader.get("/v1/connectors").body["connectors"] == []
