"""Models of the enrollment routes: an enrollment to create, and what the new host gets."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field, StrictBool

from hostrelay.api.models.base import FromDomain, RequestModel
from hostrelay.domain.tags import Tags
from hostrelay_contract.names import HostName
from hostrelay_contract.text_patterns import TextPattern

# An enrollment token as `hostrelay hosts enroll` prints it: a prefix and 256 random bits.
ENROLLMENT_TOKEN_PATTERN = r"^hre_[A-Za-z0-9_-]{43}$"  # noqa: S105 - a pattern, not a secret
ENROLLMENT_TOKEN = TextPattern(
    ENROLLMENT_TOKEN_PATTERN, "an enrollment token: 'hre_' and 43 letters, digits, '_' or '-'"
)
ROLE_NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,31}$"
ROLE_NAME = TextPattern(
    ROLE_NAME_PATTERN,
    "1-32 lower-case letters, digits, '_', '.' or '-', starting with a letter or digit",
)
RoleName = Annotated[str, ROLE_NAME]


class EnrollmentCreateRequest(RequestModel):
    """A one-shot enrollment of a host; the response carries the command to paste on it."""

    host: HostName = Field(description="The new host's name: a lowercase DNS label")
    roles: list[RoleName] | None = Field(default=None, max_length=16)
    replace: StrictBool = Field(
        default=False,
        description="Re-enroll an existing host; its current certificate is revoked",
    )
    tags: Tags | None = Field(
        default=None,
        description="The host's tags once it enrolls; unset: a re-enrolled host keeps its own",
    )


class EnrollmentCreated(FromDomain):
    host: str
    token: str = Field(description="One-shot enrollment token: shown this once")
    command: str = Field(description="Paste this as root on the new host")
    expires_at: datetime


class EnrollCsrRequest(RequestModel):
    """What `hostrelay-relay enroll` sends: the host name and a CSR for the key it made."""

    host: HostName
    csr: str = Field(min_length=1, max_length=16 * 1024, description="PEM, CN = host")


class EnrollmentBundleOut(FromDomain):
    """Everything a relay needs to connect; returned once, for the host's own CSR."""

    host: str
    certificate_pem: str
    certificate_expires_at: datetime
    ca_pem: str = Field(description="CA bundle that signed the broker's server certificate")
    broker_host: str
    broker_port: int
    envelope_public_key_pem: str = Field(description="Ed25519 key that signs job envelopes")
    control_plane_url: str
