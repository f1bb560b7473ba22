"""Fixtures for CLI tests: a captured console, settings, and the HTTP API mocked by `responses`."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
import responses

from hostrelay_cli.main import Console, main
from hostrelay_cli.settings import CliSettings

URL = "http://api.test"
NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


class CapturedConsole(Console):
    def captured(self) -> tuple[str, str]:
        assert isinstance(self.stdout, io.StringIO) and isinstance(self.stderr, io.StringIO)
        return self.stdout.getvalue(), self.stderr.getvalue()


@dataclass
class Cli:
    console: CapturedConsole
    settings: CliSettings

    def __call__(self, *argv: str) -> tuple[int, str, str]:
        code = main(list(argv), settings=self.settings, console=self.console)
        out, err = self.console.captured()
        self.console.stdout = io.StringIO()
        self.console.stderr = io.StringIO()
        return code, out, err


@pytest.fixture
def api() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def cli() -> Cli:
    console = CapturedConsole(
        stdout=io.StringIO(), stderr=io.StringIO(), clock=lambda: NOW, sleep=lambda _: None
    )
    return Cli(console, CliSettings(url=URL, token="hr_test"))


def job(job_id: str = "01J00000000000000000000000", **fields: object) -> dict[str, object]:
    """A job document as the API returns it."""
    return {
        "id": job_id,
        "type": "ping",
        "host": "dc01",
        "params": {},
        "state": "QUEUED",
        "attempt": 1,
        "max_attempts": 1,
        "timeout_s": 60,
        "deliver_by": None,
        "idempotency_key": None,
        "created_by": "token:t1/ops",
        "created_at": "2030-01-01T11:59:00Z",
        "updated_at": "2030-01-01T11:59:00Z",
        "started_at": None,
        "finished_at": None,
        "cancel_requested_at": None,
        "progress": None,
        "result": None,
        "error": None,
        "output": None,
        **fields,
    }
