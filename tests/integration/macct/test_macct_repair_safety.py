"""macct.repair refuses untrusted captures, serializes per computer, reports partial writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from hostrelay_relay.handlers.macct_capture import MacctCaptureHandler
from hostrelay_relay.handlers.macct_repair import MacctRepairHandler
from hostrelay_relay.macct.capture_store import CaptureStore
from hostrelay_relay.macct.computer_locks import computer_locks
from hostrelay_relay.macct.repair import ComputerOutcome, RepairTarget, apply_repair
from hostrelay_relay.macct.run_limits import RunLimits
from hostrelay_relay.macct.samdb import SamDb
from hostrelay_relay.settings import RelaySettings
from tests.integration.macct.conftest import Domain, RunJob

NOBODY = 65534


def _capture(domain: Domain, run_job: RunJob, image: str = "win10") -> str:
    (source,) = domain.computers(1)
    assert run_job(MacctCaptureHandler, {"image": image, "computer": source}).error is None
    return source


def test_tampered_capture_is_refused_and_nothing_changes(
    domain: Domain, settings: RelaySettings, run_job: RunJob
) -> None:
    # Given a captured image whose stored secret was altered on disk
    _capture(domain, run_job)
    path = CaptureStore(settings.state_dir).path_for("win10")
    document = json.loads(path.read_bytes())
    document["secrets"]["unicodePwd"] = "AAAAAAAAAAAAAAAAAAAAAA=="
    path.write_text(json.dumps(document))
    (name,) = domain.computers(1)
    before = domain.secrets(name)
    # When repair uses it
    run = run_job(MacctRepairHandler, {"image": "win10", "computers": [name]})
    # Then it refuses with capture_untrusted and the account keeps its secrets
    assert run.error is not None and run.error.code == "capture_untrusted"
    assert "HMAC" in run.error.message
    assert domain.secrets(name) == before


def test_capture_copied_to_another_image_name_is_refused(
    domain: Domain, settings: RelaySettings, run_job: RunJob
) -> None:
    # Given image A's capture file copied over as image B
    _capture(domain, run_job, image="image-a")
    store = CaptureStore(settings.state_dir)
    target = store.path_for("image-b")
    target.write_bytes(store.path_for("image-a").read_bytes())
    target.chmod(0o600)
    (name,) = domain.computers(1)
    # When repair uses image B
    run = run_job(MacctRepairHandler, {"image": "image-b", "computers": [name]})
    # Then it is refused
    assert run.error is not None and run.error.code == "capture_untrusted"


def test_capture_with_loose_mode_or_foreign_owner_is_refused(
    domain: Domain, settings: RelaySettings, run_job: RunJob
) -> None:
    # Given a captured image
    _capture(domain, run_job)
    store = CaptureStore(settings.state_dir)
    path = store.path_for("win10")
    (name,) = domain.computers(1)
    before = domain.secrets(name)
    problems: list[Callable[[], None]] = [
        lambda: path.chmod(0o644),  # readable by others
        lambda: os.chown(path, NOBODY, NOBODY),  # not root's
        lambda: store.images_dir.chmod(0o755),  # directory open to others
        lambda: store.key_file.chmod(0o640),  # key readable by the group
    ]
    for make_problem in problems:
        make_problem()
        # When repair runs
        run = run_job(MacctRepairHandler, {"image": "win10", "computers": [name]})
        # Then it refuses and changes nothing
        assert run.error is not None and run.error.code == "capture_untrusted"
        assert domain.secrets(name) == before
        # (restore the sane state for the next problem)
        os.chown(path, 0, 0)
        path.chmod(0o600)
        store.images_dir.chmod(0o700)
        store.key_file.chmod(0o600)


def test_capture_replaced_by_a_symlink_is_refused(
    domain: Domain, settings: RelaySettings, run_job: RunJob, tmp_path: Path
) -> None:
    # Given the capture file replaced by a symlink to a private copy of itself
    _capture(domain, run_job)
    path = CaptureStore(settings.state_dir).path_for("win10")
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_bytes(path.read_bytes())
    elsewhere.chmod(0o600)
    path.unlink()
    path.symlink_to(elsewhere)
    (name,) = domain.computers(1)
    # When repair runs, Then it refuses
    run = run_job(MacctRepairHandler, {"image": "win10", "computers": [name]})
    assert run.error is not None and run.error.code == "capture_untrusted"


def test_repair_waits_for_a_computer_locked_in_this_process(
    domain: Domain, settings: RelaySettings, run_job: RunJob
) -> None:
    # Given a captured image and a computer whose lock another job holds
    _capture(domain, run_job)
    (name,) = domain.computers(1)
    finished = threading.Event()
    runs = []
    with computer_locks(settings.state_dir, [name], RunLimits(time.monotonic() + 30)):
        # When a repair of that computer starts
        def repair() -> None:
            runs.append(run_job(MacctRepairHandler, {"image": "win10", "computers": [name]}))
            finished.set()

        worker = threading.Thread(target=repair)
        worker.start()
        # Then it does not finish while the lock is held
        assert not finished.wait(1.0)
    # And it completes once the lock is released
    worker.join(30)
    assert runs[0].error is None
    assert runs[0].statuses() == {name: "updated"}


def test_repair_times_out_on_a_computer_locked_by_another_process(
    domain: Domain, settings: RelaySettings, run_job: RunJob
) -> None:
    # Given a captured image and another process holding the lock of one computer
    _capture(domain, run_job)
    (name,) = domain.computers(1)
    before = domain.secrets(name)
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK, str(settings.state_dir), name],
        stdout=subprocess.PIPE,
        stdin=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"locked\n"
        # When a repair of that computer runs with a short timeout
        run = run_job(MacctRepairHandler, {"image": "win10", "computers": [name]}, timeout_s=1)
        # Then it times out without writing
        assert run.error is not None and run.error.outcome == "timed_out"
        assert domain.secrets(name) == before
    finally:
        holder.communicate(b"release\n", timeout=10)
    # And after the other process lets go, the repair succeeds
    run = run_job(MacctRepairHandler, {"image": "win10", "computers": [name]})
    assert run.error is None and run.statuses() == {name: "updated"}


_HOLD_LOCK = """
import sys, time
from pathlib import Path
from hostrelay_relay.macct.computer_locks import computer_locks
from hostrelay_relay.macct.run_limits import RunLimits
with computer_locks(Path(sys.argv[1]), [sys.argv[2]], RunLimits(time.monotonic() + 60)):
    print("locked", flush=True)
    sys.stdin.readline()
