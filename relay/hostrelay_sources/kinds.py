"""The inventory kinds each source's entities have (imported where importing a reader is not)."""

from __future__ import annotations

AUTHENTIK_USER = "authentik.user"
AUTHENTIK_GROUP = "authentik.group"
KUBERNETES_KINDS = {
    "namespaces": "kubernetes.namespace",
    "nodes": "kubernetes.node",
    "deployments": "kubernetes.deployment",
    "statefulsets": "kubernetes.statefulset",
    "daemonsets": "kubernetes.daemonset",
    "services": "kubernetes.service",
}
ENTITY_KINDS: dict[str, frozenset[str]] = {
    "authentik": frozenset({AUTHENTIK_USER, AUTHENTIK_GROUP}),
    "kubernetes": frozenset(KUBERNETES_KINDS.values()),
}
