"""`hostrelay-local run` as a process: it comes up, writes its token, and stops cleanly."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest
import requests

from hostrelay_local.stack_process import StackProcess

pytestmark = pytest.mark.e2e


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def test_sigterm_stops_every_part_and_exits_zero(tmp_path: Path) -> None:
    # Given the stack running as a process
    stack = StackProcess(tmp_path, extra_args=["--no-samba"]).start()
    try:
        relay_pid = int(stack.state["relay"]["pid"])  # type: ignore[index]
        broker_port = int(stack.state["broker"]["port"])  # type: ignore[index]
        token_file = tmp_path / "admin-token"

        # Then it serves the API, and the admin token is in a file only its owner can read
        assert requests.get(stack.api_url + "/v1/health", timeout=10).status_code == 200
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        assert token_file.read_text().strip() == stack.admin_token
        assert _alive(relay_pid) and _listening(broker_port)
    finally:
        # When it gets SIGTERM
        code = stack.stop()

    # Then it exits 0 with its relay, broker and API gone
    assert code == 0, stack.log_tail()
    assert not _alive(relay_pid)
    assert not _listening(broker_port)
    assert not (tmp_path / "stack.json").exists()
