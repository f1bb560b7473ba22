"""Job output: one record per `output` event while a job runs, the full log in S3 when it ends."""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from hostrelay.clock import utcnow
from hostrelay.dal.aws_clients import client
from hostrelay.dal.pynamodb_private import table_connection
from hostrelay.dal.tables import ChunkIndexEntry, OutputBatchRecord
from hostrelay.domain.jobs import JobOutputInfo
from hostrelay.domain.output import OutputBatch, OutputChunk
from hostrelay.observability import logger

TAIL_BYTES = 4096
CHUNK_TTL = timedelta(days=7)  # OutputTopicRule's `expires_at` says the same: 604800 s


def partition(host: str, job_id: str, attempt: int) -> str:
    """The output table's partition of a job attempt: what OutputTopicRule's SQL computes.

    It starts with the host of the topic the output came on, so a relay can only ever write
    under its own name; readers look under the job's host.
    """
    return f"{host}/{job_id}#{attempt}"


def batch_of_item(item: Mapping[str, Any]) -> OutputBatch:
    """An output table item (DynamoDB JSON) as a batch; ValueError if it is not a sane one.

    Items are written as relays sent them (by AWS IoT, unchecked), so nothing is assumed.
    """
    try:
        index = [
            (
                int(entry["M"]["seq"]["N"]),
                str(entry["M"]["stream"]["S"]),
                int(entry["M"]["size"]["N"]),
            )
            for entry in item["chunks"]["L"]
        ]
        encoding = str(item.get("encoding", {"S": "identity"})["S"])
        payload = base64.b64decode(item["data"]["S"], validate=True)
        last_seq = int(item["seq"]["N"])
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise ValueError(f"not an output record: {type(exc).__name__}") from None
    batch = OutputBatch.from_index(index, encoding, payload)
    if batch.last_seq != last_seq:
        raise ValueError("an output record's key is not its last chunk's seq")
    return batch


@dataclass(frozen=True)
class StoredBatch:
    batch: OutputBatch
    raw: bytes  # the chunks' bytes, checked against the index


class OutputStore:
    def __init__(self, bucket: str = "") -> None:
        self._bucket = bucket

    def put_batches(self, items: Sequence[tuple[str, str, int, OutputBatch]]) -> None:
        """Store (host, job id, attempt, batch) as OutputTopicRule would, in as few
        BatchWriteItem calls as DynamoDB allows; a re-delivered event rewrites itself."""
        expires_at = utcnow() + CHUNK_TTL
        records = [
            OutputBatchRecord(
                job_attempt=partition(host, job_id, attempt),
                seq=batch.last_seq,
                chunks=[
                    ChunkIndexEntry(seq=seq, stream=stream, size=size)  # type: ignore[no-untyped-call]
                    for seq, (stream, size) in enumerate(batch.sizes, start=batch.first_seq)
                ],
                encoding=batch.encoding,
                data=base64.b64encode(batch.payload).decode("ascii"),
                host=host,
                expires_at=expires_at,
            )
            for host, job_id, attempt, batch in items
        ]
        with OutputBatchRecord.batch_write() as writer:  # retries unprocessed items
            for record in records:
                writer.save(record)

    def chunks(
        self, host: str, job_id: str, attempt: int, after_seq: int = -1, limit: int = 100
    ) -> list[OutputChunk]:
        """Up to `limit` chunks with seq > after_seq, in order."""
        found: list[OutputChunk] = []
        for stored in self._stored(partition(host, job_id, attempt), after_seq=after_seq):
            found.extend(c for c in stored.batch.chunks(stored.raw) if c.seq > after_seq)
            if len(found) >= limit:
                break
        return found[:limit]

    def finalize(
        self,
        host: str,
        job_id: str,
        attempt: int,
        *,
        expected_chunks: int | None = None,
        accept_missing: bool = False,
    ) -> JobOutputInfo | None:
        """Assemble the chunks into one S3 object; report size, sha256 and a text tail.

        None (and nothing written) while fewer than `expected_chunks` chunks are stored, in
        an unbroken run from seq 0, unless `accept_missing`: then the log holds what there
        is and `missing` counts what never came.
        """
        digest = hashlib.sha256()
        parts: list[bytes] = []
        count = 0
        for stored in self._stored(partition(host, job_id, attempt)):
            if stored.batch.first_seq != count:
                break  # a gap: what follows it is not part of an unbroken log
            parts.append(stored.raw)
            digest.update(stored.raw)
            count += len(stored.batch.sizes)
        missing = max(0, (expected_chunks or 0) - count)
        if missing and not accept_missing:
            return None
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
            missing=missing,
        )

    def _stored(self, key: str, *, after_seq: int = -1) -> Iterator[StoredBatch]:
        """The partition's sane batches in seq order; a broken item is logged and skipped."""
        # The table's low-level query: items come back as DynamoDB JSON and are checked
        # here, where the model would fail (or trust) whatever a relay had IoT write.
        connection = table_connection(OutputBatchRecord)
        start: dict[str, Any] | None = None
        while True:
            page = connection.query(
                key,
                OutputBatchRecord.seq > after_seq,
                consistent_read=True,
                exclusive_start_key=start,
            )
            for item in page.get("Items", []):
                try:
                    batch = batch_of_item(item)
                    stored = StoredBatch(batch, batch.raw())
                except ValueError as exc:
                    logger.warning("output record skipped", extra={"key": key, "reason": str(exc)})
                    continue
                yield stored
            start = page.get("LastEvaluatedKey")
            if not start:
                return
