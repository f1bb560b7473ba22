"""Job output: sequenced chunks in DynamoDB while a job runs, the full log in S3 when it ends."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from hostrelay.clock import utcnow
from hostrelay.dal.aws_clients import client
from hostrelay.dal.tables import OutputChunkRecord
from hostrelay.domain.jobs import JobOutputInfo

TAIL_BYTES = 4096
CHUNK_TTL = timedelta(days=7)


def _partition(job_id: str, attempt: int) -> str:
    return f"{job_id}#{attempt}"


class OutputStore:
    def __init__(self, bucket: str = "") -> None:
        self._bucket = bucket

    def put_chunk(self, job_id: str, attempt: int, seq: int, stream: str, data: bytes) -> None:
        """Idempotent: a re-delivered chunk overwrites itself with the same bytes."""
        OutputChunkRecord(
            job_attempt=_partition(job_id, attempt),
            seq=seq,
            stream=stream,
            data=data,
            expires_at=utcnow() + CHUNK_TTL,
        ).save()

    def chunks(
        self, job_id: str, attempt: int, after_seq: int = -1, limit: int = 100
    ) -> list[OutputChunkRecord]:
        return list(
            OutputChunkRecord.query(
                _partition(job_id, attempt),
                OutputChunkRecord.seq > after_seq,
                limit=limit,
                consistent_read=True,
            )
        )

    def finalize(self, job_id: str, attempt: int) -> JobOutputInfo:
        """Assemble the chunks into one S3 object; report size, sha256 and a text tail."""
        digest = hashlib.sha256()
        parts: list[bytes] = []
        count = 0
        for record in OutputChunkRecord.query(_partition(job_id, attempt), consistent_read=True):
            parts.append(record.data)
            digest.update(record.data)
            count += 1
        body = b"".join(parts)
        location = None
        if self._bucket:
            key = f"jobs/{job_id}/attempt-{attempt}.log"
            client("s3").put_object(
                Bucket=self._bucket, Key=key, Body=body, ContentType="text/plain"
            )
            location = f"s3://{self._bucket}/{key}"
        return JobOutputInfo(
            tail=body[-TAIL_BYTES:].decode("utf-8", errors="replace"),
            size=len(body),
            sha256=digest.hexdigest(),
            location=location,
            chunks=count,
        )
