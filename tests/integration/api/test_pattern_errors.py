"""What a user reads in a 422 when a path, query or body value breaks a pattern rule: the rule
in words (tests/unit/api/test_pattern_wording.py keeps a row for every rule), never the regex."""

from __future__ import annotations

from typing import Any

import pytest

from hostrelay_contract.text_patterns import TextPattern
from tests.integration.api.conftest import Api
from tests.unit.api.test_pattern_wording import TABLE

pytestmark = pytest.mark.integration

RULES: dict[str, tuple[TextPattern, str, str]] = {row[0].pattern: row for row in TABLE}


def patterned_parameters(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path template, parameter) for every path or query parameter with a pattern."""
    found = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                schema = parameter.get("schema", {})
                patterns = [schema.get("pattern")] + [
                    option.get("pattern") for option in schema.get("anyOf", [])
                ]
                if any(patterns):
                    found.append((method.upper(), path, parameter))
    return found


def pattern_of(parameter: dict[str, Any]) -> str:
    schema = parameter["schema"]
    options = [schema, *schema.get("anyOf", [])]
    return next(option["pattern"] for option in options if "pattern" in option)


def test_every_patterned_route_parameter_gets_its_rule_in_words(admin: Api) -> None:
    # Given the API's own OpenAPI document
    document = admin.get("/v1/openapi.json").body
    parameters = patterned_parameters(document)
    assert len(parameters) >= 10, "the document names its route parameters' patterns"
    for method, template, parameter in parameters:
        rule, _, bad = RULES[pattern_of(parameter)]  # KeyError: a rule with no table row
        # When the parameter is sent with a value that breaks its rule (others valid)
        path, query = template, {}
        for other in [p for _, t, p in parameters if t == template and p["in"] == "path"]:
            value = bad if other["name"] == parameter["name"] else RULES[pattern_of(other)][1]
            path = path.replace("{" + other["name"] + "}", value)
        if parameter["in"] == "query":
            query[parameter["name"]] = bad
        body = {} if method in ("POST", "PATCH", "PUT") else None
        # (a Host header, as API Gateway sends: the enrollment routes build URLs from it)
        headers = {"host": "api.example.com"}
        response = admin.request(method, path, query=query, json_body=body, headers=headers)
        # Then it is a 422 whose detail for that parameter says what is allowed, in words
        where = f"{method} {template} {parameter['name']}={bad!r}"
        assert response.status == 422, where
        assert response.error_code == "validation_error", where
        messages = {
            detail["message"]
            for detail in response.body["error"]["details"]
            if detail["field"].endswith(parameter["name"])
        }
        assert messages == {rule.message}, where
        assert rule.pattern not in str(response.body), where


def test_a_job_for_a_bad_host_name_says_what_a_host_name_is(admin: Api) -> None:
    # When a job names a host in upper case
    response = admin.post("/v1/jobs", json_body={"type": "ping", "host": "DC01", "params": {}})
    # Then the 422 names the field and the rule in words
    assert response.status == 422
    assert response.body["error"]["details"] == [
        {
            "field": "body.host",
            "message": "must be a DNS label: 1-63 lower-case letters, digits or '-', "
            "not starting or ending with '-'",
        }
    ]


def test_a_bad_tag_value_says_what_a_tag_value_may_hold(operator: Api, admin: Api) -> None:
    # Given an enrolled host, when a tag value with a space is set
    response = admin.request("PATCH", "/v1/hosts/dc01", json_body={"tags": {"room": "r 101"}})
    # Then the 422 names the tag and says what a value may hold
    assert response.status == 422
    [detail] = response.body["error"]["details"]
    assert detail["field"].endswith("room")
    assert detail["message"] == (
        "must be 1-128 letters, digits or any of _ . : / @ + = - (no spaces or quotes)"
    )


def test_bad_connector_settings_say_what_is_allowed(admin: Api) -> None:
    # When an AWS connector names a region that is no region
    response = admin.post(
        "/v1/connectors",
        json_body={
            "name": "aws",
            "kind": "aws",
            "target": "cloud",
            "settings": {"regions": ["europe"]},
        },
    )
    # Then the 422 points at the region and says what one looks like
    assert response.status == 422
    assert response.body["error"]["details"] == [
        {"field": "settings.regions.0", "message": "must be an AWS region such as eu-west-1"}
    ]
