"""A directory that stops answering: the sync times out or is canceled, and commits nothing."""

from __future__ import annotations

import os
import signal
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hostrelay_local.slapd import SlapdServer
from hostrelay_relay.directory.state import SyncStateStore
from hostrelay_relay.handlers.base import JobCanceled, JobError
from hostrelay_relay.handlers.ldap_sync import LdapSyncHandler
from tests.integration.ldap.ldap_support import make_context, relay_settings, sync_params

pytestmark = pytest.mark.integration


@pytest.fixture
def silent_server() -> Iterator[str]:
    """Given a TCP port that accepts connections and never says a word."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    yield f"ldap://127.0.0.1:{listener.getsockname()[1]}"
    listener.close()


def test_a_server_that_never_answers_times_out(
    directory: SlapdServer, silent_server: str, tmp_path: Path
) -> None:
    # Given a server that accepts the connection but never answers, and a 1 s operation limit
    settings = relay_settings(
        tmp_path, directory, also_for=(silent_server,), operation_timeout_s=1.0
    )
    handler = LdapSyncHandler(settings)
    context = make_context(settings, [], [])

    # When a sync runs
    with pytest.raises(JobError) as failure:
        handler.run(handler.validate(sync_params(directory, url=silent_server)), context)

    # Then it fails as a retryable timeout instead of hanging, and wrote no state
    assert failure.value.code == "ldap_timeout"
    assert failure.value.retryable
    assert not SyncStateStore(tmp_path).path("corp").exists()


def test_cancel_stops_a_sync_stuck_on_a_frozen_server(
    fresh_directory: SlapdServer, tmp_path: Path
) -> None:
    # Given a sync that is reading when the directory server freezes mid-search
    settings = relay_settings(tmp_path, fresh_directory)
    handler = LdapSyncHandler(settings)
    progress: list[tuple[int, int | None, str]] = []
    context = make_context(settings, [], progress)
    frozen = threading.Event()
    outcome: dict[str, Any] = {}

    def freeze_on_first_progress(done: int, total: int | None, message: str) -> None:
        if not frozen.is_set():
            os.kill(fresh_directory.pid, signal.SIGSTOP)
            frozen.set()

    context.report_progress = freeze_on_first_progress

    def run() -> None:
        try:
            handler.run(handler.validate(sync_params(fresh_directory, page_size=50)), context)
        except JobError as error:
            outcome["error"] = error

    worker = threading.Thread(target=run)
    worker.start()
    try:
        assert frozen.wait(30)
        # When the control plane cancels the job
        context.cancel_event.set()
        worker.join(10)
    finally:
        os.kill(fresh_directory.pid, signal.SIGCONT)
        worker.join(30)

    # Then the handler stops within a few seconds, canceled, leaving no state behind
    assert isinstance(outcome.get("error"), JobCanceled)
    assert not SyncStateStore(tmp_path).path("corp").exists()
