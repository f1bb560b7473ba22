"""A real Samba AD domain in a directory, with computer accounts: tests, bench, `make run`."""

from __future__ import annotations

import json
import logging
import re
import secrets
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hostrelay_relay.macct.ldap_escape import compose_dn
from hostrelay_relay.macct.ldif import LdifRecord, render_ldif

SAMBA_TOOL = "samba-tool"
LDBADD = "ldbadd"
LDBMODIFY = "ldbmodify"
WORKSTATION_TRUST_ACCOUNT = 0x1000
NORMAL_ACCOUNT = 0x200
DEMO_SCHOOL = "default-school"
DEMO_COMPUTERS = ("R100-PC01", "R100-PC02", "R100-PC03")
DOMAIN_MARKER = "hostrelay-domain.json"
# What `samba-tool domain provision --targetdir` makes there (the lock directory's tdbs too).
_PROVISION_ENTRIES = frozenset(
    {"bind-dns", "cache", "etc", "private", "state", DOMAIN_MARKER, DOMAIN_MARKER + ".tmp"}
)
_PROVISION_SUFFIXES = frozenset({".tdb", ".lock"})
_REALM = re.compile(r"[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})+")
_NETBIOS = re.compile(r"[A-Za-z0-9-]{1,15}")

logger = logging.getLogger(__name__)


class SambaDomainError(RuntimeError):
    """A samba-tool or ldb command failed while setting the domain up."""


@dataclass(frozen=True)
class SambaDomain:
    """A provisioned domain: `<target_dir>/private/sam.ldb` plus its own smb.conf."""

    target_dir: Path
    realm: str
    netbios_domain: str
    dc_name: str
    admin_password: str = field(repr=False)

    @property
    def sam_ldb(self) -> Path:
        return self.target_dir / "private" / "sam.ldb"

    @property
    def smb_conf(self) -> Path:
        return self.target_dir / "etc" / "smb.conf"

    @property
    def domain_dn(self) -> str:
        return ",".join(f"DC={label}" for label in self.realm.lower().split("."))

    @property
    def computers_dn(self) -> str:
        return f"CN=Computers,{self.domain_dn}"

    @property
    def users_dn(self) -> str:
        return f"CN=Users,{self.domain_dn}"


def random_password() -> str:
    """A password that satisfies AD complexity rules."""
    return f"Hr-{secrets.token_urlsafe(18)}-9a"


def provision_domain(
    target_dir: Path,
    *,
    realm: str = "HOSTRELAY.TEST",
    netbios_domain: str = "HOSTRELAY",
    dc_name: str = "DC01",
    admin_password: str | None = None,
) -> SambaDomain:
    """Provision a new AD DC domain (~4 s) into an empty or missing `target_dir`."""
    if not _REALM.fullmatch(realm):
        raise ValueError("realm must be a dotted DNS name such as HOSTRELAY.TEST")
    for label, value in (("netbios_domain", netbios_domain), ("dc_name", dc_name)):
        if not _NETBIOS.fullmatch(value):
            raise ValueError(f"{label} must be 1-15 of A-Z, a-z, 0-9 and '-'")
    if target_dir.exists() and any(target_dir.iterdir()):
        raise SambaDomainError(f"{target_dir} is not empty; ensure_domain reuses a domain")
    target_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    domain = SambaDomain(
        target_dir=target_dir.resolve(),
        realm=realm.upper(),
        netbios_domain=netbios_domain.upper(),
        dc_name=dc_name.upper(),
        admin_password=admin_password or random_password(),
    )
    _run(
        [
            _tool(SAMBA_TOOL),
            "domain",
            "provision",
            f"--targetdir={domain.target_dir}",
            f"--realm={domain.realm}",
            f"--domain={domain.netbios_domain}",
            f"--host-name={domain.dc_name}",
            f"--adminpass={domain.admin_password}",
            "--server-role=dc",
            "--dns-backend=NONE",
            "--use-rfc2307",
        ]
    )
    return domain


def ensure_domain(
    target_dir: Path,
    *,
    realm: str = "HOSTRELAY.TEST",
    netbios_domain: str = "HOSTRELAY",
    dc_name: str = "DC01",
    populate: Callable[[SambaDomain], None] | None = None,
) -> tuple[SambaDomain, bool]:
    """Reuse the domain under `target_dir`, or provision it and run `populate` on it.

    A marker file written (atomically) only after provisioning and `populate` succeeded
    tells a complete domain from a half-made one. A half-made one is what an interrupted
    provisioning left (Ctrl-C, SIGKILL): it is removed and provisioned again, so the next
    start simply works. A directory holding anything a provisioning does not make is
    refused, never removed. Returns the domain and whether it was created now; a reused
    domain's admin password is not known (empty): nothing here needs it, everything works
    on sam.ldb directly.
    """
    marker = target_dir / DOMAIN_MARKER
    if marker.is_file():
        recorded = json.loads(marker.read_text())
        return SambaDomain(
            target_dir=target_dir.resolve(),
            realm=recorded["realm"],
            netbios_domain=recorded["netbios_domain"],
            dc_name=recorded["dc_name"],
            admin_password="",
        ), False
    if target_dir.exists() and any(target_dir.iterdir()):
        _remove_incomplete_domain(target_dir)
    domain = provision_domain(
        target_dir, realm=realm, netbios_domain=netbios_domain, dc_name=dc_name
    )
    if populate is not None:
        populate(domain)
    recorded = {
        "realm": domain.realm,
        "netbios_domain": domain.netbios_domain,
        "dc_name": domain.dc_name,
    }
    partial = marker.with_name(marker.name + ".tmp")
    partial.write_text(json.dumps(recorded, indent=2) + "\n")
    partial.replace(marker)
    return domain, True


