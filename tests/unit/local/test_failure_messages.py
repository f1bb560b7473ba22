"""A long start-up failure is shortened in the middle: its reason and its log tail both stay."""

from __future__ import annotations

from hostrelay_local.stack import _head_and_tail


def test_a_short_message_is_kept_whole() -> None:
    assert _head_and_tail("worker 1 failed: no such host") == "worker 1 failed: no such host"


def test_a_long_message_keeps_its_reason_and_its_log_tail() -> None:
    reason = "fleet worker 2 failed: enrollment refused\n"
    log = "".join(f'{{"line": {n}}}\n' for n in range(500))
    shortened = _head_and_tail(reason + log)
    assert shortened.startswith(reason)
    assert shortened.endswith('{"line": 499}\n')
    assert " […] " in shortened
    assert len(shortened) <= 500 + 1000 + len(" […] ")
