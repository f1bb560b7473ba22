"""Every pattern rule the API (and the relay) checks tells the user in words what is allowed.

A table of every rule, with a value it accepts and one it refuses, and a walk over every model
the API validates with: a field with a regex but no words fails here, so the next pattern cannot
bring the regex back into a 422. (Names judged by a check function, such as an image or a
computer name, publish their pattern only for the JSON schema and word their own errors.)
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Iterator
from types import ModuleType
from typing import Annotated, Any

import pytest
from pydantic import BaseModel, StringConstraints, TypeAdapter, ValidationError

import hostrelay.api.models
import hostrelay.api.routers
from hostrelay.api.models import base as api_base
from hostrelay.api.models import enrollments as api_enrollments
from hostrelay.api.models import tokens as api_tokens
from hostrelay.api.routers import audit, runs
from hostrelay.domain import cloud_sources, connector_settings, tags
from hostrelay.logic.connectors import settings_models
from hostrelay_contract import inventory, names
from hostrelay_contract.job_types import JOB_TYPES
from hostrelay_contract.jobs import cloud, sources
from hostrelay_contract.text_patterns import PATTERN_MISMATCH, TextPattern

# Every rule: (rule, a value it accepts, a value it refuses).
TABLE: list[tuple[TextPattern, str, str]] = [
    (names.HOST_NAME, "dc01", "DC01"),
    (names.CONNECTOR_ID, "01JBX2K3", "-ab"),
    (inventory.KIND, "aws.ec2.vpc", "User"),
    (sources.HTTPS_ORIGIN, "https://example.okta.com", "http://example.okta.com"),
    (sources.RESOURCE_VERSION, "12345", "12 345"),
    (sources.GROUP_UUID, "0f8fad5b-d9cb-469f-a165-70867728950e", "0f8fad5b"),
    (cloud.OKTA_ID, "00u1abcd", "00u-1"),
    (api_base.ULID, "01JBX2K3M4N5P6Q7R8S9T0V1W2", "01JBX2K3M4N5P6Q7R8S9T0V1WI"),
    (api_tokens.TOKEN_ID, "tok_1", "tok 1"),
    (api_enrollments.ENROLLMENT_TOKEN, "hre_" + "a" * 43, "hre_short"),
    (api_enrollments.ROLE_NAME, "linbo.server", "Linbo"),
    (runs.TARGET_STATE, "FAILED", "failed"),
    (audit.AUDIT_ACTION, "host.revoke", "host"),
    (tags.TAG_KEY, "room", "Room"),
    (tags.TAG_VALUE, "r101", "r 101"),
    (connector_settings.AWS_REGION, "eu-west-1", "europe"),
    (connector_settings.ROLE_ARN, "arn:aws:iam::123456789012:role/reader", "arn:aws:iam::1:role/x"),
    (
        connector_settings.CREDENTIAL_ARN,
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:hostrelay/okta",
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:other",
    ),
    (cloud_sources.WORKSPACE_CUSTOMER, "my_customer", "customer"),
    (cloud_sources.EMAIL, "admin@example.com", "admin"),
    (cloud_sources.GCP_PROJECT, "my-project-1", "My_Project"),
    (cloud_sources.GUID, "0f8fad5b-d9cb-469f-a165-70867728950e", "not-a-guid"),
]
# The API's models, one module per router (hostrelay/api/models/).
API_MODEL_MODULES: list[ModuleType] = [
    importlib.import_module(f"hostrelay.api.models.{info.name}")
    for info in pkgutil.iter_modules(hostrelay.api.models.__path__)
]
RULE_MODULES: list[ModuleType] = [
    names,
    inventory,
    sources,
    cloud,
    *API_MODEL_MODULES,
    runs,
    audit,
    tags,
    connector_settings,
    cloud_sources,
]


def defined_rules() -> set[TextPattern]:
    return {
        value
        for module in RULE_MODULES
        for value in vars(module).values()
        if isinstance(value, TextPattern)
    }


def test_the_table_has_a_row_for_every_rule() -> None:
    assert {rule for rule, _, _ in TABLE} == defined_rules()


@pytest.mark.parametrize(
    ("rule", "good", "bad"), TABLE, ids=[rule.pattern[:24] for rule, _, _ in TABLE]
)
def test_a_refused_value_is_told_what_is_allowed_in_words(
    rule: TextPattern, good: str, bad: str
) -> None:
    # Given a field of the rule
    field: TypeAdapter[str] = TypeAdapter(Annotated[str, rule])
    # When a value that fits is validated, then it is accepted unchanged
    assert field.validate_python(good) == good
    # When one that does not fit is validated
    with pytest.raises(ValidationError) as refused:
        field.validate_python(bad)
    # Then the one error says in words what is allowed, never the regex
    [error] = refused.value.errors()
    assert error["type"] == PATTERN_MISMATCH
    assert error["msg"] == rule.message == f"must be {rule.allowed}"
    assert rule.pattern not in error["msg"]
    assert "^" not in error["msg"] and "pattern" not in error["msg"]
    # And a plain string (settings, CLI) gets the same words
    with pytest.raises(ValueError, match=f"^{re.escape(f'value {rule.message}')}$"):
        rule.check(bad, "value")


def api_models_defined() -> Iterator[type[BaseModel]]:
    """The request and response models of the API and its routers."""
    modules = API_MODEL_MODULES + [
        importlib.import_module(f"hostrelay.api.routers.{info.name}")
        for info in pkgutil.iter_modules(hostrelay.api.routers.__path__)
    ]
    for module in modules:
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, BaseModel)
                and value.__module__ == module.__name__
            ):
                yield value


def validated_models() -> list[tuple[str, type[BaseModel]]]:
    """Every model the API validates input with, by where it is used."""
    found: list[tuple[str, type[BaseModel]]] = [
        (f"params of {name}", spec.params) for name, spec in JOB_TYPES.items()
    ]
    found += [(f"settings of {kind.value}", model) for kind, model in settings_models().items()]
    found += [(f"API model {model.__name__}", model) for model in api_models_defined()]
    found += [
        ("inventory batch", inventory.InventoryBody),
        ("inventory upsert", inventory.InventoryUpsert),
    ]
    return found


def unworded_patterns(schema: Any, worded: bool = False) -> Iterator[str]:
    """Regexes of the core schema that no TextPattern wraps (a `str` with a `pattern`)."""
    if isinstance(schema, dict):
        if schema.get("type") == "str" and "pattern" in schema and not worded:
            yield schema["pattern"]
        wraps = schema.get("type") == "function-wrap" and isinstance(
            getattr(schema.get("function", {}).get("function"), "__self__", None), TextPattern
        )
        for key, value in schema.items():
            yield from unworded_patterns(value, worded=wraps and key == "schema")
    elif isinstance(schema, list | tuple):
        for value in schema:
            yield from unworded_patterns(value)


MODELS = validated_models()


@pytest.mark.parametrize(("where", "model"), MODELS, ids=[where for where, _ in MODELS])
def test_every_pattern_field_of_the_api_has_words(where: str, model: type[BaseModel]) -> None:
    # Given a model the API validates with (built, as its first use would)
    model.model_rebuild()
    # Then every regex in it is one a TextPattern words
    assert list(unworded_patterns(model.__pydantic_core_schema__)) == [], where


def test_tags_and_route_parameters_are_worded_too() -> None:
    # The tag rules are a TypeAdapter, not a model; route parameters are checked over HTTP in
    # tests/integration/api/test_pattern_errors.py
    assert list(unworded_patterns(TypeAdapter(tags.Tags).core_schema)) == []


def test_the_walk_finds_a_bare_pattern() -> None:
    # Given a model with a regex and no words, then the walk names it (the check can fail)
    class Bare(BaseModel):
        code: Annotated[str, StringConstraints(pattern=r"^[a-z]+$")]

    assert list(unworded_patterns(Bare.__pydantic_core_schema__)) == [r"^[a-z]+$"]
