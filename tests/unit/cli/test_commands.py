"""CLI commands against the HTTP API mocked with `responses` (no network)."""

from __future__ import annotations

import base64
import json
from typing import Any

import requests
import responses
from responses import matchers

from hostrelay_cli.client import ApiError, HostrelayClient
from tests.unit.cli.conftest import URL, Cli, job

JOB_ID = "01J00000000000000000000000"


def error_body(
    code: str, message: str, details: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or []}}


def output_page(
    chunks: list[tuple[int, str, bytes]], *, complete: bool, attempt: int = 1
) -> dict[str, Any]:
    return {
        "job_id": JOB_ID,
        "attempt": attempt,
        "chunks": [
            {"seq": seq, "stream": stream, "data": base64.b64encode(data).decode()}
            for seq, stream, data in chunks
        ],
        "next_seq": chunks[-1][0] if chunks else -1,
        "complete": complete,
    }


# ---------------------------------------------------------------- client


def test_client_sends_the_bearer_token_and_json(api: responses.RequestsMock) -> None:
    api.post(
        f"{URL}/v1/jobs",
        json=job(),
        status=201,
        match=[
            matchers.header_matcher({"Authorization": "Bearer hr_test"}),
            matchers.json_params_matcher({"type": "ping", "host": "dc01", "params": {}}),
        ],
    )
    client = HostrelayClient(URL, "hr_test")
    assert client.create_job({"type": "ping", "host": "dc01", "params": {}})["id"] == JOB_ID


def test_client_turns_error_bodies_into_api_errors(api: responses.RequestsMock) -> None:
    api.get(f"{URL}/v1/jobs/x", json=error_body("not_found", "job x not found"), status=404)
    client = HostrelayClient(URL, "hr_test")
    try:
        client.get_job("x")
    except ApiError as exc:
        assert (exc.status, exc.code, exc.message) == (404, "not_found", "job x not found")
    else:
        raise AssertionError("expected ApiError")


def test_client_reports_non_json_errors_and_unreachable_apis(api: responses.RequestsMock) -> None:
    api.get(f"{URL}/v1/hosts", body="Bad Gateway", status=502)
    api.get(f"{URL}/v1/tokens", body=requests.ConnectionError("refused"))
    client = HostrelayClient(URL, "hr_test")
    for call, code in ((client.list_hosts, "http_502"), (client.list_tokens, "unreachable")):
        try:
            call()
        except ApiError as exc:
            assert exc.code == code
        else:
            raise AssertionError("expected ApiError")


def test_client_quotes_path_segments(api: responses.RequestsMock) -> None:
    api.get(f"{URL}/v1/hosts/a%2Fb", json={"name": "a/b"})
    assert HostrelayClient(URL, "t").get_host("a/b") == {"name": "a/b"}


# ---------------------------------------------------------------- jobs run


def test_run_prints_the_job_id(cli: Cli, api: responses.RequestsMock) -> None:
    api.post(f"{URL}/v1/jobs", json=job(), status=201)
    code, out, err = cli("jobs", "run", "ping", "--host", "dc01", "--param", "message=hi")
    assert code == 0
    assert out == f"{JOB_ID}\n"
    assert "queued ping job" in err
    sent = json.loads(api.calls[0].request.body)
    assert sent == {"type": "ping", "host": "dc01", "params": {"message": "hi"}}


def test_run_wait_succeeds_with_summary_and_exit_0(cli: Cli, api: responses.RequestsMock) -> None:
    api.post(f"{URL}/v1/jobs", json=job(), status=201)
    for state in ("QUEUED", "DISPATCHED", "IN_PROGRESS"):
        api.get(f"{URL}/v1/jobs/{JOB_ID}", json=job(state=state))
    api.get(f"{URL}/v1/jobs/{JOB_ID}", json=job(state="SUCCEEDED", result={"pong": True}))
    code, out, err = cli("jobs", "run", "ping", "--host", "dc01", "--wait")
    assert code == 0
    assert "state:      SUCCEEDED" in out and '"pong": true' in out
    # Not a terminal: one line per state change on stderr
    assert err.splitlines() == [
        f"{JOB_ID} {s}" for s in ("QUEUED", "DISPATCHED", "IN_PROGRESS", "SUCCEEDED")
    ]


