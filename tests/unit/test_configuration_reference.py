"""The README's configuration reference and template.yaml name only settings some code reads."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from aws_lambda_powertools.shared import constants as powertools_constants

from hostrelay import settings
from hostrelay_local.template import load_template

REPO_ROOT = Path(__file__).resolve().parents[2]
README = (REPO_ROOT / "README.md").read_text()
TEMPLATE_TEXT = (REPO_ROOT / "template.yaml").read_text()
TEMPLATE = load_template()


def _settings_models(base: type) -> Iterator[type]:
    for model in base.__subclasses__():
        yield model
        yield from _settings_models(model)


# What the functions read: every alias of the settings models, validated at cold start...
FUNCTION_SETTINGS = {
    field.alias
    for model in _settings_models(settings._FunctionSettings)
    for field in model.model_fields.values()
    if field.alias
}
# ...and the variables Powertools reads itself (its constants name them).
POWERTOOLS_VARIABLES = {
    value
    for name, value in vars(powertools_constants).items()
    if name.endswith("_ENV") and isinstance(value, str)
}


def _readme_section(heading: str) -> str:
    start = README.index(heading)
    end = README.find("\n#", start + len(heading))
    return README[start : end if end != -1 else len(README)]


def _documented_variables(label: str) -> set[str]:
    """The variables one `- **label**` bullet of the README's environment variables names."""
    section = _readme_section("### Environment variables")
    start = section.index(f"- **{label}**")
    end = section.find("\n- ", start + 1)
    bullet = section[start : end if end != -1 else len(section)]
    return set(re.findall(r"`([A-Z][A-Z0-9_]+[A-Z0-9])`", bullet))


def _documented_parameters() -> set[str]:
    table = _readme_section("### Template parameters")
    return set(re.findall(r"^\| `([A-Za-z0-9]+)` \|", table, re.MULTILINE))


def _template_function_variables() -> set[str]:
    names = set(TEMPLATE.globals_env)
    for function in TEMPLATE.functions():
        names.update(function.environment)
    return names


def _source_text(*folders: str) -> str:
    return "\n".join(
        path.read_text() for folder in folders for path in (REPO_ROOT / folder).rglob("*.py")
    )


def test_every_template_parameter_is_documented_and_every_documented_one_exists() -> None:
    # Given the template's Parameters and the README's table of them
    # Then they name the same parameters
    assert _documented_parameters() == set(TEMPLATE.parameters)


@pytest.mark.parametrize("parameter", sorted(TEMPLATE.parameters))
def test_every_template_parameter_is_used_by_the_template(parameter: str) -> None:
    # Given a parameter of the template, Then some resource, condition or variable uses it
    body = TEMPLATE_TEXT[TEMPLATE_TEXT.index("\nConditions:") :]
    uses = re.findall(rf"(?:!Ref\s+{parameter}\b|\$\{{{parameter}\}}|Ref:\s*{parameter}\b)", body)
    assert uses, f"{parameter} is declared but nothing in template.yaml uses it"


def test_every_function_variable_the_template_sets_is_read() -> None:
    # Given the environment every function gets from the template
    # Then the settings models or Powertools read each variable
    unread = _template_function_variables() - FUNCTION_SETTINGS - POWERTOOLS_VARIABLES
    assert not unread, f"the template sets variables no code reads: {sorted(unread)}"


def test_every_function_variable_the_readme_documents_is_read_and_every_setting_documented() -> (
    None
):
    # Given the README's list of the functions' environment variables
    documented = _documented_variables("Functions")
    # Then each one is a setting some function validates at cold start (or Powertools reads)
    assert documented - FUNCTION_SETTINGS - POWERTOOLS_VARIABLES == set()
    # And every setting a function reads is documented there
    assert FUNCTION_SETTINGS - documented - {"AWS_REGION"} == set()


@pytest.mark.parametrize(("label", "folders"), [("CLI", ("cli",)), ("Local stack", ("local",))])
def test_every_cli_and_local_stack_variable_the_readme_documents_is_read(
    label: str, folders: tuple[str, ...]
) -> None:
    # Given the variables the README documents for the CLI or the local stack
    documented = _documented_variables(label)
    assert documented, f"no variables found in the README's {label} bullet"
    # Then the code of that program names each of them
    source = _source_text(*folders)
    assert {name for name in documented if f'"{name}"' not in source} == set()
