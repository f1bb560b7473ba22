"""Stands in for AWS IoT Core's data plane: the Publish API, and the topic rules' actions."""

from __future__ import annotations

import base64
import json
import logging
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, parse_qs, unquote, urlsplit

import paho.mqtt.client as mqtt
from botocore.exceptions import BotoCoreError, ClientError
from paho.mqtt.enums import CallbackAPIVersion

from hostrelay_local.aws_resources import LocalResources
from hostrelay_local.in_process_answers import answer, skip_answered_in_moto
from hostrelay_local.iot_sql import IotSqlError, RuleInput, RuleQuery, parse_rule
from hostrelay_local.local_http import BackgroundServer, LocalHttpServer, LocalRequestHandler
from hostrelay_local.template import Template, function_named

logger = logging.getLogger(__name__)

_CONNECT_TIMEOUT_S = 10.0
_BURST_GAP_S = 0.005  # a message this soon after the previous one is part of a burst
_PUBACK_TIMEOUT_S = 5.0


class BridgeFailed(RuntimeError):
    """The bridge could not connect to the broker."""


@dataclass(frozen=True)
class SqsAction:
    """The rule's output, as JSON, becomes an SQS message (`Sqs` action, UseBase64 false)."""

    queue_url: str

    @property
    def resource(self) -> str:
        return self.queue_url

    def deliver(self, clients: AwsClients, output: dict[str, Any]) -> None:
        clients.sqs.send_message(QueueUrl=self.queue_url, MessageBody=json.dumps(output))


class InvokeRefused(RuntimeError):
    """The function of a `Lambda` action cannot be invoked (not in this stack)."""


@dataclass(frozen=True)
class LambdaAction:
    """The rule's output is the event of an asynchronous invocation (`Lambda` action)."""

    function: str  # logical id in the template

    @property
    def resource(self) -> str:
        return self.function

    def deliver(self, clients: AwsClients, output: dict[str, Any]) -> None:
        if clients.invoke is None:
            raise InvokeRefused(f"no function {self.function} to invoke")
        clients.invoke(self.function, output)


@dataclass(frozen=True)
class DynamoDbPutAction:
    """The rule's output becomes one item, a column per field (`DynamoDBv2` action)."""

    table_name: str

    @property
    def resource(self) -> str:
        return self.table_name

    def deliver(self, clients: AwsClients, output: dict[str, Any]) -> None:
        item = {name: _attribute_value(value) for name, value in output.items()}
        clients.dynamodb.put_item(TableName=self.table_name, Item=item)


def _attribute_value(value: Any) -> dict[str, Any]:
    """A JSON value as DynamoDB's typed form, as IoT's DynamoDBv2 action writes it."""
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int | float):
        return {"N": repr(value) if isinstance(value, float) else str(value)}
    if isinstance(value, str):
        return {"S": value}
    if value is None:
        return {"NULL": True}
    if isinstance(value, list):
        return {"L": [_attribute_value(v) for v in value]}
    return {"M": {str(k): _attribute_value(v) for k, v in value.items()}}


@dataclass(frozen=True)
class AwsClients:
    sqs: Any
    dynamodb: Any
    # Queues an asynchronous invocation of a template function (`Event` invocation type).
    invoke: Callable[[str, dict[str, Any]], None] | None = None


@dataclass(frozen=True)
class TopicRule:
    """A topic rule of the template: its SQL, its one action and its ErrorAction queue."""

    name: str
    query: RuleQuery
    action: SqsAction | DynamoDbPutAction | LambdaAction
    error_queue_url: str | None = None

    @property
    def topic_filter(self) -> str:
        return self.query.topic_filter

    def matches(self, topic: str) -> bool:
        """Whether the rule's FROM filter takes this topic (MQTT wildcards, `$` topics apart)."""
        return mqtt.topic_matches_sub(self.topic_filter, topic)

    def run(self, clients: AwsClients, message: RuleInput) -> None:
        """What IoT does with one message: evaluate, act; on failure, the ErrorAction."""
        if not self.matches(message.topic):
            return
        output = self.query.apply(message)
        if output is None:
            return
        try:
            self.action.deliver(clients, output)
        except (BotoCoreError, ClientError, InvokeRefused) as exc:
            logger.exception(
                "topic rule action failed", extra={"rule": self.name, "topic": message.topic}
            )
            self._send_error(clients, message.topic, message.payload, exc)

    def _send_error(self, clients: AwsClients, topic: str, payload: bytes, exc: Exception) -> None:
        if self.error_queue_url is None:
            return
        # The message IoT's error action sends: the original payload and why it failed.
        failure = {
            "ruleName": self.name,
            "topic": topic,
            "base64OriginalPayload": base64.b64encode(payload).decode("ascii"),
            "failures": [
                {
                    "failedAction": type(self.action).__name__,
                    "failedResource": self.action.resource,
                    "errorMessage": str(exc)[:1000],
                }
            ],
        }
        try:
            clients.sqs.send_message(QueueUrl=self.error_queue_url, MessageBody=json.dumps(failure))
        except (BotoCoreError, ClientError):  # lost, like a failing ErrorAction in IoT
            logger.exception("topic rule error action failed", extra={"rule": self.name})