def test_run_wait_exits_1_when_the_job_fails(cli: Cli, api: responses.RequestsMock) -> None:
    api.post(f"{URL}/v1/jobs", json=job(), status=201)
    failed = job(state="TIMED_OUT", error={"code": "timed_out", "message": "ran over 60s"})
    api.get(f"{URL}/v1/jobs/{JOB_ID}", json=failed)
    code, out, _ = cli("jobs", "run", "ping", "--host", "dc01", "--wait")
    assert code == 1
    assert "timed_out: ran over 60s" in out


def test_run_exec_wait_streams_output_then_summarises_on_stderr(
    cli: Cli, api: responses.RequestsMock
) -> None:
    exec_job = job(type="exec", params={"argv": ["/usr/bin/env", "A=B"]})
    api.post(f"{URL}/v1/jobs", json=exec_job, status=201)
    api.get(f"{URL}/v1/jobs/{JOB_ID}", json={**exec_job, "state": "IN_PROGRESS"})
    api.get(
        f"{URL}/v1/jobs/{JOB_ID}/output",
        json=output_page([(0, "stdout", b"A=B\n"), (1, "stderr", b"warn\n")], complete=False),
    )
    api.get(
        f"{URL}/v1/jobs/{JOB_ID}",
        json={**exec_job, "state": "SUCCEEDED", "result": {"exit_code": 0}},
    )
    api.get(
        f"{URL}/v1/jobs/{JOB_ID}/output",
        json=output_page([(2, "stdout", b"PATH=/bin\n")], complete=True),
        match=[matchers.query_param_matcher({"after_seq": "1", "limit": "1000"})],
    )
    code, out, err = cli(
        "jobs", "run", "exec", "--host", "dc01", "--wait", "--", "/usr/bin/env", "A=B"
    )
    assert code == 0
    assert out == "A=B\nPATH=/bin\n"
    assert "warn\n" in err and '"exit_code": 0' in err
    sent = json.loads(api.calls[0].request.body)
    assert sent["params"] == {"argv": ["/usr/bin/env", "A=B"]}


def test_command_after_double_dash_needs_exec(cli: Cli, api: responses.RequestsMock) -> None:
    code, _, err = cli("jobs", "run", "ping", "--host", "dc01", "--", "ls")
    assert code == 2
    assert "only for exec" in err
    assert not api.calls


def test_params_the_relay_would_refuse_are_refused_before_sending(
    cli: Cli, api: responses.RequestsMock
) -> None:
    # When a computer name one character too long is given to a known job type
    code, _, err = cli(
        "jobs", "run", "macct.capture", "--host", "dc01",
        "--param", "image=win11", "--param", "computer=" + "A" * 16,
    )  # fmt: skip
    # Then the CLI names the field and why, exits 2, and sends nothing
    assert code == 2
    assert "invalid params for macct.capture: computer:" in err and "1-15" in err
    assert not api.calls


def test_api_errors_print_code_and_message_and_exit_2(
    cli: Cli, api: responses.RequestsMock
) -> None:
    api.post(
        f"{URL}/v1/jobs",
        json=error_body("invalid_request", "unknown host 'dc99'", [{"field": "host"}]),
        status=422,
    )
    code, out, err = cli("jobs", "run", "ping", "--host", "dc99")
    assert code == 2
    assert out == ""
    assert "invalid_request: unknown host 'dc99'" in err
    assert "field=host" in err


def test_missing_token_exits_2_without_calling(cli: Cli, api: responses.RequestsMock) -> None:
    from hostrelay_cli.settings import CliSettings

    cli.settings = CliSettings(url=URL, token=None)
    code, _, err = cli("hosts", "list")
    assert code == 2 and "HOSTRELAY_TOKEN" in err
    assert not api.calls


# ---------------------------------------------------------------- other commands


