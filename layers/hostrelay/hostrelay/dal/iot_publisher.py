"""Publishes signed envelopes to a host's jobs topic through the IoT data plane."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from hostrelay.dal.aws_clients import client


def jobs_topic(host: str) -> str:
    return f"hostrelay/{host}/jobs"


class IotPublisher:
    def __init__(self, endpoint: str = "") -> None:
        self._endpoint = endpoint

    @cached_property
    def _client(self) -> Any:
        endpoint = self._endpoint
        if not endpoint:
            import boto3

            configured = boto3.session.Session().client("iot-data").meta.endpoint_url
            if "amazonaws.com" not in configured:
                return client("iot-data")  # an explicit endpoint (local stack) is configured
            described = client("iot").describe_endpoint(endpointType="iot:Data-ATS")
            endpoint = "https://" + described["endpointAddress"]
        return client("iot-data", endpoint)

    def publish(self, host: str, payload: bytes) -> None:
        self._client.publish(topic=jobs_topic(host), qos=1, payload=payload)
