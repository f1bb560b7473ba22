"""The local IoT rules SQL evaluator: the template's two topic rules and the language beneath."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from hostrelay_local.iot_bridge import AwsClients, SqsAction, TopicRule
from hostrelay_local.iot_sql import IotSqlError, RuleInput, parse_rule

RAW_EVENTS_RULE = (
    "SELECT encode(*, 'base64') AS payload, topic() AS topic FROM 'hostrelay/+/events' "
    "WHERE isUndefined(last_seq) OR kind <> 'output'"
)
OUTPUT_CHUNKS_RULE = (
    "SELECT concat(topic(2), '/', job_id, '#', attempt) AS job_attempt, last_seq AS seq, "
    "chunks, encoding, data, topic(2) AS host, "
    "floor(timestamp() / 1000) + 604800 AS expires_at "
    "FROM 'hostrelay/+/events' WHERE kind = 'output' AND NOT isUndefined(last_seq)"
)
TOPIC = "hostrelay/dc01/events"
NOW_MS = 1_700_000_000_999
WEEK_S = 604800


def event(**fields: Any) -> bytes:
    return json.dumps(fields).encode()


def output_event(**overrides: Any) -> bytes:
    fields: dict[str, Any] = {
        "kind": "output",
        "job_id": "J1",
        "attempt": 2,
        "last_seq": 7,
        "chunks": [{"stream": "stdout", "n": 1}],
        "encoding": "utf-8",
        "data": "hello\n",
    }
    fields.update(overrides)
    return event(**{key: value for key, value in fields.items() if value is not None})


def select(expression: str, payload: bytes = b"{}") -> Any:
    """The value of one expression, through a one-item SELECT (missing key: it was Undefined)."""
    output = parse_rule(f"SELECT {expression} AS v FROM 't'").evaluate("t", payload)
    assert output is not None
    return output.get("v", "<undefined>")


def where(condition: str, payload: bytes = b"{}") -> bool:
    return parse_rule(f"SELECT * FROM 't' WHERE {condition}").evaluate("t", payload) is not None


# --- the raw-events rule --------------------------------------------------------------------


def test_raw_events_rule_skips_output_chunks_carrying_a_sequence() -> None:
    # Given the raw-events rule, When an output event with last_seq arrives, Then it is skipped
    assert parse_rule(RAW_EVENTS_RULE).evaluate(TOPIC, output_event()) is None


def test_raw_events_rule_forwards_output_without_sequence_as_exact_base64_bytes() -> None:
    # Given an output event from a relay that does not number its chunks
    payload = output_event(last_seq=None)

    # When the raw-events rule runs on it
    output = parse_rule(RAW_EVENTS_RULE).evaluate(TOPIC, payload)

    # Then it carries the exact payload bytes and the topic they came on
    assert output is not None
    assert set(output) == {"payload", "topic"}
    assert base64.b64decode(output["payload"]) == payload
    assert output["topic"] == TOPIC


def test_raw_events_rule_forwards_results() -> None:
    payload = event(kind="result", job_id="J1", attempt=1, last_seq=3, status="succeeded")
    output = parse_rule(RAW_EVENTS_RULE).evaluate(TOPIC, payload)
    assert output == {"payload": base64.b64encode(payload).decode(), "topic": TOPIC}


def test_raw_events_rule_forwards_a_payload_that_is_not_json() -> None:
    # Given bytes that are not JSON, last_seq is Undefined, When the rule runs
    payload = b"\xff\x00not json"
    output = parse_rule(RAW_EVENTS_RULE).evaluate(TOPIC, payload)

    # Then it passes and the bytes come through untouched
    assert output is not None and base64.b64decode(output["payload"]) == payload


# --- the output-chunks rule -----------------------------------------------------------------


def test_output_chunks_rule_builds_the_row_for_a_sequenced_output_event() -> None:
    # Given an output event for job J1 attempt 2 from host dc01
    # When the output-chunks rule runs at a known time
    output = parse_rule(OUTPUT_CHUNKS_RULE).evaluate(TOPIC, output_event(), now_ms=NOW_MS)

    # Then the row is keyed by host/job#attempt and expires a week later, in epoch seconds
    assert output == {
        "job_attempt": "dc01/J1#2",
        "seq": 7,
        "chunks": [{"stream": "stdout", "n": 1}],
        "encoding": "utf-8",
        "data": "hello\n",
        "host": "dc01",
        "expires_at": NOW_MS // 1000 + WEEK_S,
    }
    assert isinstance(output["expires_at"], int)


def test_output_chunks_rule_skips_output_without_sequence_and_other_kinds() -> None:
    rule = parse_rule(OUTPUT_CHUNKS_RULE)
    assert rule.evaluate(TOPIC, output_event(last_seq=None)) is None
    assert rule.evaluate(TOPIC, event(kind="result", job_id="J1", attempt=2, last_seq=9)) is None
    assert rule.evaluate(TOPIC, b"not json") is None


def test_output_chunks_rule_leaves_out_a_missing_field() -> None:
    # Given an output event without `encoding`, When the rule runs
    output = parse_rule(OUTPUT_CHUNKS_RULE).evaluate(TOPIC, output_event(encoding=None))

    # Then the key is absent rather than null, and the rest is there
    assert output is not None
    assert "encoding" not in output
    assert output["data"] == "hello\n"


def test_output_chunks_rule_without_now_ms_uses_the_clock() -> None:
    output = parse_rule(OUTPUT_CHUNKS_RULE).evaluate(TOPIC, output_event())
    assert output is not None and output["expires_at"] > NOW_MS // 1000 + WEEK_S


def test_keywords_are_case_insensitive_and_whitespace_is_free() -> None:
    rule = parse_rule(
        "select\n  concat(topic(2),'/',job_id , '#',attempt)as job_attempt\n"
        "from   'hostrelay/+/events'\twhere kind='output' and not isUndefined( last_seq )"
    )
    assert rule.topic_filter == "hostrelay/+/events"
    assert rule.evaluate(TOPIC, output_event()) == {"job_attempt": "dc01/J1#2"}


# --- the language ---------------------------------------------------------------------------


def test_multiplication_binds_tighter_than_addition() -> None:
    assert select("1 + 2 * 3") == 7
    assert select("10 - 4 - 3") == 3


def test_parentheses_override_precedence() -> None:
    assert select("(1 + 2) * 3") == 9


def test_division_of_integers_is_not_truncated_until_floor() -> None:
    assert select("7 / 2") == 3.5
    assert select("floor(7 / 2)") == 3
    assert select("1 / 0") == "<undefined>"


def test_not_equal_is_spelled_both_ways() -> None:
    payload = event(kind="result")
    assert where("kind <> 'output'", payload)
    assert where("kind != 'output'", payload)
    assert not where("kind <> 'result'", payload)
    assert not where("kind != 'result'", payload)


def test_string_and_number_never_compare_true() -> None:
    payload = event(attempt="2")
    assert not where("attempt = 2", payload)
    assert not where("attempt <> 2", payload)
    assert not where("NOT (attempt = 2)", payload)  # NOT Undefined is Undefined, not true
    assert where("attempt = '2'", payload)


def test_arithmetic_on_mismatched_types_is_undefined() -> None:
    assert select("'a' + 1") == "<undefined>"
    assert select("missing + 1") == "<undefined>"


def test_not_binds_looser_than_comparison_and_tighter_than_and() -> None:
    assert where("NOT 1 = 2 AND 2 = 2")
    assert not where("NOT 2 = 2 AND false")


def test_and_or_with_undefined_follow_three_valued_logic() -> None:
    assert where("true OR missing")
    assert not where("false AND missing")
    assert where("NOT (false AND missing)")
    assert not where("true AND missing")
    assert not where("NOT (true AND missing)")
    assert not where("false OR missing")


def test_literals() -> None:
    assert select("'it''s'") == "it's"
    assert select("1.5 * 2") == 3.0
    assert select("NULL") is None
    assert select("TRUE") is True
    assert select("-3 + 1") == -2


def test_nested_fields_and_bare_names() -> None:
    payload = event(job={"id": "J9", "host": {"name": "dc01"}}, kind="output")
    output = parse_rule("SELECT kind, job.host.name, job.nope.x AS gone FROM 't'").evaluate(
        "t", payload
    )
    assert output == {"kind": "output", "name": "dc01"}


def test_star_selects_every_top_level_field() -> None:
    payload = event(kind="output", n=1)
    output = parse_rule("SELECT *, topic(1) AS first FROM 'a/b'").evaluate("a/b", payload)
    assert output == {"kind": "output", "n": 1, "first": "a"}


def test_topic_level_out_of_range_is_left_out() -> None:
    assert select("topic(3)") == "<undefined>"


def test_concat_renders_values_and_is_undefined_with_a_missing_argument() -> None:
    payload = event(n=2, ok=True, ratio=0.5)
    assert select("concat('n=', n, ',', ok, ',', ratio)", payload) == "n=2,true,0.5"
    assert select("concat('n=', missing)", payload) == "<undefined>"
    assert select("concat(1, 2)") == "<undefined>"  # no string argument


def test_a_json_payload_that_is_not_an_object_has_no_fields() -> None:
    assert where("isUndefined(kind)", b"[1, 2]")
    assert parse_rule("SELECT * FROM 't'").evaluate("t", b'"text"') == {}


# --- topic filters --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("topic_filter", "topic", "matches"),
    [
        ("hostrelay/+/events", "hostrelay/dc01/events", True),
        ("hostrelay/+/events", "hostrelay/dc01/jobs", False),
        ("hostrelay/+/events", "hostrelay/dc01/events/extra", False),
        ("hostrelay/+/events", "hostrelay/events", False),
        ("hostrelay/#", "hostrelay/dc01/events", True),
        ("hostrelay/#", "hostrelay", True),
        ("hostrelay/#", "other/dc01", False),
        ("hostrelay/dc01/events", "hostrelay/dc01/events", True),
        ("hostrelay/dc01/events", "hostrelay/dc02/events", False),
        ("#", "$aws/things/x", False),
    ],
)
def test_a_rule_acts_only_on_the_topics_its_filter_takes(
    topic_filter: str, topic: str, matches: bool
) -> None:
    # Given a topic rule that sends what it selects to a queue
    sent: list[dict[str, object]] = []

    class RecordingSqs:
        def send_message(self, **message: object) -> None:
            sent.append(message)

    rule = TopicRule(
        name="rule", query=parse_rule(f"SELECT * FROM '{topic_filter}'"), action=SqsAction("q")
    )
    # When a message arrives on the topic
    rule.run(AwsClients(sqs=RecordingSqs(), dynamodb=None), RuleInput(topic, b'{"kind": "x"}'))
    # Then the rule acted exactly when its filter takes the topic
    assert rule.matches(topic) is matches
    assert len(sent) == (1 if matches else 0)


# --- what it refuses ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("SELECT upper(kind) AS k FROM 't'", "unknown function 'upper'"),
        ("SELECT encode(x, 'hex') AS p FROM 't'", "only encode(*, 'base64')"),
        ("SELECT encode(*, 'hex') AS p FROM 't'", "only encode(*, 'base64')"),
        ("SELECT kind WHERE kind = 'x'", "expected FROM at column 13, found 'WHERE'"),
        ("SELECT kind", "expected FROM at column 12, found end of statement"),
        ("SELECT kind FROM 't' WHERE a = 1 b", "expected end of statement at column 34"),
        ("SELECT kind FROM 't' garbage", "found 'garbage'"),
        ("SELECT kind FROM 't", "unterminated string at column 18"),
        ("SELECT kind FROM 't' WHERE a ~ 1", "character '~' at column 30"),
        ("SELECT 1 + 1 FROM 't'", "AS and an output name"),
        ("SELECT floor(1, 2) AS f FROM 't'", "floor() at column 8 takes 1 argument"),
        ("SELECT topic(0) AS t FROM 't'", "topic level number"),
        ("SELECT kind FROM 'a/#/b'", "invalid topic filter"),
        ("SELECT kind AS FROM FROM 't'", "expected an output name after AS"),
    ],
)
def test_unsupported_or_malformed_statements_are_refused(sql: str, message: str) -> None:
    with pytest.raises(IotSqlError) as refused:
        parse_rule(sql)
    assert message in str(refused.value)
