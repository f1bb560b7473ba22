"""A bound LDAP connection, whichever client library carries it: what sync and group code use."""

from __future__ import annotations

import ipaddress
import socket
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from hostrelay_contract.jobs.ldap import LdapConnectionParams
from hostrelay_relay.directory.clients import client_opener
from hostrelay_relay.directory.credentials import LDAP_DEFAULT_PORTS, bound_endpoint
from hostrelay_relay.directory.errors import DirectoryError
from hostrelay_relay.settings import LdapCredential, LdapSettings

RawAttributes = dict[str, list[bytes]]
RawEntry = tuple[str, RawAttributes]
# One change of a modify: add or delete these values of the attribute.
Modification = tuple[Literal["add", "delete"], str, list[bytes]]
CHUNK_ENTRIES = 250
CANCEL_POLL_S = 1.0

# What went wrong, as each client library's errors are classified; `failure` words it.
FailureKind = Literal[
    "down",
    "start_tls",
    "tls",
    "timeout",
    "auth",
    "needs_tls",
    "filter",
    "no_such_object",
    "access",
    "unsupported",
    "limit",
    "rejected",
    "other",
]


@dataclass(frozen=True)
class ConnectionSpec:
    """Everything needed to reach and bind to one directory server."""

    url: str
    credential_name: str
    credential: LdapCredential
    start_tls: bool = False
    verify_tls: bool = True
    ca_file: Path | None = None
    connect_timeout_s: float = 10.0
    operation_timeout_s: float = 120.0
    allow_plaintext_bind: bool = False

    @property
    def uses_tls(self) -> bool:
        return self.url.startswith("ldaps:") or self.start_tls


def _tcp_reachable(url: str, timeout_s: float) -> bool:
    parts = urlsplit(url)
    port = parts.port or LDAP_DEFAULT_PORTS.get(parts.scheme, 389)
    try:
        with socket.create_connection((parts.hostname or "", port), timeout=timeout_s):
            return True
    except OSError:
        return False


def failure(kind: FailureKind, spec: ConnectionSpec, action: str, what: str) -> DirectoryError:
    """The DirectoryError (stable code, operator's message) for a classified client error."""
    untrusted = (
        "the server certificate is not trusted by the configured CA (ldap.ca_file)"
        " or does not match the host name"
    )
    if kind == "down":
        if spec.uses_tls and _tcp_reachable(spec.url, spec.connect_timeout_s):
            kind = "tls"
        else:
            return DirectoryError(
                "ldap_unreachable",
                f"cannot reach {spec.url} while {action}: {what}",
                retryable=True,
            )
    if kind == "tls":
        return DirectoryError(
            "ldap_tls", f"TLS handshake with {spec.url} failed while {action}: {untrusted}"
        )
    if kind == "start_tls":
        return DirectoryError(
            "ldap_tls", f"StartTLS with {spec.url} failed while {action}: {untrusted}"
        )
    if kind == "timeout":
        return DirectoryError(
            "ldap_timeout", f"{spec.url} did not answer in time while {action}", retryable=True
        )
    if kind == "auth":
        return DirectoryError(
            "ldap_auth",
            f"bind as credential {spec.credential_name!r} to {spec.url} was refused: {what}",
        )
    if kind == "needs_tls":
        return DirectoryError("ldap_tls", f"{spec.url} requires an encrypted connection: {what}")
    if kind == "filter":
        return DirectoryError("ldap_filter", f"the server rejected the search filter: {what}")
    if kind == "no_such_object":
        return DirectoryError("ldap_no_such_object", f"no such entry while {action}: {what}")
    if kind == "access":
        return DirectoryError(
            "ldap_access",
            f"credential {spec.credential_name!r} may not do this while {action}: {what}",
        )
    if kind == "unsupported":
        return DirectoryError(
            "ldap_unsupported", f"{spec.url} does not support paged results: {what}"
        )
    if kind == "limit":
        return DirectoryError("ldap_limit", f"the server limited the result while {action}: {what}")
    if kind == "rejected":
        return DirectoryError("ldap_rejected", f"the server refused the change: {what}")
    return DirectoryError("ldap_error", f"LDAP error while {action}: {what}")


