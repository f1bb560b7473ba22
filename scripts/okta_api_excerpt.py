"""Writes tests/fakes/specs/okta.json: the excerpt of Okta's OpenAPI document the Okta fake is
checked against.

The source is Okta's Management API description (okta/okta-management-openapi-spec) as the npm
package @okta/openapi ships it (dist/spec.json, Swagger 2.0):

    npm pack @okta/openapi@2.15.0
    tar xzf okta-openapi-2.15.0.tgz
    python scripts/okta_api_excerpt.py package/dist/spec.json

Kept: the operations the okta connector calls (listUsers, listGroups, getGroup,
listGroupUsers, addUserToGroup, removeUserFromGroup) with their parameters and success
responses, and every definition their answers reach; descriptions and Okta's SDK-generator
extensions (x-okta-* but x-okta-extensible: a profile may have custom attributes, which the
checker does not allow, so the fake sends none) are dropped. One addition: the properties in
NULLABLE get `x-nullable: true`, because Okta answers null for them (a user who never signed
in has `lastLogin: null`) and Swagger 2.0 has no other way to say so.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import swagger_excerpt  # scripts/, beside this one

PACKAGE = "@okta/openapi"
PACKAGE_VERSION = "2.15.0"
OUT = Path(__file__).resolve().parents[1] / "tests" / "fakes" / "specs" / "okta.json"
OPERATIONS = (
    ("/api/v1/users", "get"),
    ("/api/v1/groups", "get"),
    ("/api/v1/groups/{groupId}", "get"),
    ("/api/v1/groups/{groupId}/users", "get"),
    ("/api/v1/groups/{groupId}/users/{userId}", "put"),
    ("/api/v1/groups/{groupId}/users/{userId}", "delete"),
)
NULLABLE = {"User": ("lastLogin", "activated", "passwordChanged"), "UserProfile": ("mobilePhone",)}


def _trimmed(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: _trimmed(v)
            for k, v in value.items()
            if not (k == "description" and isinstance(v, str))  # a property may be named so
            and (k == "x-okta-extensible" or not k.startswith("x-okta-"))
        }
    if isinstance(value, list):
        return [_trimmed(v) for v in value]
    return value


def excerpt(source: Path) -> dict[str, Any]:
    raw = source.read_bytes()
    doc = json.loads(raw)
    paths: dict[str, Any] = {}
    for path, verb in OPERATIONS:
        paths.setdefault(path, {})[verb] = _trimmed(swagger_excerpt.operation(doc, path, verb))
    definitions = swagger_excerpt.reached_definitions(doc, paths, _trimmed)
    for name, properties in NULLABLE.items():
        for prop in properties:
            definitions[name]["properties"][prop]["x-nullable"] = True
    return swagger_excerpt.excerpt_document(
        doc,
        kept="the operations of the okta connector",
        raw=raw,
        package=f"npm {PACKAGE}@{PACKAGE_VERSION}",
        path=f"package/dist/{source.name}",
        upstream="okta/okta-management-openapi-spec",
        made_by="scripts/okta_api_excerpt.py",
        paths=paths,
        definitions=definitions,
    )


if __name__ == "__main__":
    OUT.write_text(json.dumps(excerpt(Path(sys.argv[1])), indent=1) + "\n")