def topic_rules(template: Template, resources: LocalResources) -> list[TopicRule]:
    """The template's enabled topic rules the bridge can run; others are logged and skipped."""
    resolver = resources.resolver()
    rules = []
    for name, resource in template.of_type("AWS::IoT::TopicRule").items():
        payload = resource["Properties"]["TopicRulePayload"]
        if payload.get("RuleDisabled"):
            continue
        try:
            query = parse_rule(str(payload.get("Sql", "")))
        except IotSqlError as exc:
            logger.warning("topic rule not run locally", extra={"rule": name, "reason": str(exc)})
            continue
        actions = payload.get("Actions", [])
        action: SqsAction | DynamoDbPutAction | LambdaAction | None = None
        if len(actions) == 1 and "Sqs" in actions[0] and not actions[0]["Sqs"].get("UseBase64"):
            action = SqsAction(str(resolver.resolve(actions[0]["Sqs"]["QueueUrl"])))
        elif len(actions) == 1 and "DynamoDBv2" in actions[0]:
            table = actions[0]["DynamoDBv2"]["PutItem"]["TableName"]
            action = DynamoDbPutAction(str(resolver.resolve(table)))
        elif len(actions) == 1 and "Lambda" in actions[0]:
            function = function_named(actions[0]["Lambda"].get("FunctionArn"))
            action = LambdaAction(function) if function else None
        if action is None:
            logger.warning("topic rule not run locally", extra={"rule": name})
            continue
        error = payload.get("ErrorAction", {}).get("Sqs")
        rules.append(
            TopicRule(
                name=name,
                query=query,
                action=action,
                error_queue_url=str(resolver.resolve(error["QueueUrl"])) if error else None,
            )
        )
    return rules


@dataclass(frozen=True)
class MqttIdentity:
    """Where the broker is and the client certificate to present (the control plane's)."""

    host: str
    port: int
    ca_file: Path
    cert_file: Path
    key_file: Path


class _MqttSession:
    """One paho client with mutual TLS, its network loop in a background thread."""

    def __init__(
        self, identity: MqttIdentity, client_id: str, *, clean_session: bool = True
    ) -> None:
        self._identity = identity
        self.connected = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=clean_session,
            protocol=mqtt.MQTTv311,
        )
        self.client.tls_set(
            ca_certs=str(identity.ca_file),
            certfile=str(identity.cert_file),
            keyfile=str(identity.key_file),
            cert_reqs=ssl.CERT_REQUIRED,
        )
        self.client.reconnect_delay_set(min_delay=1, max_delay=5)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.on_connected: list[Any] = []

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        if reason.is_failure:
            logger.warning("bridge connection refused", extra={"reason": str(reason)})
            return
        for callback in self.on_connected:
            callback(client)
        self.connected.set()

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        self.connected.clear()

    def start(self) -> None:
        self.client.connect_async(self._identity.host, self._identity.port, keepalive=30)
        self.client.loop_start()
        if not self.connected.wait(_CONNECT_TIMEOUT_S):
            self.stop()
            raise BridgeFailed(
                f"no MQTT session to {self._identity.host}:{self._identity.port} "
                f"as {self._identity.cert_file.name}"
            )
        sock = self.client.socket()
        if isinstance(sock, socket.socket):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class _PublishRequestHandler(LocalRequestHandler):
    """`POST /topics/{topic}?qos=1` of the IoT data plane (what boto3 `iot-data` publish calls)."""

    server: _PublishHttpServer

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self._reply(*_publish(self.server, urlsplit(self.path), body))

    def _reply(self, status: HTTPStatus, error_type: str = "", message: str = "") -> None:
        self.write_json(status, {"message": message} if error_type else {}, error_type)


