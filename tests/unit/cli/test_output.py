"""How the CLI formats things (no network)."""

from __future__ import annotations

import io
from datetime import timedelta

from hostrelay_cli import output
from tests.unit.cli.conftest import NOW, job


def test_relative_times() -> None:
    assert output.relative(NOW - timedelta(seconds=5), NOW) == "5s ago"
    assert output.relative(NOW - timedelta(minutes=90), NOW) == "1h ago"
    assert output.relative(NOW + timedelta(days=30, hours=5), NOW) == "in 30d"


def test_format_time() -> None:
    assert output.format_time("2030-01-01T11:55:00Z", NOW) == "2030-01-01 11:55:00Z (5m ago)"
    assert output.format_time("2030-01-01T12:55:00+01:00", NOW) == "2030-01-01 11:55:00Z (5m ago)"
    assert output.format_time(None, NOW) == "-"
    assert output.format_time("not a time", NOW) == "-"


def test_table_columns_line_up() -> None:
    table = output.format_table(("NAME", "STATE"), [["dc01", "online"], ["a-long-name", "-"]])
    assert table.splitlines() == [
        "NAME         STATE",
        "dc01         online",
        "a-long-name  -",
    ]


def test_job_summary_shows_state_error_and_result() -> None:
    done = job(
        state="FAILED",
        finished_at="2030-01-01T11:59:30Z",
        error={"code": "exit_status", "message": "exited 3"},
        result={"exit_code": 3},
    )
    text = output.job_summary(done, NOW)
    assert "state:      FAILED" in text
    assert "error:      exit_status: exited 3" in text
    assert 'result:\n{\n  "exit_code": 3\n}' in text


def test_host_rows_show_presence_relay_certificate_and_tags() -> None:
    host = {
        "name": "dc01",
        "state": "online",
        "roles": [],
        "last_seen": "2030-01-01T11:59:50Z",
        "connected_at": None,
        "relay_version": "0.3.1",
        "cert_expires_at": "2031-01-01T12:00:00Z",
        "revoked_at": None,
        "tags": {"site": "north", "role": "dc"},
    }
    assert output.host_rows([host], NOW) == [
        [
            "dc01",
            "online",
            "2030-01-01 11:59:50Z (10s ago)",
            "0.3.1",
            "2031-01-01 12:00:00Z (in 365d)",
            "role=dc,site=north",
        ]
    ]
    assert output.host_rows([{**host, "tags": {}}], NOW)[0][-1] == "-"


def test_token_rows_show_limits_and_never_expiring() -> None:
    token = {
        "id": "01J1",
        "name": "linbo",
        "scopes": ["service"],
        "job_types": ["macct.repair"],
        "hosts": ["dc01", "dc02"],
        "created_by": "token:bootstrap/bootstrap",
        "created_at": "2030-01-01T00:00:00Z",
        "expires_at": None,
        "last_used_at": None,
        "revoked_at": None,
    }
    row = output.token_rows([token], NOW)[0]
    assert row[:5] == ["01J1", "linbo", "service", "types=macct.repair hosts=dc01,dc02", "never"]


def test_state_line_prints_changes_when_not_a_terminal() -> None:
    stream = io.StringIO()
    line = output.StateLine(stream, interactive=False)
    for state in ("QUEUED", "QUEUED", "DISPATCHED", "SUCCEEDED"):
        line.update(job(state=state), 1.0)
    line.clear()
    assert stream.getvalue().splitlines() == [
        "01J00000000000000000000000 QUEUED",
        "01J00000000000000000000000 DISPATCHED",
        "01J00000000000000000000000 SUCCEEDED",
    ]


def test_state_line_spins_in_place_on_a_terminal() -> None:
    stream = io.StringIO()
    line = output.StateLine(stream, interactive=True)
    line.update(job(state="QUEUED"), 0.2)
    line.update(job(state="IN_PROGRESS"), 3.4)
    line.clear()
    text = stream.getvalue()
    assert "\n" not in text
    assert "ping on dc01: IN_PROGRESS 3s" in text
    assert text.endswith("\r\x1b[K")
