"""What exec.allowed_commands allows: path globs, command launchers and their argument rules."""

from __future__ import annotations

import os
import posixpath
from collections.abc import Sequence
from fnmatch import fnmatchcase
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from hostrelay_contract.paths import normalized_absolute_path

# A launcher runs a program or code chosen by its arguments (or environment), so allowing it
# allows everything: `env sh -c ...`, `python3 -c ...`, `find / -exec ...`, `unshare -r ...`.
# This table is the one place that says what counts as one; a name is judged on the path an
# entry names and on the file it resolves to (/bin/sh -> dash, /usr/bin/python3 -> python3.11).
_SHELL = "a shell"
_INTERPRETER = "an interpreter"
_LAUNCHER = "a command launcher"
_PRIVILEGE = "a privilege or namespace tool"
_LAUNCHER_NAMES: dict[str, str] = {
    **dict.fromkeys(
        (
            "sh", "bash", "rbash", "dash", "ash", "ksh", "ksh93", "mksh", "pdksh", "oksh",
            "zsh", "csh", "tcsh", "fish", "yash", "posh", "busybox", "toybox", "elvish",
            "nu", "xonsh", "pwsh", "rc", "es", "screen", "tmux",
        ),
        _SHELL,
    ),
    **dict.fromkeys(
        (
            "irb", "deno", "bun", "expect", "awk", "gawk", "mawk", "nawk", "original-awk",
            "sed", "gsed", "dc", "ed", "red", "ex", "vi", "vim", "nvim", "view", "vimdiff",
            "emacs", "R", "Rscript", "julia", "java", "jshell", "scala", "groovy", "erl",
            "escript", "elixir", "iex", "ghci", "runghc", "runhaskell", "racket", "sbcl",
            "clisp", "ocaml", "swipl", "gdb", "lldb", "sqlite3", "jjs", "rhino", "jrunscript",
        ),
        _INTERPRETER,
    ),
    **dict.fromkeys(
        (
            "env", "xargs", "find", "nice", "nohup", "ionice", "timeout", "taskset", "chrt",
            "setsid", "stdbuf", "flock", "watch", "time", "strace", "ltrace", "valgrind",
            "script", "run-parts", "parallel", "make", "gmake", "tar", "rsync", "ssh", "scp",
            "sftp", "sshpass", "zip", "git", "socat", "ncat", "at", "batch", "ip", "prlimit",
            "setarch", "linux32", "linux64", "i386", "x86_64", "aarch64", "cgexec",
            "catchsegv", "xdg-open", "dpkg", "apt", "apt-get", "rpm", "dnf", "yum", "pip",
            "pip3", "docker", "podman", "ctr", "nerdctl", "kubectl", "crictl", "ld.so",
        ),
        _LAUNCHER,
    ),
    **dict.fromkeys(
        (
            "sudo", "su", "doas", "pkexec", "runuser", "sg", "newgrp", "unshare", "nsenter",
            "chroot", "setpriv", "capsh", "systemd-run", "systemd-nspawn", "machinectl",
            "firejail", "bwrap", "runc", "crun", "lxc-attach", "lxc-execute",
        ),
        _PRIVILEGE,
    ),
}  # fmt: skip
# Versioned names (python3.11, perl5.36.0, ld-linux-x86-64.so.2, ...), as fnmatch patterns.
_LAUNCHER_NAME_PATTERNS: tuple[tuple[str, str], ...] = (
    ("python*", _INTERPRETER),
    ("pypy*", _INTERPRETER),
    ("jython*", _INTERPRETER),
    ("perl*", _INTERPRETER),
    ("ruby*", _INTERPRETER),
    ("node*", _INTERPRETER),
    ("lua*", _INTERPRETER),
    ("php*", _INTERPRETER),
    ("tclsh*", _INTERPRETER),
    ("wish*", _INTERPRETER),
    ("guile*", _INTERPRETER),
    ("ld-*.so*", _LAUNCHER),  # the dynamic loader runs any binary named as its argument
)
# Concrete names a glob entry is tried against, besides the table above: a glob that could
# match any of them (`/usr/bin/*`, `/usr/bin/py*`, `/bin/?ash`) is refused like the name.
_VERSIONED_SAMPLES = (
    *(f"python3.{minor}" for minor in range(6, 16)),
    "python", "python2", "python2.7", "python3", "pypy", "pypy3", "perl", "perl5",
    *(f"perl5.{minor}" for minor in range(26, 44, 2)),
    "ruby", *(f"ruby{version}" for version in ("2.7", "3.0", "3.1", "3.2", "3.3", "3.4")),
    "node", "nodejs", "lua", "luajit", "lua5.1", "lua5.2", "lua5.3", "lua5.4", "php",
    "php7.4", "php8.1", "php8.2", "php8.3", "tclsh", "tclsh8.6", "wish8.6", "guile3.0",
    "ld-linux-x86-64.so.2", "ld-linux-aarch64.so.1", "ld-linux.so.2",
)  # fmt: skip
_GLOB_CHARS = frozenset("*?[")


def launcher_kind(name: str) -> str | None:
    """What kind of launcher a file name is ("a shell", ...), or None for an ordinary one."""
    kind = _LAUNCHER_NAMES.get(name)
    if kind is not None:
        return kind
    for pattern, pattern_kind in _LAUNCHER_NAME_PATTERNS:
        if fnmatchcase(name, pattern):
            return pattern_kind
    return None


def is_glob(pattern: str) -> bool:
    return any(char in _GLOB_CHARS for char in pattern)


