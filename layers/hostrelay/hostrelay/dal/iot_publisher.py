"""Publishes signed envelopes to a host's jobs topic through the IoT data plane."""

from __future__ import annotations

from hostrelay.dal.aws_clients import client


def jobs_topic(host: str) -> str:
    return f"hostrelay/{host}/jobs"


class IotPublisher:
    """boto3 `iot-data` publish; the default endpoint is the region's `data-ats` one.

    `endpoint` (https://<prefix>-ats.iot.<region>.amazonaws.com) pins an account endpoint;
    the local stack points the client at its bridge with AWS_ENDPOINT_URL_IOT_DATA instead.
    """

    def __init__(self, endpoint: str = "") -> None:
        self._endpoint = endpoint or None

    def publish(self, host: str, payload: bytes) -> None:
        client("iot-data", self._endpoint).publish(topic=jobs_topic(host), qos=1, payload=payload)
