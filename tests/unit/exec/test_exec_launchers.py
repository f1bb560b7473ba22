"""exec.allowed_commands refuses command launchers unless marked so, with argument rules."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from hostrelay_local.local_relay import DEMO_EXEC_COMMANDS
from hostrelay_relay import toml_reader as tomllib
from hostrelay_relay.enrollment import render_toml
from hostrelay_relay.handlers.exec import ExecHandler
from hostrelay_relay.settings import RelaySettings


def load(allowed_commands: list[Any]) -> RelaySettings:
    return RelaySettings.model_validate(
        {"host": "dc01", "exec": {"allowed_commands": allowed_commands}}
    )


def refusal_of(allowed_commands: list[Any]) -> str:
    with pytest.raises(ValidationError) as raised:
        load(allowed_commands)
    return str(raised.value)


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/usr/bin/env", "a command launcher"),
        ("/bin/sh", "a shell"),
        ("/bin/bash", "a shell"),
        ("/bin/dash", "a shell"),
        ("/usr/bin/zsh", "a shell"),
        ("/bin/busybox", "a shell"),
        ("/usr/bin/python3", "an interpreter"),
        ("/usr/bin/python3.11", "an interpreter"),
        ("/usr/bin/perl", "an interpreter"),
        ("/usr/bin/ruby", "an interpreter"),
        ("/usr/bin/node", "an interpreter"),
        ("/usr/bin/awk", "an interpreter"),
        ("/usr/bin/sudo", "a privilege or namespace tool"),
        ("/bin/su", "a privilege or namespace tool"),
        ("/usr/bin/unshare", "a privilege or namespace tool"),
        ("/usr/bin/nsenter", "a privilege or namespace tool"),
        ("/usr/sbin/chroot", "a privilege or namespace tool"),
        ("/usr/bin/setpriv", "a privilege or namespace tool"),
        ("/usr/bin/find", "a command launcher"),
        ("/usr/bin/xargs", "a command launcher"),
        ("/usr/bin/timeout", "a command launcher"),
        ("/usr/bin/nice", "a command launcher"),
        ("/lib64/ld-linux-x86-64.so.2", "a command launcher"),
    ],
)
def test_a_launcher_in_the_allow_list_is_refused_at_start_up(path: str, kind: str) -> None:
    """Given relay.toml allowing a launcher as a plain entry, when the settings load, then
    they are refused, naming the entry, what it is and how to allow it with rules."""
    message = refusal_of(["/usr/bin/id", path])

    assert f"allowed command {path} is {kind}" in message
    assert "launcher = true" in message


def test_a_harmless_name_that_resolves_to_a_shell_is_refused(tmp_path: Path) -> None:
    """Given /opt/.../report as a symlink to dash, when allowed, then it is refused as the
    shell it runs."""
    link = tmp_path / "report"
    link.symlink_to("/bin/dash")

    message = refusal_of([str(link)])

    assert f"{link} resolves to {os.path.realpath('/bin/dash')}, a shell" in message


@pytest.mark.parametrize(
    ("pattern", "matched"),
    [
        ("/usr/bin/*", "matches sh, a shell"),
        ("/usr/bin/py*", "matches python3.6, an interpreter"),
        ("/bin/?ash", "matches bash, a shell"),
        ("/usr/local/bin/[e]nv", "matches env, a command launcher"),
        ("/usr/bin/perl5.*", "matches perl5.26, an interpreter"),
    ],
)
def test_a_glob_that_matches_a_launcher_name_is_refused(pattern: str, matched: str) -> None:
    """Given a glob whose last component could name a launcher, then it is refused."""
    message = refusal_of([pattern])

    assert f"allowed command {pattern} {matched}" in message


def test_a_glob_that_matches_a_symlink_to_a_launcher_on_this_host_is_refused(
    tmp_path: Path,
) -> None:
    """Given tools/tool-a -> /bin/bash on disk, when tools/tool-* is allowed, it is refused."""
    (tmp_path / "tools").mkdir()
    (tmp_path / "tools" / "tool-a").symlink_to("/bin/bash")

    message = refusal_of([f"{tmp_path}/tools/tool-*"])

    assert f"{tmp_path}/tools/tool-* matches {tmp_path}/tools/tool-a resolves to" in message


def test_the_demo_allow_list_holds_no_launcher() -> None:
    """Given `make run`'s demo allow-list, then it loads, without /usr/bin/env."""
    settings = load(list(DEMO_EXEC_COMMANDS))

    assert "/usr/bin/id" in settings.exec.allowed_commands
    assert "/usr/bin/env" not in settings.exec.allowed_commands


def test_the_reported_escape_through_env_is_refused_by_the_demo_relay() -> None:
    """Given the demo relay, when a job asks for `env sh -c id`, then it is refused."""
    demo = ExecHandler(load(list(DEMO_EXEC_COMMANDS)))

    with pytest.raises(ValueError, match=r"not in this relay's exec\.allowed_commands"):
        demo.validate({"argv": ["/usr/bin/env", "sh", "-c", "id"]})


PYTHON_REPORT = {
    "command": "/usr/bin/python3",
    "launcher": True,
    "args": [["/opt/reports/*.py"], ["/opt/reports/*.py", "--since", "*"]],
}


