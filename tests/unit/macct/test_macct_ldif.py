"""The LDIF writer base64-encodes everything; the reader understands ldbsearch output."""

from __future__ import annotations

import base64

import pytest

from hostrelay_relay.macct.ldif import LdifError, LdifRecord, parse_ldif, render_ldif

SECRET = b"\x00\x01secret\nvalue\xff"


def test_replace_records_encode_dn_and_every_value() -> None:
    # Given a replace record whose DN and value contain newlines and LDIF syntax
    record = LdifRecord(
        "replace",
        "CN=evil\ndn: CN=admin,DC=t",
        [("unicodePwd", [SECRET]), ("supplementalCredentials", [b"-\nreplace: x"])],
    )
    # When rendered
    text = render_ldif([record])
    # Then each line is one of the expected shapes and no input leaks out unencoded
    lines = text.decode().splitlines()
    assert lines == [
        "dn:: " + base64.b64encode(b"CN=evil\ndn: CN=admin,DC=t").decode(),
        "changetype: modify",
        "replace: unicodePwd",
        "unicodePwd:: " + base64.b64encode(SECRET).decode(),
        "-",
        "replace: supplementalCredentials",
        "supplementalCredentials:: " + base64.b64encode(b"-\nreplace: x").decode(),
        "-",
        "",
    ]


def test_attribute_types_must_be_plain_names() -> None:
    with pytest.raises(LdifError):
        render_ldif([LdifRecord("replace", "CN=x", [("unicodePwd\nx", [b"v"])])])


def test_records_never_show_values_in_their_repr() -> None:
    assert "secret" not in repr(LdifRecord("add", "CN=x", [("unicodePwd", [SECRET])]))


def test_rendered_add_records_read_back_identically() -> None:
    # Given an add record, When rendered and parsed, Then DN and values survive byte for byte
    record = LdifRecord("add", "CN=Ä,DC=t", [("objectClass", [b"computer"]), ("x", [SECRET])])
    (entry,) = parse_ldif(render_ldif([record]))
    assert entry.dn == "CN=Ä,DC=t"
    assert entry.first("X") == SECRET
    assert entry.values("objectclass") == [b"computer"]


def test_ldbsearch_output_with_folding_comments_and_referrals() -> None:
    # Given output as ldbsearch prints it
    value = base64.b64encode(bytes(range(200))).decode()
    folded = "\n ".join(value[i : i + 70] for i in range(0, len(value), 70))
    text = (
        "# record 1\n"
        "dn: CN=PC01,CN=Computers,DC=t,DC=lan\n"
        "objectClass: top\n"
        "objectClass: computer\n"
        "userAccountControl: 4096\n"
        f"supplementalCredentials:: {folded}\n"
        "\n"
        "# Referral\n"
        "ref: ldap:///CN=Configuration,DC=t,DC=lan\n"
        "\n"
        "# returned 2 records\n# 1 entries\n# 1 referrals\n"
    ).encode()
    # When parsed
    (entry,) = parse_ldif(text)
    # Then the entry, its multi-valued attribute and the unfolded binary value are intact
    assert entry.dn == "CN=PC01,CN=Computers,DC=t,DC=lan"
    assert entry.values("objectClass") == [b"top", b"computer"]
    assert entry.first("supplementalcredentials") == bytes(range(200))
    assert entry.first("unicodePwd") is None


@pytest.mark.parametrize(
    "text",
    [b"objectClass: top\n", b"dn: CN=x\nattr:< file:///etc/shadow\n", b"dn: CN=x\na:: !!!\n"],
)
def test_unexpected_ldif_is_an_error(text: bytes) -> None:
    with pytest.raises(LdifError):
        parse_ldif(text)
