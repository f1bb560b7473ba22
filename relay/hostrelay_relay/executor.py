"""Runs accepted jobs on a bounded thread pool and turns what handlers do into job events."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import logging
import queue
import threading
import time
import zlib
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from hostrelay_contract.events import COMMON_FIELDS, CORE_KINDS, encode_event, new_event
from hostrelay_contract.output import MAX_CHUNK_BYTES, MAX_CHUNKS_PER_EVENT
from hostrelay_relay.accepted_hold import AcceptedHold
from hostrelay_relay.handlers.base import (
    Handler,
    JobCanceled,
    JobContext,
    JobError,
    JobTimedOut,
    OutputStream,
)
from hostrelay_relay.ledger import Ledger, LedgerJob
from hostrelay_relay.settings import RelaySettings

logger = logging.getLogger(__name__)

OUTPUT_CHUNK_BYTES = MAX_CHUNK_BYTES
OUTPUT_FLUSH_S = 0.2  # checked every _TICK_S, so output waits at most 250 ms
# One output event carries at most 64 chunks in at most 88 KiB of (compressed) data: about
# 118 KiB of base64 and index, under AWS IoT Core's 128 KB message limit.
OUTPUT_EVENT_CHUNKS = MAX_CHUNKS_PER_EVENT
OUTPUT_EVENT_DATA_BYTES = 88 * 1024
OUTPUT_ZLIB_LEVEL = 1  # ~150 MB/s and 3-10x on text output; level 6 is 4x slower for ~10%
MAX_RESULT_EVENT_BYTES = 96 * 1024  # AWS IoT Core refuses messages over 128 KB
_TICK_S = 0.05

JobKey = tuple[str, int]
# (job type, outcome, seconds the handler ran or None if it never started, result)
FinishedHook = Callable[[str, str, float | None, dict[str, Any]], None]


def result_event(
    job_id: str,
    attempt: int,
    outcome: str,
    *,
    result: dict[str, Any] | None = None,
    error: dict[str, Any] | None = None,
    output: dict[str, Any] | None = None,
    started_at: float | None = None,
) -> dict[str, Any]:
    return new_event(
        "result",
        job_id=job_id,
        attempt=attempt,
        outcome=outcome,
        result=result or {},
        error=error,
        output=output,
        started_at=started_at,
    )


def _error(code: str, message: str, *, retryable: bool = False) -> dict[str, Any]:
    return {"code": code, "message": message, "retryable": retryable}


def finish_interrupted_jobs(ledger: Ledger) -> list[LedgerJob]:
    """At start-up: end every job a previous relay process left unfinished, and report it.

    A job left `running` may have partly happened, so it is not retryable; one only
    `accepted` never started, so the control plane may safely try it again.
    """
    interrupted = ledger.unfinished_jobs()
    for job in interrupted:
        if job.state == "running":
            error = _error(
                "relay_restarted",
                "relay stopped while the job was running; it may have partially run",
            )
        else:
            error = _error("relay_stopped", "relay stopped before the job started", retryable=True)
        event = result_event(job.job_id, job.attempt, "failed", error=error)
        ledger.finish_job(job.job_id, job.attempt, "failed", encode_event(event))
        logger.warning(
            "finished job interrupted by relay stop",
            extra={"job_id": job.job_id, "attempt": job.attempt, "state": str(job.state)},
        )
    return interrupted


class _OutputEventBuilder:
    """The chunks of one `output` event: their index and their bytes, zlib-compressed."""

    def __init__(self) -> None:
        self.index: list[dict[str, Any]] = []
        self.raw_size = 0
        self._raw: list[bytes] = []
        self._compressor = zlib.compressobj(OUTPUT_ZLIB_LEVEL)
        self._compressed: list[bytes] = []
        self.compressed_size = 0

    def add(self, seq: int, stream: str, chunk: bytes) -> None:
        self.index.append({"seq": seq, "stream": stream, "size": len(chunk)})
        self.raw_size += len(chunk)
        self._raw.append(chunk)
        # A sync flush per chunk keeps compressed_size exact, so the event never overflows.
        for part in (self._compressor.compress(chunk), self._compressor.flush(zlib.Z_SYNC_FLUSH)):
            self._compressed.append(part)
            self.compressed_size += len(part)

    @property
    def full(self) -> bool:
        room = OUTPUT_EVENT_DATA_BYTES - self.compressed_size
        return len(self.index) >= OUTPUT_EVENT_CHUNKS or room < OUTPUT_CHUNK_BYTES + 1024

    def fields(self) -> dict[str, Any]:
        self._compressed.append(self._compressor.flush())
        compressed = b"".join(self._compressed)
        if len(compressed) < self.raw_size:
            encoding, data = "zlib", compressed
        else:  # incompressible output travels as it is
            encoding, data = "identity", b"".join(self._raw)
        return {
            # first/last seq route the event to the output table (OutputTopicRule) and key it.
            "first_seq": self.index[0]["seq"],
            "last_seq": self.index[-1]["seq"],
            "chunks": self.index,
            "encoding": encoding,
            "data": base64.b64encode(data).decode(),
        }


class _OutputBuffer:
    """Cuts a job's output into sequenced chunks and sends them in `output` events.

    A chunk holds one stream's bytes, at most 16 KiB; it is cut when full, when the stream
    changes, or when its first byte has waited OUTPUT_FLUSH_S. Chunks are compressed
    together into one event until it would not fit an IoT message (or holds
    OUTPUT_EVENT_CHUNKS); an event leaves as soon as it is full or its oldest byte is due, so
    a chatty job sends few large events and a quiet one is still seen within 250 ms.
    """

    def __init__(self, emit: Callable[[dict[str, Any]], None], key: JobKey) -> None:
        self._emit = emit
        self._key = key
        self._lock = threading.Lock()
        self._stream: OutputStream = "stdout"
        self._pending = bytearray()
        self._event: _OutputEventBuilder | None = None
        self._since = 0.0  # when the oldest unsent byte was written
        self._seq = 0
        self._size = 0
        self._sha256 = hashlib.sha256()

    def write(self, stream: OutputStream, data: bytes) -> None:
        with self._lock:
            if stream != self._stream:
                self._cut_locked()
                self._stream = stream
            if not self._pending and self._event is None:
                self._since = time.monotonic()
            self._pending += data
            while len(self._pending) >= OUTPUT_CHUNK_BYTES:
                self._cut_locked(OUTPUT_CHUNK_BYTES)

    def flush_if_due(self, now: float) -> None:
        with self._lock:
            if (self._pending or self._event) and now - self._since >= OUTPUT_FLUSH_S:
                self._cut_locked()
                self._send_locked()

    def close(self) -> dict[str, Any] | None:
        """Send what is left; the result's `output` summary, or None when there was none."""
        with self._lock:
            self._cut_locked()
            self._send_locked()
            if self._seq == 0:
                return None
            return {"size": self._size, "sha256": self._sha256.hexdigest(), "chunks": self._seq}

    def _cut_locked(self, limit: int | None = None) -> None:
        if not self._pending:
            return
        chunk = bytes(self._pending[:limit]) if limit else bytes(self._pending)
        del self._pending[: len(chunk)]
        self._size += len(chunk)
        self._sha256.update(chunk)
        if self._event is None:
            self._event = _OutputEventBuilder()
        self._event.add(self._seq, self._stream, chunk)
        self._seq += 1
        if self._event.full:
            self._send_locked()

    def _send_locked(self) -> None:
        if self._event is None:
            return
        event, self._event = self._event, None
        self._since = time.monotonic()
        job_id, attempt = self._key
        self._emit(new_event("output", job_id=job_id, attempt=attempt, **event.fields()))