@pytest.mark.parametrize(
    "argv",
    [
        ["/usr/bin/python3", "/opt/reports/daily.py"],
        ["/usr/bin/python3", "/opt/reports/daily.py", "--since", "2026-01-01"],
    ],
)
def test_a_marked_launcher_runs_with_arguments_its_rules_allow(argv: list[str]) -> None:
    """Given python3 marked as a launcher with argument rules, then matching argv validate."""
    handler = ExecHandler(load([PYTHON_REPORT]))

    assert handler.validate({"argv": argv}).argv == argv


@pytest.mark.parametrize(
    "argv",
    [
        ["/usr/bin/python3", "-c", "import os; os.system('id')"],
        ["/usr/bin/python3", "/opt/reports/../../tmp/evil.py"],
        ["/usr/bin/python3", "/opt/reports/daily.py", "-c", "x"],
        ["/usr/bin/python3"],
        ["/usr/bin/python3", "-m", "/opt/reports/daily.py"],
    ],
)
def test_a_marked_launcher_refuses_arguments_outside_its_rules(argv: list[str]) -> None:
    """Given python3 marked as a launcher with argument rules, when a job passes other
    arguments (code, a path walking out of the pattern, extra options), then it is refused."""
    handler = ExecHandler(load([PYTHON_REPORT]))

    with pytest.raises(ValueError, match=r"match none of its exec\.allowed_commands rules"):
        handler.validate({"argv": argv})


@pytest.mark.parametrize(
    ("entry", "complaint"),
    [
        ({"command": "/usr/bin/env", "args": [[]]}, "launcher\n  Field required"),
        ({"command": "/usr/bin/env", "launcher": False, "args": [[]]}, "Input should be True"),
        ({"command": "/usr/bin/py*", "launcher": True, "args": [[]]}, "one absolute path"),
        ({"command": "/usr/bin/../bin/env", "launcher": True, "args": [[]]}, "one absolute"),
        ({"command": "/usr/bin/env", "launcher": True, "args": []}, "at least 1 item"),
        ({"command": "/usr/bin/env", "launcher": True, "args": [["a\x00"]]}, "NUL"),
    ],
)
def test_a_launcher_entry_must_be_explicit_and_exact(entry: dict[str, Any], complaint: str) -> None:
    """Given a launcher table that is not marked, names a glob or has no rules, it is refused."""
    assert complaint in refusal_of([entry])


def test_ordinary_commands_and_narrow_globs_load() -> None:
    """Given ordinary commands and a glob that matches no launcher, then the settings load."""
    settings = load(["/usr/bin/id", "/bin/true", "/opt/tools/report-*", "/usr/*/id"])

    assert len(settings.exec.allowed_commands) == 4


def test_a_glob_star_stays_within_one_path_component(tmp_path: Path) -> None:
    """Given /opt/tools/report-*, when a job names a path below a matching directory, then it
    is refused: `*` does not match `/`."""
    handler = ExecHandler(load(["/opt/tools/report-*"]))

    assert handler.validate({"argv": ["/opt/tools/report-daily"]})
    with pytest.raises(ValueError, match=r"not in this relay's exec\.allowed_commands"):
        handler.validate({"argv": ["/opt/tools/report-x/sh"]})


def test_a_launcher_that_appears_after_start_up_is_refused_per_job(tmp_path: Path) -> None:
    """Given a glob accepted at start-up, when a matching symlink to a shell appears later,
    then a job naming it is refused as a shell."""
    (tmp_path / "tools").mkdir()
    handler = ExecHandler(load([f"{tmp_path}/tools/tool-*"]))
    (tmp_path / "tools" / "tool-new").symlink_to("/bin/bash")

    with pytest.raises(ValueError, match="a shell: allowed only with argument rules"):
        handler.validate({"argv": [f"{tmp_path}/tools/tool-new", "-c", "id"]})


def test_a_launcher_entry_survives_the_rewrite_of_relay_toml_at_re_enrollment() -> None:
    """Given relay.toml with a launcher table in exec.allowed_commands, when enrollment writes
    the config again, then the entry reads back the same and still loads."""
    document = {"host": "dc01", "exec": {"allowed_commands": ["/usr/bin/id", PYTHON_REPORT]}}

    written = tomllib.loads(render_toml(document))

    assert written == document
    assert RelaySettings.model_validate(written).exec.allowed_commands[1].command == (
        "/usr/bin/python3"
    )


@pytest.mark.parametrize(
    "entry",
    [
        "/srv/out/report",
        "/srv/*/report",
        {"command": "/srv/out/run.py", "launcher": True, "args": [[]]},
    ],
)
def test_a_command_jobs_could_write_is_refused(entry: Any) -> None:
    """Given /srv/out writable by jobs, when an allowed command could lie below it, then the
    settings are refused: one job could put a shell there for the next to run."""
    with pytest.raises(ValidationError, match="could lie under writable path /srv/out"):
        RelaySettings.model_validate(
            {"host": "dc01", "exec": {"allowed_commands": [entry], "writable_paths": ["/srv/out"]}}
        )


def test_a_command_that_resolves_into_a_writable_path_is_refused(tmp_path: Path) -> None:
    """Given a command symlinked into a directory jobs may write, then it is refused."""
    (tmp_path / "out").mkdir()
    (tmp_path / "report").symlink_to(tmp_path / "out" / "report")

    with pytest.raises(ValidationError, match="could lie under writable path"):
        RelaySettings.model_validate(
            {
                "host": "dc01",
                "exec": {
                    "allowed_commands": [str(tmp_path / "report")],
                    "writable_paths": [str(tmp_path / "out")],
                },
            }
        )
