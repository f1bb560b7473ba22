"""Authentik and Kubernetes connectors through the control plane: run by the cloud (discovery
function, token in Secrets Manager) or by a relay (connector.sync, token in a file on the host)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hostrelay_relay.handlers.connector_group_members import ConnectorGroupMembersHandler
from hostrelay_relay.handlers.connector_sync import ConnectorSyncHandler
from tests.fakes.authentik import AuthentikFake, AuthentikState
from tests.fakes.kubernetes import KubernetesFake
from tests.integration.connectors.cloud_support import assert_secret_nowhere
from tests.integration.connectors.conftest import ConnectorStack, inventory_event
from tests.integration.connectors.test_okta import entity, related, stored_items
from tests.integration.sources.conftest import _relay_source, group_uuid

pytestmark = pytest.mark.integration

TOKEN = "ak-cloud-test-token-31e4d9a0"  # what no log, job or stored item may contain
K8S_TOKEN = "eyJk8s-cloud-test-token.b7e2"
STAFF, TEACHERS, ADMINS, LAB = (group_uuid(n) for n in (1, 2, 3, 4))


def arrange(state: AuthentikState) -> dict[str, str]:
    ids = {
        "alice": state.add_user(1, "alice"),
        "bob": state.add_user(2, "bob"),
        "carol": state.add_user(3, "carol"),
        "backup": state.add_user(4, "backup-bot", user_type="service_account"),
    }
    state.add_group(STAFF, "staff", [1])
    state.add_group(TEACHERS, "teachers", [2], parents=[STAFF])
    state.add_group(ADMINS, "admins", [4], parents=[STAFF])
    state.add_group(LAB, "lab", [3], parents=[TEACHERS, ADMINS])
    return ids


@pytest.fixture
def authentik(tmp_path: Path) -> Iterator[AuthentikFake]:
    fake = AuthentikFake(tmp_path / "authentik", TOKEN).start()
    yield fake
    fake.stop()


@pytest.fixture
def kubernetes(tmp_path: Path) -> Iterator[KubernetesFake]:
    fake = KubernetesFake(tmp_path / "kubernetes", K8S_TOKEN).start()
    yield fake
    fake.stop()
    # Every request and answer of the test was one Kubernetes' OpenAPI document allows.
    assert fake.state.violations == []


def secret(stack: ConnectorStack, name: str, value: str, ca_file: str) -> str:
    """Given the token in Secrets Manager, and the discovery function trusting the fake's CA."""
    stack.aws.environments["DiscoveryFunction"]["SOURCE_CA_BUNDLE"] = ca_file
    created = stack.aws.client("secretsmanager").create_secret(Name=name, SecretString=value)
    return str(created["ARN"])


def cloud_connector(
    stack: ConnectorStack, kind: str, url: str, arn: str, **settings: Any
) -> dict[str, Any]:
    return stack.create_connector(
        name=kind,
        kind=kind,
        target="cloud",
        settings={"url": url, "credential_arn": arn, **settings},
    )


def run(stack: ConnectorStack, connector: dict[str, Any]) -> dict[str, Any]:
    job = stack.operator.post(f"/v1/connectors/{connector['id']}/run").body
    assert stack.run_cloud_jobs() == {"batchItemFailures": []}
    return stack.reader.get(f"/v1/jobs/{job['id']}").body  # type: ignore[no-any-return]


def write_back(stack: ConnectorStack, connector: dict[str, Any], **params: Any) -> dict[str, Any]:
    created = stack.operator.post(
        "/v1/jobs",
        json_body={
            "type": "authentik.group_members",
            "host": "cloud",
            "params": {"connector": connector["id"], **params},
        },
    )
    assert created.status == 201, created.body
    assert stack.run_cloud_jobs() == {"batchItemFailures": []}
    return stack.reader.get(f"/v1/jobs/{created.body['id']}").body  # type: ignore[no-any-return]