@dataclasses.dataclass
class _JobRun:
    key: JobKey
    handler: Handler[Any]
    params: BaseModel
    timeout_s: float
    output: _OutputBuffer
    cancel_event: threading.Event = dataclasses.field(default_factory=threading.Event)
    cancel_requested: bool = False
    stopping: bool = False  # the relay is shutting down and the drain timeout passed
    timed_out: bool = False
    deadline: float | None = None  # monotonic; set when the handler starts
    started_at: float | None = None  # unix time the handler started


class JobExecutor:
    """`max_concurrent_jobs` worker threads (started with the first job); others wait in order.

    Events go to the ledger's outbox; `send(seq, payload)` is called after each so the link
    publishes it.
    """

    def __init__(
        self,
        settings: RelaySettings,
        ledger: Ledger,
        send: Callable[[int, bytes], None],
        *,
        on_finished: FinishedHook | None = None,
        accepted_hold: AcceptedHold | None = None,
    ) -> None:
        self._settings = settings
        self._ledger = ledger
        self._send = send
        self._on_finished = on_finished
        self._hold = accepted_hold
        self._queue: queue.SimpleQueue[_JobRun | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._runs: dict[JobKey, _JobRun] = {}
        self._running: set[JobKey] = set()
        self._lock = threading.Condition()
        self._closing = False

    # --- public API -----------------------------------------------------------------------

    def submit(
        self, job_id: str, attempt: int, handler: Handler[Any], params: BaseModel, timeout_s: float
    ) -> None:
        """Queue an accepted (already recorded) job to run."""
        key = (job_id, attempt)
        run = _JobRun(key, handler, params, timeout_s, _OutputBuffer(self.emit, key))
        with self._lock:
            closing = self._closing
            if not closing:
                self._runs[key] = run
                self._start_threads()
        if closing:  # lost a race with shutdown: it never starts, and says so
            self._finish_unstarted(run)
            return
        self._queue.put(run)

    def _start_threads(self) -> None:
        """Workers and the watchdog, once (lock held). Daemon threads: a handler that
        ignores cancellation must not keep a stopping relay alive."""
        if self._threads:
            return
        self._threads = [
            threading.Thread(target=self._work, name=f"job-{n}", daemon=True)
            for n in range(self._settings.max_concurrent_jobs)
        ]
        self._threads.append(threading.Thread(target=self._tick, name="job-ticker", daemon=True))
        for thread in self._threads:
            thread.start()

    def cancel(self, job_id: str, attempt: int) -> bool:
        """Ask a queued or running job to stop; False when this executor does not have it."""
        with self._lock:
            run = self._runs.get((job_id, attempt))
            if run is None:
                return False
            run.cancel_requested = True
            run.cancel_event.set()
            return True

    def running_count(self) -> int:
        with self._lock:
            return len(self._running)

    def running_jobs(self) -> list[dict[str, Any]]:
        """The jobs running now: job_id, attempt, type and started_at (unix time), oldest first."""
        with self._lock:
            runs = [self._runs[key] for key in self._running if key in self._runs]
        jobs = [
            {
                "job_id": run.key[0],
                "attempt": run.key[1],
                "type": run.handler.type,
                "started_at": run.started_at,
            }
            for run in runs
        ]
        return sorted(jobs, key=lambda job: job["started_at"] or 0.0)

    def queued_count(self) -> int:
        with self._lock:
            return len(self._runs) - len(self._running)

    def emit(self, event: dict[str, Any]) -> None:
        """Queue and send an event of a job (after its `accepted`, if that is held back)."""
        payload = encode_event(event)
        seq = self._ledger.enqueue(payload)
        if self._hold is not None:
            self._hold.release((event["job_id"], event["attempt"]))
        self._send(seq, payload)

    def shutdown(self, drain_timeout_s: float, cancel_grace_s: float = 5.0) -> bool:
        """Stop taking jobs; let running ones finish for drain_timeout_s, then cancel them.

        Jobs still queued are not started: they end FAILED `relay_stopped` (retryable).
        True when every job ended; False when a handler ignored cancellation.
        """
        with self._lock:
            self._closing = True
            queued = [run for key, run in self._runs.items() if key not in self._running]
            for run in queued:
                run.cancel_event.set()  # the worker sees it and reports relay_stopped
        drained = self._wait_idle(drain_timeout_s)
        if not drained:
            with self._lock:
                for run in self._runs.values():
                    run.stopping = True
                    run.cancel_event.set()
            logger.warning("canceling jobs still running after drain timeout")
            drained = self._wait_idle(cancel_grace_s)
        for _ in range(self._settings.max_concurrent_jobs):
            self._queue.put(None)  # each worker exits when it takes one
        with self._lock:
            self._lock.notify_all()
        return drained

    def _wait_idle(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while self._runs:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._lock.wait(remaining)
        return True

    # --- workers --------------------------------------------------------------------------

    def _work(self) -> None:
        while (run := self._queue.get()) is not None:
            try:
                self._run(run)
            except Exception:
                # A relay bug (e.g. the ledger failing), not a handler's: those end as
                # handler_crashed. Logged with its traceback; the job is reported unfinished
                # at the next start, and this worker keeps serving the queue.
                logger.exception(
                    "job worker failed", extra={"job_id": run.key[0], "attempt": run.key[1]}
                )

    def _run(self, run: _JobRun) -> None:
        job_id, attempt = run.key
        with self._lock:
            not_started = run.cancel_event.is_set()
            if not not_started:
                self._running.add(run.key)
                self._lock.notify_all()
        try:
            if not_started:
                self._finish_unstarted(run)
                return
            self._ledger.mark_running(job_id, attempt, wait=not run.handler.repeatable)
            started = time.monotonic()
            outcome, result, error = self._call_handler(run)
            ran_s = time.monotonic() - started
            output = run.output.close()

            def failed(error: dict[str, Any]) -> bytes:
                event = result_event(
                    job_id,
                    attempt,
                    "failed",
                    error=error,
                    output=output,
                    started_at=run.started_at,
                )
                return encode_event(event)

            try:
                event = result_event(
                    job_id,
                    attempt,
                    outcome,
                    result=result,
                    error=error,
                    output=output,
                    started_at=run.started_at,
                )
                payload = encode_event(event, strict=True)  # also checks it is JSON
            except (TypeError, ValueError) as exc:
                # The contract's model refuses it (so would the control plane), or no JSON
                # can carry it (NaN): a handler bug, reported rather than lost.
                outcome = "failed"
                payload = failed(_error("handler_crashed", f"result refused: {exc}"[:4000]))
            if len(payload) > MAX_RESULT_EVENT_BYTES:
                outcome = "failed"
                payload = failed(
                    _error(
                        "result_too_large",
                        f"result event of {len(payload)} bytes exceeds {MAX_RESULT_EVENT_BYTES}",
                    )
                )
            self._finish(job_id, attempt, outcome, payload)
            if self._on_finished is not None:
                self._on_finished(run.handler.type, outcome, ran_s, result)
            logger.info(
                "job finished",
                extra={
                    "job_id": job_id,
                    "attempt": attempt,
                    "outcome": outcome,
                    "type": run.handler.type,
                },
            )
        finally:
            with self._lock:
                self._runs.pop(run.key, None)
                self._running.discard(run.key)
                self._lock.notify_all()

    def _finish_unstarted(self, run: _JobRun) -> None:
        job_id, attempt = run.key
        if run.cancel_requested:
            outcome, error = "canceled", _error("canceled", "job canceled before it started")
        else:
            outcome = "failed"
            error = _error("relay_stopped", "relay stopped before the job started", retryable=True)
        payload = encode_event(result_event(job_id, attempt, outcome, error=error))
        self._finish(job_id, attempt, outcome, payload)
        if self._on_finished is not None:
            self._on_finished(run.handler.type, outcome, None, {})

    def _finish(self, job_id: str, attempt: int, outcome: str, payload: bytes) -> None:
        unsent = self._hold.take((job_id, attempt)) if self._hold is not None else None
        seq = self._ledger.finish_job(job_id, attempt, outcome, payload, drop_seq=unsent)
        if seq is not None:
            self._send(seq, payload)

    def _context(self, run: _JobRun) -> JobContext:
        job_id, attempt = run.key

        def report_progress(done: int, total: int | None, message: str) -> None:
            self.emit(
                new_event(
                    "progress",
                    job_id=job_id,
                    attempt=attempt,
                    done=done,
                    total=total,
                    message=message,
                )
            )

        def report_event(kind: str, body: dict[str, Any]) -> None:
            if kind in CORE_KINDS:
                raise ValueError(f"handlers may not send {kind!r} events")
            clash = COMMON_FIELDS & body.keys()
            if clash:
                raise ValueError(f"event body may not set {sorted(clash)}")
            self.emit(new_event(kind, job_id=job_id, attempt=attempt, **body))

        return JobContext(
            job_id=job_id,
            attempt=attempt,
            host=self._settings.host,
            settings=self._settings,
            timeout_s=run.timeout_s,
            report_progress=report_progress,
            report_output=run.output.write,
            cancel_event=run.cancel_event,
            report_event=report_event,
        )

    def _call_handler(self, run: _JobRun) -> tuple[str, dict[str, Any], dict[str, Any] | None]:
        ctx = self._context(run)
        with self._lock:
            run.deadline = ctx.deadline
            run.started_at = time.time()
            self._lock.notify_all()
        job_id, attempt = run.key
        try:
            result = run.handler.run(run.params, ctx)
        except JobError as exc:
            return self._outcome_of_error(run, exc)
        except Exception as exc:  # the plugin boundary: a handler bug must not kill the relay
            logger.exception(
                "handler crashed",
                extra={"job_id": job_id, "attempt": attempt, "type": run.handler.type},
            )
            return "failed", {}, _error("handler_crashed", f"{type(exc).__name__}: {exc}")
        if run.timed_out or time.monotonic() > ctx.deadline:
            return "timed_out", {}, _error("timeout", "job returned after its timeout")
        if not isinstance(result, dict):
            return "failed", {}, _error("handler_crashed", "result is not a JSON object")
        return "succeeded", result, None  # whether it is JSON shows when it is encoded

    @staticmethod
    def _outcome_of_error(
        run: _JobRun, exc: JobError
    ) -> tuple[str, dict[str, Any], dict[str, Any] | None]:
        if isinstance(exc, JobCanceled | JobTimedOut):
            # Our watchdog wakes handlers through cancel_event; what it means depends on why.
            if run.stopping and not run.cancel_requested:
                return (
                    "failed",
                    exc.result or {},
                    _error(
                        "relay_stopping",
                        "relay stopped before the job finished; it may have partially run",
                    ),
                )
            if run.cancel_requested:
                exc = exc if isinstance(exc, JobCanceled) else JobCanceled()
            elif run.timed_out or isinstance(exc, JobTimedOut):
                exc = exc if isinstance(exc, JobTimedOut) else JobTimedOut()
        error = _error(exc.code, exc.message, retryable=exc.retryable)
        return exc.outcome, exc.result or {}, error

    # --- watchdog and output flusher ------------------------------------------------------

    def _tick(self) -> None:
        while True:
            with self._lock:
                while not self._running and not self._closing:
                    self._lock.wait()
                if self._closing and not self._runs:
                    return
                runs = [self._runs[key] for key in self._running if key in self._runs]
            now = time.monotonic()
            for run in runs:
                run.output.flush_if_due(now)
                if run.deadline is not None and now >= run.deadline and not run.timed_out:
                    run.timed_out = True
                    run.cancel_event.set()
                    logger.warning(
                        "job timed out", extra={"job_id": run.key[0], "attempt": run.key[1]}
                    )
            time.sleep(_TICK_S)
