"""The local IoT data-plane endpoint: boto3 `iot-data` publish reaches the broker."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.exceptions import ClientError

from hostrelay_local.iot_bridge import IotDataEndpoint, MqttIdentity, publish_without_http
from tests.integration.relay.conftest import connect_observer

pytestmark = pytest.mark.integration


@pytest.fixture
def endpoint(broker):
    identity = MqttIdentity(
        host=broker.endpoint.host,
        port=broker.port,
        ca_file=broker.endpoint.ca_file,
        cert_file=broker.control_plane.cert_path,
        key_file=broker.control_plane.key_path,
    )
    running = IotDataEndpoint(identity)
    running.start()
    yield running
    running.stop()


def iot_data(url: str):
    return boto3.session.Session(
        aws_access_key_id="local", aws_secret_access_key="local", region_name="us-east-1"
    ).client("iot-data", endpoint_url=url)


def test_publish_reaches_the_host_over_http_and_in_process(
    broker, endpoint, new_host, observers, monkeypatch
):
    # Given a host listening on its jobs topic
    host = new_host()
    identity = broker.ca.issue_client_cert(host.name, broker.workdir / f"{host.name}-observer")
    listener = connect_observer(broker.endpoint, identity, [host.jobs_topic])
    observers.append(listener)

    # When the control plane publishes through the endpoint's HTTP API
    iot_data(endpoint.endpoint_url).publish(topic=host.jobs_topic, qos=1, payload=b'{"n": 1}')
    # and again from this process once publishing skips HTTP, with no server to call
    publish_without_http()
    monkeypatch.setattr(
        "hostrelay_local.iot_bridge._PublishRequestHandler.do_POST",
        lambda self: pytest.fail("the in-process publish went over HTTP"),
    )
    iot_data(endpoint.endpoint_url).publish(topic=host.jobs_topic, qos=1, payload=b'{"n": 2}')

    # Then the host got both, in order
    listener.wait_until(lambda: len(listener.messages) == 2)
    assert [json.loads(payload)["n"] for _, payload in listener.messages] == [1, 2]


def test_in_process_publish_reports_a_broker_it_cannot_reach(endpoint, monkeypatch):
    publish_without_http()
    monkeypatch.setattr(endpoint._session.connected, "is_set", lambda: False)
    with pytest.raises(ClientError) as raised:
        iot_data(endpoint.endpoint_url).publish(topic="hostrelay/h1/jobs", qos=1, payload=b"{}")
    assert raised.value.response["Error"]["Code"] == "ServiceUnavailableException"
