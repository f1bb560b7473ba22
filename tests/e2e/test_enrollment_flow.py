"""Enrollment end to end on the local stack: paste the command, the relay comes up, a ping
runs; the link works once; revoking the host cuts it off; no token reaches any log."""

from __future__ import annotations

import hashlib
import io
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hostrelay_cli.main import Console, main
from hostrelay_cli.settings import CliSettings
from hostrelay_local.stack import LocalStack
from hostrelay_local.template import REPO_ROOT
from tests.e2e.conftest import ApiClient

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

HOST = "web01"


def cli(stack: LocalStack, *argv: str) -> tuple[int, str, str]:
    console = Console(stdout=io.StringIO(), stderr=io.StringIO())
    settings = CliSettings(url=stack.api_url, token=stack.admin_token)
    code = main(list(argv), settings=settings, console=console)
    assert isinstance(console.stdout, io.StringIO) and isinstance(console.stderr, io.StringIO)
    return code, console.stdout.getvalue(), console.stderr.getvalue()


def wait_for(condition, timeout_s: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


class NewHost:
    """A fresh 'machine' in a temp dir: where the pasted command installs and configures."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.prefix = root / "opt" / "hostrelay"
        self.config_dir = root / "etc" / "hostrelay"
        self.state_dir = root / "var" / "lib" / "hostrelay"
        self.bin = root / "bin"
        self.bin.mkdir(parents=True)
        # We are root already; `sudo` just runs the command (this box has no sudo).
        sudo = self.bin / "sudo"
        sudo.write_text('#!/bin/sh\nexec "$@"\n')
        sudo.chmod(0o755)
        self.log = root / "bootstrap.log"
        self.relay: subprocess.Popen[bytes] | None = None

    def paste(self, command: str) -> subprocess.CompletedProcess[str]:
        """Run the pasted command exactly as given, as root, on this 'machine'."""
        env = {
            "PATH": f"{self.bin}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(self.root),
            "HOSTRELAY_PREFIX": str(self.prefix),
            "HOSTRELAY_CONFIG_DIR": str(self.config_dir),
            "HOSTRELAY_STATE_DIR": str(self.state_dir),
            "HOSTRELAY_PYTHON": "python3.11" if _has("python3.11") else "python3",
            # The relay of this checkout, never a package of that name from an index.
            "HOSTRELAY_PACKAGE": str(REPO_ROOT / "relay"),
            **{k: v for k, v in os.environ.items() if k.startswith("PIP_")},
        }
        done = subprocess.run(
            ["bash", "-o", "pipefail", "-c", command],
            env=env, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        with self.log.open("a") as log:
            log.write(done.stdout + done.stderr)
        return done

    def start_relay(self) -> None:
        log = (self.root / "relay.log").open("ab")
        self.relay = subprocess.Popen(
            [str(self.prefix / "venv" / "bin" / "hostrelay-relay"), "run", "--config",
             str(self.config_dir / "relay.toml")],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        log.close()

    def relay_log(self) -> str:
        path = self.root / "relay.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.relay is not None and self.relay.poll() is None:
            self.relay.send_signal(signal.SIGTERM)
            try:
                self.relay.wait(20)
            except subprocess.TimeoutExpired:
                self.relay.kill()
                self.relay.wait()


def _has(program: str) -> bool:
    return (
        subprocess.run(
            ["sh", "-c", f"command -v {program}"], capture_output=True, check=False
        ).returncode
        == 0
    )


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def new_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NewHost]:
    host = NewHost(tmp_path_factory.mktemp("new-host"))
    yield host
    host.stop()


def test_dc01_of_the_stack_was_enrolled_through_the_api(api: ApiClient) -> None:
    host = api.get("/v1/hosts/dc01").json()
    assert host["state"] == "online" and host["cert_expires_at"] is not None
    enrolled = api.get("/v1/audit?action=host.enroll").json()["events"]
    assert any(event["target"] == "host:dc01" for event in enrolled)


def test_pasting_the_command_enrolls_the_host_and_it_runs_a_ping(
    stack: LocalStack, api: ApiClient, new_host: NewHost, capfd: pytest.CaptureFixture[str]
) -> None:
    # Given the command `hostrelay hosts enroll web01` prints
    code, command, err = cli(stack, "hosts", "enroll", HOST, "--role", "web")
    assert code == 0, err
    command = command.strip()
    assert command.startswith("curl -fsSL ") and command.endswith("| sudo bash")

    # When it is pasted as root on a fresh machine
    done = new_host.paste(command)

    # Then the relay is installed, the key was made there, config files are private
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"enrolled {HOST}" in done.stderr
    for name in ("relay.toml", "client.key", "client.pem", "ca.pem", "envelope-signing.pub"):
        assert (new_host.config_dir / name).stat().st_mode & 0o077 == 0, name
    assert new_host.config_dir.stat().st_mode & 0o777 == 0o700
    assert new_host.state_dir.stat().st_mode & 0o777 == 0o700

    # When its relay runs (no systemd here: the script said how to start it)
    assert "hostrelay-relay run --config" in done.stderr
    new_host.start_relay()

    # Then the host comes online and a ping runs on it
    wait_for(lambda: api.host_state(HOST) == "online", 30, f"{HOST} online\n{new_host.relay_log()}")
    job = api.wait_finished(api.create_job("ping", HOST, {"message": "hello"}))
    assert job["state"] == "SUCCEEDED", job
    assert job["result"]["message"] == "hello"
    code, listing, _ = cli(stack, "hosts", "list")
    row = next(line for line in listing.splitlines() if line.startswith(HOST))
    assert "online" in row and "0.1.0" in row

    # When the same command is pasted again
    before = snapshot(new_host.root / "etc")
    again = new_host.paste(command)

    # Then it fails with a clear message and changes nothing
    assert again.returncode != 0
    assert "already used" in again.stderr
    assert snapshot(new_host.root / "etc") == before

    # And neither the enrollment token nor the admin token is in any log, nor their hashes
    token = command.split("/v1/enroll/", 1)[1].split(".sh", 1)[0]
    assert token.startswith("hre_")
    assert_not_logged([token, stack.admin_token], *all_logs(stack, new_host, capfd))


def test_a_revoked_host_is_cut_off(
    stack: LocalStack, api: ApiClient, new_host: NewHost, capfd: pytest.CaptureFixture[str]
) -> None:
    # Given web01 online
    assert api.host_state(HOST) == "online"

    # When an admin revokes it
    code, out, err = cli(stack, "hosts", "revoke", HOST)

    # Then it is revoked, its relay is disconnected and says why when it tries again
    assert code == 0 and "revoked" in out, err
    wait_for(lambda: "certificate revoked" in new_host.relay_log(), 30, "relay to notice")
    assert api.host_state(HOST) == "revoked"
    refused = api.post("/v1/jobs", {"type": "ping", "host": HOST, "params": {}})
    assert refused.status_code == 422
    actions = [e["action"] for e in api.get("/v1/audit").json()["events"]]
    assert {"enrollment.create", "host.enroll", "host.revoke", "job.create"} <= set(actions)
    assert_not_logged([stack.admin_token], *all_logs(stack, new_host, capfd))


def assert_not_logged(secrets: list[str], *texts: str) -> None:
    """Neither the secrets nor their SHA-256 hashes appear in any of the texts."""
    forbidden = [*secrets, *(hashlib.sha256(s.encode()).hexdigest() for s in secrets)]
    for text in texts:
        for secret in forbidden:
            assert secret not in text


def all_logs(stack: LocalStack, new_host: NewHost, capfd: pytest.CaptureFixture[str]) -> list[str]:
    captured = capfd.readouterr()
    paths = [*stack.state_dir.rglob("*.log"), *new_host.root.rglob("*.log")]
    return [captured.out, captured.err, *(p.read_text(errors="replace") for p in paths)]
