"""One relay of the local stack: its key, certificate and TOML config, run as a subprocess."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hostrelay_local.broker import BrokerEndpoint, free_port
from hostrelay_local.pki import LocalCA, new_host_key_and_csr

logger = logging.getLogger(__name__)

DEMO_EXEC_COMMANDS = ("/usr/bin/id", "/bin/hostname", "/bin/echo", "/bin/sleep", "/usr/bin/env")


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str | Path):
        return json.dumps(str(value))  # JSON's escapes are valid TOML basic-string escapes
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def render_toml(document: Mapping[str, Any]) -> str:
    """TOML for a document of scalars, lists and one level of tables (the relay config)."""
    lines = [f"{key} = {_toml_value(v)}" for key, v in document.items() if not isinstance(v, dict)]
    for table, body in document.items():
        if isinstance(body, dict):
            lines += ["", f"[{table}]"]
            lines += [f"{key} = {_toml_value(v)}" for key, v in body.items()]
    return "\n".join(lines) + "\n"


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def relay_command() -> list[str]:
    """`hostrelay-relay` from this interpreter's environment."""
    script = Path(sys.executable).with_name("hostrelay-relay")
    if script.exists():
        return [str(script)]
    found = shutil.which("hostrelay-relay")
    return [found] if found else [sys.executable, "-m", "hostrelay_relay"]


@dataclass
class RelayOptions:
    """What the local stack configures for its relay beyond broker and keys."""

    heartbeat_s: float = 30.0
    sam_ldb: Path | None = None
    allowed_commands: Sequence[str] = DEMO_EXEC_COMMANDS
    log_level: str = "INFO"
    extra: dict[str, Any] = field(default_factory=dict)


class LocalRelay:
    """The relay of one host under `directory`: relay.toml, tls/, its ledger and relay.log.

    The host's private key is generated in its own directory (once) and only a CSR goes to
    the CA, as in enrollment; the certificate is signed again on every `prepare`.
    """

    def __init__(self, host: str, directory: Path, options: RelayOptions | None = None) -> None:
        self.host = host
        self.directory = directory
        self.options = options or RelayOptions()
        self.config_path = directory / "relay.toml"
        self.log_path = directory / "relay.log"
        self.public_key_path = directory / "envelope-signing.pub"
        self._tls_dir = directory / "tls"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self.is_running() and self._process else None

    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def prepare(self, ca: LocalCA, broker: BrokerEndpoint, public_key_pem: str) -> None:
        """Write key (if missing), certificate, CA, envelope public key and relay.toml."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.directory.chmod(0o700)
        self._tls_dir.mkdir(exist_ok=True)
        key_path = self._tls_dir / f"{self.host}.key"
        cert_path = self._tls_dir / f"{self.host}.pem"
        ca_path = self._tls_dir / "ca.pem"
        if key_path.exists():
            csr_pem = _csr_for_existing_key(self.host, key_path.read_bytes())
        else:
            key_pem, csr_pem = new_host_key_and_csr(self.host)
            _write_private(key_path, key_pem)
        cert_path.write_bytes(ca.sign_host_csr(csr_pem, self.host))
        ca_path.write_bytes(broker.ca_file.read_bytes())
        self.public_key_path.write_text(public_key_pem)
        document: dict[str, Any] = {
            "host": self.host,
            "state_dir": self.directory,
            "public_key_file": self.public_key_path,
            "heartbeat_s": float(self.options.heartbeat_s),
            "log_level": self.options.log_level,
            "broker": {
                "host": broker.host,
                "port": broker.port,
                "ca_file": ca_path,
                "cert_file": cert_path,
                "key_file": key_path,
                "reconnect_min_s": 0.2,
                "reconnect_max_s": 5.0,
            },
            "exec": {"allowed_commands": list(self.options.allowed_commands)},
            "health": {"listen": f"127.0.0.1:{free_port()}"},
        }
        if self.options.sam_ldb is not None:
            document["macct"] = {"sam_ldb": self.options.sam_ldb}
        document.update(self.options.extra)
        self.config_path.write_text(render_toml(document))

    def start(self) -> None:
        if self.is_running():
            return
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [*relay_command(), "run", "--config", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C on the stack stops it in order, not at once
            )
        logger.info("relay started", extra={"host": self.host, "pid": self._process.pid})

    def stop(self, timeout_s: float = 15.0) -> int | None:
        """SIGTERM (the relay drains), SIGKILL after timeout_s; returns the exit code."""
        process, self._process = self._process, None
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        logger.info("relay stopped", extra={"host": self.host, "code": process.returncode})
        return process.returncode

    def log_tail(self, lines: int = 20) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def _csr_for_existing_key(host: str, key_pem: bytes) -> bytes:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import NameOID

    key = serialization.load_pem_private_key(key_pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise ValueError(f"the key of {host} must be EC or RSA")
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM)
