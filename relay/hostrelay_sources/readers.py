"""One entry point per source: connect with a token, read every entity, count the calls."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from hostrelay_contract.jobs.sources import AuthentikSource, KubernetesSource
from hostrelay_sources import authentik, kubernetes
from hostrelay_sources.entities import SourceEntity
from hostrelay_sources.retry import RetryPolicy


@dataclass
class SourceRead:
    """A read's entities (None: stopped midway) and the API calls it took."""

    entities: list[SourceEntity] | None
    api_calls: int
    complete_kinds: frozenset[str]
    # Where a later read of the changes starts (Kubernetes: each list's resourceVersion).
    positions: dict[str, str] = field(default_factory=dict)


def read_source(
    source: AuthentikSource | KubernetesSource,
    token: str,
    should_stop: Callable[[], bool],
    *,
    ca_file: str | None = None,
    retry: RetryPolicy | None = None,
) -> SourceRead:
    """Raises SourceError (bad credentials, permission, unreachable, throttled) on failure."""
    if isinstance(source, AuthentikSource):
        api = authentik.AuthentikApi.connect(
            source.base_url, token, page_size=source.page_size, ca_file=ca_file, retry=retry
        )
        try:
            entities = authentik.read_authentik(api, should_stop)
        finally:
            api.close()
        return SourceRead(entities, api.calls, authentik.KINDS)
    k8s = kubernetes.KubernetesApi.connect(
        source.base_url, token, page_size=source.page_size, ca_file=ca_file, retry=retry
    )
    try:
        entities = kubernetes.read_kubernetes(k8s, source, should_stop)
    finally:
        k8s.client.close()
    wanted = frozenset(kubernetes.RESOURCES[name].kind for name in source.wanted())
    return SourceRead(entities, k8s.calls, wanted, dict(k8s.resource_versions))


def read_kubernetes_changes(
    source: KubernetesSource,
    token: str,
    versions: dict[str, str],
    should_stop: Callable[[], bool],
    *,
    ca_file: str | None = None,
    retry: RetryPolicy | None = None,
) -> tuple[kubernetes.KubernetesChanges | None, int]:
    """The changes since `versions` and the API calls it took; raises VersionExpired when
    the server no longer has them, SourceError as read_source does."""
    k8s = kubernetes.KubernetesApi.connect(
        source.base_url, token, page_size=source.page_size, ca_file=ca_file, retry=retry
    )
    try:
        return kubernetes.read_kubernetes_changes(k8s, source, versions, should_stop), k8s.calls
    except kubernetes.VersionExpired as expired:
        expired.api_calls = k8s.calls
        raise
    finally:
        k8s.client.close()
