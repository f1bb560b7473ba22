"""The README's relay.toml table names exactly the keys RelaySettings reads."""

from __future__ import annotations

import re
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from hostrelay_relay.settings import RelaySettings

README = Path(__file__).resolve().parents[3] / "README.md"


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The section model a field holds (itself, or in `X | None`); a list is one setting."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (list, tuple):
        return None
    found = [a for a in typing.get_args(annotation) if _model_in(a) is not None]
    return _model_in(found[0]) if found else None


def _settings_keys(model: type[BaseModel], prefix: str = "") -> set[str]:
    """Dotted keys of every leaf setting (`<name>` for the key of a table of sections)."""
    keys: set[str] = set()
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if typing.get_origin(annotation) is dict and _model_in(typing.get_args(annotation)[1]):
            section = _model_in(typing.get_args(annotation)[1])
            assert section is not None
            keys |= _settings_keys(section, f"{prefix}{name}.<name>.")
        elif (section := _model_in(annotation)) is not None:
            keys |= _settings_keys(section, f"{prefix}{name}.")
        else:
            keys.add(prefix + name)
    return keys


def _documented_keys() -> set[str]:
    """The first column of the README's relay table: `a.b`, `c`, `d` is a.b, a.c and a.d."""
    section = README.read_text().split("### Relay (`/etc/hostrelay/relay.toml`)\n", 1)[1]
    section = section.split("\n### ", 1)[0]
    keys: set[str] = set()
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        names = re.findall(r"`([^`]+)`", line.split("|")[1])
        prefix = names[0].rsplit(".", 1)[0] + "." if "." in names[0] else ""
        keys.update(name if "." in name or not prefix else prefix + name for name in names)
    return keys


def test_every_relay_setting_is_documented_and_every_documented_key_exists() -> None:
    # Given the keys the relay's settings model reads, and those the README's table names
    # Then they are the same set
    assert _documented_keys() == _settings_keys(RelaySettings)
