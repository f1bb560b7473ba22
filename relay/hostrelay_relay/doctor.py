"""`hostrelay-relay doctor`: checks that this host can run a relay, each with a plain answer."""

from __future__ import annotations

import datetime as dt
import errno
import importlib
import os
import socket
import ssl
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from cryptography import x509

from hostrelay_relay.envelope import load_public_key
from hostrelay_relay.isolation import syscall_filter
from hostrelay_relay.isolation import syscalls as sc
from hostrelay_relay.isolation.command_policy import LauncherCommand, launcher_reason
from hostrelay_relay.settings import RelaySettings

EXPIRY_WARNING = dt.timedelta(days=30)
_CLONE_NEWUSER = 0x10000000
_FILTER_WORKS, _FILTER_MISSED, _FILTER_FAILED = 0, 1, 2
_TLS_TIMEOUT_S = 5.0


class Check(NamedTuple):
    name: str
    ok: bool
    detail: str


def _readable(path: Path) -> str | None:
    """None when the file can be read, else why not."""
    try:
        with path.open("rb") as handle:
            handle.read(1)
    except OSError as exc:
        return f"{path}: {exc.strerror or exc}"
    return None


def check_files(settings: RelaySettings) -> list[Check]:
    broker = settings.broker
    checks = []
    for name, path in (
        ("ca file", broker.ca_file),
        ("client certificate", broker.cert_file),
        ("client key", broker.key_file),
    ):
        problem = _readable(path)
        checks.append(Check(name, problem is None, problem or f"{path} is readable"))
    if _readable(broker.key_file) is None:
        mode = stat.S_IMODE(broker.key_file.stat().st_mode)
        private = mode & 0o077 == 0
        detail = f"{broker.key_file} has mode {mode:04o}"
        checks.append(
            Check(
                "client key permissions",
                private,
                detail if private else f"{detail}; run chmod 600 on it",
            )
        )
    return checks


def check_certificate_dates(cert_file: Path, now: dt.datetime | None = None) -> Check:
    now = now or dt.datetime.now(dt.timezone.utc)
    try:
        cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    except (OSError, ValueError) as exc:
        return Check("client certificate validity", False, f"cannot load {cert_file}: {exc}")
    not_after, not_before = cert.not_valid_after_utc, cert.not_valid_before_utc
    if now > not_after:
        days = (now - not_after).days
        return Check(
            "client certificate validity",
            False,
            f"the client certificate EXPIRED on {not_after:%Y-%m-%d %H:%M} UTC "
            f"({days} days ago); re-enroll this host",
        )
    if now < not_before:
        return Check(
            "client certificate validity",
            False,
            f"the client certificate is not valid before {not_before:%Y-%m-%d %H:%M} "
            "UTC; check this host's clock",
        )
    left = not_after - now
    detail = f"valid until {not_after:%Y-%m-%d %H:%M} UTC ({left.days} days left)"
    if left < EXPIRY_WARNING:
        detail += "; renew it soon"
    return Check("client certificate validity", True, detail)


def check_public_key(settings: RelaySettings) -> Check:
    path = settings.public_key_file
    try:
        load_public_key(path.read_bytes())
    except (OSError, ValueError) as exc:
        return Check("envelope public key", False, f"{path}: {exc}")
    return Check("envelope public key", True, f"{path} is an Ed25519 public key")


def check_broker_tls(settings: RelaySettings) -> Check:
    """Connect with TLS and the client certificate; a broker that refuses it says so at once."""
    broker = settings.broker
    where = f"{broker.host}:{broker.port}"
    try:
        context = ssl.create_default_context(cafile=str(broker.ca_file))
        context.load_cert_chain(str(broker.cert_file), str(broker.key_file))
        with (
            socket.create_connection((broker.host, broker.port), timeout=_TLS_TIMEOUT_S) as raw,
            context.wrap_socket(raw, server_hostname=broker.host) as tls,
        ):
            tls.settimeout(1.0)
            try:
                if tls.recv(1) == b"":
                    return Check("broker", False, f"{where} closed the TLS connection at once")
            except TimeoutError:
                pass  # the broker is waiting for MQTT CONNECT: the certificate was accepted
            version = tls.version()
    except ssl.SSLError as exc:
        return Check("broker", False, f"TLS with {where} failed: {exc.reason or exc}")
    except OSError as exc:
        return Check("broker", False, f"cannot reach {where}: {exc.strerror or exc}")
    return Check("broker", True, f"{where} accepted our certificate ({version})")


