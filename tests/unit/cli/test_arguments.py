"""Argument parsing of the `hostrelay` CLI (no network)."""

from __future__ import annotations

import argparse

import pytest

from hostrelay_cli.main import (
    build_job_request,
    build_parser,
    param_value,
    parse_duration,
    parse_param,
    parse_params_json,
    split_command,
)
from hostrelay_cli.settings import DEFAULT_URL, CliSettings


def run_args(*argv: str) -> argparse.Namespace:
    options, command = split_command(list(argv))
    args = build_parser().parse_args(options)
    args.argv = command
    return args


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("3", 3),
        ("1.5", 1.5),
        ("true", True),
        ("null", None),
        ('["a", "b"]', ["a", "b"]),
        ('{"k": 1}', {"k": 1}),
        ("hello", "hello"),
        ("dc01.example.org", "dc01.example.org"),
        ("", ""),
        ('"3"', "3"),
    ],
)
def test_param_values_are_json_when_they_parse(text: str, value: object) -> None:
    assert param_value(text) == value


def test_param_splits_at_the_first_equals_sign() -> None:
    assert parse_param("filter=(cn=a)") == ("filter", "(cn=a)")
    for bad in ("novalue", "=x"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_param(bad)


def test_params_json_must_be_an_object() -> None:
    assert parse_params_json('{"a": [1]}') == {"a": [1]}
    for bad in ("[1]", "{bad", '"s"'):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_params_json(bad)


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), ("90s", 90), ("15m", 900), ("12h", 43200), ("30d", 2592000)]
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "-5", "1w", "1.5h", "h"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_duration(text)


def test_params_merge_json_then_pairs() -> None:
    args = run_args(
        "jobs", "run", "macct.repair", "--host", "dc01",
        "--params-json", '{"image": "win11", "dry_run": true}',
        "--param", "dry_run=false", "--param", 'computers=["pc1","pc2"]',
        "--timeout", "120", "--idempotency-key", "k1",
    )  # fmt: skip
    assert build_job_request(args) == {
        "type": "macct.repair",
        "host": "dc01",
        "params": {"image": "win11", "dry_run": False, "computers": ["pc1", "pc2"]},
        "timeout_s": 120,
        "idempotency_key": "k1",
    }


def test_exec_command_after_double_dash_becomes_argv() -> None:
    args = run_args(
        "jobs", "run", "exec", "--host", "dc01", "--wait", "--", "/usr/bin/env", "A=B", "-0"
    )
    assert args.wait is True
    assert build_job_request(args)["params"] == {"argv": ["/usr/bin/env", "A=B", "-0"]}


def test_only_the_first_double_dash_splits() -> None:
    assert split_command(["jobs", "run", "exec", "--", "sh", "--", "-x"]) == (
        ["jobs", "run", "exec"],
        ["sh", "--", "-x"],
    )
    assert split_command(["jobs", "list"]) == (["jobs", "list"], [])


@pytest.mark.parametrize(
    "argv",
    [
        ["jobs", "run", "ping"],  # --host is required
        ["jobs", "run", "ping", "--host", "dc01", "--timeout", "0"],
        ["jobs", "list", "--state", "SLEEPING"],
        ["jobs", "list", "--limit", "0"],
        ["tokens", "create", "ci"],  # --scope is required
        ["tokens", "create", "ci", "--scope", "root"],
        ["hosts"],
        ["nonsense"],
    ],
)
def test_usage_errors_exit_2(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(argv)
    assert exited.value.code == 2


def test_state_filter_is_case_insensitive() -> None:
    assert run_args("jobs", "list", "--state", "queued").state == "QUEUED"


def test_settings_come_from_the_environment(tmp_path: object) -> None:
    assert CliSettings.from_env({}) == CliSettings(url=DEFAULT_URL, token=None)
    env = {"HOSTRELAY_URL": "https://api.example.org/", "HOSTRELAY_TOKEN": " hr_x \n"}
    assert CliSettings.from_env(env) == CliSettings(url="https://api.example.org", token="hr_x")


def test_token_file_is_read_when_no_token_is_set(tmp_path: pytest.TempPathFactory) -> None:
    from pathlib import Path

    token_file = Path(str(tmp_path)) / "admin-token"
    token_file.write_text("hr_from_file\n")
    settings = CliSettings.from_env({"HOSTRELAY_TOKEN_FILE": str(token_file)})
    assert settings.token == "hr_from_file"
