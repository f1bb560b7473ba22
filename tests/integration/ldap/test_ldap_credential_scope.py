"""A job cannot send the relay's bind password to a server of its choosing, nor weaken TLS.

The rogue server is a real TLS listener that records every byte a client sends it after the
handshake: a simple bind carries the service DN and password in those bytes.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from hostrelay_local.slapd import SlapdServer, make_test_tls
from hostrelay_relay.directory.state import SyncStateStore
from hostrelay_relay.handlers.base import JobError
from tests.integration.ldap.ldap_support import JobRun, relay_settings, sync_params

pytestmark = pytest.mark.integration
RunSync = Callable[..., JobRun]


@dataclass
class RogueListener:
    """A TLS server on 127.0.0.1 with a certificate from a CA the relay does not trust."""

    url: str
    connections: int = 0
    received: bytearray = field(default_factory=bytearray)
    # Set once a connection was handled to its end (handshake refused, or the client hung up).
    handled: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def rogue_listener(tmp_path: Path) -> Iterator[RogueListener]:
    tls = make_test_tls(tmp_path / "rogue-ca")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls.cert_file, tls.key_file)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.2)
    rogue = RogueListener(url=f"ldaps://127.0.0.1:{listener.getsockname()[1]}")
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                raw, _ = listener.accept()
            except TimeoutError:
                continue
            rogue.connections += 1
            raw.settimeout(10)
            try:
                with context.wrap_socket(raw, server_side=True) as conn:
                    while data := conn.recv(65536):
                        rogue.received += data
            except (OSError, ssl.SSLError):
                raw.close()  # the client gave up on the handshake or hung up
            rogue.handled.set()

    worker = threading.Thread(target=serve)
    worker.start()
    yield rogue
    stop.set()
    worker.join(30)
    listener.close()


@pytest.mark.parametrize(
    "weaken_tls", [True, False], ids=["verify_tls-false", "verify_tls-omitted"]
)
def test_a_job_cannot_send_the_bind_password_to_its_own_server(
    directory: SlapdServer,
    tmp_path: Path,
    run_sync: RunSync,
    rogue_listener: RogueListener,
    weaken_tls: bool,
) -> None:
    # Given a relay whose credential svc is for the directory's servers only
    settings = relay_settings(tmp_path, directory, operation_timeout_s=2)
    params = sync_params(directory, url=rogue_listener.url)
    if weaken_tls:
        params["verify_tls"] = False

    # When a job names svc with a TLS listener of the job author's choosing
    with pytest.raises((JobError, ValueError)) as refused:
        run_sync(settings, **params)

    # Then the job is refused at intake, saying why, and no state was written
    message = str(refused.value)
    assert ("may only be sent to" in message) or ("only the relay config" in message)
    assert not SyncStateStore(tmp_path).path("corp").exists()
    # And the listener never saw a connection, let alone the service DN or password
    assert rogue_listener.connections == 0
    assert directory.service_password.encode() not in rogue_listener.received


def test_a_listed_server_must_prove_itself_before_the_password_is_sent(
    directory: SlapdServer, tmp_path: Path, run_sync: RunSync, rogue_listener: RogueListener
) -> None:
    # Given a credential the relay config lists for the listener too (e.g. a DC replaced by
    # an impostor), with TLS verification on as by default
    settings = relay_settings(
        tmp_path, directory, also_for=(rogue_listener.url,), operation_timeout_s=2
    )

    # When a job syncs from that server
    with pytest.raises(JobError) as failure:
        run_sync(settings, **sync_params(directory, url=rogue_listener.url))

    # Then it fails as ldap_tls: the certificate is not trusted
    assert failure.value.code == "ldap_tls"
    assert "not trusted" in failure.value.message
    # And the listener, once done with the connection, received nothing over TLS
    assert rogue_listener.handled.wait(30)
    assert bytes(rogue_listener.received) == b""