def check_state_dir(settings: RelaySettings) -> Check:
    state_dir = settings.state_dir
    target = state_dir if state_dir.exists() else state_dir.parent
    try:
        with tempfile.TemporaryFile(dir=target):
            pass
    except OSError as exc:
        return Check("state directory", False, f"{target} is not writable: {exc.strerror or exc}")
    return Check("state directory", True, f"{state_dir} is writable")


def check_root() -> Check:
    if os.geteuid() == 0:
        return Check("running as root", True, "yes")
    return Check(
        "running as root", False, f"running as uid {os.geteuid()}; exec and macct jobs need root"
    )


def check_ldap_client(settings: RelaySettings) -> Check:
    """Which LDAP client library directory jobs use (python-ldap's fast path or ldap3)."""
    from hostrelay_relay.directory.clients import describe_client

    return Check("ldap client", *describe_client(settings.ldap.client))


def check_exec_allow_list(settings: RelaySettings) -> Check:
    """Every plain exec.allowed_commands entry judged again against this host's files now."""
    problems = []
    launchers = []
    for entry in settings.exec.allowed_commands:
        if isinstance(entry, LauncherCommand):
            launchers.append(entry.command)
            continue
        reason = launcher_reason(entry)
        if reason is not None:
            problems.append(reason)
    if problems:
        detail = "; ".join(problems) + ": remove them or allow them with argument rules"
        return Check("exec allow-list", False, detail)
    detail = f"{len(settings.exec.allowed_commands) - len(launchers)} commands, no launcher"
    if launchers:
        detail += f"; launchers limited by argument rules: {', '.join(launchers)}"
    return Check("exec allow-list", True, detail)


def check_exec_syscall_filter() -> Check:
    """Install the job filter in a child and see a nested user namespace refused."""
    name = "exec syscall filter"
    unsupported = syscall_filter.unsupported_reason()
    if unsupported is not None:
        return Check(name, False, unsupported)
    pid = os.fork()
    if pid == 0:  # the child leaves only through os._exit
        code = _FILTER_FAILED
        try:
            sc.prctl(sc.PR_SET_NO_NEW_PRIVS, 1)
            syscall_filter.job_filter().install()
            sc.unshare(_CLONE_NEWUSER)
            code = _FILTER_MISSED
        except OSError as exc:
            code = _FILTER_WORKS if exc.errno == errno.EPERM else _FILTER_FAILED
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code == _FILTER_WORKS:
        return Check(name, True, "installs; a job's nested user namespace is refused (EPERM)")
    if code == _FILTER_MISSED:
        return Check(name, False, "installed, but a nested user namespace was still created")
    return Check(name, False, "the kernel refused the seccomp filter (CONFIG_SECCOMP_FILTER?)")


def _exec_checks(settings: RelaySettings) -> list[Check]:
    if not settings.exec.allowed_commands:
        return []  # exec is off: nothing runs, nothing to check
    return [check_exec_allow_list(settings), check_exec_syscall_filter()]


def _plugin_checks(settings: RelaySettings) -> list[Check]:
    """The macct plugin's own checks (hostrelay_relay.macct.doctor), when it is installed."""
    module_name = "hostrelay_relay.macct.doctor"
    try:
        macct_doctor = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name in {"hostrelay_relay.macct", module_name}:
            return []  # this relay ships without the macct plugin
        return [Check("macct checks", False, f"cannot load {module_name}: {exc}")]
    except ImportError as exc:
        return [Check("macct checks", False, f"cannot load {module_name}: {exc}")]
    plugin_checks: Callable[[RelaySettings], list[tuple[str, bool, str]]]
    plugin_checks = macct_doctor.doctor_checks
    return [Check(*item) for item in plugin_checks(settings)]


def run_checks(settings: RelaySettings) -> list[Check]:
    return [
        *check_files(settings),
        check_certificate_dates(settings.broker.cert_file),
        check_public_key(settings),
        check_broker_tls(settings),
        check_state_dir(settings),
        check_root(),
        check_ldap_client(settings),
        *_exec_checks(settings),
        *_plugin_checks(settings),
    ]