"""


def test_failed_write_is_reported_per_computer_after_rereading(
    domain: Domain, settings: RelaySettings, run_job: RunJob
) -> None:
    # Given a captured image and three computers looked up for repair,
    # one of which is deleted before the write (so ldbmodify fails on it)
    _capture(domain, run_job)
    captured = CaptureStore(settings.state_dir).load("win10").secrets
    computers = domain.computers(3)
    names = list(computers)
    domain.delete(computers[names[1]])
    targets = [RepairTarget(name, dn) for name, dn in computers.items()]
    outcomes: dict[str, ComputerOutcome] = {}
    # When the write phase runs
    samdb = SamDb(settings.macct)
    limits = RunLimits(time.monotonic() + 60)
    base_dn = samdb.domain_dn(limits)
    apply_repair(
        samdb, targets, captured=captured, base_dn=base_dn, limits=limits, outcomes=outcomes
    )
    # Then the deleted one is failed with ldbmodify's reason and the others are updated
    assert outcomes[names[1]].status == "failed"
    assert "No such" in (outcomes[names[1]].reason or "")
    assert outcomes[names[0]].status == outcomes[names[2]].status == "updated"
    # And the directory agrees
    for name in (names[0], names[2]):
        assert domain.secrets(name).unicode_pwd == captured.unicode_pwd
