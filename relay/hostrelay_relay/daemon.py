"""The relay daemon: verifies job envelopes from the broker, records them, and runs them."""

from __future__ import annotations

import fcntl
import functools
import json
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import IO, Any

from pydantic import BaseModel, ValidationError

from hostrelay_contract.envelope import CANCEL_TYPE, JobEnvelope
from hostrelay_contract.events import HELLO_MAX_JOBS, encode_event, new_event
from hostrelay_relay import __version__
from hostrelay_relay.accepted_hold import AcceptedHold
from hostrelay_relay.cert_rotation import (
    CERT_INSTALL_TYPE,
    RENEWAL_EVENT,
    CertificateRotation,
    CertInstallHandler,
    certificate_problem,
)
from hostrelay_relay.clock_check import ClockGuard
from hostrelay_relay.envelope import EnvelopeRejected, load_public_key, verify_envelope
from hostrelay_relay.executor import JobExecutor, finish_interrupted_jobs
from hostrelay_relay.handlers import HandlerRegistry
from hostrelay_relay.handlers.base import Handler
from hostrelay_relay.health_server import HealthServer
from hostrelay_relay.intake import JobIntake
from hostrelay_relay.ledger import FINISHED_RETENTION_S, Ledger, LedgerJob
from hostrelay_relay.metrics import RelayMetrics
from hostrelay_relay.mqtt_link import MqttLink
from hostrelay_relay.settings import RelaySettings

logger = logging.getLogger(__name__)

FLUSH_TIMEOUT_S = 10.0
PRUNE_INTERVAL_S = 600.0


class RelayAlreadyRunning(RuntimeError):
    """Another relay process holds this state directory."""


def _validation_message(exc: ValidationError) -> str:
    """Where and what, never the offending values (they may be secrets)."""
    parts = []
    for error in exc.errors(include_url=False, include_input=False):
        where = ".".join(str(part) for part in error["loc"]) or "params"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


def _claimed_type(payload: bytes) -> str | None:
    """The `type` an envelope claims, for choosing how to report a rejection."""
    try:
        wire = json.loads(payload)
    except (ValueError, RecursionError):
        return None
    body = wire.get("envelope") if isinstance(wire, dict) else None
    claimed = body.get("type") if isinstance(body, dict) else None
    return claimed if isinstance(claimed, str) else None


def hello_fields(unfinished: list[LedgerJob]) -> dict[str, Any]:
    """What `hello` says of the ledger's unfinished jobs: the oldest, capped, and how many more."""
    listed = [
        {"job_id": job.job_id, "attempt": job.attempt, "state": str(job.state)}
        for job in unfinished[:HELLO_MAX_JOBS]
    ]
    return {"jobs": listed, "jobs_omitted": len(unfinished) - len(listed)}


def refusal_event(exc: EnvelopeRejected, payload: bytes) -> dict[str, Any]:
    """The event that reports a refused message: `rejected`, or `bad_message` for garbage
    that is no envelope and for a refused cancel (the job it names is fine)."""
    is_cancel = _claimed_type(payload) == CANCEL_TYPE
    if is_cancel or (exc.job_id is None and exc.reason == "malformed"):
        prefix = "cancel request: " if is_cancel else ""
        return new_event(
            "bad_message", reason=exc.reason, message=prefix + exc.message, size=len(payload)
        )
    # job_id is None for an envelope whose signature did not verify: operators see the
    # rejection, and no job is named that the control plane could end.
    return new_event(
        "rejected", job_id=exc.job_id, attempt=exc.attempt, reason=exc.reason, message=exc.message
    )


