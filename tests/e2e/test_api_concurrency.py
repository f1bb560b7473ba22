"""Concurrent requests to the local HTTP API: each one is answered for itself."""

from __future__ import annotations

import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from hostrelay_local.stack import LocalStack
from tests.e2e.conftest import ApiClient

pytestmark = pytest.mark.e2e

_ROUNDS = 400
_CLIENTS = 16


def test_concurrent_requests_never_see_each_others_event(stack: LocalStack, api: ApiClient) -> None:
    # Given a few jobs, and clients that read them concurrently with the admin token, while
    # other clients send the same kind of request without any token. Powertools keeps the
    # current request on a class attribute shared by every resolver in the process.
    job_ids = [api.create_job("ping", "dc01") for _ in range(4)]
    local = threading.local()
    start = threading.Barrier(_CLIENTS)

    def session() -> requests.Session:
        if not hasattr(local, "session"):
            local.session = requests.Session()
            start.wait(30)  # every client connected before the first request
        http: requests.Session = local.session
        return http

    def read(number: int) -> tuple[str, int, str | None]:
        job_id = job_ids[number % len(job_ids)]
        url = f"{stack.api_url}/v1/jobs/{job_id}"
        if number % 2:
            response = session().get(url, timeout=30)
            return "anonymous", response.status_code, None
        response = session().get(
            url, headers={"Authorization": f"Bearer {stack.admin_token}"}, timeout=30
        )
        body = response.json() if response.status_code == 200 else {}
        return job_id, response.status_code, body.get("id")

    # When they all run at once, threads switching every 10 µs (so that an interleaving
    # that reads another request's event, if one is possible, happens within the rounds)
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        with ThreadPoolExecutor(_CLIENTS) as pool:
            answers = list(pool.map(read, range(_ROUNDS)))
    finally:
        sys.setswitchinterval(previous)

    # Then no request without a token got in, and every admin read got the job it asked for
    anonymous = [status for who, status, _ in answers if who == "anonymous"]
    assert set(anonymous) == {401}, sorted(set(anonymous))
    mixed_up = [(asked, status, got) for asked, status, got in answers
                if asked != "anonymous" and (status, got) != (200, asked)]  # fmt: skip
    assert mixed_up == []