def test_the_cloud_syncs_authentik_users_and_the_group_graph(
    stack: ConnectorStack,
    authentik: AuthentikFake,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given an Authentik connector run by the cloud, paging two at a time, throttled once
    ids = arrange(authentik.state)
    authentik.state.throttle_next = 1
    authentik.state.retry_after = "0"
    arn = secret(stack, "hostrelay/connectors/authentik", TOKEN, authentik.ca_file)
    connector = cloud_connector(stack, "authentik", authentik.base_url, arn, page_size=2)
    # When it runs
    job = run(stack, connector)
    # Then it succeeded after the 429, with counts and API calls in the run
    assert job["state"] == "SUCCEEDED", job
    assert job["type"] == "authentik.sync"
    result = job["result"]
    assert result["by_kind"] == {"authentik.group": 4, "authentik.user": 4}
    assert result["created"] == result["total"] == 8
    assert result["api_calls"] == authentik.state.calls() == 2 + 2 + 1
    # And a group with two parents keeps both (the graph), and its children are members
    lab = entity(stack, LAB)
    assert sorted(related(lab, "member_of")) == sorted([TEACHERS, ADMINS])
    assert sorted(related(entity(stack, STAFF), "members")) == sorted(
        [ids["alice"], TEACHERS, ADMINS]
    )
    carol = entity(stack, ids["carol"])
    assert carol["kind"] == "authentik.user" and carol["name"] == "carol"
    assert carol["attributes"]["effective_groups"] == sorted([LAB, TEACHERS, ADMINS, STAFF])
    assert entity(stack, ids["backup"])["attributes"]["service_account"] is True
    # And the run history and the EMF metrics show it
    runs = stack.reader.get(f"/v1/connectors/{connector['id']}/runs").body["runs"]
    assert runs[0]["counts"]["created"] == 8 and runs[0]["error"] is None
    captured = capfd.readouterr()
    assert "connector_sync_total" in captured.out and '"kind":"authentik"' in captured.out
    # And the token is nowhere
    logged = json.dumps([record.__dict__ for record in caplog.records], default=str)
    shown = json.dumps(stack.reader.get(f"/v1/connectors/{connector['id']}").body)
    for text in (logged, captured.out, captured.err, shown, json.dumps(job), stored_items(stack)):
        assert TOKEN not in text


def test_the_next_cloud_run_marks_what_authentik_no_longer_has_deleted(
    stack: ConnectorStack, authentik: AuthentikFake
) -> None:
    ids = arrange(authentik.state)
    arn = secret(stack, "hostrelay/connectors/authentik", TOKEN, authentik.ca_file)
    connector = cloud_connector(stack, "authentik", authentik.base_url, arn)
    assert run(stack, connector)["state"] == "SUCCEEDED"
    # When a user and a nested group are deleted and the connector runs again
    authentik.state.delete_user(2)
    authentik.state.delete_group(ADMINS)
    second = run(stack, connector)["result"]
    # Then exactly those two are deleted, and the graph no longer has them
    assert second["deleted"] == 2
    assert entity(stack, ids["bob"])["deleted_at"] is not None
    assert entity(stack, ADMINS)["deleted_at"] is not None
    assert related(entity(stack, LAB), "member_of") == [TEACHERS]


@pytest.mark.parametrize(
    ("arrange_failure", "code"),
    [
        (lambda fake: setattr(fake.state, "token", "rotated"), "bad_credentials"),
        (lambda fake: fake.state.denied.add("/api/v3/core/groups/"), "permission_denied"),
        (lambda fake: fake.stop(), "source_unreachable"),
    ],
    ids=["bad-token", "missing-permission", "unreachable"],
)
def test_a_failing_source_is_a_clear_error_in_the_run(
    stack: ConnectorStack, authentik: AuthentikFake, arrange_failure: Any, code: str
) -> None:
    arrange(authentik.state)
    arn = secret(stack, "hostrelay/connectors/authentik", TOKEN, authentik.ca_file)
    connector = cloud_connector(stack, "authentik", authentik.base_url, arn)
    arrange_failure(authentik)
    job = run(stack, connector)
    assert job["state"] == "FAILED"
    assert job["error"]["code"] == code
    runs = stack.reader.get(f"/v1/connectors/{connector['id']}/runs").body["runs"]
    assert runs[0]["error"]["code"] == code


def test_write_back_shows_a_dry_run_then_applies_exactly_the_diff(
    stack: ConnectorStack, authentik: AuthentikFake
) -> None:
    # Given a connector that allows write-back, and TEACHERS with bob
    arrange(authentik.state)
    arn = secret(stack, "hostrelay/connectors/authentik", TOKEN, authentik.ca_file)
    connector = cloud_connector(stack, "authentik", authentik.base_url, arn, write_back=True)
    change: dict[str, Any] = {"group": TEACHERS, "add": [1, 2], "remove": [3]}
    # When an operator asks for a dry run (the default)
    dry = write_back(stack, connector, **change)
    # Then it shows the diff (alice added; bob already in; carol not in) and changes nothing
    assert dry["state"] == "SUCCEEDED", dry
    assert (dry["result"]["add"], dry["result"]["remove"]) == ([1], [])
    assert dry["result"]["unchanged"] == [2, 3]
    assert authentik.state.calls("POST") == 0
    assert authentik.state.members[TEACHERS] == {2}
    # When it is applied, then exactly the diff changed
    applied = write_back(stack, connector, **change, dry_run=False)
    assert applied["state"] == "SUCCEEDED", applied
    assert applied["result"]["added"] == 1 and applied["result"]["removed"] == 0
    assert authentik.state.members[TEACHERS] == {1, 2}
    assert authentik.state.calls("POST") == 1
    # And the same request again changes nothing
    again = write_back(stack, connector, **change, dry_run=False)
    assert again["result"]["add"] == [] and authentik.state.calls("POST") == 1
    # And the audit trail says who asked for which change
    events = stack.admin.get("/v1/audit", query={"action": "job.create"}).body["events"]
    asked = [e for e in events if e["details"].get("type") == "authentik.group_members"]
    assert len(asked) == 3
    assert asked[0]["actor"].endswith("/ops")
    assert asked[0]["details"]["params"]["group"] == TEACHERS


def test_write_back_needs_the_connector_to_allow_it(
    stack: ConnectorStack, authentik: AuthentikFake
) -> None:
    arrange(authentik.state)
    arn = secret(stack, "hostrelay/connectors/authentik", TOKEN, authentik.ca_file)
    connector = cloud_connector(stack, "authentik", authentik.base_url, arn)
    job = write_back(stack, connector, group=TEACHERS, add=[1], dry_run=False)
    assert job["error"]["code"] == "write_back_disabled"
    assert authentik.state.members[TEACHERS] == {2}


def run_counts(run: dict[str, Any]) -> dict[str, int]:
    """What a run in the history did to the inventory."""
    return {op: run["counts"][op] for op in ("created", "updated", "deleted", "unchanged")}


def test_the_cloud_syncs_a_kubernetes_cluster(
    stack: ConnectorStack,
    kubernetes: KubernetesFake,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given a cluster and a kubernetes connector run by the cloud
    uid = kubernetes.state.put("namespaces", "shop", status={"phase": "Active"})
    web = kubernetes.state.put("deployments", "web", namespace="shop", spec={"replicas": 2})
    kubernetes.state.put("nodes", "node1")
    arn = secret(stack, "hostrelay/connectors/k8s", K8S_TOKEN, kubernetes.ca_file)
    connector = cloud_connector(stack, "kubernetes", kubernetes.base_url, arn, page_size=1)
    # When it runs twice, the deployment deleted in between
    first = run(stack, connector)
    kubernetes.state.delete("deployments", "shop/web")
    second = run(stack, connector)
    # Then the first (full) filled the inventory, the second (watch) marked the deployment deleted
    assert first["state"] == "SUCCEEDED", first
    assert (first["result"]["mode"], second["result"]["mode"]) == ("full", "incremental")
    assert first["result"]["created"] == 3
    assert entity(stack, uid)["attributes"]["phase"] == "Active"
    assert second["result"]["deleted"] == 1
    assert entity(stack, web)["deleted_at"] is not None
    # And the run history counts both runs: the full list, then the watch's one delete
    runs = stack.reader.get(f"/v1/connectors/{connector['id']}/runs").body["runs"]
    assert [run_counts(r) for r in runs] == [
        {"created": 0, "updated": 0, "deleted": 1, "unchanged": 0},
        {"created": 3, "updated": 0, "deleted": 0, "unchanged": 0},
    ]
    # And the token is in no log, printed line, job document, connector or stored item
    jobs = {"first": first, "second": second}
    assert_secret_nowhere(stack, connector, jobs, [K8S_TOKEN], caplog, capfd)


def test_between_full_runs_the_cloud_watches_kubernetes_changes_since_the_last_run(
    stack: ConnectorStack, kubernetes: KubernetesFake
) -> None:
    # Given a cluster of 4 deployments and a connector (full every third run) that ran once
    state = kubernetes.state
    uids = {
        name: state.put("deployments", name, namespace="shop", spec={"replicas": 1})
        for name in ("web", "api", "cron", "db")
    }
    state.put("namespaces", "shop", status={"phase": "Active"})
    arn = secret(stack, "hostrelay/connectors/k8s", K8S_TOKEN, kubernetes.ca_file)
    connector = cloud_connector(
        stack,
        "kubernetes",
        kubernetes.base_url,
        arn,
        page_size=1,
        resources=["namespaces", "deployments"],
        full_sync_every=3,
    )
    first = run(stack, connector)["result"]
    assert (first["mode"], first["created"], first["api_calls"]) == ("full", 5, 1 + 4)
    # When web is scaled, cron deleted and a new deployment created
    state.put("deployments", "web", namespace="shop", spec={"replicas": 3})
    state.delete("deployments", "shop/cron")
    worker = state.put("deployments", "worker", namespace="shop", spec={"replicas": 1})
    state.requests.clear()
    second = run(stack, connector)["result"]
    # Then the run watched each resource once from its saved version and applied the changes,
    # the delete included
    assert second["mode"] == "incremental"
    assert second["api_calls"] == state.calls() == 2
    assert (second["created"], second["updated"], second["deleted"]) == (1, 1, 1)
    assert entity(stack, uids["web"])["attributes"]["replicas"] == 3
    assert entity(stack, uids["cron"])["deleted_at"] is not None
    assert entity(stack, worker)["name"] == "shop/worker"
    # And the run history shows each run's counts, newest first: the watch's changes, then
    # the full list (every object created)
    runs = stack.reader.get(f"/v1/connectors/{connector['id']}/runs").body["runs"]
    assert [run_counts(r) for r in runs] == [
        {"created": 1, "updated": 1, "deleted": 1, "unchanged": 0},
        {"created": 5, "updated": 0, "deleted": 0, "unchanged": 0},
    ]
    assert [(r["counts"]["api_calls"], r["error"]) for r in runs] == [(2, None), (5, None)]
    # When the API server compacted its history past the saved versions
    state.put("deployments", "db", namespace="shop", spec={"replicas": 2})
    state.compact()
    third = run(stack, connector)["result"]
    # Then the watch's 410 Expired made the run list everything instead
    assert third["mode"] == "full"
    assert entity(stack, uids["db"])["attributes"]["replicas"] == 2
    # And the run history counts that full run: db updated, the other four unchanged
    runs = stack.reader.get(f"/v1/connectors/{connector['id']}/runs").body["runs"]
    assert run_counts(runs[0]) == {"created": 0, "updated": 1, "deleted": 0, "unchanged": 4}
    # And the next run continues from that list's versions
    assert run(stack, connector)["result"]["mode"] == "incremental"


def kubernetes_cluster(state: Any) -> dict[str, str]:
    """A namespace, a node and a deployment; their uids by name."""
    return {
        "shop": state.put("namespaces", "shop", status={"phase": "Active"}),
        "node1": state.put("nodes", "node1"),
        "web": state.put("deployments", "web", namespace="shop", spec={"replicas": 2}),
    }


@pytest.mark.parametrize(
    ("arrange_failure", "code"),
    [
        (lambda fake: setattr(fake.state, "token", "rotated"), "bad_credentials"),
        (lambda fake: fake.state.denied.add("deployments"), "permission_denied"),
        (lambda fake: fake.stop(), "source_unreachable"),
    ],
    ids=["bad-token", "missing-permission", "unreachable"],
)
def test_a_kubernetes_run_that_cannot_read_the_cluster_fails_clearly_and_deletes_nothing(
    stack: ConnectorStack, kubernetes: KubernetesFake, arrange_failure: Any, code: str
) -> None:
    # Given a kubernetes connector run by the cloud that synced once
    uids = kubernetes_cluster(kubernetes.state)
    arn = secret(stack, "hostrelay/connectors/k8s", K8S_TOKEN, kubernetes.ca_file)
    connector = cloud_connector(stack, "kubernetes", kubernetes.base_url, arn)
    assert run(stack, connector)["state"] == "SUCCEEDED"
    # When the API server refuses the token, lacks a permission, or cannot be reached
    arrange_failure(kubernetes)
    job = run(stack, connector)
    # Then the run failed with an error that says why
    assert job["state"] == "FAILED", job
    assert job["error"]["code"] == code, job["error"]
    # And the run history shows it above the good run's counts
    runs = stack.reader.get(f"/v1/connectors/{connector['id']}/runs").body["runs"]
    assert [r["state"] for r in runs] == ["FAILED", "SUCCEEDED"]
    assert runs[0]["error"]["code"] == code
    assert not runs[0]["counts"].keys() & {"created", "updated", "deleted", "unchanged"}
    assert runs[1]["error"] is None
    assert (runs[1]["counts"]["created"], runs[1]["counts"]["deleted"]) == (3, 0)
    # And nothing was deleted from the inventory
    for uid in uids.values():
        assert entity(stack, uid)["deleted_at"] is None
    assert K8S_TOKEN not in json.dumps(job)


K8S_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:hostrelay/connectors/k8s-AbCdEf"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"resources": ["deployments", "pods"]}, "settings.resources"),
        ({"resources": []}, "settings.resources"),
        ({"url": "http://k8s.example.test:6443"}, "settings.url"),
        ({"url": "https://admin:pw@k8s.example.test"}, "settings.url"),
        ({"url": "https://k8s.example.test/api/v1"}, "settings.url"),
        ({"credential_arn": K8S_TOKEN}, "settings.credential_arn"),
        ({"token": K8S_TOKEN}, "settings.token"),
        ({"bearer_token": K8S_TOKEN}, "settings.bearer_token"),
    ],
    ids=[
        "unknown-resource",
        "no-resource",
        "http-url",
        "url-credentials",
        "url-path",
        "token-as-arn",
        "token-key",
        "bearer-token-key",
    ],
)
def test_bad_kubernetes_settings_are_refused_naming_the_field(
    stack: ConnectorStack, changes: dict[str, Any], field: str
) -> None:
    settings = {"url": "https://k8s.example.test:6443", "credential_arn": K8S_ARN, **changes}
    body = {"name": "k8s", "kind": "kubernetes", "target": "cloud", "settings": settings}
    response = stack.admin.post("/v1/connectors", json_body=body)
    assert response.status == 422, response.body
    fields = [detail.get("field", "") for detail in response.body["error"]["details"]]
    assert any(f.startswith(field) for f in fields), response.body
    assert K8S_TOKEN not in json.dumps(response.body) and "pw@" not in json.dumps(response.body)
    assert stack.reader.get("/v1/connectors").body["connectors"] == []