class RelayDaemon:
    """Everything a relay process runs: ledger, executor, MQTT link, message intake.

    In-process use (tests, the local stack): `start()`, then `stop()`. As a service:
    `run_until_signal()`, which stops on SIGTERM/SIGINT and returns the exit code.
    """

    def __init__(
        self,
        settings: RelaySettings,
        *,
        registry: HandlerRegistry | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.registry = registry or HandlerRegistry(settings)
        self._clock = clock
        self._public_key = load_public_key(settings.public_key_file.read_bytes())
        self.rotation = CertificateRotation(settings)
        self.clock_guard = ClockGuard(settings.control_plane_url, settings.envelope_validity_s)
        # Built in, not a plugin: it needs the rotation state this daemon keeps.
        self._builtin_handlers: dict[str, Handler[Any]] = {
            CERT_INSTALL_TYPE: CertInstallHandler(settings, self.rotation)
        }
        self._maintenance_due = threading.Event()
        self._maintenance_stop = threading.Event()
        self._maintenance: threading.Thread | None = None
        self._draining = False
        self._stop_requested = threading.Event()
        self._lock_file: IO[bytes] | None = None
        self.ledger: Ledger | None = None
        self.executor: JobExecutor | None = None
        self.link: MqttLink | None = None
        self.intake: JobIntake | None = None
        self.accepted_hold: AcceptedHold | None = None
        self.metrics = RelayMetrics(settings.host, __version__)
        self.health: HealthServer | None = None
        self.started_monotonic = time.monotonic()

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Open the ledger, report jobs a previous run left behind, and connect."""
        state_dir = self.settings.state_dir
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._lock_file = (state_dir / "relay.lock").open("a+b")  # not truncated: the holder's pid
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            raise RelayAlreadyRunning(f"another relay is using {state_dir}") from None
        self._lock_file.truncate(0)
        self._lock_file.write(f"{os.getpid()}\n".encode())
        self._lock_file.flush()
        ledger = self.ledger = Ledger(self.settings.ledger_path)
        self.started_monotonic = time.monotonic()
        for job in finish_interrupted_jobs(ledger):
            self.metrics.job_finished(job.type, "failed", None, {})
        self._prune()
        problem = certificate_problem(self.rotation.credentials()[0])
        if problem is not None:
            logger.error("client certificate unusable", extra={"problem": problem})
        intake = self.intake = JobIntake(
            self.handle_message, ledger, on_fatal=self._stop_requested.set
        )
        link = self.link = MqttLink(
            self.settings,
            ledger,
            on_job_message=intake.put,
            hello_fields=self._hello_fields,
            running_jobs=self._running_jobs,
            on_fatal=self._stop_requested.set,
            credentials=self.rotation.credentials,
            on_session=self._on_session,
            on_connect_failed=self.rotation.connect_failed,
            metrics=self.metrics,
        )
        self.rotation.on_staged = link.reconnect
        hold = self.accepted_hold = AcceptedHold(link.send, self.settings.accepted_hold_s)
        executor = self.executor = JobExecutor(
            self.settings,
            ledger,
            link.send,
            on_finished=self.metrics.job_finished,
            accepted_hold=hold,
        )
        self.metrics.jobs_running.set_function(executor.running_count)
        self.metrics.outbox_depth.set_function(ledger.outbox_depth)
        health = HealthServer(self)
        self.health = health if self.settings.health.enabled and health.start() else None
        # Where `hostrelay-relay status` finds /status (the real port when configured as 0).
        ledger.set_meta("health_address", health.address or "")
        self._maintenance_stop.clear()
        self._maintenance = threading.Thread(
            target=self._maintain, name="relay-maintenance", daemon=True
        )
        self._maintenance.start()
        intake.start()
        link.start()
        logger.info("relay started", extra={"host": self.settings.host, "pid": os.getpid()})

    def stop(self) -> bool:
        """Stop taking jobs, drain, flush the outbox and disconnect. True when all went well."""
        ledger, executor, link = self.ledger, self.executor, self.link
        if ledger is None or executor is None or link is None:
            return True
        self._draining = True
        logger.info(
            "relay stopping",
            extra={"running": executor.running_count(), "queued": executor.queued_count()},
        )
        self._maintenance_stop.set()
        self._maintenance_due.set()
        if self._maintenance is not None:
            self._maintenance.join(10)
        drained = executor.shutdown(self.settings.drain_timeout_s)
        if self.accepted_hold is not None:
            self.accepted_hold.close()
        flushed = link.flush(FLUSH_TIMEOUT_S)
        if not flushed:
            logger.warning(
                "outbox not flushed; events stay queued for the next start",
                extra={"outbox_depth": ledger.outbox_depth()},
            )
        link.stop()
        intake = self.intake
        if intake is not None:
            intake.stop()  # after the link: no message can arrive any more
        if self.health is not None:
            self.health.stop()
            self.health = None
        self.metrics.jobs_running.set_function(None)
        self.metrics.outbox_depth.set_function(None)
        ledger.close()
        if self._lock_file is not None:
            self._lock_file.close()
        self.ledger = self.executor = self.link = None
        self.accepted_hold = None
        self.intake = None
        logger.info("relay stopped", extra={"drained": drained, "flushed": flushed})
        intake_crashed = intake is not None and intake.crashed.is_set()
        return drained and not link.crashed.is_set() and not intake_crashed

    def request_stop(self) -> None:
        self._stop_requested.set()

    @property
    def stop_requested(self) -> bool:
        """A signal, or a fatal link or intake error, asked this relay to stop (a process
        running relays in-process restarts it then, as systemd would)."""
        return self._stop_requested.is_set()

    def run_until_signal(self) -> int:
        """Run as a service until SIGTERM/SIGINT (or a fatal link error); the exit code."""

        def on_signal(signum: int, frame: FrameType | None) -> None:
            logger.info("signal received", extra={"signal": signal.Signals(signum).name})
            self._stop_requested.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        self.start()
        while not self._stop_requested.wait(PRUNE_INTERVAL_S):
            self._prune()
        return 0 if self.stop() else 1

    def _prune(self) -> None:
        if self.ledger is None:
            return
        now = self._clock()
        self.ledger.prune(
            nonces_expired_before=now - self.settings.clock_leeway_s - 1,
            finished_before=now - FINISHED_RETENTION_S,
        )

    # --- clock and certificate (maintenance thread) ----------------------------------------

    def _on_session(self, cert_file: Path) -> None:
        """A session started with `cert_file` (link thread): check clock and certificate now."""
        self.rotation.connected(cert_file)
        self._maintenance_due.set()

    def _maintain(self) -> None:
        """Clock check and certificate renewal: at every connect and every interval."""
        while not self._maintenance_stop.is_set():
            self._maintenance_due.wait(self.settings.maintenance_interval_s)
            self._maintenance_due.clear()
            if self._maintenance_stop.is_set():
                return
            try:
                self.maintain_once()
            except Exception:
                # Not fatal: the relay keeps running jobs on its current certificate.
                logger.exception("clock or certificate check failed")

    def maintain_once(self) -> None:
        self.clock_guard.check()
        problem = certificate_problem(self.rotation.cert_file)
        if problem is not None:
            logger.error("client certificate unusable", extra={"problem": problem})
            return
        link = self.link
        if link is None or not link.connected.is_set():
            return
        request = self.rotation.renewal_request()
        if request is not None and self.ledger is not None:
            self._emit(new_event(RENEWAL_EVENT, **request))
            logger.info("certificate renewal requested")

    def _hello_fields(self) -> dict[str, Any]:
        """The unfinished jobs for `hello`, oldest first, capped to keep the event small."""
        return hello_fields([] if self.ledger is None else self.ledger.unfinished_jobs())

    def _running_jobs(self) -> int:
        return 0 if self.executor is None else self.executor.running_count()

    # --- intake (job-intake thread) -------------------------------------------------------

    def handle_message(self, payload: bytes) -> None:
        """One message from the jobs topic: accept it, or say why not. Never raises on input.

        Called in bursts inside one ledger batch (see JobIntake): what must not happen
        before the burst is committed (publishing, starting or canceling a job) goes
        through `_after_commit`.
        """
        ledger = self.ledger
        if ledger is None:
            return
        skewed = self.clock_guard.refusal()
        try:
            envelope = verify_envelope(
                payload,
                public_key=self._public_key,
                host=self.settings.host,
                seen_nonce=lambda nonce, expires_at: ledger.nonce_seen(nonce),
                # A clock known to be off: check the envelope by the control plane's time,
                # so only authentic envelopes are answered with `clock_skew`.
                now=self.clock_guard.control_plane_time if skewed else self._clock,
                clock_leeway_s=self.settings.clock_leeway_s,
            )
        except EnvelopeRejected as exc:
            self._refuse(exc, payload)
            return
        if envelope.is_cancel:
            self._after_commit(functools.partial(self._cancel, envelope))
            return
        if skewed is not None:
            refusal = EnvelopeRejected("clock_skew", skewed, envelope.job_id, envelope.attempt)
            self._refuse(refusal, payload)
            return
        if self._draining:
            # Not recorded: the control plane re-publishes it when the relay says hello again.
            logger.info("job ignored while stopping", extra={"job_id": envelope.job_id})
            return
        known = ledger.job(envelope.job_id, envelope.attempt)
        if known is not None:
            self._redelivered(known)
            return
        try:
            handler, params = self._admit(envelope)
        except EnvelopeRejected as exc:
            self._refuse(exc, payload)
            return
        accepted = encode_event(
            new_event("accepted", job_id=envelope.job_id, attempt=envelope.attempt)
        )
        seq = ledger.accept_job(
            envelope.job_id,
            envelope.attempt,
            envelope.type,
            nonce=envelope.nonce,
            expires_at=envelope.expires_at,
            accepted_event=accepted,
        )
        if seq is None:
            return
        assert self.accepted_hold is not None
        key = (envelope.job_id, envelope.attempt)
        self._after_commit(functools.partial(self.accepted_hold.hold, key, seq, accepted))
        logger.info(
            "job accepted",
            extra={"job_id": envelope.job_id, "attempt": envelope.attempt, "type": envelope.type},
        )
        assert self.executor is not None
        self._after_commit(
            functools.partial(
                self.executor.submit,
                envelope.job_id,
                envelope.attempt,
                handler,
                params,
                float(envelope.timeout_s),
            )
        )

    def _admit(self, envelope: JobEnvelope) -> tuple[Handler[Any], BaseModel]:
        """The handler and validated params, or EnvelopeRejected saying why it cannot run."""
        job_id, attempt = envelope.job_id, envelope.attempt
        handler = self._builtin_handlers.get(envelope.type) or self._registered(envelope)
        why_not = handler.enabled()
        if why_not is not None:
            raise EnvelopeRejected("disabled", why_not, job_id, attempt)
        if envelope.timeout_s < 1:
            raise EnvelopeRejected(
                "invalid_params", "timeout_s must be at least 1", job_id, attempt
            )
        try:
            params = handler.validate(envelope.params)
        except ValidationError as exc:
            raise EnvelopeRejected(
                "invalid_params", _validation_message(exc), job_id, attempt
            ) from None
        except ValueError as exc:
            raise EnvelopeRejected("invalid_params", str(exc), job_id, attempt) from None
        return handler, params

    def _registered(self, envelope: JobEnvelope) -> Handler[Any]:
        job_id, attempt = envelope.job_id, envelope.attempt
        if not self.registry.known(envelope.type):
            raise EnvelopeRejected(
                "unknown_type", f"no handler for job type {envelope.type!r}", job_id, attempt
            )
        try:
            return self.registry.get(envelope.type)
        except ImportError as exc:
            logger.error("handler not importable", extra={"type": envelope.type, "error": str(exc)})
            raise EnvelopeRejected(
                "unknown_type",
                f"the handler for {envelope.type!r} is not installed on this relay",
                job_id,
                attempt,
            ) from None

    def _refuse(self, exc: EnvelopeRejected, payload: bytes) -> None:
        self.metrics.envelope_refused(exc.reason)
        logger.warning(
            "envelope rejected",
            extra={
                "reason": exc.reason,
                "job_id": exc.job_id,
                "attempt": exc.attempt,
                "size": len(payload),
            },
        )
        if exc.reason == "replayed" and exc.job_id is not None and self.ledger is not None:
            known = self.ledger.job(exc.job_id, exc.attempt)
            if known is not None:  # the very envelope we accepted, delivered again
                self._redelivered(known)
                return
        self._emit(refusal_event(exc, payload))

    def _redelivered(self, job: LedgerJob) -> None:
        """A job this relay already has: never run it again, repeat what was said about it."""
        logger.info(
            "job delivered again",
            extra={"job_id": job.job_id, "attempt": job.attempt, "state": str(job.state)},
        )
        if job.result_event is not None:
            self._send(job.result_event)
        else:
            self._emit(new_event("accepted", job_id=job.job_id, attempt=job.attempt))

    def _cancel(self, envelope: JobEnvelope) -> None:
        assert self.ledger is not None and self.executor is not None
        self.ledger.remember_nonce(envelope.nonce, envelope.expires_at)
        job_id, attempt = envelope.job_id, envelope.attempt
        if self.executor.cancel(job_id, attempt):
            logger.info("job cancel requested", extra={"job_id": job_id, "attempt": attempt})
            return
        known = self.ledger.job(job_id, attempt)
        if known is not None and known.result_event is not None:
            self._send(known.result_event)  # already over: tell the control plane how it ended
        logger.info(
            "cancel for a job not running here", extra={"job_id": job_id, "attempt": attempt}
        )

    def _emit(self, event: dict[str, Any]) -> None:
        self._send(encode_event(event))

    def _send(self, payload: bytes) -> None:
        assert self.ledger is not None
        self._publish(self.ledger.enqueue(payload), payload)

    def _publish(self, seq: int, payload: bytes) -> None:
        if self.link is not None:
            self._after_commit(functools.partial(self.link.send, seq, payload))

    def _after_commit(self, action: Callable[[], None]) -> None:
        """Run `action` now, or after the intake burst this thread is in is committed."""
        if self.intake is None or not self.intake.defer(action):
            action()
