"""LDAP connections through ldap3: pure Python, so the relay installs without a compiler."""

from __future__ import annotations

import ipaddress
import logging
import math
import ssl
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import ldap3
from ldap3.core import exceptions as errors

from hostrelay_relay.directory.connection import (
    CANCEL_POLL_S,
    CHUNK_ENTRIES,
    ConnectionSpec,
    FailureKind,
    LdapConnection,
    Modification,
    RawAttributes,
    RawEntry,
    failure,
    stalled,
)
from hostrelay_relay.directory.credentials import LDAP_DEFAULT_PORTS
from hostrelay_relay.directory.errors import DirectoryError

log = logging.getLogger(__name__)

# Plain dicts for entries: EntryParser evens out the case of attribute names itself, and
# ldap3's case-insensitive dict costs about a fifth of a sync's time (bench/ldap_sync.py).
ldap3.set_config_parameter("CASE_INSENSITIVE_ATTRIBUTE_NAMES", False)

PAGED_RESULTS_OID = "1.2.840.113556.1.4.319"
_OPERATIONS = {"add": ldap3.MODIFY_ADD, "delete": ldap3.MODIFY_DELETE}
# ldap3 error class → what went wrong; the first match wins (subclasses first).
_KINDS: tuple[tuple[type[Exception] | tuple[type[Exception], ...], FailureKind], ...] = (
    ((errors.LDAPStartTLSError,), "start_tls"),
    ((errors.LDAPCertificateError, errors.LDAPSSLConfigurationError), "tls"),
    # Failing to connect (refused, no route, TLS handshake) is "down", even on a timeout.
    ((errors.LDAPSocketOpenError,), "down"),
    # ldap3 merges the socket's own exception into its class: a read timeout is a TimeoutError.
    ((errors.LDAPResponseTimeoutError, TimeoutError), "timeout"),
    ((errors.LDAPCommunicationError, errors.LDAPSessionTerminatedByServerError), "down"),
    ((errors.LDAPInvalidCredentialsResult, errors.LDAPInappropriateAuthenticationResult), "auth"),
    (
        (errors.LDAPStrongerAuthRequiredResult, errors.LDAPConfidentialityRequiredResult),
        "needs_tls",
    ),
    ((errors.LDAPInvalidFilterError,), "filter"),
    ((errors.LDAPNoSuchObjectResult,), "no_such_object"),
    ((errors.LDAPInsufficientAccessRightsResult,), "access"),
    ((errors.LDAPUnavailableCriticalExtensionResult,), "unsupported"),
    ((errors.LDAPSizeLimitExceededResult, errors.LDAPAdminLimitExceededResult), "limit"),
    ((errors.LDAPObjectClassViolationResult, errors.LDAPConstraintViolationResult), "rejected"),
)


def _describe(error: errors.LDAPException) -> str:
    if isinstance(error, errors.LDAPOperationResult):
        desc = str(error.description or type(error).__name__)
        info = str(error.message or "").strip()
        return f"{desc} ({info})" if info else desc
    return str(error) or type(error).__name__


def translate_error(
    error: errors.LDAPException, spec: ConnectionSpec, action: str
) -> DirectoryError:
    """Map an ldap3 exception to a DirectoryError with a stable code."""
    other: FailureKind = "other"
    kind = next((kind for classes, kind in _KINDS if isinstance(error, classes)), other)
    return failure(kind, spec, action, _describe(error))


@contextmanager
def ldap_errors(spec: ConnectionSpec, action: str) -> Iterator[None]:
    """Turn ldap3 exceptions raised inside the block into DirectoryError."""
    try:
        yield
    except errors.LDAPException as error:
        raise translate_error(error, spec, action) from None


class _Stalled(Exception):
    """The server sent nothing for operation_timeout_s (not an OSError: ldap3 lets it through)."""


class _WatchedSocket:
    """The bound connection's socket: waits in CANCEL_POLL_S steps so a search can be canceled,
    and gives up after operation_timeout_s of silence (ldap3 itself would block until then)."""

    def __init__(self, wrapped: Any, timeout_s: float) -> None:
        self._wrapped = wrapped
        self._timeout_s = timeout_s
        self.checkpoint: Callable[[], None] | None = None
        wrapped.settimeout(min(CANCEL_POLL_S, timeout_s))

    def recv(self, size: int) -> bytes:
        deadline = time.monotonic() + self._timeout_s
        while True:
            try:
                data: bytes = self._wrapped.recv(size)
                return data
            except TimeoutError:
                if time.monotonic() >= deadline:
                    raise _Stalled from None
                if self.checkpoint is not None:
                    self.checkpoint()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._wrapped, name)