def _publish(
    server: _PublishHttpServer, url: SplitResult, body: bytes
) -> tuple[HTTPStatus, str, str]:
    """IoT's Publish, `POST /topics/{topic}?qos=&retain=`: (status, error type, message)."""
    if not url.path.startswith("/topics/"):
        return HTTPStatus.NOT_FOUND, "ResourceNotFoundException", "no such API"
    topic = unquote(url.path.removeprefix("/topics/"))
    query = parse_qs(url.query)
    qos = int(query.get("qos", ["0"])[0])
    retain = query.get("retain", ["false"])[0] == "true"
    if not topic or qos not in (0, 1):
        return HTTPStatus.BAD_REQUEST, "InvalidRequestException", "bad topic or qos"
    try:
        server.publish(topic, body, qos, retain)
    except BridgeFailed as exc:
        return HTTPStatus.SERVICE_UNAVAILABLE, "ServiceUnavailableException", str(exc)
    return HTTPStatus.OK, "", ""


class _PublishHttpServer(LocalHttpServer):
    def __init__(self, address: tuple[str, int], session: _MqttSession) -> None:
        super().__init__(address, _PublishRequestHandler)
        self._session = session

    def publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> None:
        if not self._session.connected.is_set():
            raise BridgeFailed("not connected to the broker")
        info = self._session.client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise BridgeFailed(f"publish failed: {mqtt.error_string(info.rc)}")
        if qos:
            info.wait_for_publish(_PUBACK_TIMEOUT_S)
            if not info.is_published():
                raise BridgeFailed("the broker did not acknowledge the publish")


# Endpoints started in this process, by URL: boto3 calls to them skip HTTP (see below).
_in_process_endpoints: dict[str, _PublishHttpServer] = {}


def _publish_in_process(request: Any, **kwargs: Any) -> Any:
    """botocore `before-send` hook: a Publish to an endpoint of this process is done here.

    The functions of the local stack run in this process; their `iot-data` publish would
    otherwise make an HTTP request to a server thread of the same process (a few ms per job).
    Requests to other URLs get None (botocore sends them as usual).
    """
    if not _in_process_endpoints or request.method != "POST":
        return None
    url = urlsplit(request.url)
    server = _in_process_endpoints.get(f"{url.scheme}://{url.netloc}")
    if server is None:
        return None
    body = request.body or b""
    status, error_type, message = _publish(
        server, url, body if isinstance(body, bytes) else body.read()
    )
    reply = json.dumps({"message": message} if error_type else {}).encode()
    return answer(request, status.value, reply, error_type)


def publish_without_http() -> None:
    """Let boto3 clients of this process publish to in-process endpoints directly."""
    import boto3
    from botocore.handlers import BUILTIN_HANDLERS

    skip_answered_in_moto()
    hook = ("before-send.iot-data-plane.Publish", _publish_in_process)
    if hook not in BUILTIN_HANDLERS:
        BUILTIN_HANDLERS.append(hook)  # sessions created from now on
    if boto3.DEFAULT_SESSION is not None:
        boto3.DEFAULT_SESSION.events.register(hook[0], _publish_in_process, unique_id=hook[0])


class IotDataEndpoint:
    """The IoT data-plane endpoint: publishes to the broker as the control plane.

    Point boto3 at it with `AWS_ENDPOINT_URL_IOT_DATA_PLANE` (the service id of `iot-data`).
    """

    def __init__(self, identity: MqttIdentity, bind: tuple[str, int] = ("127.0.0.1", 0)) -> None:
        self._session = _MqttSession(identity, client_id="hostrelay-local-iot-data")
        self._bind = bind
        self._serving = BackgroundServer("iot-data-endpoint")

    @property
    def endpoint_url(self) -> str:
        return self._serving.url

    def start(self) -> None:
        self._session.start()
        server = _PublishHttpServer(self._bind, self._session)
        self._serving.start(server)
        _in_process_endpoints[server.url] = server

    def stop(self) -> None:
        if self._serving.server is not None:
            _in_process_endpoints.pop(self.endpoint_url, None)
        self._serving.stop()
        self._session.stop()