@pytest.mark.parametrize(
    ("target", "settings", "field"),
    [
        ("cloud", {"credential_file": "/etc/hostrelay/sources/ak"}, "settings.credential_arn"),
        ("dc01", {"credential_arn": "ARN"}, "settings.credential_file"),
        ("dc01", {"credential_file": "/etc/hostrelay/sources/ak", "token": "x"}, "settings.token"),
        ("dc01", {"credential_file": "../ak"}, "settings.credential_file"),
        ("nohost", {"credential_file": "/etc/hostrelay/sources/ak"}, "target"),
    ],
    ids=["cloud-needs-arn", "relay-needs-file", "secret-refused", "relative-file", "no-host"],
)
def test_a_connector_with_the_wrong_credential_for_where_it_runs_is_refused(
    stack: ConnectorStack, target: str, settings: dict[str, Any], field: str
) -> None:
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:hostrelay/ak-AbCdEf"
    settings = {k: arn if v == "ARN" else v for k, v in settings.items()}
    response = stack.admin.post(
        "/v1/connectors",
        json_body={
            "name": "ak",
            "kind": "authentik",
            "target": target,
            "settings": {"url": "https://auth.example.test", **settings},
        },
    )
    assert response.status in (400, 422), response.body
    fields = [detail.get("field", "") for detail in response.body["error"]["details"]]
    assert any(f.startswith(field) for f in fields), response.body
    assert stack.reader.get("/v1/connectors").body["connectors"] == []


