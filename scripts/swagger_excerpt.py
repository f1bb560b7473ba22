"""What the scripts that cut an excerpt of a vendor's Swagger 2.0 document share
(scripts/kubernetes_api_excerpt.py, scripts/okta_api_excerpt.py): an operation with its
path-level parameters merged in, every definition the kept operations reach, and the document
with its provenance. Each script keeps its own rule for what to trim.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from typing import Any


def refs(value: Any) -> set[str]:
    """The names of the definitions `value` refers to (`$ref`), at any depth."""
    if isinstance(value, dict):
        found = {value["$ref"].rsplit("/", 1)[-1]} if isinstance(value.get("$ref"), str) else set()
        for inner in value.values():
            found |= refs(inner)
        return found
    if isinstance(value, list):
        return set().union(*(refs(v) for v in value)) if value else set()
    return set()


def operation(doc: dict[str, Any], path: str, verb: str) -> dict[str, Any]:
    """One operation, with the parameters its path declares for every verb merged in."""
    item = doc["paths"][path]
    found = dict(item[verb])
    found["parameters"] = [*item.get("parameters", []), *found.get("parameters", [])]
    return found


def reached_definitions(
    doc: dict[str, Any],
    paths: dict[str, Any],
    trimmed: Callable[[Any], Any],
    extra: Iterable[str] = (),
) -> dict[str, Any]:
    """Every definition `paths` (and the `extra` ones) reach, trimmed, sorted by name."""
    wanted, definitions = refs(paths) | set(extra), {}
    while wanted:
        name = wanted.pop()
        definitions[name] = trimmed(doc["definitions"][name])
        wanted |= refs(definitions[name]) - definitions.keys()
    return dict(sorted(definitions.items()))


def excerpt_document(
    doc: dict[str, Any],
    *,
    kept: str,
    raw: bytes,
    package: str,
    path: str,
    upstream: str,
    made_by: str,
    paths: dict[str, Any],
    definitions: dict[str, Any],
) -> dict[str, Any]:
    """The excerpt: `paths` and `definitions` under the source's own header, which says what
    was `kept` and where it came from (package, path in it, sha256 of `raw`, upstream)."""
    return {
        "swagger": doc["swagger"],
        "info": {
            "title": f"{doc['info']['title']} (excerpt: {kept})",
            "version": doc["info"]["version"],
            "x-source": {
                "package": package,
                "path": path,
                "sha256": hashlib.sha256(raw).hexdigest(),
                "upstream": upstream,
                "made_by": made_by,
            },
        },
        "paths": paths,
        "definitions": definitions,
    }
