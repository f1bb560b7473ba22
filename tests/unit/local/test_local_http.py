"""The local stack's HTTP servers take a burst of clients while their accept loop is busy."""

from __future__ import annotations

import socket

from hostrelay_local.local_http import BackgroundServer, LocalHttpServer, LocalRequestHandler

BURST = 48  # three times what the fleet's enrollments send at once


class _Answer(LocalRequestHandler):
    def do_GET(self) -> None:
        self.close_connection = True
        self.write_reply("200 OK", [], b"ok")


def test_a_burst_of_clients_queued_before_the_accept_loop_runs_is_answered_in_full() -> None:
    # Given a local HTTP server whose accept loop has not run yet (in the stack it waits for
    # the GIL while moto and the functions work)
    server = LocalHttpServer(("127.0.0.1", 0), _Answer)
    serving = BackgroundServer("burst")
    clients: list[socket.socket] = []
    try:
        # When 48 clients connect and send their request
        for _ in range(BURST):
            client = socket.create_connection(server.server_address[:2], timeout=5)
            client.sendall(b"GET / HTTP/1.1\r\nHost: local\r\nConnection: close\r\n\r\n")
            clients.append(client)
        # And the server then gets to accept them
        serving.start(server)
        # Then every one is answered (none reset, none left waiting)
        for client in clients:
            reply = b""
            while chunk := client.recv(4096):
                reply += chunk
            assert reply.startswith(b"HTTP/1.1 200 OK\r\n")
    finally:
        for client in clients:
            client.close()
        serving.stop()
        server.server_close()
