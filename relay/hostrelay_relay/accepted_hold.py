"""Holds a job's `accepted` back for a moment, so a job that ends at once sends one event.

Most jobs a relay runs end within milliseconds (a ping, a repair of a few computers, a short
command). Their `accepted` and `result` would reach the control plane together, and each
costs a message, a function invocation and a conditional write there. So `accepted` is held
for `hold_s` after the job was recorded:

- the job ends first: its `accepted` is dropped from the outbox in the same transaction that
  queues the result (`take`), and the result alone says what happened;
- any other event of the job comes first (progress, output, ...): `accepted` goes out just
  before it (`release`), so the control plane still sees a job's events in order;
- the time passes: `accepted` goes out.

The event was written to the ledger's outbox with the job, atomically, before it is held:
holding only delays its publication, so after a crash or a reconnect it is sent like any
other unacknowledged event.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

JobKey = tuple[str, int]
Send = Callable[[int, bytes], None]


class AcceptedHold:
    def __init__(
        self, send: Send, hold_s: float, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._send = send
        self._hold_s = hold_s
        self._monotonic = monotonic
        # Sends of held events happen with this lock held, so a job's later event (sent
        # right after `release` returns) can never overtake its `accepted`.
        self._lock = threading.Condition()
        self._held: dict[JobKey, tuple[float, int, bytes]] = {}  # due, outbox seq, payload
        self._thread: threading.Thread | None = None
        self._closed = False

    def hold(self, key: JobKey, seq: int, payload: bytes) -> None:
        """`accepted` of a newly recorded job (outbox entry `seq`): send it later, or never."""
        with self._lock:
            if self._hold_s <= 0 or self._closed:
                self._send(seq, payload)
                return
            self._held[key] = (self._monotonic() + self._hold_s, seq, payload)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._release_due, name="accepted-hold", daemon=True
                )
                self._thread.start()
            self._lock.notify()

    def release(self, key: JobKey) -> None:
        """Another event of the job is about to be sent: its `accepted` goes first."""
        with self._lock:
            held = self._held.pop(key, None)
            if held is not None:
                self._send(held[1], held[2])

    def take(self, key: JobKey) -> int | None:
        """The job ended: the outbox seq of its `accepted` if that was never sent (the
        caller deletes it with the result's commit), else None."""
        with self._lock:
            held = self._held.pop(key, None)
        return held[1] if held is not None else None

    def held(self) -> int:
        with self._lock:
            return len(self._held)

    def close(self) -> None:
        """Send everything still held (the relay is stopping) and stop the timer thread."""
        with self._lock:
            self._closed = True
            for _, seq, payload in sorted(self._held.values(), key=lambda held: held[1]):
                self._send(seq, payload)
            self._held.clear()
            self._lock.notify()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def _release_due(self) -> None:
        with self._lock:
            while not self._closed:
                now = self._monotonic()
                due = [key for key, held in self._held.items() if held[0] <= now]
                for key in sorted(due, key=lambda key: self._held[key][1]):
                    _, seq, payload = self._held.pop(key)
                    self._send(seq, payload)
                if self._held:
                    wait = min(held[0] for held in self._held.values()) - now
                    self._lock.wait(max(wait, 0.001))
                else:
                    self._lock.wait()
