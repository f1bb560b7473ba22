"""A bound LDAP connection (python-ldap): TLS, paged search, modify, errors mapped to job codes."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import ldap
from ldap.controls import SimplePagedResultsControl

from hostrelay_relay.directory.errors import DirectoryError
from hostrelay_relay.directory.names import is_loopback_url
from hostrelay_relay.directory.params import LdapConnectionParams
from hostrelay_relay.settings import LdapCredential, LdapSettings

log = logging.getLogger(__name__)

RawAttributes = dict[str, list[bytes]]
RawEntry = tuple[str, RawAttributes]
CHUNK_ENTRIES = 250
CANCEL_POLL_S = 1.0


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


def _describe(error: ldap.LDAPError) -> str:
    detail = error.args[0] if error.args and isinstance(error.args[0], dict) else {}
    desc = str(detail.get("desc", type(error).__name__))
    info = str(detail.get("info", "")).strip()
    if info and info != "(unknown error code)":
        return f"{desc} ({info})"
    return desc


def _tcp_reachable(url: str, timeout_s: float) -> bool:
    parts = urlsplit(url)
    port = parts.port or (636 if parts.scheme == "ldaps" else 389)
    try:
        with socket.create_connection((parts.hostname or "", port), timeout=timeout_s):
            return True
    except OSError:
        return False


def translate_error(error: ldap.LDAPError, spec: ConnectionSpec, action: str) -> DirectoryError:
    """Map a python-ldap exception to a DirectoryError with a stable code."""
    what = _describe(error)
    if isinstance(error, ldap.SERVER_DOWN):
        tls_in_play = spec.url.startswith("ldaps:") or spec.start_tls
        if tls_in_play and _tcp_reachable(spec.url, spec.connect_timeout_s):
            return DirectoryError(
                "ldap_tls",
                f"TLS handshake with {spec.url} failed while {action}: the server certificate is"
                " not trusted by the configured CA (ldap.ca_file) or does not match the host name",
            )
        return DirectoryError(
            "ldap_unreachable", f"cannot reach {spec.url} while {action}: {what}", retryable=True
        )
    if isinstance(error, ldap.CONNECT_ERROR):
        return DirectoryError(
            "ldap_tls",
            f"StartTLS with {spec.url} failed while {action}: the server certificate is not"
            " trusted by the configured CA (ldap.ca_file) or does not match the host name",
        )
    if isinstance(error, ldap.TIMEOUT):
        return DirectoryError(
            "ldap_timeout", f"{spec.url} did not answer in time while {action}", retryable=True
        )
    if isinstance(error, ldap.INVALID_CREDENTIALS | ldap.INAPPROPRIATE_AUTH):
        return DirectoryError(
            "ldap_auth",
            f"bind as credential {spec.credential_name!r} to {spec.url} was refused: {what}",
        )
    if isinstance(error, ldap.STRONG_AUTH_REQUIRED | ldap.CONFIDENTIALITY_REQUIRED):
        return DirectoryError("ldap_tls", f"{spec.url} requires an encrypted connection: {what}")
    if isinstance(error, ldap.FILTER_ERROR):
        return DirectoryError("ldap_filter", f"the server rejected the search filter: {what}")
    if isinstance(error, ldap.NO_SUCH_OBJECT):
        return DirectoryError("ldap_no_such_object", f"no such entry while {action}: {what}")
    if isinstance(error, ldap.INSUFFICIENT_ACCESS):
        return DirectoryError(
            "ldap_access",
            f"credential {spec.credential_name!r} may not do this while {action}: {what}",
        )
    if isinstance(error, ldap.UNAVAILABLE_CRITICAL_EXTENSION):
        return DirectoryError(
            "ldap_unsupported", f"{spec.url} does not support paged results: {what}"
        )
    if isinstance(error, ldap.SIZELIMIT_EXCEEDED | ldap.ADMINLIMIT_EXCEEDED):
        return DirectoryError("ldap_limit", f"the server limited the result while {action}: {what}")
    if isinstance(error, ldap.OBJECT_CLASS_VIOLATION | ldap.CONSTRAINT_VIOLATION):
        return DirectoryError("ldap_rejected", f"the server refused the change: {what}")
    return DirectoryError("ldap_error", f"LDAP error while {action}: {what}")


@contextmanager
def ldap_errors(spec: ConnectionSpec, action: str) -> Iterator[None]:
    """Turn python-ldap exceptions raised inside the block into DirectoryError."""
    try:
        yield
    except ldap.LDAPError as error:
        raise translate_error(error, spec, action) from None


class LdapConnection:
    """One bound connection. Use `open_connection`; close with `close()` or a `with` block."""

    def __init__(self, spec: ConnectionSpec, raw: Any) -> None:
        self.spec = spec
        self._raw = raw

    def close(self) -> None:
        try:
            self._raw.unbind_s()
        except ldap.LDAPError:
            log.debug("ldap unbind failed", extra={"url": self.spec.url})

    def __enter__(self) -> LdapConnection:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def root_dse(self, attributes: list[str]) -> RawAttributes:
        with ldap_errors(self.spec, "reading the root DSE"):
            found = self._raw.search_s("", ldap.SCOPE_BASE, "(objectClass=*)", attributes)
        return cast(RawAttributes, found[0][1]) if found else {}

    def read_entry(self, dn: str, attributes: list[str]) -> RawAttributes | None:
        """The entry at `dn`, or None when there is none."""
        try:
            found = self._raw.search_s(dn, ldap.SCOPE_BASE, "(objectClass=*)", attributes)
        except ldap.NO_SUCH_OBJECT:
            return None
        except ldap.LDAPError as error:
            raise translate_error(error, self.spec, f"reading {dn!r}") from None
        return cast(RawAttributes, found[0][1]) if found else None

    def paged_search(
        self,
        base_dn: str,
        search_filter: str,
        attributes: list[str],
        page_size: int,
        checkpoint: Callable[[], None] | None = None,
    ) -> Iterator[list[RawEntry]]:
        """Yield chunks of (dn, attributes) of a subtree search (RFC 2696 paged results).

        Entries are taken as they arrive, so the server produces the next ones while the
        caller works on a chunk. Referrals are skipped.
        """
        control = SimplePagedResultsControl(True, size=page_size, cookie="")
        chunk: list[RawEntry] = []
        while True:
            if checkpoint is not None:
                checkpoint()
            with ldap_errors(self.spec, f"searching {base_dn!r}"):
                msgid = self._raw.search_ext(
                    base_dn, ldap.SCOPE_SUBTREE, search_filter, attributes, serverctrls=[control]
                )
            while True:
                kind, data, controls = self._next_message(msgid, base_dn, checkpoint)
                if kind == ldap.RES_SEARCH_ENTRY:
                    chunk.extend(data)
                    if len(chunk) >= CHUNK_ENTRIES:
                        yield chunk
                        chunk = []
                elif kind != ldap.RES_SEARCH_REFERENCE:
                    break
            cookie = next((c.cookie for c in controls if c.controlType == control.controlType), b"")
            if not cookie:
                break
            control.cookie = cookie
        if chunk:
            yield chunk

    def _next_message(
        self, msgid: int, base_dn: str, checkpoint: Callable[[], None] | None
    ) -> tuple[int, list[RawEntry], list[Any]]:
        """One search message; waits at most operation_timeout_s, checking for cancellation.

        One message per call is cheaper than all=1 in python-ldap (which gathers a whole page
        first), and the server keeps sending while the caller works.
        """
        deadline = time.monotonic() + self.spec.operation_timeout_s
        while True:
            # Never 0: python-ldap treats a zero timeout as a poll that returns no message.
            wait = max(0.05, min(CANCEL_POLL_S, deadline - time.monotonic()))
            try:
                kind, data, _, controls = self._raw.result3(msgid, all=0, timeout=wait)
            except ldap.TIMEOUT:
                if time.monotonic() >= deadline:
                    self._raw.abandon(msgid)
                    raise DirectoryError(
                        "ldap_timeout",
                        f"{self.spec.url} sent nothing for {self.spec.operation_timeout_s:g} s"
                        f" while searching {base_dn!r}",
                        retryable=True,
                    ) from None
                if checkpoint is not None:
                    checkpoint()
                continue
            except ldap.LDAPError as error:
                raise translate_error(error, self.spec, f"searching {base_dn!r}") from None
            return kind, data, controls

    def modify(self, dn: str, changes: list[tuple[int, str, list[bytes]]]) -> None:
        with ldap_errors(self.spec, f"modifying {dn!r}"):
            self._raw.modify_ext_s(dn, changes)

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
    """How to reach the server a job names, with the relay's TLS and timeout settings."""
    if settings.ca_file is not None and not settings.ca_file.is_file():
        raise DirectoryError("ldap_tls", f"ldap.ca_file {str(settings.ca_file)!r} does not exist")
    return ConnectionSpec(
        url=params.url,
        credential_name=params.credential,
        credential=credential,
        start_tls=params.start_tls,
        verify_tls=params.verify_tls,
        ca_file=settings.ca_file,
        connect_timeout_s=settings.connect_timeout_s,
        operation_timeout_s=settings.operation_timeout_s,
        allow_plaintext_bind=settings.allow_plaintext_bind,
    )


