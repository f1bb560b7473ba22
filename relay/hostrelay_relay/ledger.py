"""The relay's sqlite ledger: received jobs, seen nonces, and the outbox of unacked events."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from hostrelay_relay.start_journal import StartJournal

FINISHED_RETENTION_S = 7 * 24 * 3600
MIN_FREE_BYTES = 16 * 1024 * 1024
# Commits between WAL checkpoints: about SQLite's own default of 1000 pages.
CHECKPOINT_EVERY_COMMITS = 200
# SQLite starts the WAL over only when a write finds it entirely copied back; under writes
# that never pause, a checkpoint beside them never gets there and the WAL only grows. Past
# this many pages (~16 MB) the writers wait once for a checkpoint that truncates it.
WAL_RESTART_PAGES = 4096

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    type TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('accepted', 'finished')),
    outcome TEXT,
    result_event BLOB,
    received_at REAL NOT NULL,
    finished_at REAL,
    PRIMARY KEY (job_id, attempt)
);
CREATE INDEX IF NOT EXISTS jobs_unfinished ON jobs (received_at) WHERE state = 'accepted';
CREATE TABLE IF NOT EXISTS nonces (
    nonce TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    payload BLOB NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


class JobState(str, Enum):
    """A job's state in the ledger, stored as its value (enum.StrEnum needs Python 3.11)."""

    ACCEPTED = "accepted"
    RUNNING = "running"
    FINISHED = "finished"

    def __str__(self) -> str:
        return str(self.value)


@dataclass(frozen=True)
class LedgerJob:
    job_id: str
    attempt: int
    type: str
    state: JobState
    outcome: str | None
    result_event: bytes | None


@dataclass(frozen=True)
class OutboxEntry:
    seq: int
    payload: bytes


@dataclass(frozen=True)
class LedgerSummary:
    """What `hostrelay-relay status` shows."""

    accepted: int
    running: int
    finished: int
    outbox_depth: int
    oldest_outbox_at: float | None
    last_connect_at: float | None


def _connect(path: Path, *, read_only: bool) -> sqlite3.Connection:
    if read_only:
        uri = f"file:{path}?mode=ro"
        return sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None)
    return sqlite3.connect(path, check_same_thread=False, isolation_level=None)


