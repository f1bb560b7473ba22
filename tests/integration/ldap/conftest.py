"""Fixtures for directory tests: real slapd servers with a generated directory, and job runners."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from hostrelay_contract.jobs.ldap import LdapGroupMembersResult, LdapSyncResult
from hostrelay_local.slapd import DirectoryShape, SlapdServer
from hostrelay_relay.handlers.ldap_group_members import LdapGroupMembersHandler
from hostrelay_relay.handlers.ldap_sync import LdapSyncHandler
from hostrelay_relay.settings import RelaySettings
from tests.integration.ldap.ldap_support import (
    LDAP_CLIENTS,
    InventoryMirror,
    JobRun,
    SambaDirectory,
    client_in_test,
    make_context,
    port_is_free,
)
from tests.integration.machine_lock import machine_wide

# 5,000 users, 10 department OUs, 200 team groups + 10 department groups + `everyone` +
# `all-staff` (nested: its members are the department groups).
SHAPE = DirectoryShape(users=5000, departments=10, team_size=25)


@pytest.fixture(params=LDAP_CLIENTS, autouse=True)
def ldap_client(request: pytest.FixtureRequest) -> Iterator[str]:
    """Every directory test runs once with each LDAP client library the relay can use."""
    if request.param == "python-ldap":
        pytest.importorskip("ldap", reason="python-ldap (hostrelay-relay[fast-ldap]) not installed")
    client_in_test["name"] = request.param
    yield request.param
    client_in_test["name"] = "auto"


@pytest.fixture(scope="session")
def directory() -> Iterator[SlapdServer]:
    """Given a slapd (ldap:// and ldaps:// with a test CA) that tests only read from."""
    with SlapdServer(SHAPE, tls=True) as server:
        yield server


@pytest.fixture
def fresh_directory(request: pytest.FixtureRequest) -> Iterator[SlapdServer]:
    """Given a slapd of its own, for a test that changes the directory.

    Parametrize indirectly with False for a server without the syncprov overlay (no
    contextCSN): the relay then tracks changes by modifyTimestamp.
    """
    with SlapdServer(SHAPE, tls=True, syncprov=getattr(request, "param", True)) as server:
        yield server


@pytest.fixture
def run_sync() -> Callable[..., JobRun]:
    """Run an ldap.sync job through its handler, as the relay would, applying it to `mirror`."""

    def run(
        settings: RelaySettings,
        mirror: InventoryMirror | None = None,
        on_event: Callable[[str, dict[str, Any]], None] | None = None,
        **params: Any,
    ) -> JobRun:
        handler = LdapSyncHandler(settings)
        events: list[tuple[str, dict[str, Any]]] = []
        progress: list[tuple[int, int | None, str]] = []
        context = make_context(settings, events, progress, on_event)
        result = handler.run(handler.validate(params), context)
        LdapSyncResult.model_validate(result)  # the shape the contract documents
        if mirror is not None:
            for kind, body in events:
                assert kind == "inventory"
                mirror.apply(body)
        return JobRun(result, events, progress)

    return run


@pytest.fixture
def run_group_members() -> Callable[..., dict[str, Any]]:
    def run(settings: RelaySettings, **params: Any) -> dict[str, Any]:
        handler = LdapGroupMembersHandler(settings)
        context = make_context(settings, [], [])
        result = handler.run(handler.validate(params), context)
        LdapGroupMembersResult.model_validate(result)  # the shape the contract documents
        return result

    return run


@pytest.fixture(scope="module")
def samba_ad(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SambaDirectory]:
    """Given a real Samba AD DC serving LDAP on 127.0.0.1:389 with a certificate for that IP.

    Its ports are fixed (389, 636, 3268, 3269), so test runs side by side (pytest-xdist
    workers, the relay matrix's Pythons, other checkouts) take turns: one DC at a time.
    """
    with machine_wide("samba-dc-ports"):
        if not port_is_free(389):
            pytest.skip("127.0.0.1:389 is taken; the Samba AD test needs it")
        root = tmp_path_factory.mktemp("samba-ad")
        with SambaDirectory.start(root) as running:
            yield running
