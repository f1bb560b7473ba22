"""The contract's DN parser reads DNs as the LDAP client libraries the relay uses do."""

from __future__ import annotations

import ldap.dn
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ldap3.core.exceptions import LDAPInvalidDnError
from ldap3.utils.dn import parse_dn as ldap3_parse_dn

from hostrelay_contract.dn import dn_key, escape_value, parse_dn, unescape_value

ATTRIBUTE_TYPES = st.sampled_from(["cn", "ou", "dc", "uid", "sAMAccountName", "x-Attr2"])
# ldap3 strips any Unicode white space around a value, escaped or not; the RFC (and the
# contract) keep escaped spaces, so values here do not start or end with white space.
VALUES = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x17F), min_size=1, max_size=12
).filter(lambda value: value == value.strip())
# (type, value) pairs, grouped into RDNs of one or two AVAs.
RDNS = st.lists(
    st.lists(st.tuples(ATTRIBUTE_TYPES, VALUES), min_size=1, max_size=2), min_size=1, max_size=4
)


def written(rdns: list[list[tuple[str, str]]]) -> str:
    return ",".join(
        "+".join(f"{kind}={escape_value(value)}" for kind, value in rdn) for rdn in rdns
    )


@settings(max_examples=400, derandomize=True, database=None)
@given(rdns=RDNS)
def test_escaped_dns_read_back_as_written_by_all_three_parsers(
    rdns: list[list[tuple[str, str]]],
) -> None:
    # Given a DN built from arbitrary values, each escaped by the contract
    dn = written(rdns)
    # When the contract, ldap3 and python-ldap (OpenSSL's libldap) read it
    ours = parse_dn(dn)
    theirs = ldap3_parse_dn(dn, escape=False, strip=True)
    libldap = ldap.dn.str2dn(dn)
    # Then all three find the same attribute types and values
    assert [unescape_value(value) for _, value, _ in ours] == [
        value for rdn in rdns for _, value in rdn
    ]
    assert [(kind, value, separator) for kind, value, separator in ours] == theirs
    assert [(kind, value) for rdn in libldap for kind, value, _ in rdn] == [
        (kind, value) for rdn in rdns for kind, value in rdn
    ]


@settings(max_examples=1500, derandomize=True, database=None)
@given(text=st.text(alphabet='cnod=,+\\ #"<>;ab0F', max_size=16))
def test_what_the_contract_accepts_ldap3_reads_the_same_way(text: str) -> None:
    # Given any text, when the contract accepts it as a DN
    try:
        ours = parse_dn(text)
    except ValueError:
        return
    # Then ldap3 accepts it too, split into the same parts
    try:
        theirs = ldap3_parse_dn(text, escape=False, strip=True)
    except LDAPInvalidDnError:
        pytest.fail(f"ldap3 refuses {text!r}, which the contract accepts")
    assert ours == theirs


def test_keys_ignore_case_spacing_and_escaping() -> None:
    assert dn_key("CN=Smith\\2C John, OU=People") == dn_key("cn=smith\\, john,ou=people")
