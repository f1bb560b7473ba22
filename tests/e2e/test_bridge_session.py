"""The local topic-rule bridge never misses an event a host published while it was away, even
across a broker killed with SIGKILL: like IoT Core's rules, it always listens."""

from __future__ import annotations

import json
import os
import signal
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import paho.mqtt.client as mqtt
import pytest
from moto import mock_aws
from paho.mqtt.enums import CallbackAPIVersion

from hostrelay_local.broker import MosquittoBroker
from hostrelay_local.iot_bridge import (
    AwsClients,
    MqttIdentity,
    SqsAction,
    TopicRule,
    TopicRuleBridge,
)
from hostrelay_local.iot_sql import parse_rule
from hostrelay_local.pki import IssuedCert, LocalCA
from hostrelay_local.template import load_template

pytestmark = pytest.mark.e2e


def _wait_for(condition: Any, timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def sqs() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("sqs", region_name="us-east-1")


def _events_rule(queue_url: str) -> TopicRule:
    """The template's EventsTopicRule, its action pointed at `queue_url`."""
    payload = load_template().of_type("AWS::IoT::TopicRule")["EventsTopicRule"]["Properties"]
    query = parse_rule(str(payload["TopicRulePayload"]["Sql"]))
    return TopicRule(name="EventsTopicRule", query=query, action=SqsAction(queue_url))


def _publish_as_host(broker: MosquittoBroker, identity: IssuedCert, payload: bytes) -> None:
    """What a relay does: publish an event on its own topic, QoS 1, and wait for the PUBACK."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=identity.common_name, protocol=mqtt.MQTTv311
    )
    client.tls_set(
        ca_certs=str(broker.ca.cert_path),
        certfile=str(identity.cert_path),
        keyfile=str(identity.key_path),
        cert_reqs=ssl.CERT_REQUIRED,
    )
    client.connect(broker.endpoint.host, broker.port)
    client.loop_start()
    try:
        info = client.publish(f"hostrelay/{identity.common_name}/events", payload, qos=1)
        info.wait_for_publish(10)
        assert info.is_published()
    finally:
        client.disconnect()
        client.loop_stop()


def test_events_published_while_the_bridge_is_away_reach_it_after_a_broker_sigkill(
    tmp_path: Path, sqs: Any
) -> None:
    queue_url = sqs.create_queue(QueueName="results")["QueueUrl"]
    clients = AwsClients(sqs=sqs, dynamodb=None)
    with MosquittoBroker(tmp_path / "broker", LocalCA(tmp_path / "pki")) as broker:
        issued = broker.topic_rules[0]
        identity = MqttIdentity(
            broker.endpoint.host, broker.port, broker.ca.cert_path,
            issued.cert_path, issued.key_path,
        )  # fmt: skip
        # Given the bridge subscribed once (the broker saved that at once), then went away
        bridge = TopicRuleBridge(
            identity, clients, [_events_rule(queue_url)], on_subscribed=broker.save_sessions
        )
        bridge.start()
        # (mosquitto writes mosquitto.db.new, then renames it: the file appears when saved)
        _wait_for((broker.workdir / "mosquitto.db").exists, 10, "the saved sessions")
        bridge.stop()

        # When the broker is killed (SIGKILL) and restarted, and a host publishes an event
        # before the bridge is back
        assert broker.pid is not None
        os.kill(broker.pid, signal.SIGKILL)
        _wait_for(lambda: broker.exited() is not None, 10, "the broker to die")
        broker.restart()
        host = broker.issue_host_identity("dc01", tmp_path / "dc01")
        # (a heartbeat, which EventsTopicRule takes; a result takes ResultsTopicRule)
        _publish_as_host(broker, host, json.dumps({"kind": "heartbeat", "running": 0}).encode())

        # Then the bridge, back again, gets it: the results queue has it, from dc01's topic
        again = TopicRuleBridge(identity, clients, [_events_rule(queue_url)])
        again.start()
        try:
            messages = _wait_for(
                lambda: sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1).get("Messages"),
                30,
                "the event in the results queue",
            )
        finally:
            again.stop()
        assert json.loads(messages[0]["Body"])["topic"] == "hostrelay/dc01/events"
