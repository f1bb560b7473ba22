"""Operator-supplied LDAP filters: exactly RFC 4515 gets through; everything else is explained."""

from __future__ import annotations

import pytest

from hostrelay_relay.directory.errors import DirectoryError
from hostrelay_relay.directory.filters import all_of, check_filter, escape_bytes, escape_value


@pytest.mark.parametrize(
    "text",
    [
        "(uid=jdoe)",
        "(&(objectClass=person)(|(cn=a*b*c)(mail=*@example.org)))",
        "(!(userAccountControl:1.2.840.113556.1.4.803:=2))",
        "(cn:dn:=Sales)",
        "(:dn:2.4.6.8.10:=Dino)",
        "(cn=\\2a literal star\\29)",
        "(uSNChanged>=12345)",
        "(sn~=smith)",
        "(cn=Müller)",
        "(objectClass=*)",
    ],
)
def test_well_formed_filters_are_accepted_unchanged(text: str) -> None:
    assert check_filter(text) == text


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("uid=jdoe", "expected '('"),
        ("(uid=jdoe", "expected ')'"),
        ("(uid=a)(cn=b)", "unexpected text after the end"),
        ("(uid=a))(|(cn=b)", "unexpected text after the end"),
        ("(&)", "needs at least one filter"),
        ("(=x)", "attribute name"),
        ("(u id=x)", "expected '='"),
        ("(cn=a(b)", "must be escaped"),
        ("(cn=\\zz)", "two hex digits"),
        ("(cn>=a*)", "must be escaped"),
        ("(cn=a\x00)", "must be escaped"),
        ("(:=x)", "attribute or a matching rule"),
    ],
)
def test_malformed_filters_fail_with_the_reason_and_position(text: str, why: str) -> None:
    with pytest.raises(DirectoryError) as failure:
        check_filter(text)
    assert failure.value.code == "ldap_filter"
    assert why in failure.value.message
    assert "at character" in failure.value.message


def test_absurdly_deep_or_long_filters_are_refused() -> None:
    with pytest.raises(DirectoryError, match="nested deeper"):
        check_filter("(!" * 40 + "(cn=x)" + ")" * 40)
    with pytest.raises(DirectoryError, match="longer than"):
        check_filter("(cn=" + "x" * 5000 + ")")


def test_values_are_escaped_so_they_cannot_change_the_filter() -> None:
    hostile = "*)(uid=*))(|(uid=*"
    built = all_of("(objectClass=person)", f"(cn={escape_value(hostile)})")
    assert check_filter(built) == built
    assert built == "(&(objectClass=person)(cn=\\2a\\29\\28uid=\\2a\\29\\29\\28|\\28uid=\\2a))"
    assert escape_bytes(b"\x01\xff") == "\\01\\ff"
