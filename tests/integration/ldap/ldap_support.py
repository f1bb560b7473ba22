"""Helpers for directory tests: relay settings, an inventory mirror, job contexts, admin reads."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ldap
from hostrelay_local.slapd import SlapdServer
from hostrelay_relay.handlers.base import JobContext
from hostrelay_relay.settings import LdapCredential, LdapSettings, RelaySettings


def relay_settings(
    state_dir: Path, server: SlapdServer, *, ca_file: Path | None = None, **ldap: Any
) -> RelaySettings:
    credentials = {
        "svc": LdapCredential(bind_dn=server.service_dn, password=server.service_password),
        "wrong": LdapCredential(bind_dn=server.service_dn, password="not-the-password"),
    }
    return RelaySettings(
        host="dc01",
        state_dir=state_dir,
        ldap=LdapSettings(
            credentials=credentials,
            ca_file=ca_file if ca_file is not None else server.ca_file,
            clock_skew_s=1,
            **ldap,
        ),
    )


@dataclass
class InventoryMirror:
    """What the control plane would hold after applying the inventory events it received."""

    entities: dict[str, dict[str, Any]] = field(default_factory=dict)
    batches: list[dict[str, Any]] = field(default_factory=list)

    def apply(self, body: dict[str, Any]) -> None:
        self.batches.append(body)
        for upsert in copy.deepcopy(body["upserts"]):
            page = upsert.pop("members_page", None)
            if page is None or page["index"] == 0:
                self.entities[upsert["id"]] = upsert
            else:
                self.entities[upsert["id"]]["members"].extend(upsert["members"])
        for entity_id in body["deletes"]:
            self.entities.pop(entity_id, None)

    def by_dn(self, dn: str) -> dict[str, Any]:
        found = [e for e in self.entities.values() if e["dn"].lower() == dn.lower()]
        assert len(found) == 1, f"{dn} appears {len(found)} times"
        return found[0]


@dataclass
class JobRun:
    result: dict[str, Any]
    events: list[tuple[str, dict[str, Any]]]
    progress: list[tuple[int, int | None, str]]


def make_context(
    settings: RelaySettings,
    events: list[tuple[str, dict[str, Any]]],
    progress: list[tuple[int, int | None, str]],
    on_event: Callable[[str, dict[str, Any]], None] | None = None,
) -> JobContext:
    def report_event(kind: str, body: dict[str, Any]) -> None:
        if on_event is not None:
            on_event(kind, body)
        events.append((kind, body))

    return JobContext(
        job_id="01JTESTJOB0000000000000000",
        attempt=1,
        host=settings.host,
        settings=settings,
        timeout_s=120,
        report_progress=lambda done, total, message: progress.append((done, total, message)),
        report_output=lambda stream, data: None,
        report_event=report_event,
    )


def sync_params(server: SlapdServer, **overrides: Any) -> dict[str, Any]:
    return {
        "connector": "corp",
        "url": server.url,
        "base_dn": server.base_dn,
        "credential": "svc",
        **overrides,
    }


def members_in_directory(server: SlapdServer, group_dn: str) -> set[str]:
    """The group's member DNs, lower-cased, read as the directory admin."""
    connection = ldap.initialize(server.url)
    try:
        connection.simple_bind_s(server.admin_dn, server.admin_password)
        found = connection.search_s(group_dn, ldap.SCOPE_BASE, "(objectClass=*)", ["member"])
    finally:
        connection.unbind_s()
    return {value.decode().lower() for value in found[0][1].get("member", [])}