def open_connection(spec: ConnectionSpec) -> LdapConnection:
    """Connect, secure and bind; raise DirectoryError with a clear code when any step fails."""
    uses_tls = spec.url.startswith("ldaps:") or spec.start_tls
    if not uses_tls and not spec.allow_plaintext_bind and not is_loopback_url(spec.url):
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
    with ldap_errors(spec, "connecting"):
        raw = ldap.initialize(spec.url)
        raw.set_option(ldap.OPT_PROTOCOL_VERSION, 3)
        raw.set_option(ldap.OPT_REFERRALS, 0)
        raw.set_option(ldap.OPT_NETWORK_TIMEOUT, spec.connect_timeout_s)
        raw.set_option(ldap.OPT_TIMEOUT, spec.operation_timeout_s)
        raw.set_option(
            ldap.OPT_X_TLS_REQUIRE_CERT,
            ldap.OPT_X_TLS_DEMAND if spec.verify_tls else ldap.OPT_X_TLS_NEVER,
        )
        if spec.ca_file is not None:
            raw.set_option(ldap.OPT_X_TLS_CACERTFILE, str(spec.ca_file))
        raw.set_option(ldap.OPT_X_TLS_NEWCTX, 0)  # must come last: applies the TLS options
        raw.timeout = spec.operation_timeout_s  # python-ldap's limit for every *_s call
    connection = LdapConnection(spec, raw)
    try:
        if spec.start_tls:
            with ldap_errors(spec, "starting TLS"):
                raw.start_tls_s()
        with ldap_errors(spec, "binding"):
            raw.simple_bind_s(spec.credential.bind_dn, password)
    except DirectoryError:
        connection.close()
        raise
    return connection