def _remove_incomplete_domain(target_dir: Path) -> None:
    """Remove what an interrupted provisioning left; refuse a directory it did not make."""
    foreign = sorted(
        entry.name
        for entry in target_dir.iterdir()
        if entry.name not in _PROVISION_ENTRIES and entry.suffix not in _PROVISION_SUFFIXES
    )
    if foreign:
        raise SambaDomainError(
            f"{target_dir} holds an incomplete domain and other files ({', '.join(foreign[:5])}); "
            "remove it and retry"
        )
    logger.warning("removing an incomplete samba domain", extra={"path": str(target_dir)})
    shutil.rmtree(target_dir)


def add_organizational_units(domain: SambaDomain, ou_dns: Sequence[str]) -> None:
    """Add OUs (parents first) in one ldbadd run."""
    records = [LdifRecord("add", dn, [("objectClass", [b"organizationalUnit"])]) for dn in ou_dns]
    _ldb_write(LDBADD, domain, records)


def add_school_layout(domain: SambaDomain, school: str, rooms: Sequence[str] = ()) -> str:
    """linuxmuster layout OU=SCHOOLS / OU=<school> / OU=Devices [/ OU=<room>]; returns Devices."""
    schools_dn = compose_dn([("OU", "SCHOOLS")], domain.domain_dn)
    school_dn = compose_dn([("OU", school)], schools_dn)
    devices_dn = compose_dn([("OU", "Devices")], school_dn)
    wanted = [schools_dn, school_dn, devices_dn]
    wanted += [compose_dn([("OU", room)], devices_dn) for room in rooms]
    missing = [dn for dn in wanted if not _exists(domain, dn)]
    if missing:
        add_organizational_units(domain, missing)
    return devices_dn


def add_computers(
    domain: SambaDomain, passwords: Mapping[str, str], *, parent_dn: str | None = None
) -> dict[str, str]:
    """Create workstation accounts `NAME$` with the given passwords in one ldbadd run.

    Much faster than `samba-tool computer create` per account. Returns name → DN.
    """
    parent = parent_dn or domain.computers_dn
    dns = {name: compose_dn([("CN", name)], parent) for name in passwords}
    records = [
        LdifRecord(
            "add",
            dns[name],
            [
                ("objectClass", [b"computer"]),
                ("sAMAccountName", [f"{name}$".encode()]),
                ("userAccountControl", [str(WORKSTATION_TRUST_ACCOUNT).encode()]),
                ("unicodePwd", [_unicode_pwd(password)]),
            ],
        )
        for name, password in passwords.items()
    ]
    _ldb_write(LDBADD, domain, records)
    return dns


def add_users(domain: SambaDomain, passwords: Mapping[str, str]) -> dict[str, str]:
    """Create plain user accounts (sAMAccountName = name) in one ldbadd run; name → DN."""
    dns = {name: compose_dn([("CN", name)], domain.users_dn) for name in passwords}
    records = [
        LdifRecord(
            "add",
            dns[name],
            [
                ("objectClass", [b"user"]),
                ("sAMAccountName", [name.encode()]),
                ("userAccountControl", [str(NORMAL_ACCOUNT).encode()]),
                ("unicodePwd", [_unicode_pwd(password)]),
            ],
        )
        for name, password in passwords.items()
    ]
    _ldb_write(LDBADD, domain, records)
    return dns


def set_passwords(domain: SambaDomain, passwords_by_dn: Mapping[str, str]) -> None:
    """Set new cleartext passwords (Samba hashes them) for accounts given by DN, in one run."""
    records = [
        LdifRecord("replace", dn, [("unicodePwd", [_unicode_pwd(password)])])
        for dn, password in passwords_by_dn.items()
    ]
    _ldb_write(LDBMODIFY, domain, records)


def ensure_demo_domain(base_dir: Path) -> SambaDomain:
    """The local stack's domain for host dc01 under `<base_dir>/samba/dc01`, reused if present.

    A new domain gets the linuxmuster layout of `default-school` with a few computers.
    """
    domain, _ = ensure_domain(base_dir / "samba" / "dc01", populate=_populate_demo)
    return domain


def _populate_demo(domain: SambaDomain) -> None:
    devices_dn = add_school_layout(domain, DEMO_SCHOOL, rooms=["r100"])
    room_dn = compose_dn([("OU", "r100")], devices_dn)
    add_computers(domain, {name: random_password() for name in DEMO_COMPUTERS}, parent_dn=room_dn)


def _unicode_pwd(password: str) -> bytes:
    return f'"{password}"'.encode("utf-16-le")


def _exists(domain: SambaDomain, dn: str) -> bool:
    proc = subprocess.run(
        [_tool("ldbsearch"), f"--url={domain.sam_ldb}", f"--basedn={dn}", "--scope=base", "dn"],
        capture_output=True,
        check=False,
    )
    return proc.returncode == 0


def _ldb_write(tool: str, domain: SambaDomain, records: Sequence[LdifRecord]) -> None:
    if records:
        _run([_tool(tool), f"--url={domain.sam_ldb}"], stdin=render_ldif(records))


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise SambaDomainError(f"{name} not found on PATH (install samba and ldb-tools)")
    return found


def _run(argv: list[str], stdin: bytes | None = None) -> None:
    proc = subprocess.run(argv, input=stdin, capture_output=True, check=False)
    if proc.returncode != 0:
        tail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-5:]
        raise SambaDomainError(f"{Path(argv[0]).name} failed: " + " | ".join(tail))
