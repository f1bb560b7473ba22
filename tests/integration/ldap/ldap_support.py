"""Helpers for directory tests: relay settings, an inventory mirror, job contexts, admin reads."""

from __future__ import annotations

import copy
import os
import socket
import ssl
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ldap3
from ldap3.core.exceptions import LDAPException

from hostrelay_local.samba_domain import SambaDomain, provision_domain
from hostrelay_local.slapd import SlapdServer, TlsFiles, make_test_tls
from hostrelay_relay.handlers.base import JobContext
from hostrelay_relay.settings import LdapCredential, LdapSettings, RelaySettings

# The LDAP client library the relay uses in this test; the `ldap_client` fixture sets it.
LDAP_CLIENTS = ("python-ldap", "ldap3")
client_in_test = {"name": "auto"}


def relay_settings(
    state_dir: Path,
    server: SlapdServer,
    *,
    ca_file: Path | None = None,
    also_for: tuple[str, ...] = (),
    **ldap: Any,
) -> RelaySettings:
    """Settings whose credentials are for `server` (ldap:// and ldaps://) and `also_for`."""
    urls = [server.url, server.ldaps_url, *also_for]
    credentials = {
        "svc": LdapCredential(
            bind_dn=server.service_dn, password=server.service_password, urls=urls
        ),
        "wrong": LdapCredential(bind_dn=server.service_dn, password="not-the-password", urls=urls),
    }
    return RelaySettings(
        host="dc01",
        state_dir=state_dir,
        ldap=LdapSettings(
            credentials=credentials,
            ca_file=ca_file if ca_file is not None else server.ca_file,
            clock_skew_s=1,
            client=client_in_test["name"],
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
    with ldap3.Connection(
        server.url, server.admin_dn, server.admin_password, auto_bind=True
    ) as connection:
        connection.search(group_dn, "(objectClass=*)", ldap3.BASE, attributes=["member"])
        values = connection.response[0]["raw_attributes"].get("member", [])
    return {value.decode().lower() for value in values}


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass
class SambaDirectory:
    """`samba` running as an AD DC with only its LDAP server, for the Active Directory flavor."""

    domain: SambaDomain
    tls: TlsFiles
    process: subprocess.Popen[bytes]
    url: str = "ldaps://127.0.0.1"

    @property
    def base_dn(self) -> str:
        return self.domain.domain_dn

    @property
    def admin_dn(self) -> str:
        return f"CN=Administrator,CN=Users,{self.domain.domain_dn}"

    @classmethod
    def start(cls, root: Path) -> SambaDirectory:
        domain = provision_domain(root / "dc")
        tls = make_test_tls(root / "tls")
        options = {
            "server services": "ldap",
            "interfaces": "127.0.0.1",
            "bind interfaces only": "yes",
            "tls keyfile": str(tls.key_file),
            "tls certfile": str(tls.cert_file),
            "tls cafile": str(tls.ca_file),
            "pid directory": str(root / "run"),
            "log file": str(root / "samba.log"),
        }
        (root / "run").mkdir()
        argv = ["samba", "-i", "-M", "single", "-s", str(domain.smb_conf)]
        for name, value in options.items():
            argv.append(f"--option={name}={value}")
        log = (root / "samba.out").open("wb")
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        running = cls(domain, tls, process)
        deadline = time.monotonic() + 60
        # Serving means this DC answers a bind over LDAPS: samba listens before its TLS is
        # ready, and 636 may be some other DC's.
        while not running.serves_ldaps():
            if process.poll() is not None or time.monotonic() > deadline:
                running.stop()
                raise RuntimeError((root / "samba.out").read_text(errors="replace")[-2000:])
            time.sleep(0.2)
        return running

    def serves_ldaps(self) -> bool:
        """True once the administrator can bind over LDAPS: TLS is up, and the bind with this
        domain's random password proves the DC is ours (the certificate is checked by the
        tests themselves; Python 3.13's strict X.509 checks would refuse the test CA here)."""
        tls = ldap3.Tls(validate=ssl.CERT_NONE)
        server = ldap3.Server(self.url, use_ssl=True, tls=tls, connect_timeout=2)
        try:
            connection = ldap3.Connection(
                server, self.admin_dn, self.domain.admin_password, auto_bind=True
            )
        except LDAPException:
            return False
        connection.unbind()
        return True

    def modify(self, ldif: str) -> None:
        password_file = self.domain.target_dir / "admin.pw"
        if not password_file.exists():
            password_file.write_text(self.domain.admin_password)
            password_file.chmod(0o600)
        subprocess.run(
            [
                "ldapmodify",
                "-x",
                "-H",
                self.url,
                "-D",
                self.admin_dn,
                "-y",
                str(password_file),
            ],
            input=ldif.encode(),
            check=True,
            capture_output=True,
            env={**os.environ, "LDAPTLS_CACERT": str(self.tls.ca_file)},
        )

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> SambaDirectory:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
