"""The relay's settings: the TOML file, every key overridable by HOSTRELAY_RELAY_* env."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from hostrelay_relay.settings import load_settings

CONFIG = """\
host = "dc01"
heartbeat_s = 15

[broker]
host = "broker.example.com"
port = 8883

[exec]
allowed_commands = ["/usr/bin/id"]
"""


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("HOSTRELAY_RELAY_CONFIG", "HOSTRELAY_RELAY_HOST"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "relay.toml"
    path.write_text(CONFIG)
    return path


def test_file_values_are_read(config_file: Path) -> None:
    # Given a relay.toml; When it is loaded
    settings = load_settings(config_file)
    # Then every level of it is read
    assert settings.host == "dc01" and settings.heartbeat_s == 15
    assert settings.broker.host == "broker.example.com"
    assert settings.exec.allowed_commands == ["/usr/bin/id"]


def test_environment_overrides_scalars_lists_and_tables(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given env overrides for a nested scalar, a list and a table of tables
    monkeypatch.setenv("HOSTRELAY_RELAY_BROKER__PORT", "8884")
    monkeypatch.setenv("HOSTRELAY_RELAY_EXEC__ALLOWED_COMMANDS", '["/usr/bin/uptime"]')
    monkeypatch.setenv(
        "HOSTRELAY_RELAY_LDAP__CREDENTIALS",
        '{"corp": {"bind_dn": "cn=sync,dc=example,dc=org", "password_file": "/etc/hostrelay/p",'
        ' "urls": ["ldaps://ldap.example.org"]}}',
    )
    # When the settings are loaded
    settings = load_settings(config_file)
    # Then the environment wins over the file, and the rest of the file still applies
    assert settings.broker.port == 8884
    assert settings.broker.host == "broker.example.com"
    assert settings.exec.allowed_commands == ["/usr/bin/uptime"]
    assert settings.ldap.credentials["corp"].bind_dn == "cn=sync,dc=example,dc=org"
    assert settings.heartbeat_s == 15


def test_config_file_named_by_environment(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given HOSTRELAY_RELAY_CONFIG naming the file
    monkeypatch.setenv("HOSTRELAY_RELAY_CONFIG", str(config_file))
    # When the settings are loaded without a path, Then that file is read
    assert load_settings().host == "dc01"


def test_unknown_key_in_file_is_refused(config_file: Path) -> None:
    # Given a typo in the file
    config_file.write_text(CONFIG + "\n[broker_typo]\nport = 1\n")
    # When it is loaded, Then the key is named as the problem
    with pytest.raises(ValidationError, match="broker_typo"):
        load_settings(config_file)


def test_bad_environment_value_is_refused(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a list override that is not JSON
    monkeypatch.setenv("HOSTRELAY_RELAY_EXEC__ALLOWED_COMMANDS", "/usr/bin/id")
    # When it is loaded, Then it fails instead of guessing
    with pytest.raises((ValidationError, ValueError)):
        load_settings(config_file)
