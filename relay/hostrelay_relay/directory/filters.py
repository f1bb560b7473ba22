"""LDAP search filters: a strict RFC 4515 check for operator-supplied filters, and safe building."""

from __future__ import annotations

import re

from ldap3.utils.conv import escape_bytes as ldap3_escape_bytes
from ldap3.utils.conv import escape_filter_chars

from hostrelay_relay.directory.errors import DirectoryError

MAX_FILTER_LENGTH = 4096
MAX_FILTER_DEPTH = 32

_ATTRIBUTE = re.compile(r"(?:[A-Za-z][A-Za-z0-9-]*|[0-9]+(?:\.[0-9]+)+)(?:;[A-Za-z0-9-]+)*")
_OID = re.compile(r"[A-Za-z][A-Za-z0-9-]*|[0-9]+(?:\.[0-9]+)+")
_HEX = frozenset("0123456789abcdefABCDEF")
# Characters an assertion value may hold unescaped (RFC 4515 UTF1SUBSET / UTFMB).
_VALUE_FORBIDDEN = frozenset("\x00()*\\")


class _FilterParser:
    """Recursive-descent parser that accepts exactly the RFC 4515 grammar, nothing more."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, why: str) -> DirectoryError:
        return DirectoryError("ldap_filter", f"invalid LDAP filter at character {self.pos}: {why}")

    def expect(self, char: str) -> None:
        if self.pos >= len(self.text) or self.text[self.pos] != char:
            raise self.fail(f"expected {char!r}")
        self.pos += 1

    def parse(self) -> None:
        self.filter(depth=0)
        if self.pos != len(self.text):
            raise self.fail("unexpected text after the end of the filter")

    def filter(self, depth: int) -> None:
        if depth > MAX_FILTER_DEPTH:
            raise self.fail(f"nested deeper than {MAX_FILTER_DEPTH} levels")
        self.expect("(")
        char = self.text[self.pos] if self.pos < len(self.text) else ""
        if char in ("&", "|"):
            self.pos += 1
            if self.peek() != "(":
                raise self.fail(f"'{char}' needs at least one filter")
            while self.peek() == "(":
                self.filter(depth + 1)
        elif char == "!":
            self.pos += 1
            self.filter(depth + 1)
        else:
            self.item()
        self.expect(")")

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def item(self) -> None:
        match = _ATTRIBUTE.match(self.text, self.pos)
        if match is None:
            if self.peek() == ":":
                self.extensible(has_attribute=False)
                return
            raise self.fail("expected an attribute name")
        self.pos = match.end()
        operator = self.peek()
        if operator == ":":
            self.extensible(has_attribute=True)
            return
        if operator in ("~", ">", "<"):
            self.pos += 1
            self.expect("=")
            self.value(allow_star=False)
            return
        self.expect("=")
        self.value(allow_star=True)

    def extensible(self, *, has_attribute: bool) -> None:
        rule_seen = False
        if self.text.startswith(":dn", self.pos) and self.text[self.pos + 3 : self.pos + 4] == ":":
            self.pos += 3
        if self.text.startswith(":=", self.pos):
            if not has_attribute:
                raise self.fail("an extensible match needs an attribute or a matching rule")
        else:
            self.expect(":")
            match = _OID.match(self.text, self.pos)
            if match is None:
                raise self.fail("expected a matching rule")
            self.pos = match.end()
            rule_seen = True
        if not (has_attribute or rule_seen):
            raise self.fail("an extensible match needs an attribute or a matching rule")
        self.expect(":")
        self.expect("=")
        self.value(allow_star=False)

    def value(self, *, allow_star: bool) -> None:
        text = self.text
        while self.pos < len(text) and text[self.pos] != ")":
            char = text[self.pos]
            if char == "\\":
                pair = text[self.pos + 1 : self.pos + 3]
                if len(pair) != 2 or not set(pair) <= _HEX:
                    raise self.fail("a backslash must be followed by two hex digits")
                self.pos += 3
            elif char == "*" and allow_star:
                self.pos += 1
            elif char in _VALUE_FORBIDDEN:
                raise self.fail(f"character {char!r} must be escaped as \\{ord(char):02x}")
            else:
                self.pos += 1


def check_filter(text: str) -> str:
    """Return `text` if it is one well-formed RFC 4515 filter, else raise DirectoryError."""
    if len(text) > MAX_FILTER_LENGTH:
        raise DirectoryError(
            "ldap_filter", f"LDAP filter longer than {MAX_FILTER_LENGTH} characters"
        )
    _FilterParser(text).parse()
    return text


def escape_value(value: str) -> str:
    """Escape a value for use inside a filter assertion (RFC 4515 section 3)."""
    escaped: str = escape_filter_chars(value)
    return escaped


def escape_bytes(value: bytes) -> str:
    """Escape every byte of a binary value, e.g. an AD objectGUID, as \\hh."""
    escaped: str = ldap3_escape_bytes(value)
    return escaped


def all_of(*filters: str) -> str:
    """AND of already-checked filters."""
    return filters[0] if len(filters) == 1 else "(&" + "".join(filters) + ")"


def any_of(*filters: str) -> str:
    """OR of already-checked filters."""
    return filters[0] if len(filters) == 1 else "(|" + "".join(filters) + ")"
