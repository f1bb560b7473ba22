"""`hostrelay hosts enroll`, `hostrelay audit` against the API mocked with `responses`."""

from __future__ import annotations

import json

import responses
from responses import matchers

from tests.unit.cli.conftest import URL, Cli

COMMAND = "curl -fsSL https://api.example.com/v1/enroll/hre_x.sh | sudo bash"


def test_hosts_enroll_prints_only_the_command_on_stdout(
    cli: Cli, api: responses.RequestsMock
) -> None:
    # Given the API offers an enrollment for web01 with role dc
    api.post(
        f"{URL}/v1/enrollments",
        status=201,
        json={"host": "web01", "token": "hre_x", "command": COMMAND,
              "expires_at": "2030-01-01T12:05:00Z"},
        match=[matchers.json_params_matcher({"host": "web01", "roles": ["dc"]})],
    )  # fmt: skip

    # When the admin asks for it
    code, out, err = cli("hosts", "enroll", "web01", "--role", "dc")

    # Then stdout is exactly the command to paste, and stderr says how long it works
    assert code == 0
    assert out == COMMAND + "\n"
    assert "works once" in err and "in 5m" in err


def test_hosts_enroll_replace_asks_for_it_and_says_what_happens(
    cli: Cli, api: responses.RequestsMock
) -> None:
    api.post(
        f"{URL}/v1/enrollments",
        status=201,
        json={"host": "web01", "token": "hre_x", "command": COMMAND,
              "expires_at": "2030-01-01T12:05:00Z"},
        match=[matchers.json_params_matcher({"host": "web01", "replace": True})],
    )  # fmt: skip
    code, _, err = cli("hosts", "enroll", "web01", "--replace")
    assert code == 0 and "current certificate is revoked" in err


def test_hosts_enroll_conflict_is_reported(cli: Cli, api: responses.RequestsMock) -> None:
    api.post(
        f"{URL}/v1/enrollments",
        status=409,
        json={"error": {"code": "conflict", "message": "host web01 is already enrolled",
                        "details": []}},
    )  # fmt: skip
    code, out, err = cli("hosts", "enroll", "web01")
    assert code == 2 and out == ""
    assert "conflict: host web01 is already enrolled" in err


def test_audit_shows_a_table_and_passes_filters(cli: Cli, api: responses.RequestsMock) -> None:
    event = {
        "id": "01J0", "at": "2030-01-01T11:00:00Z", "actor": "token:t1/root",
        "action": "host.revoke", "target": "host:web01", "details": {"cert_ids": ["abc"]},
    }  # fmt: skip
    api.get(
        f"{URL}/v1/audit",
        json={"events": [event]},
        match=[matchers.query_param_matcher({"action": "host.revoke", "limit": "5"})],
    )
    code, out, _ = cli("audit", "--action", "host.revoke", "--limit", "5")
    assert code == 0
    header, row = out.splitlines()
    assert header.split() == ["AT", "ACTOR", "ACTION", "TARGET", "DETAILS"]
    assert "token:t1/root" in row and "host:web01" in row and 'cert_ids=["abc"]' in row

    code, out, _ = cli("audit", "--action", "host.revoke", "--limit", "5", "--json")
    assert json.loads(out) == [event]
