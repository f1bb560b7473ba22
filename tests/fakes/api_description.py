"""Checks a fake's requests and responses against the vendor's published API description.

Google: the discovery documents google-api-python-client ships (its discovery_cache). Azure,
Kubernetes and Okta: excerpts of the operations the connectors call, kept beside this file
(tests/fakes/specs/, each with its source: azure-rest-api-specs; Kubernetes' swagger.json as
an npm package ships it, see scripts/kubernetes_api_excerpt.py; Okta's management API
description as the npm package @okta/openapi ships it, see scripts/okta_api_excerpt.py).
A request must name a method of the document with only declared parameters in their
declared ranges; every key of a response must be a property its schema declares (an object
schema that declares no keys takes any), with the declared JSON type, or null where the
property is marked x-nullable. A fake records
what breaks these rules and the tests assert it recorded nothing, so a fake cannot drift from
the real API unnoticed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SPECS = Path(__file__).parent / "specs"
_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
    "any": (object,),
}


@dataclass
class Method:
    name: str
    http_method: str
    pattern: re.Pattern[str]
    parameters: dict[str, dict[str, Any]]
    response: dict[str, Any] | None


def _template_pattern(template: str) -> re.Pattern[str]:
    """`projects/{project}/global/networks` → a regex with one group per parameter."""
    parts = re.split(r"(\{[^}]+\})", template)
    regex = "".join(
        f"(?P<{p[1:-1].lstrip('+').replace('-', '_')}>[^/]+)" if p.startswith("{") else re.escape(p)
        for p in parts
    )
    return re.compile(f"^{regex}$")


@dataclass
class ApiDescription:
    """One API: its methods and the schemas their responses use."""

    title: str
    methods: list[Method]
    schemas: dict[str, Any]
    common_parameters: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def google(cls, document: str) -> ApiDescription:
        """A discovery document, e.g. `compute.v1` or `admin.directory_v1`."""
        # Imported here: the relay's test venvs (Kubernetes fake) have no Google client.
        import googleapiclient

        documents = Path(googleapiclient.__file__).parent / "discovery_cache" / "documents"
        doc = json.loads((documents / f"{document}.json").read_text())
        methods: list[Method] = []

        def walk(node: dict[str, Any]) -> None:
            for resource in node.get("resources", {}).values():
                for method in resource.get("methods", {}).values():
                    path = "/" + doc["servicePath"] + (method.get("flatPath") or method["path"])
                    methods.append(
                        Method(
                            method["id"],
                            method["httpMethod"],
                            _template_pattern(path),
                            method.get("parameters", {}),
                            method.get("response"),
                        )
                    )
                walk(resource)

        walk(doc)
        return cls(doc["title"], methods, doc["schemas"], doc.get("parameters", {}))

    @classmethod
    def openapi(cls, excerpt: str) -> ApiDescription:
        """An OpenAPI 2 excerpt of tests/fakes/specs (Azure REST API specs, Kubernetes, Okta).
        An operation that answers without a body (204) has no response schema."""
        doc = json.loads((SPECS / excerpt).read_text())
        methods = []
        for path, operations in doc["paths"].items():
            for verb, operation in operations.items():
                parameters = {p["name"]: p for p in operation.get("parameters", [])}
                response = operation["responses"].get("200", {}).get("schema")
                methods.append(
                    Method(
                        operation["operationId"],
                        verb.upper(),
                        _template_pattern(path),
                        parameters,
                        response,
                    )
                )
        return cls(doc["info"]["title"], methods, doc["definitions"])

    def method(self, http_method: str, path: str) -> Method | None:
        for method in self.methods:
            if method.http_method == http_method and method.pattern.match(path):
                return method
        return None

    def request_problems(
        self, http_method: str, path: str, query: dict[str, list[str]]
    ) -> list[str]:
        method = self.method(http_method, path)
        if method is None:
            return [f"{self.title}: no method {http_method} {path}"]
        problems = []
        known = {**self.common_parameters, **method.parameters}
        for name, values in query.items():
            spec = known.get(name)
            if spec is None or spec.get("location", spec.get("in")) not in ("query", None):
                problems.append(f"{method.name}: undeclared query parameter {name!r}")
                continue
            problems += _value_problems(method.name, name, spec, values[0])
        for name, spec in method.parameters.items():
            where = spec.get("location", spec.get("in"))
            if spec.get("required") and where == "query" and name not in query:
                problems.append(f"{method.name}: required query parameter {name!r} missing")
        return problems

    def response_problems(self, http_method: str, path: str, body: Any) -> list[str]:
        method = self.method(http_method, path)
        if method is None or method.response is None:
            return [f"{self.title}: no response schema for {http_method} {path}"]
        name = method.name
        return self._schema_problems(f"{name} response", method.response, body)

    def definition_problems(self, where: str, definition: str, value: Any) -> list[str]:
        """`value` checked against one of the document's schemas, e.g. a Kubernetes Status."""
        return self._schema_problems(where, self.schemas[definition], value)

    def _resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        ref = schema.get("$ref")
        if ref is None:
            return schema
        return self.schemas[ref.rsplit("/", 1)[-1]]  # type: ignore[no-any-return]

    def _schema_problems(self, where: str, schema: dict[str, Any], value: Any) -> list[str]:
        if value is None and schema.get("x-nullable"):
            return []
        schema = self._resolve(schema)
        kind = schema.get("type") or ("object" if "properties" in schema else None)
        if kind is not None and not isinstance(value, _JSON_TYPES[kind]):
            return [f"{where}: {type(value).__name__} where the schema says {kind}"]
        if kind == "integer" and isinstance(value, bool):
            return [f"{where}: a boolean where the schema says integer"]
        if "enum" in schema and value not in schema["enum"]:
            return [f"{where}: {value!r} is not one of the declared values"]
        problems: list[str] = []
        if isinstance(value, list) and "items" in schema:
            for index, item in enumerate(value):
                problems += self._schema_problems(f"{where}[{index}]", schema["items"], item)
        if isinstance(value, dict) and _declares_keys(schema):
            properties = self._all_properties(schema)
            extra = schema.get("additionalProperties")
            for key, inner in value.items():
                if key in properties:
                    problems += self._schema_problems(f"{where}.{key}", properties[key], inner)
                elif isinstance(extra, dict):
                    problems += self._schema_problems(f"{where}[{key!r}]", extra, inner)
                elif extra is not True:
                    problems.append(f"{where}: property {key!r} is not in the schema")
        return problems

    def _all_properties(self, schema: dict[str, Any]) -> dict[str, Any]:
        properties = dict(schema.get("properties", {}))
        for parent in schema.get("allOf", []):
            properties.update(self._all_properties(self._resolve(parent)))
        return properties


def _declares_keys(schema: dict[str, Any]) -> bool:
    """Whether an object schema says which keys it has: `{"type": "object"}` alone is any
    object (Okta's `_links` values)."""
    return any(key in schema for key in ("properties", "allOf", "additionalProperties"))


def _value_problems(method: str, name: str, spec: dict[str, Any], value: str) -> list[str]:
    if spec.get("type") == "integer":
        if not re.fullmatch(r"-?\d+", value):
            return [f"{method}: {name}={value!r} is not an integer"]
        number = int(value)
        low, high = spec.get("minimum"), spec.get("maximum")
        if (low is not None and number < int(low)) or (high is not None and number > int(high)):
            return [f"{method}: {name}={number} outside [{low}, {high}]"]
    if spec.get("type") == "boolean" and value not in ("true", "false"):
        return [f"{method}: {name}={value!r} is not a boolean"]
    if "enum" in spec and value not in spec["enum"]:
        return [f"{method}: {name}={value!r} is not one of {spec['enum']}"]
    return []
