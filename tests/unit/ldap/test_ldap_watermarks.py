"""Change tracking never skips a change made while the previous run was reading."""

from __future__ import annotations

import datetime as dt

import pytest

from hostrelay_relay.directory.errors import DirectoryError
from hostrelay_relay.directory.flavors import ACTIVE_DIRECTORY, OPENLDAP
from hostrelay_relay.directory.state import SyncState
from hostrelay_relay.directory.watermarks import change_filter, later_timestamp, next_since

NOON = dt.datetime(2025, 3, 1, 12, 0, 0, tzinfo=dt.timezone.utc).timestamp()


def test_the_next_run_looks_back_over_the_time_this_run_spent_reading() -> None:
    # Given a run that started at noon, read for 2.5 s and saw changes up to 12:00:02
    since = next_since("20250301120002Z", None, NOON, read_s=2.5, skew_s=300)
    # Then the next run reads from 12:00:02 - 3 s - 1 s: a change it missed is not older
    assert since == "20250301115958Z"


def test_a_quiet_directory_does_not_make_every_run_reread_old_entries() -> None:
    # Given the newest change is from last year, the relay clock bounds the overlap instead
    since = next_since("20240101000000Z", None, NOON, read_s=1.0, skew_s=60)
    assert since == "20250301115900Z"


def test_the_watermark_never_moves_back() -> None:
    since = next_since(None, "20250301120500Z", NOON, read_s=1.0, skew_s=300)
    assert since == "20250301120500Z"


def test_change_filters_per_flavor() -> None:
    assert change_filter(OPENLDAP, SyncState("f", "openldap", "20250301115958Z")) == (
        "(modifyTimestamp>=20250301115958Z)"
    )
    assert change_filter(ACTIVE_DIRECTORY, SyncState("f", "ad", "4711")) == "(uSNChanged>=4712)"


def test_a_tampered_watermark_cannot_inject_into_the_filter() -> None:
    with pytest.raises(DirectoryError, match="not a timestamp"):
        change_filter(OPENLDAP, SyncState("f", "openldap", "0)(uid=*"))
    with pytest.raises(DirectoryError, match="not a USN"):
        change_filter(ACTIVE_DIRECTORY, SyncState("f", "ad", "1)(x=*"))


def test_the_newest_timestamp_is_kept_and_junk_is_ignored() -> None:
    assert later_timestamp(None, "20250101000000Z") == "20250101000000Z"
    assert later_timestamp("20250101000000Z", "20240101000000Z") == "20250101000000Z"
    assert later_timestamp("20250101000000Z", "9999junk") == "20250101000000Z"
