"""Job messages leave the network thread at once and are handled in bursts on their own thread."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

from hostrelay_relay.ledger import Ledger

logger = logging.getLogger(__name__)

BURST_MAX = 32
# Messages waiting for the intake; when it is full the network thread waits, so the broker
# (whose deliveries we acknowledge only once queued) slows down instead of memory growing.
INBOX_MAX = 8 * BURST_MAX
_PUT_RETRY_S = 1.0


class JobIntake:
    """Verifies and records job messages off paho's network thread, a burst per transaction.

    The network thread only queues a message (so it keeps reading and acknowledging while
    signatures are checked, which releases the GIL). Messages that arrived together are
    handled in one ledger batch: one commit for the burst instead of one per envelope.
    Whatever must follow the commit (publishing `accepted`, starting the job) is handed to
    `defer` by the message handler and runs once the burst is on disk, in order.

    The broker has its PUBACK once a message is queued. One lost to a crash before it was
    recorded was never `accepted`: the control plane sends it again after the next hello,
    as it does for anything delivered to a relay that went away (clean sessions).
    """

    def __init__(
        self,
        handle: Callable[[bytes], None],
        ledger: Ledger,
        *,
        on_fatal: Callable[[], None] = lambda: None,
    ) -> None:
        self._handle = handle
        self._ledger = ledger
        self._on_fatal = on_fatal
        self._inbox: queue.Queue[bytes | None] = queue.Queue(maxsize=INBOX_MAX)
        self._local = threading.local()
        self._thread = threading.Thread(target=self._run_guarded, name="job-intake", daemon=True)
        self.crashed = threading.Event()

    def start(self) -> None:
        self._thread.start()

    def put(self, payload: bytes) -> None:
        """A message from the jobs topic (network thread): handled soon, in arrival order.

        Waits while the inbox is full; drops the message once the intake has crashed (the
        relay is stopping, and the control plane sends it again after the next hello).
        """
        self._put(payload)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Handle what is queued, then end the thread."""
        if self._thread.is_alive():
            self._put(None)
            self._thread.join(timeout_s)

    def _put(self, item: bytes | None) -> None:
        while not self.crashed.is_set():
            try:
                self._inbox.put(item, timeout=_PUT_RETRY_S)
            except queue.Full:
                continue
            return

    def defer(self, action: Callable[[], None]) -> bool:
        """On the intake thread during a burst: run `action` after its commit (True).

        Elsewhere (another thread, or no burst) nothing is deferred: False, run it now.
        """
        pending: list[Callable[[], None]] | None = getattr(self._local, "pending", None)
        if pending is None:
            return False
        pending.append(action)
        return True

    def _run_guarded(self) -> None:
        try:
            self._run()
        except Exception:
            # A bug in the intake: stop the relay (exit non-zero, systemd restarts it) rather
            # than keep a connection whose jobs nobody reads.
            logger.exception("job message handling crashed")
            self.crashed.set()
            self._on_fatal()

    def _run(self) -> None:
        while (first := self._inbox.get()) is not None:
            burst = [first]
            stopping = False
            while len(burst) < BURST_MAX:
                try:
                    payload = self._inbox.get_nowait()
                except queue.Empty:
                    break
                if payload is None:
                    stopping = True
                    break
                burst.append(payload)
            self._handle_burst(burst)
            if stopping:
                return

    def _handle_burst(self, burst: list[bytes]) -> None:
        pending: list[Callable[[], None]] = []
        self._local.pending = pending
        try:
            with self._ledger.batch():
                for payload in burst:
                    self._handle(payload)
        finally:
            self._local.pending = None
        for action in pending:
            action()
