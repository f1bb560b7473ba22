"""`hostrelay-local run --fleet N`: names, tags and how the relays are spread over processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hostrelay_local.fleet import FleetOptions, LocalFleet, fleet_host_names, parse_tag


def test_fleet_hosts_are_numbered_names_that_sort_in_order() -> None:
    assert fleet_host_names(3) == ["fleet-001", "fleet-002", "fleet-003"]
    names = fleet_host_names(1200)
    assert names[0] == "fleet-0001" and names == sorted(names) and len(set(names)) == 1200


def test_a_tag_is_key_equals_value() -> None:
    assert parse_tag("role=dc") == ("role", "dc")
    assert parse_tag("site=lab=2") == ("site", "lab=2")
    for bad in ("role", "=dc", "role=", ""):
        with pytest.raises(ValueError, match="key=value"):
            parse_tag(bad)


def test_relays_are_spread_fifty_to_a_process_unless_told(tmp_path: Path) -> None:
    # Given 200 relays, by default and in 8 processes
    default = LocalFleet(tmp_path, FleetOptions(size=200), "http://127.0.0.1:1")
    eight = LocalFleet(tmp_path, FleetOptions(size=200, processes=8), "http://127.0.0.1:1")

    # Then every host is in exactly one process, as evenly as the count allows
    for fleet, count in ((default, 4), (eight, 8)):
        shares = [process.hosts for process in fleet.processes]
        assert len(shares) == count
        assert sorted(host for share in shares for host in share) == fleet.hosts
        assert {len(share) for share in shares} == {200 // count}


def test_more_than_64_relays_in_one_process_is_refused_with_the_fix() -> None:
    with pytest.raises(ValueError, match="--fleet-processes 4"):
        FleetOptions(size=200, processes=3).process_count()
    assert FleetOptions(size=128, processes=2).process_count() == 2
    assert FleetOptions(size=3, processes=10).process_count() == 3  # no empty process


def test_the_stack_refuses_a_fleet_it_cannot_run_before_starting(tmp_path: Path) -> None:
    """Given `hostrelay-local run --fleet 100 --fleet-processes 1`, then it exits 2 at once
    saying why, and creates no state."""
    state_dir = tmp_path / "state"
    command = [sys.executable, "-m", "hostrelay_local.stack", "run", "--fleet", "100",
               "--fleet-processes", "1"]  # fmt: skip
    environment = {**os.environ, "HOSTRELAY_STATE_DIR": str(state_dir), "HOSTRELAY_PORT": "0"}

    done = subprocess.run(
        command, check=False, capture_output=True, text=True, env=environment, timeout=60
    )

    assert done.returncode == 2
    assert "more than 64 per process" in done.stderr
    assert not state_dir.exists()
