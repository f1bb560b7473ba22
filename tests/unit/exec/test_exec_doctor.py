"""`hostrelay-relay doctor` on exec: launchers in the allow-list and the job syscall filter."""

from __future__ import annotations

import platform
import sys
from pathlib import Path
from typing import Any

import pytest

from hostrelay_relay.cli import main
from hostrelay_relay.doctor import check_exec_allow_list, check_exec_syscall_filter, run_checks
from hostrelay_relay.settings import RelaySettings


def settings_with(allowed_commands: list[Any], tmp_path: Path) -> RelaySettings:
    return RelaySettings.model_validate(
        {
            "host": "dc01",
            "state_dir": str(tmp_path / "state"),
            "broker": {"host": "127.0.0.1", "port": 1},
            "exec": {"allowed_commands": allowed_commands},
        }
    )


def test_doctor_fails_an_entry_that_has_become_a_launcher(tmp_path: Path) -> None:
    """Given a glob accepted at start-up, when a matching symlink to a shell appears, then
    doctor fails the allow-list check and names it."""
    (tmp_path / "tools").mkdir()
    settings = settings_with([f"{tmp_path}/tools/tool-*"], tmp_path)
    (tmp_path / "tools" / "tool-sh").symlink_to("/bin/dash")

    check = check_exec_allow_list(settings)

    assert not check.ok
    assert f"{tmp_path}/tools/tool-sh resolves to" in check.detail
    assert "a shell" in check.detail


def test_doctor_lists_launchers_limited_by_rules(tmp_path: Path) -> None:
    """Given an ordinary command and a marked launcher, then the check passes and names it."""
    python = {"command": "/usr/bin/python3", "launcher": True, "args": [["/opt/x.py"]]}
    settings = settings_with(["/usr/bin/id", python], tmp_path)

    check = check_exec_allow_list(settings)

    assert check.ok
    assert check.detail == (
        "1 commands, no launcher; launchers limited by argument rules: /usr/bin/python3"
    )


@pytest.mark.skipif(
    sys.platform != "linux" or platform.machine() not in {"x86_64", "aarch64"},
    reason="the job filter exists for Linux on x86_64 and aarch64",
)
def test_doctor_proves_the_job_filter_refuses_nested_user_namespaces() -> None:
    """Given this host, when doctor installs the job filter in a child, then the child's
    nested user namespace is refused and the check says so."""
    check = check_exec_syscall_filter()

    assert check.ok, check.detail
    assert "EPERM" in check.detail


def test_doctor_runs_the_exec_checks_only_when_exec_is_on(tmp_path: Path) -> None:
    """Given exec on and off, then the exec checks appear only when commands are allowed."""
    on = {check.name for check in run_checks(settings_with(["/usr/bin/id"], tmp_path))}
    off = {check.name for check in run_checks(settings_with([], tmp_path))}

    assert {"exec allow-list", "exec syscall filter"} <= on
    assert not {"exec allow-list", "exec syscall filter"} & off


def test_doctor_and_run_refuse_a_config_that_allows_env(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Given relay.toml allowing /usr/bin/env, when doctor runs, then the configuration check
    fails naming the launcher; when the relay starts, it exits with the same reason."""
    config = tmp_path / "relay.toml"
    config.write_text('host = "dc01"\n[exec]\nallowed_commands = ["/usr/bin/id", "/usr/bin/env"]\n')

    code = main(["doctor", "--config", str(config)])
    out = capsys.readouterr().out
    with pytest.raises(SystemExit) as exited:
        main(["run", "--config", str(config)])

    assert code == 1
    assert out.startswith("FAIL  configuration:")
    assert "/usr/bin/env is a command launcher" in out
    assert exited.value.code == 2
    assert "/usr/bin/env is a command launcher" in capsys.readouterr().err