def path_matches(command: str, pattern: str) -> bool:
    """Whether an absolute, normalized command matches an allow-list glob.

    Component by component: `*`, `?` and `[...]` never match a `/`, so `/opt/tools/*`
    allows `/opt/tools/report` but not `/opt/tools/sub/sh`.
    """
    names, parts = command.split("/"), pattern.split("/")
    return len(names) == len(parts) and all(
        fnmatchcase(name, part) for name, part in zip(names, parts, strict=True)
    )


def launcher_reason(entry: str) -> str | None:
    """Why an allow-list path or glob names a launcher, or None when it does not."""
    if is_glob(entry):
        last = entry.rsplit("/", 1)[-1]
        for name in (*_LAUNCHER_NAMES, *_VERSIONED_SAMPLES):
            if fnmatchcase(name, last):
                kind = launcher_kind(name)
                return f"{entry} matches {name}, {kind}"
        for path in _existing_matches(entry):
            reason = _file_launcher_reason(path)
            if reason is not None:
                return f"{entry} matches {reason}"
        return None
    return _file_launcher_reason(entry)


def _file_launcher_reason(path: str) -> str | None:
    kind = launcher_kind(posixpath.basename(path))
    if kind is not None:
        return f"{path} is {kind}"
    # Symlinks are judged by what they run: /usr/bin/awk -> /etc/alternatives/awk -> mawk.
    resolved = os.path.realpath(path)
    kind = launcher_kind(posixpath.basename(resolved))
    if kind is not None:
        return f"{path} resolves to {resolved}, {kind}"
    return None


def _existing_matches(pattern: str) -> list[str]:
    """The paths on this host that match `pattern` (as `path_matches` reads it)."""
    found = ["/"]
    for part in pattern.strip("/").split("/"):
        following: list[str] = []
        for base in found:
            if not is_glob(part):
                candidate = posixpath.join(base, part)
                if os.path.lexists(candidate):
                    following.append(candidate)
                continue
            try:
                names = os.listdir(base)
            except OSError:  # not a directory, or not readable: nothing matches below it
                continue
            following += [posixpath.join(base, name) for name in names if fnmatchcase(name, part)]
        found = following
    return found


def writable_overlap(entry: str, writable_paths: Sequence[str]) -> str | None:
    """The writable path (granted to jobs) an allow-list entry could name a file under.

    A job could write a shell there, under the allowed name, for the next job to run.
    """
    targets = [entry] if is_glob(entry) else [entry, os.path.realpath(entry)]
    for writable in writable_paths:
        parts = writable.rstrip("/").split("/")
        for target in targets:
            names = target.split("/")
            if len(names) > len(parts) and all(
                fnmatchcase(part, name) or fnmatchcase(name, part)
                for name, part in zip(names, parts, strict=False)
            ):
                return writable
    return None


class LauncherCommand(BaseModel):
    """An allow-list entry for a launcher: its exact path and the argument lists it may get.

    In relay.toml: `{command = "/usr/bin/python3", launcher = true, args = [["/opt/x.py",
    "*"]]}`. Each rule is one fnmatch pattern per argument (after argv[0]), same count; a
    pattern that starts with `/` only matches a normalized absolute path.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    command: str
    launcher: Literal[True] = Field(description="says the operator knows it runs other code")
    args: list[list[str]] = Field(min_length=1)

    @field_validator("command")
    @classmethod
    def _command_is_a_path(cls, value: str) -> str:
        if "\x00" in value or is_glob(value) or not normalized_absolute_path(value):
            raise ValueError(f"launcher command {value!r} must be one absolute path, no glob")
        return value

    @field_validator("args")
    @classmethod
    def _patterns_have_no_nul(cls, value: list[list[str]]) -> list[list[str]]:
        if any("\x00" in pattern for rule in value for pattern in rule):
            raise ValueError("launcher argument patterns must not contain NUL")
        return value

    def allows(self, argv: Sequence[str]) -> bool:
        if argv[0] != self.command:
            return False
        return any(_args_match(argv[1:], rule) for rule in self.args)


def _args_match(args: Sequence[str], rule: Sequence[str]) -> bool:
    if len(args) != len(rule):
        return False
    for arg, pattern in zip(args, rule, strict=True):
        if not fnmatchcase(arg, pattern):
            return False
        if pattern.startswith("/") and not normalized_absolute_path(arg):
            return False  # "/opt/x/*.py" must not allow "/opt/x/../../tmp/evil.py"
    return True


AllowedCommand = str | LauncherCommand


def refusal(argv: Sequence[str], allowed: Sequence[AllowedCommand]) -> str | None:
    """Why this relay's allow-list does not let a job run `argv`, or None when it does.

    The launcher check runs again per job on the file as it is now: a glob entry accepted at
    start-up may since have come to match a symlink to a shell.
    """
    command = argv[0]
    launcher_refused: str | None = None
    has_rules = False
    for entry in allowed:
        if isinstance(entry, LauncherCommand):
            if entry.allows(argv):
                return None
            has_rules = has_rules or entry.command == command
        elif path_matches(command, entry):
            reason = _file_launcher_reason(command)
            if reason is None:
                return None
            launcher_refused = reason
    if has_rules:
        return f"the arguments of {command!r} match none of its exec.allowed_commands rules"
    if launcher_refused is not None:
        return f"{launcher_refused}: allowed only with argument rules (launcher = true)"
    return f"command {command!r} is not in this relay's exec.allowed_commands"
