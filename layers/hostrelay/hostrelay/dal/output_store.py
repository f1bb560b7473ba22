"""Job output: one record per `output` event while a job runs, the full log in S3 when it ends."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator, Sequence
from datetime import timedelta

from hostrelay.clock import utcnow
from hostrelay.dal.aws_clients import client
from hostrelay.dal.tables import OutputBatchRecord
from hostrelay.domain.jobs import JobOutputInfo
from hostrelay.domain.output import OutputBatch, OutputChunk

TAIL_BYTES = 4096
CHUNK_TTL = timedelta(days=7)


def _partition(job_id: str, attempt: int) -> str:
    return f"{job_id}#{attempt}"


def _batch(record: OutputBatchRecord) -> OutputBatch:
    return OutputBatch(
        first_seq=int(record.first_seq),
        sizes=[(str(stream), int(size)) for stream, size in json.loads(record.sizes)],
        encoding=record.encoding,
        payload=record.data,
    )


class OutputStore:
    def __init__(self, bucket: str = "") -> None:
        self._bucket = bucket

    def put_batches(self, items: Sequence[tuple[str, int, OutputBatch]]) -> None:
        """Store events' chunks as sent, in as few BatchWriteItem calls as DynamoDB allows;
        a re-delivered event rewrites itself."""
        expires_at = utcnow() + CHUNK_TTL
        records = [
            OutputBatchRecord(
                job_attempt=_partition(job_id, attempt),
                seq=batch.last_seq,
                first_seq=batch.first_seq,
                sizes=json.dumps(batch.sizes, separators=(",", ":")),
                encoding=batch.encoding,
                data=batch.payload,
                expires_at=expires_at,
            )
            for job_id, attempt, batch in items
        ]
        with OutputBatchRecord.batch_write() as writer:  # retries unprocessed items
            for record in records:
                writer.save(record)

    def chunks(
        self, job_id: str, attempt: int, after_seq: int = -1, limit: int = 100
    ) -> list[OutputChunk]:
        """Up to `limit` chunks with seq > after_seq, in order."""
        found: list[OutputChunk] = []
        for batch in self._batches(job_id, attempt, after_seq=after_seq):
            found.extend(c for c in batch.chunks() if c.seq > after_seq)
            if len(found) >= limit:
                break
        return found[:limit]

    def finalize(self, job_id: str, attempt: int) -> JobOutputInfo:
        """Assemble the chunks into one S3 object; report size, sha256 and a text tail."""
        digest = hashlib.sha256()
        parts: list[bytes] = []
        count = 0
        for batch in self._batches(job_id, attempt):
            data = batch.raw()
            parts.append(data)
            digest.update(data)
            count += len(batch.sizes)
        body = b"".join(parts)
        location = None
        if self._bucket:
            key = f"jobs/{job_id}/attempt-{attempt}.log"
            # S3 checks the digest we computed anyway (and botocore need not compute its own).
            client("s3").put_object(
                Bucket=self._bucket,
                Key=key,
                Body=body,
                ContentType="text/plain",
                ChecksumSHA256=base64.b64encode(digest.digest()).decode(),
            )
            location = f"s3://{self._bucket}/{key}"
        return JobOutputInfo(
            tail=body[-TAIL_BYTES:].decode("utf-8", errors="replace"),
            size=len(body),
            sha256=digest.hexdigest(),
            location=location,
            chunks=count,
        )

    def _batches(self, job_id: str, attempt: int, *, after_seq: int = -1) -> Iterator[OutputBatch]:
        query = OutputBatchRecord.query(
            _partition(job_id, attempt),
            OutputBatchRecord.seq > after_seq,
            consistent_read=True,
        )
        for record in query:
            yield _batch(record)