def stalled(spec: ConnectionSpec, base_dn: str) -> DirectoryError:
    return DirectoryError(
        "ldap_timeout",
        f"{spec.url} sent nothing for {spec.operation_timeout_s:g} s while searching {base_dn!r}",
        retryable=True,
    )


class LdapConnection(ABC):
    """One bound connection. Use `open_connection`; close with `close()` or a `with` block."""

    client_name: str

    def __init__(self, spec: ConnectionSpec) -> None:
        self.spec = spec

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> LdapConnection:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @abstractmethod
    def root_dse(self, attributes: list[str]) -> RawAttributes: ...

    @abstractmethod
    def read_entry(self, dn: str, attributes: list[str]) -> RawAttributes | None:
        """The entry at `dn`, or None when there is none."""

    @abstractmethod
    def paged_search(
        self,
        base_dn: str,
        search_filter: str,
        attributes: list[str],
        page_size: int,
        checkpoint: Callable[[], None] | None = None,
    ) -> Iterator[list[RawEntry]]:
        """Yield chunks of (dn, attributes) of a subtree search (RFC 2696 paged results).

        Referrals are skipped. A server silent for operation_timeout_s fails as ldap_timeout;
        `checkpoint` is called at least every CANCEL_POLL_S while waiting (it may raise).
        """

    @abstractmethod
    def modify(self, dn: str, changes: list[Modification]) -> None: ...

    def read_ranged(self, dn: str, attribute: str, first: int) -> Iterator[list[bytes]]:
        """The rest of a multi-valued attribute AD sent in ranges (`member;range=0-1499`)."""
        start = first
        while True:
            wanted = f"{attribute};range={start}-*"
            found = self.read_entry(dn, [wanted])
            if not found:
                return
            key, values = next(
                ((k, v) for k, v in found.items() if k.lower().startswith(attribute.lower() + ";")),
                ("", []),
            )
            if not key:
                return
            yield values
            end = key.rsplit("-", 1)[-1]
            if end == "*":
                return
            start = int(end) + 1


def connection_spec(
    params: LdapConnectionParams, credential: LdapCredential, settings: LdapSettings
) -> ConnectionSpec:
    """How to reach the server: one of the credential's own, with its TLS and relay timeouts."""
    endpoint = bound_endpoint(params, credential)
    if settings.ca_file is not None and not settings.ca_file.is_file():
        raise DirectoryError("ldap_tls", f"ldap.ca_file {str(settings.ca_file)!r} does not exist")
    return ConnectionSpec(
        url=endpoint.url,
        credential_name=params.credential,
        credential=credential,
        # ldaps:// is TLS already; StartTLS on top of it would only fail.
        start_tls=params.start_tls and endpoint.url.startswith("ldap:"),
        verify_tls=endpoint.verify_tls,
        ca_file=settings.ca_file,
        connect_timeout_s=settings.connect_timeout_s,
        operation_timeout_s=settings.operation_timeout_s,
        allow_plaintext_bind=settings.allow_plaintext_bind,
    )


def _password(spec: ConnectionSpec) -> str:
    if not spec.uses_tls and not spec.allow_plaintext_bind and not is_loopback_url(spec.url):
        raise DirectoryError(
            "ldap_tls",
            f"refusing to send the password of credential {spec.credential_name!r} unencrypted"
            f" to {spec.url}: use ldaps:// or start_tls (or set ldap.allow_plaintext_bind)",
        )
    try:
        password = spec.credential.read_password()
    except OSError as error:
        raise DirectoryError(
            "ldap_credential",
            f"cannot read the password file of credential {spec.credential_name!r}:"
            f" {error.strerror}",
        ) from None
    if not password:
        # An empty password makes a simple bind anonymous, which would "succeed" silently.
        raise DirectoryError(
            "ldap_credential", f"credential {spec.credential_name!r} has an empty password"
        )
    return password


def open_connection(spec: ConnectionSpec, client: str = "auto") -> LdapConnection:
    """Connect, secure and bind with the chosen client library (see `clients`); raise
    DirectoryError with a clear code when any step fails."""
    opener = client_opener(client)
    return opener(spec, _password(spec))


def is_loopback_url(url: str) -> bool:
    """True when `url` names this machine (a plaintext bind there never crosses a network)."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
