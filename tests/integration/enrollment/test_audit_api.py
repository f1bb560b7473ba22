"""The audit trail: who created and revoked tokens, enrolled and revoked hosts, ran jobs."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest

from hostrelay.clock import utcnow
from tests.integration.api.conftest import Api
from tests.integration.enrollment.conftest import HostKey

pytestmark = pytest.mark.integration


def test_admins_read_who_did_what_and_secrets_stay_out(
    admin: Api, api: Api, host_key: HostKey, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an admin who creates and revokes a token, enrolls and revokes a host, and an
    # operator (with that token) who creates and cancels a job
    created = admin.post(
        "/v1/tokens", json_body={"name": "ops", "scopes": ["operator"], "expires_in_s": 3600}
    ).body
    operator = Api(api.handler, token=created["token"], default_headers=api.default_headers)
    offer = admin.post("/v1/enrollments", json_body={"host": "web01", "roles": ["dc"]}).body
    api.post(
        f"/v1/enroll/{offer['token']}/csr",
        json_body={"host": "web01", "csr": host_key.csr("web01")},
    )
    job = operator.post("/v1/jobs", json_body={"type": "ping", "host": "web01", "params": {}}).body
    operator.post(f"/v1/jobs/{job['id']}/cancel")
    admin.delete(f"/v1/tokens/{created['id']}")
    admin.delete("/v1/hosts/web01")

    # When the admin reads the audit trail
    trail = admin.get("/v1/audit")

    # Then every action is there, newest first, with who did it
    assert trail.status == 200
    events = trail.body["events"]
    assert [e["action"] for e in events] == [
        "host.revoke", "token.revoke", "job.cancel", "job.create",
        "host.enroll", "enrollment.create", "token.create",
    ]  # fmt: skip
    by_action = {e["action"]: e for e in events}
    root = by_action["token.create"]["actor"]
    assert root.startswith("token:") and root.endswith("/root")
    assert by_action["job.create"]["actor"] == f"token:{created['id']}/ops"
    assert by_action["job.create"]["target"] == f"job:{job['id']}"
    assert by_action["host.enroll"]["actor"].startswith("enrollment:")
    assert by_action["host.enroll"]["details"]["created_by"] == root
    assert by_action["token.create"]["details"]["scopes"] == ["operator"]
    # And neither token, nor its hash, is in the trail or in the logs
    secrets = [created["token"], offer["token"]]
    hashes = [hashlib.sha256(s.encode()).hexdigest() for s in secrets]
    logs = capsys.readouterr()
    for text in (*secrets, *hashes):
        assert text not in str(events)
        assert text not in logs.out and text not in logs.err


def test_audit_filters_by_action_time_and_limit(admin: Api) -> None:
    for name in ("a", "b", "c"):
        admin.post("/v1/tokens", json_body={"name": name, "scopes": ["reader"]})

    only_creates = admin.get("/v1/audit", query={"action": "token.create", "limit": 2}).body
    assert [e["details"]["name"] for e in only_creates["events"]] == ["c", "b"]

    past = (utcnow() - timedelta(days=3)).isoformat()
    older = admin.get("/v1/audit", query={"until": past}).body
    assert older["events"] == []

    too_long = admin.get("/v1/audit", query={"since": "2020-01-01T00:00:00Z"})
    assert too_long.status == 422


def test_only_admins_read_the_audit_trail(admin: Api, operator: Api, api: Api) -> None:
    assert operator.get("/v1/audit").status == 403
    assert api.get("/v1/audit").status == 401