def test_a_relay_side_run_is_a_connector_sync_job_whose_batches_fill_the_inventory(
    stack: ConnectorStack, authentik: AuthentikFake, tmp_path: Path
) -> None:
    # Given an Authentik connector run by relay dc01, its token in a file there
    ids = arrange(authentik.state)
    relay = _relay_source(tmp_path / "dc01", authentik.base_url, authentik.ca_file, TOKEN)
    connector = stack.create_connector(
        name="authentik on dc01",
        kind="authentik",
        target="dc01",
        settings={"url": authentik.base_url, "credential_file": str(relay.credential_file)},
    )
    # When it runs, the control plane queues connector.sync for dc01, naming only the file
    job = stack.operator.post(f"/v1/connectors/{connector['id']}/run").body
    assert (job["type"], job["host"]) == ("connector.sync", "dc01")
    assert job["params"]["credential_file"] == str(relay.credential_file)
    stack.send_events("dc01", {"kind": "accepted", "job_id": job["id"], "attempt": 1})
    # And the relay's handler validates the very params the API stored and runs them
    handler = ConnectorSyncHandler(relay.settings)
    handler.validate(job["params"])
    result, published = relay.run(job["params"])
    for body in published.events:
        event = inventory_event(job, connector["id"], seq=body["seq"], upserts=body["upserts"])
        stack.send_events("dc01", event)
    # Then the inventory has what the relay read, with the group graph
    assert result["created"] == 8
    assert sorted(related(entity(stack, LAB), "member_of")) == sorted([TEACHERS, ADMINS])
    assert entity(stack, ids["alice"])["kind"] == "authentik.user"
    assert TOKEN not in stored_items(stack)