class TopicRuleBridge:
    """Runs the topic rules of one topic filter: every message → each rule, in order.

    One MQTT subscription serves all of them (as IoT Core, which evaluates every rule on
    each message it routes), so a message is received and parsed once. A message that finds
    the bridge idle is handled on the MQTT client's thread at once (no hand-off: a lone
    event is on its way sooner); messages that come in a burst queue for a worker thread
    instead, so reading from the broker goes on while they are delivered. Rules of one
    filter see messages in the order they came: a relay's result is acted on after the
    output it sent before it.
    """

    def __init__(
        self,
        identity: MqttIdentity,
        clients: AwsClients,
        rules: Sequence[TopicRule],
        *,
        on_subscribed: Callable[[], None] | None = None,
    ) -> None:
        filters = {rule.topic_filter for rule in rules}
        if len(filters) != 1:
            raise ValueError("a bridge runs the rules of one topic filter")
        self.topic_filter = filters.pop()
        self.rules = list(rules)
        self._clients = clients
        self._lock = threading.Lock()
        self._pending: deque[tuple[str, bytes]] = deque()
        self._worker_busy = False  # the worker is delivering what is in _pending
        self._wake = threading.Condition(self._lock)
        self._stopping = False
        self.subscribed = threading.Event()
        self._on_subscribed = on_subscribed
        name = "-".join(rule.name for rule in self.rules)
        # A persistent session (clean_session=False, QoS 1), as IoT Core's rules always
        # listen: while the bridge is away (a broker restart, a reconnect), the broker
        # queues the events for it instead of dropping them. Its client id is its own
        # certificate's CN (the broker enforces that), so no host can take the session over.
        self._session = _MqttSession(
            identity, client_id=identity.cert_file.stem, clean_session=False
        )
        self._session.on_connected.append(self._subscribe)
        self._session.client.on_message = self._on_message
        self._session.client.on_subscribe = self._on_subscribe
        self._worker = threading.Thread(target=self._drain, name=f"rules-{name}", daemon=True)
        self._last_arrival = float("-inf")

    def _subscribe(self, client: mqtt.Client) -> None:
        client.subscribe(self.topic_filter, qos=1)

    def _on_subscribe(
        self, client: mqtt.Client, userdata: Any, mid: int, reasons: Any, props: Any
    ) -> None:
        if any(reason.is_failure for reason in reasons):
            logger.warning("bridge subscription refused", extra={"filter": self.topic_filter})
            return
        if self._on_subscribed is not None:
            self._on_subscribed()
        self.subscribed.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        item = (message.topic, bytes(message.payload))
        now = time.monotonic()
        burst, self._last_arrival = now - self._last_arrival < _BURST_GAP_S, now
        with self._lock:
            if burst or self._pending or self._worker_busy:
                self._pending.append(item)  # behind earlier ones
                self._wake.notify()
                return
        self._deliver(*item)

    def start(self) -> None:
        self._worker.start()
        self._session.start()
        if not self.subscribed.wait(_CONNECT_TIMEOUT_S):
            self.stop()
            raise BridgeFailed(f"the broker did not accept a subscription to {self.topic_filter}")

    def stop(self) -> None:
        self._session.stop()
        with self._lock:
            self._stopping = True
            self._wake.notify()
        self._worker.join(10)

    def _drain(self) -> None:
        while True:
            with self._lock:
                self._worker_busy = False
                while not self._pending and not self._stopping:
                    self._wake.wait()
                if not self._pending:
                    return
                item = self._pending.popleft()
                self._worker_busy = True
            self._deliver(*item)

    def _deliver(self, topic: str, payload: bytes) -> None:
        message = RuleInput(topic, payload)
        for rule in self.rules:
            rule.run(self._clients, message)


def rules_by_topic_filter(rules: Sequence[TopicRule]) -> list[list[TopicRule]]:
    """The rules grouped by topic filter (first seen first), each group in template order."""
    by_filter: dict[str, list[TopicRule]] = {}
    for rule in rules:
        by_filter.setdefault(rule.topic_filter, []).append(rule)
    return list(by_filter.values())


def bridges_by_topic_filter(
    identities: Sequence[MqttIdentity],
    clients: AwsClients,
    rules: Sequence[TopicRule],
    *,
    on_subscribed: Callable[[], None] | None = None,
) -> list[TopicRuleBridge]:
    """One bridge per distinct topic filter, each with its own identity, running that
    filter's rules in template order."""
    groups = rules_by_topic_filter(rules)
    if len(identities) < len(groups):
        raise ValueError(f"{len(groups)} topic filters need as many bridge identities")
    return [
        TopicRuleBridge(identity, clients, group, on_subscribed=on_subscribed)
        for identity, group in zip(identities, groups, strict=False)
    ]
