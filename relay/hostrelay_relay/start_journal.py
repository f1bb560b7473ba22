"""A durable record of which jobs began running, synced to disk before each job starts."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path

JobKey = tuple[str, int]
logger = logging.getLogger(__name__)


class StartJournal:
    """One small sqlite file, synchronous=FULL, apart from the ledger.

    Marking a job started must survive a power cut (the relay must never forget that a
    job may have partly run), but the fsync that guarantees it must not hold up the
    ledger, which every incoming envelope writes to. So the marks live in their own file
    with their own lock, and jobs starting together share one commit (group commit):
    whoever finds no commit in progress writes every pending mark, the others wait for it.
    """

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        self.path = path
        if read_only:
            self._db = sqlite3.connect(
                f"file:{path}?mode=ro", uri=True, check_same_thread=False, isolation_level=None
            )
        else:
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS started (job_id TEXT NOT NULL,"
                " attempt INTEGER NOT NULL, started_at REAL NOT NULL,"
                " PRIMARY KEY (job_id, attempt)) WITHOUT ROWID"
            )
            path.chmod(0o600)
        self._lock = threading.Lock()
        self._turn = threading.Condition()
        self._pending: set[JobKey] = set()
        self._committing = False
        self._failed: dict[JobKey, sqlite3.Error] = {}

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def record(self, job_id: str, attempt: int) -> None:
        """Return once the start of this job is on disk."""
        key = (job_id, attempt)
        with self._turn:
            self._pending.add(key)
            while key in self._pending and self._committing:
                self._turn.wait()
            if key not in self._pending:  # another thread's commit included ours
                failure = self._failed.pop(key, None)
                if failure is not None:
                    raise failure
                return
            batch, self._pending = self._pending, set()
            self._committing = True
        try:
            self._commit(batch)
        except sqlite3.Error as exc:
            with self._turn:
                self._failed.update({other: exc for other in batch if other != key})
            raise
        finally:
            with self._turn:
                self._committing = False
                self._turn.notify_all()

    def record_later(self, job_id: str, attempt: int) -> None:
        """Write the start of this job on a thread of its own and return at once (it joins
        the group commit like any other mark); a failure is logged, nobody waits for it."""
        threading.Thread(
            target=self._record_quietly, args=(job_id, attempt), name="start-mark", daemon=True
        ).start()

    def _record_quietly(self, job_id: str, attempt: int) -> None:
        try:
            self.record(job_id, attempt)
        except sqlite3.Error:
            logger.warning(
                "start mark not written",
                extra={"job_id": job_id, "attempt": attempt},
                exc_info=True,
            )

    def _commit(self, batch: set[JobKey]) -> None:
        now = time.time()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    "INSERT OR IGNORE INTO started (job_id, attempt, started_at) VALUES (?, ?, ?)",
                    [(job_id, attempt, now) for job_id, attempt in batch],
                )
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def started(self) -> set[JobKey]:
        with self._lock:
            rows = self._db.execute("SELECT job_id, attempt FROM started").fetchall()
        return {(str(job_id), int(attempt)) for job_id, attempt in rows}

    def forget(self, keys: Iterable[JobKey]) -> None:
        """Drop marks of jobs that are finished (their outcome is in the ledger now)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("DELETE FROM started WHERE job_id = ? AND attempt = ?", list(keys))
            self._db.execute("COMMIT")
