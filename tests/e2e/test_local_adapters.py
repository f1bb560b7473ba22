"""The local stand-ins for AWS glue produce exactly the shapes AWS does (no stack needed)."""

from __future__ import annotations

import base64
import json
import stat
import sys
from pathlib import Path

import pytest
from cryptography import x509

from hostrelay_local.aws_resources import LocalResources
from hostrelay_local.broker import BrokerEndpoint
from hostrelay_local.event_sources import failed_message_ids, schedule_period_s, sqs_event
from hostrelay_local.http_api import build_event, response_parts
from hostrelay_local.iot_bridge import DynamoDbPutAction, LambdaAction, SqsAction, topic_rules
from hostrelay_local.local_relay import LocalRelay, RelayOptions
from hostrelay_local.pki import LocalCA
from hostrelay_local.system_packages import MissingPackages, Requirement, require
from hostrelay_local.template import load_template
from hostrelay_relay.settings import RelaySettings


def test_http_api_event_is_payload_format_2() -> None:
    # Given a request with a query string, repeated headers and a JSON body
    # When it becomes a Lambda event
    event = build_event(
        method="post",
        target="/v1/jobs?host=dc01&state=QUEUED&host=dc02",
        headers=[
            ("Content-Type", "application/json"),
            ("X-Trace", "a"),
            ("x-trace", "b"),
            ("Cookie", "a=1; b=2"),
        ],
        body=b'{"type": "ping"}',
        source_ip="127.0.0.1",
    )

    # Then it has the fields HTTP API's format 2.0 gives, lower-cased and comma-joined
    assert event["version"] == "2.0"
    assert event["routeKey"] == "ANY /{proxy+}"
    assert event["rawPath"] == "/v1/jobs"
    assert event["rawQueryString"] == "host=dc01&state=QUEUED&host=dc02"
    assert event["queryStringParameters"] == {"host": "dc01,dc02", "state": "QUEUED"}
    assert event["pathParameters"] == {"proxy": "v1/jobs"}
    assert event["headers"]["x-trace"] == "a,b"
    assert event["cookies"] == ["a=1", "b=2"]
    assert event["requestContext"]["http"]["method"] == "POST"
    assert event["requestContext"]["http"]["sourceIp"] == "127.0.0.1"
    assert event["body"] == '{"type": "ping"}'
    assert event["isBase64Encoded"] is False


def test_binary_bodies_are_base64_and_empty_ones_absent() -> None:
    binary = build_event(
        method="PUT",
        target="/v1/blob",
        headers=[("Content-Type", "application/octet-stream")],
        body=b"\x00\xff",
        source_ip="::1",
    )
    empty = build_event(method="GET", target="/v1/health", headers=[], body=b"", source_ip="::1")

    assert binary["isBase64Encoded"] is True
    assert base64.b64decode(binary["body"]) == b"\x00\xff"
    assert "body" not in empty and "queryStringParameters" not in empty


def test_lambda_results_become_http_responses_like_api_gateway() -> None:
    full = response_parts(
        {
            "statusCode": 201,
            "headers": {"Content-Type": "application/json"},
            "cookies": ["s=1"],
            "body": "{}",
        }
    )
    inferred = response_parts({"ok": True})
    binary = response_parts({"statusCode": 200, "body": "AAE=", "isBase64Encoded": True})

    assert full == (201, [("Content-Type", "application/json"), ("Set-Cookie", "s=1")], b"{}")
    assert inferred == (200, [("Content-Type", "application/json")], b'{"ok": true}')
    assert binary[2] == b"\x00\x01"


def test_the_templates_topic_rules_are_bridged_to_their_actions() -> None:
    resources = LocalResources(
        stage="dev",
        refs={
            "ResultsQueue": "results-url",
            "ResultsDeadLetterQueue": "dlq-url",
            "OutputTable": "output-table",
        },
    )

    rules = {rule.name: rule for rule in topic_rules(load_template(), resources)}

    assert set(rules) == {"EventsTopicRule", "ResultsTopicRule", "OutputTopicRule"}
    events, results, output = (
        rules["EventsTopicRule"],
        rules["ResultsTopicRule"],
        rules["OutputTopicRule"],
    )
    assert events.topic_filter == results.topic_filter == output.topic_filter
    assert events.topic_filter == "hostrelay/+/events"
    assert events.action == SqsAction("results-url")
    assert results.action == LambdaAction("ResultsFunction")
    assert output.action == DynamoDbPutAction("output-table")
    assert events.error_queue_url == output.error_queue_url == "dlq-url"
    # A result whose invocation fails goes on to the results queue like the other events
    assert results.error_queue_url == "results-url"


