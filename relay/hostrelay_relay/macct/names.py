"""Validation of computer, image and school names before they reach filters, DNs or paths."""

from __future__ import annotations

import re

MAX_COMPUTER_NAME = 15
DEFAULT_SCHOOL = "default-school"

# sAMAccountName and NetBIOS forbid these; control characters are rejected separately.
_FORBIDDEN_IN_COMPUTER = frozenset(',+"\\<>;=/*?:|[]')
_IMAGE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_SCHOOL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


def normalize_computer_name(value: str) -> str:
    """Return the NetBIOS computer name in upper case, without the account's trailing `$`.

    Accepts `pc01`, `PC01` and `PC01$`; rejects anything a sAMAccountName or NetBIOS name
    cannot hold (1-15 printable ASCII characters, none of `,+"\\<>;=/*?:|[]`, no leading or
    trailing space or dot, not only digits and dots).
    """
    name = value[:-1] if value.endswith("$") else value
    if not 1 <= len(name) <= MAX_COMPUTER_NAME:
        raise ValueError(f"computer name must be 1-{MAX_COMPUTER_NAME} characters (without '$')")
    bad = sorted({ch for ch in name if ch in _FORBIDDEN_IN_COMPUTER or not " " <= ch <= "~"})
    if bad:
        shown = ", ".join(repr(ch) for ch in bad)
        raise ValueError(f"computer name contains forbidden characters: {shown}")
    if name[0] in " ." or name[-1] in " .":
        raise ValueError("computer name must not start or end with a space or a dot")
    if name.strip(".").isdigit():
        raise ValueError("computer name must not consist of digits and dots only")
    return name.upper()


def account_name(computer: str) -> str:
    """The sAMAccountName of a (normalized) computer: `PC01` → `PC01$`."""
    return f"{computer}$"


def check_image_name(value: str) -> str:
    """An image name becomes a file name under state_dir: letters, digits, `._-`, no `..`."""
    if not _IMAGE_NAME.fullmatch(value) or ".." in value:
        raise ValueError(
            "image must be 1-128 of A-Z, a-z, 0-9, '.', '_', '-', start with a letter or "
            "digit and not contain '..'"
        )
    return value


def check_school_name(value: str) -> str:
    """A linuxmuster school name (the OU under OU=SCHOOLS): letters, digits, `_-`."""
    if not _SCHOOL_NAME.fullmatch(value):
        raise ValueError(
            "school must be 1-64 of A-Z, a-z, 0-9, '_', '-' and start with a letter or digit"
        )
    return value
