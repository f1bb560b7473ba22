"""Following a job: poll its state until it ends, and page its output as it comes."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hostrelay_cli.client import HostrelayClient
from hostrelay_cli.output import TERMINAL_STATES

OutputSink = Callable[[str, bytes], None]  # (stream, data)
OUTPUT_PAGE = 1000
# After the job ends, how many more polls may pass without the output completing.
LATE_OUTPUT_POLLS = 90


@dataclass
class OutputCursor:
    """Where reading a job's output has got to; a new attempt starts from the beginning."""

    attempt: int | None = None
    after_seq: int = -1
    complete: bool = False

    def read(self, client: HostrelayClient, job_id: str, sink: OutputSink) -> int:
        """Write every chunk available now; returns how many were written."""
        written = 0
        while True:
            asked = self.after_seq
            page = client.job_output(job_id, after_seq=asked, limit=OUTPUT_PAGE)
            if page["attempt"] != self.attempt:
                if self.attempt is not None:
                    sink("stderr", f"--- attempt {page['attempt']} ---\n".encode())
                self.attempt, self.after_seq = page["attempt"], -1
                if asked != -1:
                    continue  # asked from the old attempt's position: read the new one from 0
            for chunk in page["chunks"]:
                sink(chunk["stream"], base64.b64decode(chunk["data"]))
                written += 1
            self.after_seq = page["next_seq"]
            self.complete = bool(page["complete"])
            if self.complete or len(page["chunks"]) < OUTPUT_PAGE:
                return written


def print_output(
    client: HostrelayClient,
    job_id: str,
    sink: OutputSink,
    *,
    follow: bool,
    poll_s: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """`jobs logs`: what is there now, or (follow) everything until the job has ended."""
    cursor = OutputCursor()
    cursor.read(client, job_id, sink)
    while follow and not cursor.complete:
        sleep(poll_s)
        cursor.read(client, job_id, sink)


def wait_for_job(
    client: HostrelayClient,
    job_id: str,
    *,
    on_update: Callable[[dict[str, Any]], None],
    sink: OutputSink | None = None,
    poll_s: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Poll until the job is terminal (and, with a sink, its output complete); return it."""
    cursor = OutputCursor() if sink is not None else None
    polls_after_end = 0
    while True:
        job = client.get_job(job_id)
        on_update(job)
        ended = job["state"] in TERMINAL_STATES
        if cursor is not None and sink is not None:
            cursor.read(client, job_id, sink)
            if ended and not cursor.complete and polls_after_end < LATE_OUTPUT_POLLS:
                polls_after_end += 1
                sleep(poll_s)
                continue
        if ended:
            return job
        sleep(poll_s)