def test_every_event_takes_exactly_one_of_the_templates_rules() -> None:
    # Given the template's rules and events a relay sends
    resources = LocalResources(
        stage="dev",
        refs={"ResultsQueue": "q", "ResultsDeadLetterQueue": "dlq", "OutputTable": "t"},
    )
    rules = {rule.name: rule for rule in topic_rules(load_template(), resources)}
    output = {"v": 1, "kind": "output", "job_id": "J1", "attempt": 2, "first_seq": 3,
              "last_seq": 4, "encoding": "identity", "data": "aGk=",
              "chunks": [{"seq": 3, "stream": "stdout", "size": 1},
                         {"seq": 4, "stream": "stderr", "size": 1}]}  # fmt: skip
    older_output = {k: v for k, v in output.items() if k not in ("first_seq", "last_seq")}
    result = {"v": 1, "kind": "result", "job_id": "J1", "attempt": 2, "outcome": "succeeded"}

    def routed(event: object) -> dict[str, dict[str, object]]:
        payload = json.dumps(event).encode()
        outputs = {
            name: rule.query.evaluate("hostrelay/dc01/events", payload, now_ms=1_700_000_000_000)
            for name, rule in rules.items()
        }
        return {name: out for name, out in outputs.items() if out is not None}

    # Then output goes to the output table as an item keyed under the host of the topic
    assert routed(output) == {
        "OutputTopicRule": {
            "job_attempt": "dc01/J1#2", "seq": 4, "chunks": output["chunks"],
            "encoding": "identity", "data": "aGk=", "host": "dc01",
            "expires_at": 1_700_000_000 + 7 * 86400,
        }
    }  # fmt: skip
    # and a result straight to the results function
    (name, message), *rest = routed(result).items()
    assert (name, rest) == ("ResultsTopicRule", [])
    assert json.loads(base64.b64decode(message["payload"])) == result
    # and everything else (older relays' output too, and garbage) to the results queue whole
    for event in (older_output, "not an object", {"kind": "hello"}, {"v": 1}):
        (name, message), *rest = routed(event).items()
        assert (name, rest) == ("EventsTopicRule", [])
        assert json.loads(base64.b64decode(message["payload"])) == event
        assert message["topic"] == "hostrelay/dc01/events"


def test_sqs_event_records_look_like_lambdas() -> None:
    event = sqs_event(
        [
            {
                "MessageId": "m1",
                "ReceiptHandle": "r1",
                "Body": "{}",
                "Attributes": {"ApproximateReceiveCount": "1"},
                "MessageAttributes": {"k": {"StringValue": "v", "DataType": "String"}},
            }
        ],
        "arn:aws:sqs:us-east-1:123456789012:q",
        "us-east-1",
    )

    (record,) = event["Records"]
    assert record["messageId"] == "m1" and record["receiptHandle"] == "r1"
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == "arn:aws:sqs:us-east-1:123456789012:q"
    assert record["attributes"] == {"ApproximateReceiveCount": "1"}
    assert record["messageAttributes"]["k"]["stringValue"] == "v"
    assert record["md5OfBody"] == "99914b932bd37a50b983c5e7c90ae93b"


def test_partial_batch_response_keeps_only_the_failed_messages() -> None:
    ids = ["a", "b", "c"]

    assert failed_message_ids({"batchItemFailures": []}, ids) == set()
    assert failed_message_ids(None, ids) == set()
    assert failed_message_ids({"batchItemFailures": [{"itemIdentifier": "b"}]}, ids) == {"b"}
    # An identifier that is not in the batch fails the whole batch, as Lambda does.
    assert failed_message_ids({"batchItemFailures": [{"itemIdentifier": "x"}]}, ids) == set(ids)


def test_rate_schedules_become_periods_and_cron_is_not_run() -> None:
    assert schedule_period_s("rate(1 minute)") == 60
    assert schedule_period_s("rate(5 minutes)") == 300
    assert schedule_period_s("rate(2 hours)") == 7200
    assert schedule_period_s("cron(0 3 * * ? *)") is None


def test_relay_prepared_without_the_api_has_a_valid_config(tmp_path: Path) -> None:
    # Given the stack's CA and broker endpoint
    ca = LocalCA(tmp_path / "pki")
    broker = BrokerEndpoint("127.0.0.1", 8883, ca.cert_path)
    relay = LocalRelay("dc01", tmp_path / "relays" / "dc01", RelayOptions(heartbeat_s=5))

    # When the relay is prepared directly from the CA (the fallback when enrollment fails)
    relay.prepare(ca, broker, "-----BEGIN PUBLIC KEY-----\n")

    # Then its config is valid relay settings, with a certificate the CA issued for dc01
    settings = RelaySettings.model_validate(relay.settings_document())
    assert settings.host == "dc01"
    assert settings.heartbeat_s == 5
    assert settings.broker.port == 8883
    assert "/bin/echo" in settings.exec.allowed_commands
    cert = x509.load_pem_x509_certificate(settings.broker.cert_file.read_bytes())
    assert cert.subject.rfc4514_string() == "CN=dc01"
    assert stat.S_IMODE(settings.broker.key_file.stat().st_mode) == 0o600


def test_missing_samba_provisioning_data_names_its_package_and_the_way_out(
    tmp_path: Path,
) -> None:
    # Given samba-tool installed but not its provisioning data (samba only recommends it)
    requirements = (
        Requirement(sys.executable, "samba"),
        Requirement(str(tmp_path / "setup" / "provision.ldif"), "samba-ad-provision"),
    )

    # When the stack checks the demo domain's requirements
    with pytest.raises(MissingPackages) as missing:
        require("demo Samba AD domain", requirements, "--no-samba")

    # Then it names only the missing package, how to install it, and how to leave it out
    assert missing.value.packages == ["samba-ad-provision"]
    message = str(missing.value)
    assert "make system-deps" in message
    assert "sudo apt-get install -y samba-ad-provision" in message
    assert "hostrelay-local run --no-samba" in message