def test_a_relay_run_kubernetes_connector_reads_only_the_changes_between_full_runs(
    stack: ConnectorStack, kubernetes: KubernetesFake, tmp_path: Path
) -> None:
    # Given 3 deployments and a kubernetes connector on relay dc01 (full every third run)
    state = kubernetes.state
    uids = {
        name: state.put("deployments", name, namespace="shop", spec={"replicas": 1})
        for name in ("web", "cron", "db")
    }
    relay = _relay_source(tmp_path / "dc01", kubernetes.base_url, kubernetes.ca_file, K8S_TOKEN)
    connector = stack.create_connector(
        name="k8s on dc01",
        kind="kubernetes",
        target="dc01",
        settings={
            "url": kubernetes.base_url,
            "credential_file": str(relay.credential_file),
            "resources": ["deployments"],
            "full_sync_every": 3,
        },
    )

    def relay_run() -> tuple[dict[str, Any], dict[str, Any]]:
        """A run as the relay does it: the job's params, its inventory batches, its result."""
        job = stack.operator.post(f"/v1/connectors/{connector['id']}/run").body
        stack.send_events("dc01", {"kind": "accepted", "job_id": job["id"], "attempt": 1})
        result, published = relay.run(job["params"])
        for body in published.events:
            stack.send_events(
                "dc01",
                inventory_event(
                    job,
                    connector["id"],
                    seq=body["seq"],
                    upserts=body["upserts"],
                    deletes=body["deletes"],
                    sent_at=time.time(),
                ),
            )
        stack.send_events(
            "dc01",
            {
                "kind": "result",
                "job_id": job["id"],
                "attempt": 1,
                "outcome": "succeeded",
                "result": result,
            },
        )
        return job["params"], stack.reader.get(f"/v1/jobs/{job['id']}").body

    # When it runs, then the first run has no cursor to start from and reads everything
    params, first = relay_run()
    assert "since" not in params
    assert (first["state"], first["result"]["mode"], first["result"]["created"]) == (
        "SUCCEEDED",
        "full",
        3,
    )
    # When web is scaled and cron deleted, the next run's params carry the versions the
    # first reached, and the relay watches the changes since them
    state.put("deployments", "web", namespace="shop", spec={"replicas": 4})
    state.delete("deployments", "shop/cron")
    state.requests.clear()
    params, second = relay_run()
    assert params["since"] == first["result"]["resource_versions"]
    assert (second["result"]["mode"], second["result"]["api_calls"]) == ("incremental", 1)
    assert entity(stack, uids["web"])["attributes"]["replicas"] == 4
    assert entity(stack, uids["cron"])["deleted_at"] is not None
    # And the third run carries the second's versions; the fourth is due to read everything
    params, third = relay_run()
    assert params["since"] == second["result"]["resource_versions"]
    assert third["result"]["mode"] == "incremental"
    params, fourth = relay_run()
    assert "since" not in params and fourth["result"]["mode"] == "full"
    # And the run history shows what each of the four relay runs did, newest first: the
    # full relist found the two left unchanged, the watches one change and one delete, then
    # none, the first list created all three
    runs = stack.reader.get(f"/v1/connectors/{connector['id']}/runs").body["runs"]
    assert [run_counts(r) for r in runs] == [
        {"created": 0, "updated": 0, "deleted": 0, "unchanged": 2},
        {"created": 0, "updated": 0, "deleted": 0, "unchanged": 0},
        {"created": 0, "updated": 1, "deleted": 1, "unchanged": 0},
        {"created": 3, "updated": 0, "deleted": 0, "unchanged": 0},
    ]
    assert [r["counts"]["api_calls"] for r in runs] == [1, 1, 1, 1]
    # When the connector is changed to read differently, its cursor no longer applies
    draft = {key: connector[key] for key in ("name", "kind", "target", "settings")}
    draft["settings"] = {**connector["settings"], "page_size": 2}
    path = f"/v1/connectors/{connector['id']}"
    assert stack.admin.request("PUT", path, json_body=draft).status == 200
    params, fifth = relay_run()
    assert "since" not in params and fifth["result"]["mode"] == "full"
    assert K8S_TOKEN not in stored_items(stack)


