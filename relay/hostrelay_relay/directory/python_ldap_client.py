"""LDAP connections through python-ldap (libldap): the fast path, where the library is installed."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, cast

import ldap
from ldap.controls import SimplePagedResultsControl

from hostrelay_relay.directory.connection import (
    CANCEL_POLL_S,
    ConnectionSpec,
    FailureKind,
    LdapConnection,
    Modification,
    RawAttributes,
    RawEntry,
    failure,
    stalled,
)
from hostrelay_relay.directory.errors import DirectoryError

log = logging.getLogger(__name__)

_OPERATIONS = {"add": ldap.MOD_ADD, "delete": ldap.MOD_DELETE}
# python-ldap error class → what went wrong; the first match wins (subclasses first).
_KINDS: tuple[tuple[type[ldap.LDAPError] | tuple[type[ldap.LDAPError], ...], FailureKind], ...] = (
    (ldap.SERVER_DOWN, "down"),
    (ldap.CONNECT_ERROR, "start_tls"),
    (ldap.TIMEOUT, "timeout"),
    ((ldap.INVALID_CREDENTIALS, ldap.INAPPROPRIATE_AUTH), "auth"),
    ((ldap.STRONG_AUTH_REQUIRED, ldap.CONFIDENTIALITY_REQUIRED), "needs_tls"),
    (ldap.FILTER_ERROR, "filter"),
    (ldap.NO_SUCH_OBJECT, "no_such_object"),
    (ldap.INSUFFICIENT_ACCESS, "access"),
    (ldap.UNAVAILABLE_CRITICAL_EXTENSION, "unsupported"),
    ((ldap.SIZELIMIT_EXCEEDED, ldap.ADMINLIMIT_EXCEEDED), "limit"),
    ((ldap.OBJECT_CLASS_VIOLATION, ldap.CONSTRAINT_VIOLATION), "rejected"),
)


def _describe(error: ldap.LDAPError) -> str:
    detail = error.args[0] if error.args and isinstance(error.args[0], dict) else {}
    desc = str(detail.get("desc", type(error).__name__))
    info = str(detail.get("info", "")).strip()
    if info and info != "(unknown error code)":
        return f"{desc} ({info})"
    return desc


def translate_error(error: ldap.LDAPError, spec: ConnectionSpec, action: str) -> DirectoryError:
    """Map a python-ldap exception to a DirectoryError with a stable code."""
    other: FailureKind = "other"
    kind = next((kind for classes, kind in _KINDS if isinstance(error, classes)), other)
    return failure(kind, spec, action, _describe(error))


@contextmanager
def ldap_errors(spec: ConnectionSpec, action: str) -> Iterator[None]:
    """Turn python-ldap exceptions raised inside the block into DirectoryError."""
    try:
        yield
    except ldap.LDAPError as error:
        raise translate_error(error, spec, action) from None


class PythonLdapConnection(LdapConnection):
    client_name = "python-ldap"

    def __init__(self, spec: ConnectionSpec, raw: Any) -> None:
        super().__init__(spec)
        self._raw = raw

    def close(self) -> None:
        try:
            self._raw.unbind_s()
        except ldap.LDAPError:
            log.debug("ldap unbind failed", extra={"url": self.spec.url})

    def root_dse(self, attributes: list[str]) -> RawAttributes:
        with ldap_errors(self.spec, "reading the root DSE"):
            found = self._raw.search_s("", ldap.SCOPE_BASE, "(objectClass=*)", attributes)
        return cast(RawAttributes, found[0][1]) if found else {}

    def read_entry(self, dn: str, attributes: list[str]) -> RawAttributes | None:
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
        # libldap converts a whole page in one call (one Python call per page, not per entry),
        # and the next page is asked for before this one is handed over, so the server produces
        # it while the caller works.
        control = SimplePagedResultsControl(True, size=page_size, cookie="")
        msgid: int | None = self._search_page(base_dn, search_filter, attributes, control)
        while msgid is not None:
            if checkpoint is not None:
                checkpoint()
            data, controls = self._whole_page(msgid, base_dn, checkpoint)
            cookie = next((c.cookie for c in controls if c.controlType == control.controlType), b"")
            msgid = None
            if cookie:
                control.cookie = cookie
                msgid = self._search_page(base_dn, search_filter, attributes, control)
            # References come as (None, urls); the relay does not chase them.
            page = [entry for entry in data if entry[0] is not None]
            if page:
                yield page

    def _search_page(
        self,
        base_dn: str,
        search_filter: str,
        attributes: list[str],
        control: SimplePagedResultsControl,
    ) -> int:
        with ldap_errors(self.spec, f"searching {base_dn!r}"):
            return cast(
                int,
                self._raw.search_ext(
                    base_dn, ldap.SCOPE_SUBTREE, search_filter, attributes, serverctrls=[control]
                ),
            )

    def _whole_page(
        self, msgid: int, base_dn: str, checkpoint: Callable[[], None] | None
    ) -> tuple[list[RawEntry], list[Any]]:
        """All entries of one page and its result controls; waits at most operation_timeout_s
        for the page, checking for cancellation at least every CANCEL_POLL_S."""
        deadline = time.monotonic() + self.spec.operation_timeout_s
        while True:
            # Never 0: python-ldap treats a zero timeout as a poll that returns no message.
            wait = max(0.05, min(CANCEL_POLL_S, deadline - time.monotonic()))
            try:
                _, data, _, controls = self._raw.result3(msgid, all=1, timeout=wait)
            except ldap.TIMEOUT:
                if time.monotonic() >= deadline:
                    self._raw.abandon(msgid)
                    raise stalled(self.spec, base_dn) from None
                if checkpoint is not None:
                    checkpoint()
                continue
            except ldap.LDAPError as error:
                raise translate_error(error, self.spec, f"searching {base_dn!r}") from None
            return data, controls

    def modify(self, dn: str, changes: list[Modification]) -> None:
        native = [(_OPERATIONS[operation], name, values) for operation, name, values in changes]
        with ldap_errors(self.spec, f"modifying {dn!r}"):
            self._raw.modify_ext_s(dn, native)


def open_connection(spec: ConnectionSpec, password: str) -> LdapConnection:
    """Connect, secure and bind through libldap."""
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
    connection = PythonLdapConnection(spec, raw)
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
