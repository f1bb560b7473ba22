"""Read and write machine-account secrets in sam.ldb through ldbsearch/ldbmodify argv calls."""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hostrelay_relay.macct.errors import SamDbError, SearchBaseMissing, StepCanceled, StepTimedOut
from hostrelay_relay.macct.ldap_escape import equality_filter
from hostrelay_relay.macct.ldif import LdifEntry, LdifRecord, parse_ldif, render_ldif
from hostrelay_relay.macct.run_limits import RunLimits
from hostrelay_relay.settings import MacctSettings

AS_SYSTEM_CONTROL = "local_oid:1.3.6.1.4.1.7165.4.3.7:0"
# Write unicodePwd/supplementalCredentials as given instead of hashing a new cleartext.
STORE_HASHES_AS_GIVEN_CONTROL = "local_oid:1.3.6.1.4.1.7165.4.3.12:0"
RELAX_CONTROL = "relax:0"
SECRET_ATTRIBUTES = ("unicodePwd", "supplementalCredentials")
_ACCOUNT_ATTRIBUTES = ("sAMAccountName", "objectClass", "userAccountControl", *SECRET_ATTRIBUTES)
_LDB_ERR_NO_SUCH_OBJECT = 32
_TOOL_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}
_FAILED_DN = re.compile(
    r'^ERR: \((?P<kind>[^)]*)\) "(?P<detail>.*)" on DN (?P<dn>.*) at block', re.M
)
_MODIFIED = re.compile(r"^Modified (\d+) records", re.M)
_MAX_MESSAGE = 300

# The domain DN of a sam.ldb never changes; one rootDSE read per file per process is enough.
_domain_dn_cache: dict[tuple[str, int], str] = {}
_domain_dn_lock = threading.Lock()


@dataclass(frozen=True)
class MachineSecrets:
    """The two password-equivalent attributes of a machine account. Never shown in a repr."""

    unicode_pwd: bytes = field(repr=False)
    supplemental_credentials: bytes = field(repr=False)

    def as_attributes(self) -> list[tuple[str, list[bytes]]]:
        return [
            ("unicodePwd", [self.unicode_pwd]),
            ("supplementalCredentials", [self.supplemental_credentials]),
        ]


@dataclass(frozen=True)
class DirectoryAccount:
    """A security principal found by sAMAccountName, with its current secrets (if any)."""

    dn: str
    sam_account_name: str
    object_classes: frozenset[str]
    user_account_control: int
    unicode_pwd: bytes | None = field(repr=False, default=None)
    supplemental_credentials: bytes | None = field(repr=False, default=None)

    def secrets(self) -> MachineSecrets | None:
        if self.unicode_pwd is None or self.supplemental_credentials is None:
            return None
        return MachineSecrets(self.unicode_pwd, self.supplemental_credentials)

    @classmethod
    def from_entry(cls, entry: LdifEntry) -> DirectoryAccount:
        uac = entry.first("userAccountControl")
        classes = entry.values("objectClass")
        return cls(
            dn=entry.dn,
            sam_account_name=(entry.first("sAMAccountName") or b"").decode("utf-8"),
            object_classes=frozenset(value.decode("utf-8").lower() for value in classes),
            user_account_control=int(uac) if uac is not None and uac.lstrip(b"-").isdigit() else 0,
            unicode_pwd=entry.first("unicodePwd"),
            supplemental_credentials=entry.first("supplementalCredentials"),
        )


@dataclass(frozen=True)
class ModifyRun:
    """What one ldbmodify run reported: exit code, records it says it applied, first failure."""

    returncode: int
    modified: int
    failed_dn: str | None
    message: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


