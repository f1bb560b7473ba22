"""Event ids, reconnect backoff and log lines: small pieces users notice when they go wrong."""

from __future__ import annotations

import json
import logging
import re

from hostrelay_contract.events import new_event, new_ulid
from hostrelay_relay.log_format import JsonLogFormatter, KeyValueLogFormatter
from hostrelay_relay.mqtt_link import reconnect_delay


def test_event_ids_are_ulids_that_sort_by_time():
    # When ids are made at increasing times
    ids = [new_ulid(1_700_000_000.0 + step) for step in range(50)]

    # Then each is a 26-character Crockford ULID and they sort in time order
    assert all(re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{26}", event_id) for event_id in ids)
    assert sorted(ids) == ids
    assert len(set(new_ulid() for _ in range(1000))) == 1000


def test_event_has_the_common_fields():
    # When an event is made
    event = new_event("accepted", job_id="J1", attempt=2)

    # Then it carries version, kind, id, send time and its own fields
    assert event["v"] == 1
    assert event["kind"] == "accepted"
    assert event["job_id"] == "J1" and event["attempt"] == 2
    assert isinstance(event["sent_at"], float)


def test_reconnect_delay_grows_exponentially_with_jitter_up_to_the_cap():
    # When the broker keeps refusing
    delays = {
        failures: [reconnect_delay(failures, 0.5, 60.0) for _ in range(200)]
        for failures in (1, 2, 5, 20)
    }

    # Then each delay lies between half and all of min * 2**(n-1), capped at the max
    for failures, samples in delays.items():
        ceiling = min(60.0, 0.5 * 2 ** (failures - 1))
        assert all(ceiling / 2 <= d <= ceiling for d in samples)
        assert len(set(samples)) > 1, "jittered, so relays do not reconnect in lockstep"


def _record(**extra):
    record = logging.LogRecord(
        "hostrelay_relay.daemon", logging.WARNING, __file__, 1, "envelope rejected", None, None
    )
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_json_log_line_has_message_and_structured_fields():
    # When a record with extra fields is formatted as JSON
    line = JsonLogFormatter().format(_record(reason="expired", job_id="J1", attempt=1))

    # Then it is one JSON object with the fixed message and each field
    body = json.loads(line)
    assert body["msg"] == "envelope rejected"
    assert body["level"] == "warning"
    assert (body["reason"], body["job_id"], body["attempt"]) == ("expired", "J1", 1)


def test_key_value_log_line_quotes_values_with_spaces():
    # When a record is formatted as key=value
    line = KeyValueLogFormatter().format(_record(reason="expired", detail="two words"))

    # Then fields are readable and unambiguous
    assert 'msg="envelope rejected"' in line
    assert "reason=expired" in line
    assert 'detail="two words"' in line