def test_list_follows_next_token_up_to_the_limit(cli: Cli, api: responses.RequestsMock) -> None:
    first = [job(f"01J0000000000000000000000{i}") for i in range(2)]
    api.get(
        f"{URL}/v1/jobs",
        json={"jobs": first, "next_token": "abc"},
        match=[matchers.query_param_matcher({"host": "dc01", "limit": "3"})],
    )
    api.get(
        f"{URL}/v1/jobs",
        json={"jobs": [job("01J00000000000000000000009")], "next_token": "def"},
        match=[matchers.query_param_matcher({"host": "dc01", "limit": "1", "next_token": "abc"})],
    )
    code, out, _ = cli("jobs", "list", "--host", "dc01", "--limit", "3")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "TYPE", "HOST", "STATE", "CREATED"]
    assert len(lines) == 4 and len(api.calls) == 2


def test_show_json(cli: Cli, api: responses.RequestsMock) -> None:
    api.get(f"{URL}/v1/jobs/{JOB_ID}", json=job())
    code, out, _ = cli("jobs", "show", JOB_ID, "--json")
    assert code == 0 and json.loads(out)["id"] == JOB_ID


def test_cancel(cli: Cli, api: responses.RequestsMock) -> None:
    api.post(f"{URL}/v1/jobs/{JOB_ID}/cancel", json=job(state="CANCELED"), status=202)
    assert cli("jobs", "cancel", JOB_ID)[:2] == (0, f"{JOB_ID} CANCELED\n")


def test_logs_prints_every_page(cli: Cli, api: responses.RequestsMock) -> None:
    api.get(
        f"{URL}/v1/jobs/{JOB_ID}/output",
        json=output_page([(0, "stdout", b"one\n"), (1, "stdout", b"two\n")], complete=True),
    )
    code, out, _ = cli("jobs", "logs", JOB_ID)
    assert (code, out) == (0, "one\ntwo\n")


def test_logs_follow_polls_until_complete_and_restarts_on_a_new_attempt(
    cli: Cli, api: responses.RequestsMock
) -> None:
    path = f"{URL}/v1/jobs/{JOB_ID}/output"
    api.get(path, json=output_page([(0, "stdout", b"try1\n")], complete=False))
    api.get(path, json=output_page([(3, "stdout", b"late\n")], complete=False, attempt=2))
    api.get(path, json=output_page([(0, "stdout", b"try2\n")], complete=True, attempt=2))
    code, out, err = cli("jobs", "logs", JOB_ID, "--follow")
    assert code == 0
    assert out == "try1\ntry2\n"
    assert "--- attempt 2 ---" in err


def test_hosts_and_tokens(cli: Cli, api: responses.RequestsMock) -> None:
    host = {
        "name": "dc01", "state": "online", "roles": ["dc"], "last_seen": "2030-01-01T11:59:00Z",
        "connected_at": None, "relay_version": "0.1.0", "cert_expires_at": None,
        "revoked_at": None,
    }  # fmt: skip
    api.get(f"{URL}/v1/hosts", json={"hosts": [host]})
    api.delete(f"{URL}/v1/hosts/dc01", json={**host, "state": "revoked"})
    api.post(
        f"{URL}/v1/tokens",
        json={
            "id": "01JT",
            "token": "hr_secret",
            "name": "ci",
            "scopes": ["service"],
            "expires_at": None,
        },
        status=201,
        match=[
            matchers.json_params_matcher(
                {"name": "ci", "scopes": ["service"], "job_types": ["ping"], "expires_in_s": 86400}
            )
        ],
    )
    code, out, _ = cli("hosts", "list")
    assert code == 0 and "dc01" in out and "0.1.0" in out and "LAST SEEN" in out
    assert cli("hosts", "revoke", "dc01")[1] == "dc01 revoked\n"
    code, out, err = cli(
        "tokens", "create", "ci", "--scope", "service", "--job-type", "ping", "--expires-in", "1d"
    )
    assert (code, out) == (0, "hr_secret\n")
    assert "not shown again" in err and "hr_secret" not in err
