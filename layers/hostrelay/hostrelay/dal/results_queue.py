"""The results queue, for a relay event the results function must see again later."""

from __future__ import annotations

from hostrelay.dal.aws_clients import client


class ResultsQueue:
    def __init__(self, queue_url: str) -> None:
        self._queue_url = queue_url

    def send(self, body: str) -> None:
        """Queue `body` (a topic rule's message); errors propagate: the caller's invocation
        fails and is retried."""
        client("sqs").send_message(QueueUrl=self._queue_url, MessageBody=body)
