"""`hostrelay-local run` as a process: it comes up, writes its token, stops cleanly and at once
on SIGTERM or Ctrl-C (even while starting), refuses to start without a promised part, and
restarts the broker or relay when one dies, losing no result."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from hostrelay_local.stack_process import StackProcess
from tests.e2e.conftest import ApiClient

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

# SIGTERM must end the stack within seconds; StackProcess.stop SIGKILLs it after this long,
# which shows as exit code -9 instead of 0.
_STOP_BOUND_S = 20.0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _descendants(root: int) -> dict[int, str]:
    """Every process below `root` (pid → command name), read from /proc."""
    parents: dict[int, int] = {}
    names: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat_line = (entry / "stat").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue
        name = stat_line[stat_line.index("(") + 1 : stat_line.rindex(")")]
        parents[int(entry.name)] = int(stat_line[stat_line.rindex(")") + 2 :].split()[1])
        names[int(entry.name)] = name
    found: dict[int, str] = {}
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent and pid not in found:
                found[pid] = names[pid]
                frontier.append(pid)
    return found


def _wait_for(condition: Callable[[], Any], timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_sigterm_stops_every_part_and_exits_zero(tmp_path: Path) -> None:
    # Given the stack running as a process, with its demo directory
    stack = StackProcess(tmp_path, extra_args=["--no-samba"]).start()
    try:
        relay_pid = int(stack.state["relay"]["pid"])  # type: ignore[index]
        broker_port = int(stack.state["broker"]["port"])  # type: ignore[index]
        token_file = tmp_path / "admin-token"
        assert stack.pid is not None
        children = _descendants(stack.pid)

        # Then it serves the API, and the admin token is in a file only its owner can read
        assert requests.get(stack.api_url + "/v1/health", timeout=10).status_code == 200
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        assert token_file.read_text().strip() == stack.admin_token
        assert _alive(relay_pid) and _listening(broker_port)
        assert {"mosquitto", "slapd"} <= set(children.values()), children
    finally:
        # When it gets SIGTERM
        code = stack.stop(timeout_s=_STOP_BOUND_S)

    # Then it exits 0 (no SIGKILL needed) with its relay, broker, directory and API gone
    assert code == 0, stack.log_tail()
    assert not [f"{name} {pid}" for pid, name in children.items() if _alive(pid)]
    assert not _listening(broker_port)
    assert not (tmp_path / "stack.json").exists()


def test_ctrl_c_while_starting_stops_what_had_started(tmp_path: Path) -> None:
    # Given `make run` starting (its broker is up, the rest is still coming)
    log_path = tmp_path / "stack.log"
    env = dict(os.environ, HOSTRELAY_STATE_DIR=str(tmp_path), HOSTRELAY_PORT="0")
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "hostrelay_local.stack", "run", "--no-samba"],
            env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    try:
        _wait_for(
            lambda: "broker started" in log_path.read_text() or process.poll() is not None,
            120,
            "the broker to start",
        )
        children = _descendants(process.pid)

        # When Ctrl-C comes
        process.send_signal(signal.SIGINT)
        code = process.wait(_STOP_BOUND_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    # Then it exits 0 at once and leaves nothing running
    assert code == 0, log_path.read_text()[-3000:]
    assert "mosquitto" in children.values(), children
    assert not [f"{name} {pid}" for pid, name in children.items() if _alive(pid)]


def test_a_missing_debian_package_stops_make_run_with_the_fix(tmp_path: Path) -> None:
    # Given a machine where samba-tool is not installed (a PATH without it)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for directory in ("/usr/local/bin", "/usr/bin", "/bin"):
        for program in Path(directory).iterdir():
            if program.name != "samba-tool" and not (bin_dir / program.name).exists():
                (bin_dir / program.name).symlink_to(program)
    env = dict(
        os.environ,
        PATH=f"{Path(sys.executable).parent}:{bin_dir}:/usr/sbin:/sbin",
        HOSTRELAY_STATE_DIR=str(tmp_path / "state"),
        HOSTRELAY_PORT="0",
    )

    # When `hostrelay-local run` starts
    done = subprocess.run(
        [sys.executable, "-m", "hostrelay_local.stack", "run", "--no-directory"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip

    # Then it exits non-zero naming the package, how to install it, and how to leave it out
    assert done.returncode == 1, done.stderr
    assert "demo Samba AD domain" in done.stderr
    assert "samba" in done.stderr and "make system-deps" in done.stderr
    assert "--no-samba" in done.stderr
    assert not (tmp_path / "state" / "stack.json").exists()


# --- supervision: one stack process for the tests below --------------------------------


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackProcess]:
    """Given `hostrelay-local run` (no samba, no directory) with a sweep every second."""
    stack = StackProcess(
        tmp_path_factory.mktemp("supervised"),
        extra_args=["--no-samba", "--no-directory"],
        env={"HOSTRELAY_SWEEP_S": "1"},
    ).start()
    yield stack
    assert stack.stop(timeout_s=_STOP_BOUND_S) == 0, stack.log_tail()


@pytest.fixture(scope="module")
def client(running: StackProcess) -> ApiClient:
    return ApiClient(running.api_url, running.admin_token)


def test_the_banner_says_what_runs_and_what_is_left_out(running: StackProcess) -> None:
    # Given the stack started with --no-samba --no-directory, Then its banner lists what runs
    # and what was left out, and by which flag
    banner = running.log_path.read_text()
    assert "broker       mosquitto on 127.0.0.1:" in banner
    assert "relay dc01" in banner
    assert "samba domain left out (--no-samba)" in banner
    assert "directory    left out (--no-directory)" in banner


def _part_pid(stack: StackProcess, part: str) -> int | None:
    pid = stack.read_state()[part]["pid"]  # type: ignore[index]
    return None if pid is None else int(pid)


def _replaced(stack: StackProcess, part: str, old_pid: int) -> int | None:
    pid = _part_pid(stack, part)
    return pid if pid not in (None, old_pid) and _alive(pid) else None


def test_a_broker_restart_under_load_loses_no_result(
    running: StackProcess, client: ApiClient
) -> None:
    # Given 60 pings and 6 execs running or queued on dc01
    jobs = [client.create_job("ping", "dc01", {"sleep_s": 0.2}) for _ in range(60)]
    jobs += [
        client.create_job("exec", "dc01", {"argv": ["/bin/sleep", "2"], "timeout_s": 60})
        for _ in range(6)
    ]
    _wait_for(
        lambda: any(client.job(job)["state"] != "QUEUED" for job in jobs[-6:]),
        60,
        "the execs to be under way",
    )

    # When the broker is restarted (SIGTERM; the stack starts it again)
    old_broker = _part_pid(running, "broker")
    assert old_broker is not None
    os.kill(old_broker, signal.SIGTERM)
    _wait_for(lambda: _replaced(running, "broker", old_broker), 60, "a new broker")

    # Then every job finishes SUCCEEDED: no result was lost in the restart
    states = {job: client.wait_finished(job, timeout_s=120)["state"] for job in jobs}
    assert [state for state in states.values() if state != "SUCCEEDED"] == []
    assert not _alive(old_broker)  # reaped, not a zombie


@pytest.mark.parametrize("part", ["relay", "broker"])
def test_a_part_that_dies_is_restarted(running: StackProcess, client: ApiClient, part: str) -> None:
    # Given the relay (or the broker) of the running stack
    old_pid = _part_pid(running, part)
    assert old_pid is not None and _alive(old_pid)

    # When it is killed
    os.kill(old_pid, signal.SIGKILL)

    # Then the stack starts a new one, reaps the old one, and jobs run again
    _wait_for(lambda: _replaced(running, part, old_pid), 60, f"a new {part}")
    assert not _alive(old_pid)
    job = client.wait_finished(client.create_job("ping", "dc01"), timeout_s=60)
    assert job["state"] == "SUCCEEDED", job


def test_a_stack_killed_outright_leaves_nothing_running_after_the_next_start(
    tmp_path: Path,
) -> None:
    # Given a stack killed with SIGKILL (no chance to stop its broker and relay)
    first = StackProcess(tmp_path, extra_args=["--no-samba", "--no-directory"]).start()
    assert first.pid is not None
    orphans = _descendants(first.pid)
    assert {"mosquitto"} <= set(orphans.values()), orphans
    os.kill(first.pid, signal.SIGKILL)
    first.stop()
    assert any(_alive(pid) for pid in orphans)  # they outlive it

    # When the next stack starts with the same state directory
    with StackProcess(tmp_path, extra_args=["--no-samba", "--no-directory"]) as second:
        # Then what the killed one left running is gone, and the new one runs jobs
        assert not [f"{name} {pid}" for pid, name in orphans.items() if _alive(pid)]
        api = ApiClient(second.api_url, second.admin_token)
        job = api.wait_finished(api.create_job("ping", "dc01"), timeout_s=60)
        assert job["state"] == "SUCCEEDED", job

        # And a third one on the same state directory is refused while it runs
        third = subprocess.run(
            [sys.executable, "-m", "hostrelay_local.stack", "run", "--no-samba", "--no-directory"],
            env=dict(os.environ, HOSTRELAY_STATE_DIR=str(tmp_path), HOSTRELAY_PORT="0"),
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert third.returncode == 1
        assert f"another hostrelay-local (pid {second.pid})" in third.stderr
        assert requests.get(second.api_url + "/v1/health", timeout=10).status_code == 200
        assert second.read_state()["api_url"] == second.api_url
