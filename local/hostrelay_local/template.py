"""Reads template.yaml: the resources to create locally and each function's environment."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPO_ROOT / "template.yaml"
_SUB_VAR = re.compile(r"\$\{([^}!]+)\}")


class _Tagged:
    def __init__(self, tag: str, value: Any) -> None:
        self.tag = tag
        self.value = value


class _CfnLoader(yaml.SafeLoader):
    """SafeLoader that keeps CloudFormation short-form intrinsics (!Ref, !Sub, ...)."""


def _construct_tagged(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> _Tagged:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    elif isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    else:
        raise yaml.constructor.ConstructorError(None, None, f"unexpected node for !{tag_suffix}")
    return _Tagged(tag_suffix, value)


_CfnLoader.add_multi_constructor("!", _construct_tagged)


@dataclass
class FunctionSpec:
    logical_id: str
    code_uri: Path
    handler: str
    environment: dict[str, Any]
    timeout_s: int
    events: dict[str, Any] = field(default_factory=dict)


@dataclass
class Template:
    resources: dict[str, dict[str, Any]]
    parameters: dict[str, dict[str, Any]]
    globals_env: dict[str, Any]

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.resources.items() if v["Type"] == resource_type}

    def functions(self) -> list[FunctionSpec]:
        specs = []
        global_timeout = 3
        for logical_id, resource in self.of_type("AWS::Serverless::Function").items():
            props = resource["Properties"]
            env = dict(self.globals_env)
            env.update(props.get("Environment", {}).get("Variables", {}))
            specs.append(
                FunctionSpec(
                    logical_id=logical_id,
                    code_uri=REPO_ROOT / props["CodeUri"],
                    handler=props["Handler"],
                    environment=env,
                    timeout_s=int(props.get("Timeout", global_timeout)),
                    events=props.get("Events", {}),
                )
            )
        return specs


def load_template(path: Path = TEMPLATE_PATH) -> Template:
    data = yaml.load(path.read_text(), Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    globals_env = data.get("Globals", {}).get("Function", {}).get("Environment", {})
    return Template(
        resources=data["Resources"],
        parameters=data.get("Parameters", {}),
        globals_env=globals_env.get("Variables", {}),
    )


def function_named(value: Any) -> str | None:
    """The logical id of the function `!GetAtt <Function>.Arn` (or `!Ref <Function>`) names."""
    if not isinstance(value, _Tagged):
        return None
    if value.tag == "Ref" and isinstance(value.value, str):
        return value.value
    if value.tag == "GetAtt":
        target = value.value.split(".", 1) if isinstance(value.value, str) else value.value
        return str(target[0]) if len(target) == 2 and target[1] == "Arn" else None
    return None


class Resolver:
    """Resolves !Ref / !Sub / !GetAtt against locally created resources and parameters."""

    def __init__(self, refs: dict[str, str], attrs: dict[tuple[str, str], str]) -> None:
        self._refs = refs
        self._attrs = attrs

    def resolve(self, value: Any) -> Any:
        if isinstance(value, _Tagged):
            if value.tag == "Ref":
                return self._refs[value.value]
            if value.tag == "GetAtt":
                target = value.value.split(".", 1) if isinstance(value.value, str) else value.value
                return self._attrs[(target[0], target[1])]
            if value.tag == "Sub":
                return _SUB_VAR.sub(lambda m: self._refs[m.group(1)], value.value)
            raise ValueError(f"unsupported intrinsic !{value.tag} in local stack")
        if isinstance(value, dict):
            return {k: self.resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        return value
