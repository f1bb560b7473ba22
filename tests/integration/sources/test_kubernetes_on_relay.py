"""connector.sync of a Kubernetes cluster on a relay: namespaces, nodes, workloads, services,
listed in pages (limit/continue), relisted after 410 Gone, deletes found on the next run."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from pydantic import ValidationError

from hostrelay_relay.handlers.base import JobError
from tests.fakes.kubernetes import KubernetesFake, KubernetesState
from tests.integration.sources.conftest import KUBERNETES_TOKEN, RelaySource

pytestmark = pytest.mark.integration


def arrange(state: KubernetesState) -> dict[str, str]:
    app = {"containers": [{"name": "web", "image": "nginx:1.27"}]}
    return {
        "default": state.put("namespaces", "default", status={"phase": "Active"}),
        "shop": state.put("namespaces", "shop", status={"phase": "Active"}),
        "node1": state.put(
            "nodes",
            "node1",
            labels={"node-role.kubernetes.io/control-plane": ""},
            status={
                "conditions": [{"type": "Ready", "status": "True"}],
                "nodeInfo": {"kubeletVersion": "v1.31.2", "architecture": "amd64"},
                "addresses": [{"type": "InternalIP", "address": "10.0.0.11"}],
            },
        ),
        "web": state.put(
            "deployments",
            "web",
            namespace="shop",
            spec={"replicas": 3, "template": {"spec": app}},
            status={"readyReplicas": 2},
        ),
        "db": state.put(
            "statefulsets", "db", namespace="shop", spec={"replicas": 1, "template": {"spec": app}}
        ),
        "logs": state.put(
            "daemonsets",
            "logs",
            namespace="default",
            spec={"template": {"spec": app}},
            status={"desiredNumberScheduled": 1, "numberReady": 1},
        ),
        "web-svc": state.put(
            "services",
            "web",
            namespace="shop",
            spec={
                "type": "ClusterIP",
                "clusterIP": "10.96.0.20",
                "ports": [{"port": 80, "protocol": "TCP"}],
            },
        ),
    }


def test_a_run_lists_every_resource_in_pages(
    kubernetes: KubernetesFake, kubernetes_relay: RelaySource, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a cluster, listed one object a page, throttled once
    uids = arrange(kubernetes.state)
    kubernetes.state.throttle_next = 1
    kubernetes.state.retry_after = "0"
    caplog.set_level(logging.DEBUG)
    # When the relay runs connector.sync
    result, published = kubernetes_relay.run(kubernetes_relay.params("kubernetes", page_size=1))
    # Then every object is in the inventory with its kind
    assert result["by_kind"] == {
        "kubernetes.daemonset": 1,
        "kubernetes.deployment": 1,
        "kubernetes.namespace": 2,
        "kubernetes.node": 1,
        "kubernetes.service": 1,
        "kubernetes.statefulset": 1,
    }
    # And it paged: namespaces 2 pages, one page for each other resource, plus the retry
    assert result["api_calls"] == kubernetes.state.calls() == 2 + 5 + 1
    upserts = published.upserts()
    web = upserts[uids["web"]]
    assert web["name"] == "shop/web"
    assert web["attributes"]["replicas"] == 3 and web["attributes"]["ready_replicas"] == 2
    assert web["attributes"]["images"] == ["nginx:1.27"]
    node = upserts[uids["node1"]]["attributes"]
    assert node["roles"] == ["control-plane"] and node["ready"] is True
    assert node["kubelet_version"] == "v1.31.2" and node["internal_ip"] == "10.0.0.11"
    assert upserts[uids["web-svc"]]["attributes"]["ports"] == ["80/TCP"]
    assert KUBERNETES_TOKEN not in repr(published.events) + repr(result) + caplog.text


def test_an_expired_continue_token_relists_from_the_start(
    kubernetes: KubernetesFake, kubernetes_relay: RelaySource
) -> None:
    # Given many namespaces, and the first list's continue token expiring after one page
    for number in range(5):
        kubernetes.state.put("namespaces", f"ns{number}")
    kubernetes.state.expire_after_pages = 0
    # When the relay lists two a page
    result, published = kubernetes_relay.run(
        kubernetes_relay.params("kubernetes", page_size=2, resources=["namespaces"])
    )
    # Then it met 410 Gone once, listed again, and still has every namespace once
    assert kubernetes.state.expired == 1
    assert result["by_kind"] == {"kubernetes.namespace": 5}
    assert len(published.upserts()) == 5
    assert result["api_calls"] == 2 + 3  # page 1, the 410, then 3 pages


def test_deleted_objects_are_sent_as_deletes_on_the_next_run(
    kubernetes: KubernetesFake, kubernetes_relay: RelaySource
) -> None:
    # Given a first run
    uids = arrange(kubernetes.state)
    kubernetes_relay.run(kubernetes_relay.params("kubernetes"))
    # When the deployment goes and the relay runs again
    kubernetes.state.delete("deployments", "shop/web")
    result, published = kubernetes_relay.run(kubernetes_relay.params("kubernetes"))
    # Then the deployment is deleted and nothing unchanged is sent
    assert published.deletes() == [uids["web"]]
    assert published.upserts() == {}
    assert (result["deleted"], result["unchanged"]) == (1, 6)


def test_a_forbidden_resource_fails_the_run_with_permission_denied(
    kubernetes: KubernetesFake, kubernetes_relay: RelaySource
) -> None:
    # Given a service account that may not list nodes
    arrange(kubernetes.state)
    kubernetes.state.denied.add("nodes")
    # When the relay runs, then the job fails clearly and sends nothing half-read
    with pytest.raises(JobError) as failure:
        kubernetes_relay.run(kubernetes_relay.params("kubernetes"))
    assert failure.value.code == "permission_denied"
    assert "/api/v1/nodes" in failure.value.message and "Forbidden" in failure.value.message


@pytest.mark.parametrize(
    ("arrange_failure", "code"),
    [
        (lambda fake: setattr(fake.state, "token", "another-token"), "bad_credentials"),
        (lambda fake: fake.stop(), "source_unreachable"),
    ],
    ids=["bad-token", "unreachable"],
)
def test_a_refused_token_or_a_gone_api_server_is_a_clear_job_error(
    kubernetes: KubernetesFake,
    kubernetes_relay: RelaySource,
    arrange_failure: Callable[[KubernetesFake], None],
    code: str,
) -> None:
    # Given an API server that refuses the token, or is gone
    arrange(kubernetes.state)
    arrange_failure(kubernetes)
    # When the relay runs connector.sync, then the job fails with that code, token unsaid
    with pytest.raises(JobError) as failure:
        kubernetes_relay.run(kubernetes_relay.params("kubernetes"))
    assert failure.value.code == code
    assert failure.value.result == {"connector": "conn-1", "kind": "kubernetes"}
    assert KUBERNETES_TOKEN not in failure.value.message


def test_a_run_with_since_watches_only_the_changes_and_sends_deletes(
    kubernetes: KubernetesFake, kubernetes_relay: RelaySource
) -> None:
    # Given a full run, whose result says which resourceVersion each list reached
    state = kubernetes.state
    uids = arrange(state)
    params = kubernetes_relay.params("kubernetes")
    first, _ = kubernetes_relay.run(params)
    assert first["mode"] == "full"
    assert set(first["resource_versions"]) == {
        "namespaces",
        "nodes",
        "deployments",
        "statefulsets",
        "daemonsets",
        "services",
    }
    # When web is scaled, the service deleted, a namespace made, another rewritten unchanged,
    # and a config map-like churn (a deployment made and deleted again) happens in between
    app = {"containers": [{"name": "web", "image": "nginx:1.27"}]}
    state.put(
        "deployments", "web", namespace="shop", spec={"replicas": 5, "template": {"spec": app}}
    )
    state.delete("services", "shop/web")
    batch = state.put("namespaces", "batch", status={"phase": "Active"})
    state.put("namespaces", "default", status={"phase": "Active"})
    state.put("deployments", "tmp", namespace="shop")
    state.delete("deployments", "shop/tmp")
    state.requests.clear()
    result, published = kubernetes_relay.run({**params, "since": first["resource_versions"]})
    # Then the run watched each resource once from its version and sent only what changed
    assert result["mode"] == "incremental"
    assert result["api_calls"] == state.calls() == 6
    assert all(("GET", path) in state.requests for path in ("/api/v1/nodes", "/api/v1/services"))
    assert set(published.upserts()) == {uids["web"], batch}
    assert published.upserts()[uids["web"]]["attributes"]["replicas"] == 5
    assert published.deletes() == [uids["web-svc"]]
    assert (result["created"], result["updated"], result["deleted"]) == (1, 1, 1)
    assert result["unchanged"] == 1  # the namespace rewritten as it was
    assert int(result["resource_versions"]["services"]) > int(
        first["resource_versions"]["services"]
    )
    # And a full run after it has nothing to send: the relay's state followed the changes
    state.requests.clear()
    full, published = kubernetes_relay.run(params)
    assert full["mode"] == "full" and full["api_calls"] == 6
    assert (published.upserts(), published.deletes()) == ({}, [])
    assert full["unchanged"] == 7


def test_a_compacted_history_makes_the_run_read_everything_and_still_find_deletes(
    kubernetes: KubernetesFake, kubernetes_relay: RelaySource
) -> None:
    # Given a full run of the deployments, then one deleted and the API server's history
    # compacted past the versions the run reached
    state = kubernetes.state
    uids = arrange(state)
    params = kubernetes_relay.params("kubernetes", resources=["deployments"])
    first, _ = kubernetes_relay.run(params)
    state.delete("deployments", "shop/web")
    state.compact()
    state.requests.clear()
    # When the relay is asked for the changes since those versions
    result, published = kubernetes_relay.run({**params, "since": first["resource_versions"]})
    # Then the watch's 410 Expired made it list everything in the same job
    assert result["mode"] == "full"
    assert result["api_calls"] == state.calls() == 1 + 1
    assert published.deletes() == [uids["web"]]
    assert result["resource_versions"]["deployments"] == state.resource_version()


def test_a_relay_without_state_of_the_last_run_reads_everything(
    kubernetes: KubernetesFake, kubernetes_relay: RelaySource
) -> None:
    # Given versions from a run this relay has no state of (another connector id here)
    arrange(kubernetes.state)
    first, _ = kubernetes_relay.run(kubernetes_relay.params("kubernetes"))
    # When a job asks for the changes since them
    fresh = kubernetes_relay.params("kubernetes", connector="conn-2")
    result, published = kubernetes_relay.run({**fresh, "since": first["resource_versions"]})
    # Then it reads and sends everything: changes alone would leave its deletes unknowable
    assert result["mode"] == "full"
    assert len(published.upserts()) == 7


def test_since_is_refused_for_a_source_without_versions(authentik_relay: RelaySource) -> None:
    params = {**authentik_relay.params("authentik"), "since": {"namespaces": "1"}}
    with pytest.raises(ValidationError, match="kubernetes sources only"):
        authentik_relay.handler().validate(params)
