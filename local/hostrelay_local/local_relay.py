"""One relay of the local stack: enrolled through the API like a real host, run as a subprocess."""

from __future__ import annotations

import logging
import shutil
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hostrelay_local.broker import BrokerEndpoint, free_port
from hostrelay_local.pki import LocalCA, new_host_key_and_csr
from hostrelay_relay import toml_reader
from hostrelay_relay.enrollment import (
    CA_FILE,
    CERT_FILE,
    CONFIG_FILE,
    KEY_FILE,
    PUBLIC_KEY_FILE,
    EnrollmentRefused,
    EnrollmentRequest,
    render_toml,
)
from hostrelay_relay.enrollment import (
    enroll as enroll_with_token,
)

logger = logging.getLogger(__name__)

# Harmless commands only: none of them runs another program (no env, shell or interpreter).
DEMO_EXEC_COMMANDS = ("/usr/bin/id", "/bin/hostname", "/bin/echo", "/bin/sleep")
_ENROLL_TIMEOUT_S = 60.0


class RelayEnrollmentFailed(RuntimeError):
    """`hostrelay-relay enroll` did not enroll the relay; the message quotes its output."""


def relay_command() -> list[str]:
    """`hostrelay-relay` from this interpreter's environment."""
    script = Path(sys.executable).with_name("hostrelay-relay")
    if script.exists():
        return [str(script)]
    found = shutil.which("hostrelay-relay")
    return [found] if found else [sys.executable, "-m", "hostrelay_relay"]


@dataclass
class RelayOptions:
    """What the local stack sets in relay.toml besides what enrollment writes."""

    heartbeat_s: float = 30.0
    sam_ldb: Path | None = None
    # Plain command paths, or launcher tables ({command, launcher = true, args = [[...]]}).
    allowed_commands: Sequence[str | dict[str, Any]] = DEMO_EXEC_COMMANDS
    log_level: str = "INFO"
    health: bool = True  # a /metrics and /status listener on a free port
    max_concurrent_jobs: int | None = None  # None: the relay's default
    extra: dict[str, Any] = field(default_factory=dict)


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    tmp.touch(mode=0o600)
    tmp.write_bytes(data)
    tmp.replace(path)


class LocalRelay:
    """The relay of one host under `directory`: config/ (relay.toml, key, certificates),
    state/ (its ledger) and relay.log.

    `enroll` runs `hostrelay-relay enroll` with a one-shot token, as the enrollment script
    does on a real host: the key is made in config/ and only a CSR goes to the API.
    `prepare` is the shortcut when the API cannot enroll: the local CA signs a CSR directly.
    """

    def __init__(self, host: str, directory: Path, options: RelayOptions | None = None) -> None:
        self.host = host
        self.directory = directory
        self.options = options or RelayOptions()
        self.config_dir = directory / "config"
        self.state_dir = directory / "state"
        self.config_path = self.config_dir / CONFIG_FILE
        self.log_path = directory / "relay.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._wanted = False  # started and not stopped since: a supervisor restarts it

    @property
    def pid(self) -> int | None:
        return self._process.pid if self.is_running() and self._process else None

    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def exited(self) -> int | None:
        """The exit code of a relay that ended without `stop` (reaped), else None."""
        return None if self._process is None else self._process.poll()

    def needs_restart(self) -> bool:
        """Started and not stopped, yet not running: it died, or its restart failed."""
        return self._wanted and not self.is_running()

    def _local_settings(self) -> dict[str, Any]:
        """The keys of relay.toml the stack decides (enrollment keeps them)."""
        health = (
            {"listen": f"127.0.0.1:{free_port()}"} if self.options.health else {"enabled": False}
        )
        document: dict[str, Any] = {
            "heartbeat_s": float(self.options.heartbeat_s),
            "log_level": self.options.log_level,
            "broker": {"reconnect_min_s": 0.2, "reconnect_max_s": 5.0},
            "exec": {"allowed_commands": list(self.options.allowed_commands)},
            "health": health,
        }
        if self.options.max_concurrent_jobs is not None:
            document["max_concurrent_jobs"] = self.options.max_concurrent_jobs
        if self.options.sam_ldb is not None:
            document["macct"] = {"sam_ldb": str(self.options.sam_ldb)}
        document.update(self.options.extra)
        return document

    def _make_dirs(self) -> None:
        for path in (self.directory, self.config_dir, self.state_dir):
            path.mkdir(parents=True, exist_ok=True)
            path.chmod(0o700)

    def is_enrolled(self) -> bool:
        """Enrollment wrote its files here before (a restarted fleet keeps its hosts)."""
        return (self.config_dir / CERT_FILE).exists() and self.config_path.exists()

    def _write_local_settings(self) -> None:
        self._make_dirs()
        _write_private(self.config_path, render_toml(self._local_settings()).encode())

    def enroll_in_process(self, api_url: str, token: str) -> None:
        """What `enroll` does, without a process per host: the relay's own enrollment code
        (key made here, CSR sent with the one-shot token, files checked and installed)."""
        self._write_local_settings()
        request = EnrollmentRequest(
            url=api_url,
            host=self.host,
            token=token,
            config_dir=self.config_dir,
            state_dir=self.state_dir,
        )
        try:
            enroll_with_token(request)
        except (EnrollmentRefused, OSError) as exc:
            raise RelayEnrollmentFailed(str(exc)) from None

    def enroll(self, api_url: str, token: str) -> None:
        """Write the stack's settings, then enroll with `hostrelay-relay enroll`."""
        self._write_local_settings()
        done = subprocess.run(
            [
                *relay_command(),
                "enroll",
                "--url",
                api_url,
                "--host",
                self.host,
                "--token-stdin",
                "--config-dir",
                str(self.config_dir),
                "--state-dir",
                str(self.state_dir),
            ],
            input=(token + "\n").encode(),
            capture_output=True,
            timeout=_ENROLL_TIMEOUT_S,
            check=False,
        )
        if done.returncode != 0:
            output = (done.stderr or done.stdout).decode(errors="replace").strip()
            raise RelayEnrollmentFailed(output[-1000:] or f"exit code {done.returncode}")

    def prepare(self, ca: LocalCA, broker: BrokerEndpoint, public_key_pem: str) -> None:
        """Without the API: a key made here, its CSR signed by the CA, relay.toml written."""
        self._make_dirs()
        key_pem, csr_pem = new_host_key_and_csr(self.host)
        _write_private(self.config_dir / KEY_FILE, key_pem)
        _write_private(self.config_dir / CERT_FILE, ca.sign_host_csr(csr_pem, self.host))
        _write_private(self.config_dir / CA_FILE, broker.ca_file.read_bytes())
        _write_private(self.config_dir / PUBLIC_KEY_FILE, public_key_pem.encode())
        document = self._local_settings()
        document.update(
            host=self.host,
            state_dir=str(self.state_dir),
            public_key_file=str(self.config_dir / PUBLIC_KEY_FILE),
        )
        document["broker"].update(
            host=broker.host,
            port=broker.port,
            ca_file=str(self.config_dir / CA_FILE),
            cert_file=str(self.config_dir / CERT_FILE),
            key_file=str(self.config_dir / KEY_FILE),
        )
        _write_private(self.config_path, render_toml(document).encode())

    def settings_document(self) -> dict[str, Any]:
        with self.config_path.open("rb") as handle:
            return toml_reader.load(handle)

    def start(self) -> None:
        self._wanted = True
        if self.is_running():
            return
        if self._process is not None:
            self._process.wait()  # reap the one that ended
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
        self._wanted = False
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