class SamDb:
    """sam.ldb of this DC, accessed as system through the ldb command-line tools."""

    def __init__(self, settings: MacctSettings) -> None:
        self.sam_ldb = settings.sam_ldb
        self._ldbsearch = settings.ldbsearch
        self._ldbmodify = settings.ldbmodify

    def domain_dn(self, limits: RunLimits) -> str:
        """defaultNamingContext from the rootDSE (cached per sam.ldb file)."""
        key = (str(self.sam_ldb), _inode(self.sam_ldb))
        with _domain_dn_lock:
            cached = _domain_dn_cache.get(key)
        if cached is not None:
            return cached
        entries = self._search("", "base", "(objectClass=*)", ["defaultNamingContext"], limits)
        value = entries[0].first("defaultNamingContext") if entries else None
        if not value:
            raise SamDbError("the rootDSE of sam.ldb has no defaultNamingContext")
        domain_dn = value.decode("utf-8")
        with _domain_dn_lock:
            _domain_dn_cache[key] = domain_dn
        return domain_dn

    def find_accounts(
        self, account_names: Sequence[str], base_dn: str, limits: RunLimits
    ) -> list[DirectoryAccount]:
        """All principals under `base_dn` whose sAMAccountName is one of `account_names`."""
        search_filter = equality_filter("sAMAccountName", account_names)
        entries = self._search(base_dn, "sub", search_filter, _ACCOUNT_ATTRIBUTES, limits)
        return [DirectoryAccount.from_entry(entry) for entry in entries]

    def replace_attributes(self, records: Sequence[LdifRecord], limits: RunLimits) -> ModifyRun:
        """Apply `records` in ONE ldbmodify run (LDIF on stdin, as system, hashes bypassed)."""
        argv = [
            self._tool(self._ldbmodify),
            f"--url={self.sam_ldb}",
            "--nosync",
            f"--controls={RELAX_CONTROL}",
            f"--controls={AS_SYSTEM_CONTROL}",
            f"--controls={STORE_HASHES_AS_GIVEN_CONTROL}",
        ]
        returncode, stdout, stderr = _run(argv, render_ldif(records), limits)
        failure = _FAILED_DN.search(stderr)
        modified = _MODIFIED.search(stdout)
        message = f"{failure['kind']}: {failure['detail']}" if failure else stderr or stdout
        return ModifyRun(
            returncode=returncode,
            modified=int(modified.group(1)) if modified else 0,
            failed_dn=failure["dn"].strip() if failure else None,
            message=_trim(_redact(message, records)),
        )

    def _search(
        self,
        base_dn: str,
        scope: str,
        search_filter: str,
        attributes: Sequence[str],
        limits: RunLimits,
    ) -> list[LdifEntry]:
        argv = [
            self._tool(self._ldbsearch),
            f"--url={self.sam_ldb}",
            f"--controls={AS_SYSTEM_CONTROL}",
            f"--basedn={base_dn}",
            f"--scope={scope}",
            "--",
            search_filter,
            *attributes,
        ]
        returncode, stdout, stderr = _run_bytes(argv, None, limits)
        if returncode == _LDB_ERR_NO_SUCH_OBJECT:
            raise SearchBaseMissing(_trim(stderr) or f"no such base DN: {base_dn}")
        if returncode != 0:
            raise SamDbError(_trim(stderr) or f"ldbsearch exited with {returncode}")
        return parse_ldif(stdout)

    @staticmethod
    def _tool(name: str) -> str:
        found = shutil.which(name)
        if found is None:
            raise SamDbError(f"{name} not found on PATH")
        return found


def _inode(path: Path) -> int:
    try:
        return os.stat(path).st_ino
    except OSError as exc:
        raise SamDbError(f"cannot stat sam.ldb: {exc.strerror}") from exc


def _trim(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _MAX_MESSAGE else flat[: _MAX_MESSAGE - 1] + "…"


def _redact(message: str, records: Sequence[LdifRecord]) -> str:
    """Belt and braces: a tool message must never carry a value we wrote, in any form."""
    for record in records:
        for _, values in record.attributes:
            for value in values:
                for form in (value.decode("latin-1"), base64.b64encode(value).decode()):
                    if len(form) >= 8:
                        message = message.replace(form, "<redacted>")
    return message


def _run(argv: list[str], stdin: bytes | None, limits: RunLimits) -> tuple[int, str, str]:
    returncode, stdout, stderr = _run_bytes(argv, stdin, limits)
    return returncode, stdout.decode("utf-8", "replace"), stderr


def _run_bytes(argv: list[str], stdin: bytes | None, limits: RunLimits) -> tuple[int, bytes, str]:
    """Run argv (never a shell) until it exits, the deadline passes or the job is canceled."""
    tool = Path(argv[0]).name
    limits.check(tool)
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=_TOOL_ENV,
            start_new_session=True,
        )
    except OSError as exc:
        raise SamDbError(f"cannot run {tool}: {exc.strerror}") from exc
    # communicate() in a worker: retrying communicate() after a timeout would stop feeding
    # stdin, so the main thread only waits on the worker and kills the tool when it must.
    outcome: list[tuple[bytes, bytes]] = []
    failure: list[BaseException] = []

    def talk() -> None:
        try:
            outcome.append(proc.communicate(stdin))
        except BaseException as exc:  # handed to the waiting thread and re-raised there
            failure.append(exc)

    worker = threading.Thread(target=talk, name=f"{tool}-io", daemon=True)
    worker.start()
    while worker.is_alive():
        try:
            limits.check(tool)
        except (StepTimedOut, StepCanceled):
            proc.kill()
            worker.join()
            raise
        worker.join(max(0.0, min(0.1, limits.remaining())))
    if failure:
        raise failure[0]
    stdout, stderr = outcome[0]
    return proc.returncode, stdout, stderr.decode("utf-8", "replace")
