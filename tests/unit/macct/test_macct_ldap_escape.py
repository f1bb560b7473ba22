"""RFC 4515 filter and RFC 4514 DN escaping: input can never change a filter's or DN's shape."""

from __future__ import annotations

import pytest

from hostrelay_relay.macct.ldap_escape import (
    compose_dn,
    equality_filter,
    escape_dn_value,
    escape_filter_value,
)
from hostrelay_relay.macct.repair import school_devices_dn


def test_filter_metacharacters_are_hex_escaped() -> None:
    assert escape_filter_value("a*b(c)d\\e\x00") == "a\\2ab\\28c\\29d\\5ce\\00"
    assert escape_filter_value("PC01$") == "PC01$"


def test_equality_filter_with_one_and_many_values() -> None:
    assert equality_filter("sAMAccountName", ["PC01$"]) == "(sAMAccountName=PC01$)"
    assert equality_filter("sAMAccountName", ["A$", "*)(x=y"]) == (
        "(|(sAMAccountName=A$)(sAMAccountName=\\2a\\29\\28x=y))"
    )


def test_equality_filter_refuses_bad_attribute_or_no_values() -> None:
    with pytest.raises(ValueError):
        equality_filter("cn)(x", ["a"])
    with pytest.raises(ValueError):
        equality_filter("cn", [])


@pytest.mark.parametrize(
    ("value", "escaped"),
    [
        ("plain", "plain"),
        ("a,b", "a\\,b"),
        ("a+b=c", "a\\+b\\=c"),
        ('q"<>;\\', 'q\\"\\<\\>\\;\\\\'),
        ("#lead", "\\#lead"),
        ("mid#dle", "mid#dle"),
        (" edge ", "\\ edge\\ "),
    ],
)
def test_dn_values_are_escaped_per_rfc4514(value: str, escaped: str) -> None:
    assert escape_dn_value(value) == escaped


@pytest.mark.parametrize("value", ["", "new\nline", "nul\x00", "del\x7f"])
def test_empty_values_and_control_characters_are_refused_in_a_dn(value: str) -> None:
    with pytest.raises(ValueError):
        escape_dn_value(value)


def test_compose_dn_prefixes_escaped_rdns() -> None:
    assert compose_dn([("CN", "a,b"), ("OU", "x")], "DC=t,DC=lan") == "CN=a\\,b,OU=x,DC=t,DC=lan"
    with pytest.raises(ValueError):
        compose_dn([("CN=x,OU", "y")], "DC=t")


def test_school_devices_dn_follows_the_linuxmuster_layout() -> None:
    assert school_devices_dn("DC=linuxmuster,DC=lan", "default-school") == (
        "OU=Devices,OU=default-school,OU=SCHOOLS,DC=linuxmuster,DC=lan"
    )