class Ledger:
    """One sqlite database in WAL mode, shared by the relay's threads.

    Writes go through one connection behind one lock, reads through a second. Writes are
    synchronous=NORMAL: safe against a crashed relay, and fast. The one fact that must
    also survive a power cut, that a job began running, lives in the StartJournal; a job
    counts as running when it is unfinished here and started there.

    WAL checkpoints (which fsync) run on a thread of their own, not inside whichever
    write happens to cross SQLite's threshold: that write would hold the lock, and every
    envelope waiting to be recorded behind it, for milliseconds.
    """

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        self.path = path
        self._lock = threading.RLock()
        self._batch_owner: int | None = None  # thread id while a batch() is open
        self._read_lock = threading.Lock()
        if not read_only:
            path.parent.mkdir(parents=True, exist_ok=True)
        self._db = _connect(path, read_only=read_only)
        self._commits = 0
        self._checkpoint_due = threading.Event()
        self._closing = False
        self._checkpointer: threading.Thread | None = None
        if not read_only:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA wal_autocheckpoint=0")
            self._db.executescript(_SCHEMA)
            path.chmod(0o600)
            self._checkpointer = threading.Thread(
                target=self._checkpoint_loop, name="ledger-checkpoint", daemon=True
            )
            self._checkpointer.start()
        self._reader = _connect(path, read_only=read_only)
        journal_path = path.with_name(f"{path.stem}-starts{path.suffix}")
        self._journal: StartJournal | None = None
        if not read_only or journal_path.exists():
            self._journal = StartJournal(journal_path, read_only=read_only)

    def close(self) -> None:
        self._closing = True
        self._checkpoint_due.set()
        if self._checkpointer is not None:
            self._checkpointer.join(10.0)
        with self._lock, self._read_lock:
            self._db.close()
            self._reader.close()
        if self._journal is not None:
            self._journal.close()

    def _read(self, sql: str, params: tuple[object, ...] = ()) -> list[Any]:
        if self._batch_owner == threading.get_ident():
            return self._db.execute(sql, params).fetchall()  # sees the batch's own writes
        with self._read_lock:
            return self._reader.execute(sql, params).fetchall()

    @contextmanager
    def batch(self) -> Iterator[None]:
        """This thread's writes until the end of the block, as one transaction.

        Each write keeps its own all-or-nothing behaviour (a savepoint) and this thread's
        reads see them; other threads see none of them until the block ends, and their
        writes wait for it. All are lost if the block raises.
        """
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._batch_owner = threading.get_ident()
            try:
                yield
            except BaseException:
                self._batch_owner = None
                self._db.execute("ROLLBACK")
                raise
            self._batch_owner = None
            self._db.execute("COMMIT")
            self._committed()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._batch_owner is not None:  # inside this thread's batch()
                with self._savepoint():
                    yield self._db
                return
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            self._committed()

    @contextmanager
    def _savepoint(self) -> Iterator[None]:
        self._db.execute("SAVEPOINT write")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK TO write")
            self._db.execute("RELEASE write")
            raise
        self._db.execute("RELEASE write")

    def _committed(self) -> None:
        """Count a write (lock held) and wake the checkpointer every so many."""
        self._commits += 1
        if self._commits >= CHECKPOINT_EVERY_COMMITS:
            self._commits = 0
            self._checkpoint_due.set()

    def _checkpoint_loop(self) -> None:
        db = _connect(self.path, read_only=False)
        try:
            while True:
                self._checkpoint_due.wait()
                self._checkpoint_due.clear()
                if self._closing:
                    return
                # PASSIVE: copies what it can without waiting for (or blocking) anyone.
                [(_, wal_pages, _)] = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                if wal_pages >= WAL_RESTART_PAGES:
                    with self._lock:
                        db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        finally:
            db.close()

    # --- nonces ---------------------------------------------------------------------------

    def nonce_seen(self, nonce: str) -> bool:
        """True when an envelope with this nonce was already acted on (a replay)."""
        return bool(self._read("SELECT 1 FROM nonces WHERE nonce = ?", (nonce,)))

    def remember_nonce(self, nonce: str, expires_at: int) -> bool:
        """Record the nonce; True when it was already recorded (the envelope is a replay)."""
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO nonces (nonce, expires_at) VALUES (?, ?)",
                (nonce, expires_at),
            )
            return cursor.rowcount == 0

    def prune(self, *, nonces_expired_before: float, finished_before: float) -> None:
        """Forget nonces that can no longer verify and finished jobs past retention."""
        with self._transaction() as db:
            db.execute("DELETE FROM nonces WHERE expires_at < ?", (nonces_expired_before,))
            db.execute(
                "DELETE FROM jobs WHERE state = 'finished' AND finished_at < ?", (finished_before,)
            )
        if self._journal is not None:
            unfinished = {(job.job_id, job.attempt) for job in self.unfinished_jobs()}
            self._journal.forget(self._journal.started() - unfinished)

    # --- jobs -----------------------------------------------------------------------------

    def _started(self) -> set[tuple[str, int]]:
        return self._journal.started() if self._journal is not None else set()

    def job(self, job_id: str, attempt: int) -> LedgerJob | None:
        rows = self._read(
            "SELECT job_id, attempt, type, state, outcome, result_event FROM jobs"
            " WHERE job_id = ? AND attempt = ?",
            (job_id, attempt),
        )
        if not rows:
            return None
        started = rows[0][3] == "accepted" and (job_id, attempt) in self._started()
        return _job_from_row(rows[0], started=started)

    def unfinished_jobs(self) -> list[LedgerJob]:
        """Jobs accepted and not finished (queued or running), oldest first."""
        rows = self._read(
            "SELECT job_id, attempt, type, state, outcome, result_event FROM jobs"
            " WHERE state = 'accepted' ORDER BY received_at"
        )
        started = self._started()
        return [_job_from_row(row, started=(row[0], row[1]) in started) for row in rows]

    def accept_job(
        self,
        job_id: str,
        attempt: int,
        job_type: str,
        *,
        nonce: str,
        expires_at: int,
        accepted_event: bytes,
    ) -> int | None:
        """Record a new job as accepted, its nonce as used, and queue `accepted`, atomically.

        Returns the event's outbox seq; None (and nothing changes) when the ledger already
        has this job and attempt.
        """
        now = time.time()
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO jobs (job_id, attempt, type, state, received_at)"
                " VALUES (?, ?, ?, 'accepted', ?)",
                (job_id, attempt, job_type, now),
            )
            if cursor.rowcount == 0:
                return None
            db.execute(
                "INSERT OR IGNORE INTO nonces (nonce, expires_at) VALUES (?, ?)",
                (nonce, expires_at),
            )
            cursor = db.execute(
                "INSERT INTO outbox (payload, created_at) VALUES (?, ?)", (accepted_event, now)
            )
            return int(cursor.lastrowid or 0)

    def mark_running(self, job_id: str, attempt: int, *, wait: bool = True) -> None:
        """Note that the job is about to run; returns once that is safely on disk, or at
        once with `wait=False` (a repeatable job: see Handler.repeatable)."""
        if self._journal is None:
            raise sqlite3.OperationalError("attempt to write a readonly ledger")
        if wait:
            self._journal.record(job_id, attempt)
        else:
            self._journal.record_later(job_id, attempt)

    def finish_job(
        self,
        job_id: str,
        attempt: int,
        outcome: str,
        result_event: bytes,
        *,
        drop_seq: int | None = None,
    ) -> int | None:
        """Store the job's outcome and result event, and queue the event, atomically.

        Returns the event's outbox seq; None when the job was already finished (it keeps
        its first outcome and nothing is queued).
        """
        now = time.time()
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE jobs SET state = 'finished', outcome = ?, result_event = ?, finished_at = ?"
                " WHERE job_id = ? AND attempt = ? AND state != 'finished'",
                (outcome, result_event, now, job_id, attempt),
            )
            if cursor.rowcount != 1:
                return None
            if drop_seq is not None:  # the job's `accepted`, never sent: the result says it all
                db.execute("DELETE FROM outbox WHERE seq = ?", (drop_seq,))
            cursor = db.execute(
                "INSERT INTO outbox (payload, created_at) VALUES (?, ?)", (result_event, now)
            )
            return int(cursor.lastrowid or 0)

    # --- outbox ---------------------------------------------------------------------------

    def enqueue(self, payload: bytes) -> int:
        """Queue an event for publishing; returns its outbox sequence number."""
        with self._lock:
            cursor = self._db.execute(
                "INSERT INTO outbox (payload, created_at) VALUES (?, ?)", (payload, time.time())
            )
            self._committed()
            return int(cursor.lastrowid or 0)

    def pending(self, after_seq: int, limit: int) -> list[OutboxEntry]:
        """Unacknowledged events after `after_seq`, oldest first."""
        rows = self._read(
            "SELECT seq, payload FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?", (after_seq, limit)
        )
        return [OutboxEntry(int(seq), bytes(payload)) for seq, payload in rows]

    def acknowledge(self, seqs: Iterable[int]) -> None:
        """Drop events the broker acknowledged (PUBACK)."""
        with self._transaction() as db:
            db.executemany("DELETE FROM outbox WHERE seq = ?", [(seq,) for seq in seqs])

    def outbox_depth(self) -> int:
        return int(self._read("SELECT count(*) FROM outbox")[0][0])

    # --- meta -----------------------------------------------------------------------------

    def set_meta(self, key: str, value: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )
            self._committed()

    def check_writable(self, timeout_s: float = 2.0) -> str | None:
        """None when a write would succeed now, else why not.

        Takes the write lock and the database's write lock in a transaction that is rolled
        back, and checks the disk has room for the WAL to grow.
        """
        if not self._lock.acquire(timeout=timeout_s):
            return f"the ledger has been busy for more than {timeout_s:g} s"
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    "INSERT INTO meta (key, value) VALUES ('write_probe', '')"
                    " ON CONFLICT (key) DO UPDATE SET value = excluded.value"
                )
            finally:
                self._db.execute("ROLLBACK")
            disk = os.statvfs(self.path.parent)
        except (sqlite3.Error, OSError) as exc:
            return f"cannot write to {self.path}: {exc}"
        finally:
            self._lock.release()
        free = disk.f_bavail * disk.f_frsize
        if free < MIN_FREE_BYTES:
            return f"only {free // 1024} KiB free on the ledger's file system"
        return None

    def get_meta(self, key: str) -> str | None:
        rows = self._read("SELECT value FROM meta WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else None

    def summary(self) -> LedgerSummary:
        unfinished = self.unfinished_jobs()
        running = sum(job.state is JobState.RUNNING for job in unfinished)
        [(finished,)] = self._read("SELECT count(*) FROM jobs WHERE state = 'finished'")
        [(depth, oldest)] = self._read("SELECT count(*), min(created_at) FROM outbox")
        connected = self.get_meta("last_connect_at")
        return LedgerSummary(
            accepted=len(unfinished) - running,
            running=running,
            finished=int(finished),
            outbox_depth=int(depth),
            oldest_outbox_at=None if oldest is None else float(oldest),
            last_connect_at=None if connected is None else float(connected),
        )


def _job_from_row(
    row: tuple[str, int, str, str, str | None, bytes | None], *, started: bool
) -> LedgerJob:
    job_id, attempt, job_type, state, outcome, event = row
    if state == "accepted" and started:
        state = JobState.RUNNING
    return LedgerJob(
        job_id,
        int(attempt),
        job_type,
        JobState(state),
        outcome,
        None if event is None else bytes(event),
    )
