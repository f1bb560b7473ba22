"""A real OpenLDAP slapd on a free port in a temp dir, loaded with a generated demo directory."""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from base64 import b64encode
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SLAPD = "/usr/sbin/slapd"
SLAPADD = "/usr/sbin/slapadd"
LDAPMODIFY = "ldapmodify"
SCHEMA_DIR = Path("/etc/ldap/schema")
MODULE_DIR = Path("/usr/lib/ldap")
# Every generated entry carries this as createTimestamp/modifyTimestamp, so a test or bench can
# tell the bulk load apart from changes it makes later.
LOAD_TIME = "20240101000000Z"
_UUID_NAMESPACE = uuid.UUID("6f1c4f9e-5a53-4bd4-9f0e-2c4d3b1a7e10")


@dataclass(frozen=True)
class DirectoryShape:
    """How big the generated directory is; the layout itself is fixed and deterministic."""

    users: int = 300
    departments: int = 5
    team_size: int = 25
    base_dn: str = "dc=example,dc=org"

    def __post_init__(self) -> None:
        # Every group needs a member (groupOfNames requires one), so each count must be >= 1.
        if min(self.users, self.departments, self.team_size) < 1:
            raise ValueError("users, departments and team_size must be at least 1")
        if not self.base_dn.lower().startswith("dc="):
            raise ValueError("base_dn must start with a dc= component, e.g. dc=example,dc=org")

    @property
    def teams(self) -> int:
        return max(1, self.users // self.team_size)


@dataclass(frozen=True)
class TlsFiles:
    """PEM files of a throwaway CA and a server certificate it signed for 127.0.0.1/localhost."""

    ca_file: Path
    cert_file: Path
    key_file: Path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def entry_uuid(dn: str) -> str:
    """The entryUUID the generator gives `dn` (stable across runs)."""
    return str(uuid.uuid5(_UUID_NAMESPACE, dn.lower()))


def user_dn(shape: DirectoryShape, index: int) -> str:
    return f"uid=user{index:05d},ou=dept{index % shape.departments:02d},ou=people,{shape.base_dn}"


def team_dn(shape: DirectoryShape, team: int) -> str:
    return f"cn=team{team:04d},ou=groups,{shape.base_dn}"


def department_group_dn(shape: DirectoryShape, department: int) -> str:
    return f"cn=dept{department:02d}-staff,ou=groups,{shape.base_dn}"


def _ldif_entry(dn: str, lines: list[str]) -> str:
    operational = [
        f"entryUUID: {entry_uuid(dn)}",
        f"createTimestamp: {LOAD_TIME}",
        f"modifyTimestamp: {LOAD_TIME}",
        f"entryCSN: {LOAD_TIME[:-1]}.000000Z#000000#000#000000",
    ]
    body = "\n".join([f"dn: {dn}", *lines, *operational])
    return body + "\n\n"


def _ssha(password: str) -> str:
    salt = secrets.token_bytes(8)
    digest = hashlib.sha1(password.encode() + salt, usedforsecurity=False).digest()
    return "{SSHA}" + b64encode(digest + salt).decode()


def generate_directory_ldif(shape: DirectoryShape, service_password: str) -> Iterator[str]:
    """Yield the LDIF entries of the demo directory, parents first.

    Layout: ou=people with one sub-OU per department holding the users; ou=groups with one
    group per team and one per department (users), `everyone` (all users) and `all-staff`
    (nested: its members are the department groups); ou=services with the relay's account.
    """
    base = shape.base_dn
    first_rdn_value = base.split(",", 1)[0].split("=", 1)[1]
    yield _ldif_entry(
        base,
        [
            "objectClass: dcObject",
            "objectClass: organization",
            "o: Example",
            f"dc: {first_rdn_value}",
        ],
    )
    for ou in ("people", "groups", "services"):
        yield _ldif_entry(f"ou={ou},{base}", ["objectClass: organizationalUnit", f"ou: {ou}"])
    yield _ldif_entry(
        f"cn=relay,ou=services,{base}",
        [
            "objectClass: organizationalRole",
            "objectClass: simpleSecurityObject",
            "cn: relay",
            f"userPassword: {_ssha(service_password)}",
        ],
    )
    for department in range(shape.departments):
        yield _ldif_entry(
            f"ou=dept{department:02d},ou=people,{base}",
            [
                "objectClass: organizationalUnit",
                f"ou: dept{department:02d}",
                f"description: Department {department}",
            ],
        )
    for index in range(shape.users):
        yield _ldif_entry(
            user_dn(shape, index),
            [
                "objectClass: inetOrgPerson",
                f"uid: user{index:05d}",
                f"cn: User {index}",
                f"sn: Number{index}",
                "givenName: User",
                f"displayName: User Number {index}",
                f"mail: user{index:05d}@example.org",
                f"employeeNumber: {index}",
            ],
        )
    for team in range(shape.teams):
        members = [
            f"member: {user_dn(shape, index)}"
            for index in range(
                team * shape.team_size, min(shape.users, (team + 1) * shape.team_size)
            )
        ]
        yield _ldif_entry(
            team_dn(shape, team),
            [
                "objectClass: groupOfNames",
                f"cn: team{team:04d}",
                f"description: Team {team}",
                *members,
            ],
        )
    for department in range(shape.departments):
        members = [
            f"member: {user_dn(shape, index)}"
            for index in range(department, shape.users, shape.departments)
        ]
        yield _ldif_entry(
            department_group_dn(shape, department),
            ["objectClass: groupOfNames", f"cn: dept{department:02d}-staff", *members],
        )
    yield _ldif_entry(
        f"cn=everyone,ou=groups,{base}",
        [
            "objectClass: groupOfNames",
            "cn: everyone",
            "description: Every user (a group too big for one inventory batch)",
            *(f"member: {user_dn(shape, index)}" for index in range(shape.users)),
        ],
    )
    yield _ldif_entry(
        f"cn=all-staff,ou=groups,{base}",
        [
            "objectClass: groupOfNames",
            "cn: all-staff",
            "description: Everyone, by department (nested groups)",
            *(f"member: {department_group_dn(shape, d)}" for d in range(shape.departments)),
        ],
    )


def count_entries(shape: DirectoryShape) -> dict[str, int]:
    """How many users, groups and OUs the generated directory holds."""
    return {
        "user": shape.users,
        "group": shape.teams + shape.departments + 2,
        "ou": 3 + shape.departments,
    }


def make_test_tls(directory: Path, hosts: tuple[str, ...] = ("localhost", "127.0.0.1")) -> TlsFiles:
    """Create a throwaway CA and a server certificate for `hosts` under `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hostrelay test directory CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        # Key identifiers: Python 3.13's default TLS context verifies with X509_STRICT, which
        # wants them (the ldap3 client uses that context).
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(server_key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    files = TlsFiles(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    files.ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files.cert_file.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    files.key_file.write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    files.key_file.chmod(0o600)
    return files


def _secret_file(path: Path, secret: str) -> Path:
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secret)
    return path


class SlapdServer:
    """slapd with an mdb database bulk-loaded by slapadd, listening on 127.0.0.1 free ports.

    Binds: `admin_dn`/`admin_password` (rootdn, no limits) and `service_dn`/`service_password`
    (the relay's account: read everything, write group members). Like Active Directory, a
    search that is not paged stops after 1,000 entries; a paged one gets them all.
    """

    def __init__(
        self,
        shape: DirectoryShape | None = None,
        *,
        tls: bool = True,
        syncprov: bool = True,
        workdir: Path | None = None,
    ) -> None:
        self.shape = shape or DirectoryShape()
        self.tls = tls
        self.syncprov = syncprov
        self._own_workdir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="hostrelay-slapd-"))
        self.admin_dn = f"cn=admin,{self.shape.base_dn}"
        self.admin_password = secrets.token_urlsafe(18)
        self.service_dn = f"cn=relay,ou=services,{self.shape.base_dn}"
        self.service_password = secrets.token_urlsafe(18)
        self.port = 0
        self.ldaps_port = 0
        self.tls_files: TlsFiles | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def base_dn(self) -> str:
        return self.shape.base_dn

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def ldaps_url(self) -> str:
        if not self.tls:
            raise RuntimeError("this slapd was started without TLS")
        return f"ldaps://127.0.0.1:{self.ldaps_port}"

    @property
    def ca_file(self) -> Path:
        if self.tls_files is None:
            raise RuntimeError("this slapd was started without TLS")
        return self.tls_files.ca_file

    @property
    def pid(self) -> int:
        if self._process is None:
            raise RuntimeError("slapd is not running")
        return self._process.pid

    def _config(self) -> str:
        base = self.shape.base_dn
        schemas = ("core", "cosine", "inetorgperson", "nis")
        tls = ""
        if self.tls_files is not None:
            tls = (
                f"TLSCACertificateFile {self.tls_files.ca_file}\n"
                f"TLSCertificateFile {self.tls_files.cert_file}\n"
                f"TLSCertificateKeyFile {self.tls_files.key_file}\n"
            )
        return "\n".join(
            [
                *(f"include {SCHEMA_DIR / name}.schema" for name in schemas),
                f"pidfile {self.workdir / 'slapd.pid'}",
                f"argsfile {self.workdir / 'slapd.args'}",
                f"modulepath {MODULE_DIR}",
                "moduleload back_mdb",
                "moduleload syncprov" if self.syncprov else "",
                tls,
                "database mdb",
                "maxsize 2147483648",
                f'suffix "{base}"',
                f'rootdn "{self.admin_dn}"',
                f"rootpw {_ssha(self.admin_password)}",
                f"directory {self.workdir / 'db'}",
                "dbnosync",
                "index objectClass eq",
                "index entryUUID eq",
                "index uid,cn,mail eq",
                "index member eq",
                "index entryCSN eq",
                "sizelimit size.soft=1000 size.hard=1000 size.prtotal=unlimited",
                "access to attrs=userPassword by self write by anonymous auth by * none",
                f'access to dn.subtree="ou=groups,{base}" attrs=member,uniqueMember'
                f' by dn.exact="{self.service_dn}" write by users read by * none',
                "access to * by users read by * none",
                # Keeps contextCSN on the suffix current: what relays use as a change watermark.
                "overlay syncprov" if self.syncprov else "",
                "",
            ]
        )

    def start(self) -> SlapdServer:
        (self.workdir / "db").mkdir(parents=True, exist_ok=True)
        if self.tls:
            self.tls_files = make_test_tls(self.workdir / "tls")
        config = self.workdir / "slapd.conf"
        config.write_text(self._config())
        config.chmod(0o600)
        ldif = self.workdir / "directory.ldif"
        with ldif.open("w") as handle:
            handle.writelines(generate_directory_ldif(self.shape, self.service_password))
        subprocess.run(
            [SLAPADD, "-q", "-f", str(config), "-l", str(ldif)],
            check=True,
            capture_output=True,
        )
        ldif.unlink()
        last_error = ""
        for _ in range(5):
            self.port = free_port()
            urls = [f"ldap://127.0.0.1:{self.port}/"]
            if self.tls:
                self.ldaps_port = free_port()
                urls.append(f"ldaps://127.0.0.1:{self.ldaps_port}/")
            log = (self.workdir / "slapd.log").open("ab")
            self._process = subprocess.Popen(
                [SLAPD, "-h", " ".join(urls), "-f", str(config), "-d", "0"],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            log.close()
            if self._wait_ready(timeout_s=10.0):
                return self
            last_error = (self.workdir / "slapd.log").read_text(errors="replace")[-2000:]
            self._terminate()
        raise RuntimeError(f"slapd did not start: {last_error}")

    def _wait_ready(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        assert self._process is not None
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return True
            except OSError:
                time.sleep(0.05)
        return False

    def _terminate(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None

    def stop(self) -> None:
        self._terminate()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def modify(self, ldif: str) -> None:
        """Apply an LDIF change set as the rootdn (ldapmodify; `changetype:` lines required)."""
        subprocess.run(
            [
                LDAPMODIFY,
                "-x",
                "-H",
                self.url,
                "-D",
                self.admin_dn,
                "-y",
                str(self._admin_pw_file()),
            ],
            input=ldif.encode(),
            check=True,
            capture_output=True,
        )

    def _admin_pw_file(self) -> Path:
        return _secret_file(self.workdir / "admin.pw", self.admin_password)

    @property
    def service_password_file(self) -> Path:
        """The service account's password in a 0600 file (for relay `password_file` config)."""
        return _secret_file(self.workdir / "service.pw", self.service_password)

    def __enter__(self) -> SlapdServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def main() -> None:
    """Run a demo directory in the foreground until Ctrl-C (`python -m hostrelay_local.slapd`)."""
    with SlapdServer(DirectoryShape()) as server:
        print(f"slapd: {server.url} and {server.ldaps_url}, base {server.base_dn}")
        print(f"service account: {server.service_dn} (password in {server.service_password_file})")
        print(f"CA: {server.ca_file}")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