class Ldap3Connection(LdapConnection):
    client_name = "ldap3"

    def __init__(self, spec: ConnectionSpec, raw: ldap3.Connection) -> None:
        super().__init__(spec)
        self._raw = raw
        self._socket: _WatchedSocket | None = None

    def watch_socket(self) -> None:
        self._socket = _WatchedSocket(self._raw.socket, self.spec.operation_timeout_s)
        self._raw.socket = self._socket

    def close(self) -> None:
        if self._socket is not None:
            self._socket.checkpoint = None
        try:
            self._raw.unbind()
        except (errors.LDAPException, OSError, _Stalled):
            log.debug("ldap unbind failed", extra={"url": self.spec.url})

    def _search(
        self,
        base: str,
        search_filter: str,
        scope: str,
        attributes: list[str],
        *,
        action: str,
        checkpoint: Callable[[], None] | None = None,
        **options: Any,
    ) -> list[dict[str, Any]]:
        if self._socket is not None:
            self._socket.checkpoint = checkpoint
        try:
            with ldap_errors(self.spec, action):
                self._raw.search(
                    base,
                    search_filter,
                    scope,
                    dereference_aliases=ldap3.DEREF_NEVER,
                    attributes=attributes,
                    **options,
                )
        except _Stalled:
            raise stalled(self.spec, base) from None
        finally:
            if self._socket is not None:
                self._socket.checkpoint = None
        response: list[dict[str, Any]] = self._raw.response or []
        return response

    def root_dse(self, attributes: list[str]) -> RawAttributes:
        found = self._search(
            "", "(objectClass=*)", ldap3.BASE, attributes, action="reading the root DSE"
        )
        return _first_entry(found) or {}

    def read_entry(self, dn: str, attributes: list[str]) -> RawAttributes | None:
        try:
            found = self._search(
                dn, "(objectClass=*)", ldap3.BASE, attributes, action=f"reading {dn!r}"
            )
        except DirectoryError as error:
            if error.code == "ldap_no_such_object":
                return None
            raise
        return _first_entry(found)

    def paged_search(
        self,
        base_dn: str,
        search_filter: str,
        attributes: list[str],
        page_size: int,
        checkpoint: Callable[[], None] | None = None,
    ) -> Iterator[list[RawEntry]]:
        cookie: bytes | None = None
        chunk: list[RawEntry] = []
        while True:
            if checkpoint is not None:
                checkpoint()
            found = self._search(
                base_dn,
                search_filter,
                ldap3.SUBTREE,
                attributes,
                action=f"searching {base_dn!r}",
                checkpoint=checkpoint,
                paged_size=page_size,
                paged_cookie=cookie,
            )
            for item in found:
                if item.get("type") == "searchResEntry":
                    chunk.append((item["dn"], item["raw_attributes"]))
                    if len(chunk) >= CHUNK_ENTRIES:
                        yield chunk
                        chunk = []
            controls = (self._raw.result or {}).get("controls") or {}
            cookie = controls.get(PAGED_RESULTS_OID, {}).get("value", {}).get("cookie") or None
            if not cookie:
                break
        if chunk:
            yield chunk

    def modify(self, dn: str, changes: list[Modification]) -> None:
        native: dict[str, list[tuple[str, list[bytes]]]] = {}
        for operation, name, values in changes:
            native.setdefault(name, []).append((_OPERATIONS[operation], values))
        try:
            with ldap_errors(self.spec, f"modifying {dn!r}"):
                self._raw.modify(dn, native)
        except _Stalled:
            raise failure("timeout", self.spec, f"modifying {dn!r}", "") from None


def _first_entry(found: list[dict[str, Any]]) -> RawAttributes | None:
    for item in found:
        if item.get("type") == "searchResEntry":
            raw: RawAttributes = item["raw_attributes"]
            return raw
    return None


def _ip_literal(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None


def _check_ip_certificate(spec: ConnectionSpec, raw: Any, address: str) -> None:
    """The verified server certificate must name `address` as an IP subjectAltName.

    ldap3 checks host names itself, after the handshake; on Python 3.12+ (no
    ssl.match_hostname) it uses a backport that refuses every IP address. For a server named
    by address, ldap3's check is skipped and this one runs instead, before anything is sent.
    """
    certificate = raw.socket.getpeercert() if raw.socket is not None else None
    names = (certificate or {}).get("subjectAltName", ())
    if not any(
        kind == "IP Address" and _ip_literal(value.strip()) == address for kind, value in names
    ):
        raise DirectoryError(
            "ldap_tls",
            f"TLS handshake with {spec.url} failed: the server certificate does not name {address}",
        )


def open_connection(spec: ConnectionSpec, password: str) -> LdapConnection:
    """Connect, secure and bind through ldap3."""
    # Host and port apart: ldap3 misreads a URL that ends in "/" (which check_server_url allows).
    parts = urlsplit(spec.url)
    address = _ip_literal(parts.hostname or "") if spec.verify_tls else None
    tls = ldap3.Tls(
        validate=ssl.CERT_REQUIRED if spec.verify_tls else ssl.CERT_NONE,
        ca_certs_file=str(spec.ca_file) if spec.ca_file is not None else None,
        # "*": skip ldap3's own name check for an IP address (see _check_ip_certificate)
        valid_names=["*"] if address is not None else None,
    )
    with ldap_errors(spec, "connecting"):
        server = ldap3.Server(
            parts.hostname or "",
            port=parts.port or LDAP_DEFAULT_PORTS[parts.scheme],
            use_ssl=parts.scheme == "ldaps",
            tls=tls,
            get_info=ldap3.NONE,
            connect_timeout=spec.connect_timeout_s,
        )
        raw = ldap3.Connection(
            server,
            user=spec.credential.bind_dn,
            password=password,
            authentication=ldap3.SIMPLE,
            client_strategy=ldap3.SYNC,
            auto_bind=ldap3.AUTO_BIND_NONE,
            auto_referrals=False,
            raise_exceptions=True,
            # No schema is read, so there is nothing to check names against; skipping the
            # check also skips formatting every value, which directory code never reads.
            check_names=False,
            # Whole seconds: ldap3 also sets SO_RCVTIMEO from it, which takes an integer.
            receive_timeout=max(1, math.ceil(spec.operation_timeout_s)),
            return_empty_attributes=False,
        )
    connection = Ldap3Connection(spec, raw)
    try:
        with ldap_errors(spec, "connecting"):
            raw.open()
        if spec.start_tls:
            with ldap_errors(spec, "starting TLS"):
                raw.start_tls()
        if address is not None and (spec.start_tls or parts.scheme == "ldaps"):
            _check_ip_certificate(spec, raw, address)
        with ldap_errors(spec, "binding"):
            raw.bind()
        connection.watch_socket()
    except DirectoryError:
        connection.close()
        raise
    return connection
