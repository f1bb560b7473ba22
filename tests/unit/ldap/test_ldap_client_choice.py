"""The relay picks its LDAP client library at run time and `doctor` says which one it uses."""

from __future__ import annotations

import sys

import pytest

from hostrelay_relay.directory.clients import chosen_client, client_opener
from hostrelay_relay.directory.errors import DirectoryError
from hostrelay_relay.doctor import check_ldap_client
from hostrelay_relay.settings import LdapSettings, RelaySettings


def relay(client: str) -> RelaySettings:
    return RelaySettings.model_validate({"host": "dc01", "ldap": {"client": client}})


@pytest.fixture
def without_python_ldap(monkeypatch: pytest.MonkeyPatch) -> None:
    """Given a host where python-ldap is not installed (a stock DC without a compiler)."""
    for name in [name for name in sys.modules if name == "ldap" or name.startswith("ldap.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "ldap", None)  # import ldap → ModuleNotFoundError


def test_auto_uses_ldap3_where_python_ldap_is_missing_and_doctor_says_how_to_get_it(
    without_python_ldap: None,
) -> None:
    assert chosen_client("auto") == "ldap3"
    check = check_ldap_client(relay("auto"))
    assert check.ok
    assert check.detail.startswith("ldap3 ")
    assert "hostrelay-relay[fast-ldap]" in check.detail
    assert "python3-ldap" in check.detail


def test_forcing_python_ldap_where_it_is_missing_fails_clearly(without_python_ldap: None) -> None:
    check = check_ldap_client(relay("python-ldap"))
    assert not check.ok
    assert "not installed" in check.detail
    with pytest.raises(DirectoryError) as failure:
        client_opener("python-ldap")
    assert failure.value.code == "ldap_client"


def test_auto_prefers_python_ldap_where_it_is_installed() -> None:
    pytest.importorskip("ldap")
    assert chosen_client("auto") == "python-ldap"
    check = check_ldap_client(relay("auto"))
    assert check.ok and check.detail.startswith("python-ldap ")


def test_the_config_can_force_ldap3() -> None:
    assert chosen_client("ldap3") == "ldap3"
    assert check_ldap_client(relay("ldap3")).detail.startswith("ldap3 ")


def test_an_unknown_client_is_refused_in_the_config() -> None:
    with pytest.raises(ValueError, match="client"):
        LdapSettings.model_validate({"client": "openldap-cli"})
