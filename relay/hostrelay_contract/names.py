"""Name rules: what may name a host, computer, image, school, connector or credential.

Each rule is a pydantic type (used in params and API models) and a check function (used
where a plain string arrives: settings, file names). Types whose check is code rather than
a pattern still publish a JSON-schema `pattern`, so schema-driven clients and fuzzers
generate valid names; tests/unit/contract keeps the two in agreement.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field

from hostrelay_contract.text_patterns import TextPattern

# A DNS label in lower case: an MQTT topic level, a certificate CN, a file name on the relay.
HOST_NAME_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$"
HOST_NAME = TextPattern(
    HOST_NAME_PATTERN,
    "a DNS label: 1-63 lower-case letters, digits or '-', not starting or ending with '-'",
)
# The target of jobs the control plane runs itself (a host cannot be called that).
CLOUD_HOST = "cloud"

# An image name becomes a file name on the DC: letters, digits, `._-`, never `..`.
IMAGE_NAME_PATTERN = r"^(?!.*\.\.)[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
# A linuxmuster school (the OU under OU=SCHOOLS): no dot, which would read as a DN or path step.
SCHOOL_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
# Connector ids name state files on the relay; a ULID fits.
CONNECTOR_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$"
CONNECTOR_ID = TextPattern(
    CONNECTOR_ID_PATTERN, "1-63 letters, digits, '-' or '_', starting with a letter or digit"
)
# A credential in the relay's config (ldap.credentials.<name>).
CREDENTIAL_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"

MAX_COMPUTER_NAME = 15
# sAMAccountName and NetBIOS forbid these; control and non-ASCII characters are refused too.
_FORBIDDEN_IN_COMPUTER = frozenset(',+"\\<>;=/*?:|[]')
_DIGITS_AND_DOTS = frozenset("0123456789.")
# The same rule as normalize_computer_name, for JSON schema: 1-15 allowed characters, none
# of them a space or dot at either end, not digits and dots only, and an optional `$`.
_COMPUTER_EDGE = r"[!#-)\-0-9@-Z^-{}~]"
_COMPUTER_LAST = r"[!#%-)\-0-9@-Z^-{}~]"  # an edge that is no `$`: a final `$` is the suffix
_COMPUTER_INNER = r"[ !#-)\-.0-9@-Z^-{}~]"
COMPUTER_NAME_PATTERN = (
    r"^(?![0-9.]*\$?$)"
    rf"(?:{_COMPUTER_EDGE}(?:{_COMPUTER_INNER}{{0,13}}{_COMPUTER_EDGE})?\$"
    rf"|(?:{_COMPUTER_EDGE}{_COMPUTER_INNER}{{0,13}})?{_COMPUTER_LAST})$"
)

_IMAGE_NAME = re.compile(IMAGE_NAME_PATTERN)
_SCHOOL_NAME = re.compile(SCHOOL_NAME_PATTERN)
_CREDENTIAL_NAME = re.compile(CREDENTIAL_NAME_PATTERN)


def check_host_name(value: str) -> str:
    """A host name is one lowercase DNS label: it becomes an MQTT topic level and a cert CN."""
    return HOST_NAME.check(value, "host")


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
    if set(name) <= _DIGITS_AND_DOTS:  # it would read as an address
        raise ValueError("computer name must not consist of digits and dots only")
    return name.upper()


def account_name(computer: str) -> str:
    """The sAMAccountName of a (normalized) computer: `PC01` → `PC01$`."""
    return f"{computer}$"


def check_image_name(value: str) -> str:
    """An image name becomes a file name under state_dir: letters, digits, `._-`, no `..`."""
    if not _IMAGE_NAME.fullmatch(value):
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


def check_connector_id(value: str) -> str:
    return CONNECTOR_ID.check(value, "connector id")


def check_credential_name(value: str) -> str:
    if not _CREDENTIAL_NAME.fullmatch(value):
        raise ValueError("credential name must be 1-63 letters, digits, '.', '-' or '_'")
    return value


def _published(pattern: str, check_description: str) -> object:
    """Field metadata that shows `pattern` in the JSON schema; the check does the judging."""
    return Field(json_schema_extra={"pattern": pattern}, description=check_description)


HostName = Annotated[str, HOST_NAME]
ImageName = Annotated[
    str,
    Field(min_length=1, max_length=128),
    AfterValidator(check_image_name),
    _published(IMAGE_NAME_PATTERN, "A LINBO image: letters, digits, '.', '_', '-'; no '..'"),
]
SchoolName = Annotated[
    str,
    Field(min_length=1, max_length=64),
    AfterValidator(check_school_name),
    _published(SCHOOL_NAME_PATTERN, "A linuxmuster school: letters, digits, '_', '-'"),
]
ComputerName = Annotated[
    str,
    Field(min_length=1, max_length=MAX_COMPUTER_NAME + 1),
    AfterValidator(normalize_computer_name),
    _published(COMPUTER_NAME_PATTERN, "A NetBIOS computer name (1-15), optionally with '$'"),
]
ConnectorId = Annotated[
    str, AfterValidator(check_connector_id), _published(CONNECTOR_ID_PATTERN, "A connector's id")
]
CredentialName = Annotated[
    str,
    AfterValidator(check_credential_name),
    _published(CREDENTIAL_NAME_PATTERN, "Name of a credential in the relay's config"),
]
