"""The demo Samba domain of `make run` survives an interrupted start: the next one redoes it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hostrelay_local.samba_domain import (
    DEMO_COMPUTERS,
    DOMAIN_MARKER,
    SambaDomainError,
    ensure_demo_domain,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

_PROVISION = (
    "import sys; from pathlib import Path; "
    "from hostrelay_local.samba_domain import ensure_demo_domain; "
    "ensure_demo_domain(Path(sys.argv[1]))"
)


def _computer_names(sam_ldb: Path) -> set[str]:
    out = subprocess.run(
        ["ldbsearch", f"--url={sam_ldb}", "(objectClass=computer)", "sAMAccountName"],
        capture_output=True, check=True, text=True,
    ).stdout  # fmt: skip
    return {line.split(": ", 1)[1] for line in out.splitlines() if line.startswith("sAMAccount")}


def test_a_provisioning_killed_half_way_is_redone_by_the_next_start(tmp_path: Path) -> None:
    # Given `make run` killed (its whole process group, SIGKILL) while provisioning the domain
    target = tmp_path / "samba" / "dc01"
    child = subprocess.Popen(
        [sys.executable, "-c", _PROVISION, str(tmp_path)], start_new_session=True
    )
    deadline = time.monotonic() + 120
    while not (target / "private" / "sam.ldb").exists() and child.poll() is None:
        assert time.monotonic() < deadline, "provisioning never wrote sam.ldb"
        time.sleep(0.05)
    os.killpg(child.pid, signal.SIGKILL)
    child.wait()
    assert target.is_dir() and not (target / DOMAIN_MARKER).exists(), "not killed half-way"

    # When the next start ensures the demo domain
    domain = ensure_demo_domain(tmp_path)

    # Then it is complete: marked, with the demo computers, and reused from then on
    assert (target / DOMAIN_MARKER).is_file()
    assert _computer_names(domain.sam_ldb) >= {f"{name}$" for name in DEMO_COMPUTERS}
    assert ensure_demo_domain(tmp_path).sam_ldb == domain.sam_ldb


def test_a_directory_that_is_not_a_half_made_domain_is_never_removed(tmp_path: Path) -> None:
    # Given the domain's directory holds a file no provisioning makes
    target = tmp_path / "samba" / "dc01"
    target.mkdir(parents=True)
    (target / "notes.txt").write_text("mine")

    # When the demo domain is ensured, Then it is refused and the file is still there
    with pytest.raises(SambaDomainError, match="remove it and retry"):
        ensure_demo_domain(tmp_path)
    assert (target / "notes.txt").read_text() == "mine"
