"""The whole local stack, booted once per test module: moto, mosquitto, the bridge, relay dc01."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import requests

from hostrelay_local.fleet import FleetOptions
from hostrelay_local.stack import LocalStack, StackOptions

TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "CANCELED", "REJECTED", "EXPIRED"}


class LogWatch(logging.Handler):
    """Sets `seen` when a record of this process matches (the control plane runs here)."""

    def __init__(self, matches: Callable[[logging.LogRecord], bool]) -> None:
        super().__init__()
        self.matches = matches
        self.seen = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.matches(record):
            self.seen.set()


@contextmanager
def watching_logs(matches: Callable[[logging.LogRecord], bool]) -> Iterator[LogWatch]:
    """Watch this process's log records (the control plane's too) while the block runs."""
    watch = LogWatch(matches)
    root = logging.getLogger()
    root.addHandler(watch)
    try:
        yield watch
    finally:
        root.removeHandler(watch)


class ApiClient:
    """The HTTP API as an operator's script uses it: bearer token, JSON."""

    def __init__(self, base_url: str, token: str) -> None:
        self.base_url = base_url
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"

    def post(self, path: str, body: dict[str, Any]) -> requests.Response:
        return self.session.post(self.base_url + path, json=body, timeout=10)

    def get(self, path: str) -> requests.Response:
        return self.session.get(self.base_url + path, timeout=10)

    def create_job(self, job_type: str, host: str, params: dict[str, Any] | None = None) -> str:
        response = self.post("/v1/jobs", {"type": job_type, "host": host, "params": params or {}})
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def job(self, job_id: str) -> dict[str, Any]:
        response = self.get(f"/v1/jobs/{job_id}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def wait_for(
        self, job_id: str, done: Callable[[dict[str, Any]], bool], timeout_s: float = 30.0
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        job = self.job(job_id)
        while not done(job) and time.monotonic() < deadline:
            time.sleep(0.05)
            job = self.job(job_id)
        return job

    def wait_finished(self, job_id: str, timeout_s: float = 30.0) -> dict[str, Any]:
        return self.wait_for(job_id, lambda job: job["state"] in TERMINAL, timeout_s)

    def host_state(self, name: str) -> str:
        response = self.get(f"/v1/hosts/{name}")
        assert response.status_code == 200, response.text
        return str(response.json()["state"])


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """Given the local stack on free ports, with a 5 s relay heartbeat and a sweep every second."""
    options = StackOptions(
        api_port=0, with_samba=False, with_directory=False, heartbeat_s=5, schedule_period_s=1.0
    )
    with LocalStack(tmp_path_factory.mktemp("hostrelay-state"), options) as running:
        assert running.host_state("dc01") == "online", running.relay and running.relay.log_tail()
        yield running


@pytest.fixture(scope="module")
def api(stack: LocalStack) -> ApiClient:
    return ApiClient(stack.api_url, stack.admin_token)


FLEET_SIZE = 12
FLEET_TAGS = {"fleet": "e2e", "site": "lab"}


@pytest.fixture(scope="module")
def fleet_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """Given the local stack plus a fleet of 12 enrolled relays in 2 processes (relay dc01 too),
    with a 5 s heartbeat and a sweep every second."""
    options = StackOptions(
        api_port=0,
        with_samba=False,
        with_directory=False,
        heartbeat_s=5,
        schedule_period_s=1.0,
        fleet=FleetOptions(size=FLEET_SIZE, tags=dict(FLEET_TAGS), processes=2),
    )
    with LocalStack(tmp_path_factory.mktemp("hostrelay-fleet"), options) as running:
        yield running
