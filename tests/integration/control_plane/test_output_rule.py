"""OutputTopicRule: relay output goes from IoT straight into the output table (moto)."""

from __future__ import annotations

import base64
import dataclasses
import json

from hostrelay.dal.output_store import OutputStore
from hostrelay.dal.tables import OutputBatchRecord, bind_table
from hostrelay_local.iot_bridge import AwsClients, DynamoDbPutAction, topic_rules
from hostrelay_local.iot_sql import RuleInput
from tests.conftest import AwsStack


def _output_event(job_id: str, seq: int, data: bytes) -> bytes:
    return json.dumps(
        {"v": 1, "kind": "output", "event_id": f"e{seq}", "job_id": job_id, "attempt": 1,
         "first_seq": seq, "last_seq": seq, "encoding": "identity",
         "chunks": [{"seq": seq, "stream": "stdout", "size": len(data)}],
         "data": base64.b64encode(data).decode()}
    ).encode()  # fmt: skip


def test_output_rule_writes_items_the_output_store_reads(aws: AwsStack) -> None:
    # Given the template's output rule, run as the local bridge runs it
    (rule,) = [r for r in topic_rules(aws.template, aws.resources) if r.name == "OutputTopicRule"]
    clients = AwsClients(sqs=aws.client("sqs"), dynamodb=aws.client("dynamodb"))
    # When dc01 publishes two output events of a job
    for seq, data in enumerate([b"hello ", b"world\n"]):
        rule.run(clients, RuleInput("hostrelay/dc01/events", _output_event("J1", seq, data)))
    # Then the store reads them back under dc01, and nothing under another host
    bind_table(OutputBatchRecord, aws.ref("OutputTable"), region="us-east-1")
    store = OutputStore()
    assert [(c.seq, c.data) for c in store.chunks("dc01", "J1", 1)] == [
        (0, b"hello "),
        (1, b"world\n"),
    ]
    assert store.chunks("dc02", "J1", 1) == []
    # and each item expires after 7 days, as the store's own writes do
    item = aws.client("dynamodb").scan(TableName=aws.ref("OutputTable"))["Items"][0]
    assert item["host"] == {"S": "dc01"}
    assert int(item["expires_at"]["N"]) > 0


def test_output_that_cannot_be_written_goes_to_the_error_queue(aws: AwsStack) -> None:
    # Given the output rule pointed at a table that does not exist
    (rule,) = [r for r in topic_rules(aws.template, aws.resources) if r.name == "OutputTopicRule"]
    broken = dataclasses.replace(rule, action=DynamoDbPutAction("no-such-table"))
    clients = AwsClients(sqs=aws.client("sqs"), dynamodb=aws.client("dynamodb"))
    payload = _output_event("J1", 0, b"lost?\n")
    # When an output event comes
    broken.run(clients, RuleInput("hostrelay/dc01/events", payload))
    # Then the rule's ErrorAction puts the original message, and why, on the dead-letter queue
    sqs = aws.client("sqs")
    got = sqs.receive_message(QueueUrl=aws.ref("ResultsDeadLetterQueue"))["Messages"]
    failure = json.loads(got[0]["Body"])
    assert failure["ruleName"] == "OutputTopicRule"
    assert failure["topic"] == "hostrelay/dc01/events"
    assert base64.b64decode(failure["base64OriginalPayload"]) == payload
    assert failure["failures"][0]["failedResource"] == "no-such-table"


def test_output_rule_role_may_only_put_into_the_output_table(aws: AwsStack) -> None:
    # The role IoT assumes for the rule: PutItem on one table, and its error queue
    role = aws.template.resources["OutputRuleRole"]["Properties"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "iot.amazonaws.com"
    }
    statements = [s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]]
    granted = {(s["Action"], s["Resource"].tag, s["Resource"].value) for s in statements}
    assert granted == {
        ("dynamodb:PutItem", "GetAtt", "OutputTable.Arn"),
        ("sqs:SendMessage", "GetAtt", "ResultsDeadLetterQueue.Arn"),
    }
    assert all(s["Effect"] == "Allow" for s in statements)


def test_a_result_stops_waiting_for_output_on_its_queues_last_delivery(aws: AwsStack) -> None:
    from hostrelay.logic.event_batch import RESULT_DELIVERIES

    queue = aws.template.resources["ResultsQueue"]["Properties"]
    assert queue["RedrivePolicy"]["maxReceiveCount"] == RESULT_DELIVERIES