def test_a_relay_cannot_send_kinds_its_connector_does_not_have(
    stack: ConnectorStack, tmp_path: Path
) -> None:
    # Given a kubernetes connector on dc01 and its running job
    connector = stack.create_connector(
        name="k8s on dc01",
        kind="kubernetes",
        target="dc01",
        settings={"url": "https://k8s.example.test:6443", "credential_file": "/etc/k8s-token"},
    )
    job = stack.operator.post(f"/v1/connectors/{connector['id']}/run").body
    # When the relay sends an LDAP user and a namespace
    user = {"id": "u1", "kind": "user", "name": "alice", "attributes": {}, "member_of": []}
    namespace = {"id": "ns1", "kind": "kubernetes.namespace", "name": "shop", "attributes": {}}
    stack.send_events("dc01", inventory_event(job, connector["id"], upserts=[user, namespace]))
    # Then only the namespace is stored
    assert stack.reader.get("/v1/inventory/entities/ns1").status == 200
    assert stack.reader.get("/v1/inventory/entities/u1").status == 404


def test_group_members_endpoint_queues_the_write_back_where_the_connector_runs(
    stack: ConnectorStack, authentik: AuthentikFake, tmp_path: Path
) -> None:
    # Given an Authentik connector with write-back on relay dc01, whose config allows it
    arrange(authentik.state)
    relay = _relay_source(tmp_path / "dc01", authentik.base_url, authentik.ca_file, TOKEN)
    relay_settings = relay.settings.model_copy(
        update={"sources": relay.settings.sources.model_copy(update={"allow_write_back": True})}
    )
    connector = stack.create_connector(
        name="authentik on dc01",
        kind="authentik",
        target="dc01",
        settings={
            "url": authentik.base_url,
            "credential_file": str(relay.credential_file),
            "write_back": True,
        },
    )
    # When an operator asks to add alice to TEACHERS (applied, not a dry run)
    response = stack.operator.post(
        f"/v1/connectors/{connector['id']}/group_members",
        json_body={"group": TEACHERS, "add": [1], "dry_run": False},
    )
    # Then a connector.group_members job is queued for dc01, naming the file, not the token
    assert response.status == 202, response.body
    job = response.body
    assert (job["type"], job["host"]) == ("connector.group_members", "dc01")
    assert TOKEN not in json.dumps(job)
    # And the relay's handler accepts exactly those params and applies the change
    handler = ConnectorGroupMembersHandler(relay_settings)
    result = handler.run(handler.validate(job["params"]), relay.context())
    assert result["added"] == 1 and authentik.state.members[TEACHERS] == {1, 2}
    # And bad requests are refused before anything is queued
    bad_group = stack.operator.post(
        f"/v1/connectors/{connector['id']}/group_members",
        json_body={"group": "not-a-uuid", "add": [1]},
    )
    assert bad_group.status == 422, bad_group.body
    reader = stack.reader.post(
        f"/v1/connectors/{connector['id']}/group_members", json_body={"group": TEACHERS}
    )
    assert reader.status == 403


def test_group_members_endpoint_needs_write_back(
    stack: ConnectorStack, authentik: AuthentikFake
) -> None:
    arn = secret(stack, "hostrelay/connectors/authentik", TOKEN, authentik.ca_file)
    connector = cloud_connector(stack, "authentik", authentik.base_url, arn)
    response = stack.operator.post(
        f"/v1/connectors/{connector['id']}/group_members",
        json_body={"group": TEACHERS, "add": [1]},
    )
    assert response.status == 422
    assert response.body["error"]["details"][0]["field"] == "settings.write_back"
