"""DNs, connector ids and server URLs are checked strictly and compared sensibly."""

from __future__ import annotations

import pytest

from hostrelay_contract.dn import check_dn, dn_key, first_rdn_value, is_within
from hostrelay_contract.ldap_url import check_server_url
from hostrelay_contract.names import check_connector_id
from hostrelay_relay.directory.connection import is_loopback_url


@pytest.mark.parametrize(
    "dn", ["dc=example,dc=org", "cn=Smith\\, John,ou=people,dc=x", "cn=a+sn=b,dc=x"]
)
def test_valid_dns_pass(dn: str) -> None:
    assert check_dn(dn) == dn


@pytest.mark.parametrize("dn", ["", "example", "cn=a,,dc=x", "cn=a,dc=x,", "cn=a\ndc=x"])
def test_invalid_dns_are_refused(dn: str) -> None:
    with pytest.raises(ValueError, match="DN"):
        check_dn(dn)


def test_dns_that_differ_only_in_case_and_spacing_compare_equal() -> None:
    assert dn_key("UID=Jdoe, OU=People,DC=Example,DC=Org") == dn_key(
        "uid=jdoe,ou=people,dc=example,dc=org"
    )
    assert is_within("uid=a,ou=people,dc=example,dc=org", "DC=example, DC=org")
    assert is_within("dc=example,dc=org", "dc=example,dc=org")
    assert not is_within("uid=a,dc=badexample,dc=org", "dc=example,dc=org")
    assert first_rdn_value("uid=jdoe,ou=people,dc=x") == "jdoe"


@pytest.mark.parametrize("value", ["corp", "corp-ad_2", "A1"])
def test_connector_ids_that_are_safe_file_names_pass(value: str) -> None:
    assert check_connector_id(value) == value


@pytest.mark.parametrize("value", ["", "../x", "a/b", ".hidden", "x" * 64, "a b"])
def test_connector_ids_that_could_escape_the_state_dir_are_refused(value: str) -> None:
    with pytest.raises(ValueError, match="connector id"):
        check_connector_id(value)


@pytest.mark.parametrize(
    "url", ["ldap://dc01.corp.example", "ldaps://10.0.0.5:636", "ldap://[::1]:389/"]
)
def test_server_urls_pass(url: str) -> None:
    assert check_server_url(url) == url


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://dc01", "scheme"),
        ("ldapi:///var/run/slapd", "scheme"),
        ("ldap://u:p@dc01", "credentials"),
        ("ldap://dc01/dc=example??sub", "nothing after"),
        ("ldap://", "host"),
        ("ldap://dc01:99999", "port"),
        ("ldap://dc_01!", "host"),
    ],
)
def test_other_urls_are_refused(url: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        check_server_url(url)


def test_loopback_urls_are_recognised() -> None:
    assert is_loopback_url("ldap://127.0.0.1:389")
    assert is_loopback_url("ldap://localhost")
    assert not is_loopback_url("ldap://192.0.2.1")
