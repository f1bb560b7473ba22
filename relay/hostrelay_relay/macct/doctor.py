"""Health checks of this host for macct jobs, shown by the relay's `doctor` command."""

from __future__ import annotations

import os
import shutil

from hostrelay_relay.macct.capture_store import CaptureStore
from hostrelay_relay.settings import MacctSettings, RelaySettings

DoctorCheck = tuple[str, bool, str]


def disabled_reason(settings: MacctSettings) -> str | None:
    """Why macct jobs cannot run here (not a Samba AD DC, tools missing), or None."""
    if not settings.sam_ldb.is_file():
        return f"sam.ldb not found at {settings.sam_ldb}: this host is not a Samba AD DC"
    for tool in (settings.ldbsearch, settings.ldbmodify):
        if shutil.which(tool) is None:
            return f"{tool} not found on PATH (install ldb-tools)"
    return None


def doctor_checks(settings: RelaySettings) -> list[DoctorCheck]:
    """(name, ok, detail) for sam.ldb, the ldb tools, root, and the capture store."""
    macct = settings.macct
    sam_ldb = macct.sam_ldb
    checks: list[DoctorCheck] = []
    if not sam_ldb.is_file():
        checks.append(("macct.sam_ldb", False, f"{sam_ldb} does not exist"))
    elif not os.access(sam_ldb, os.R_OK | os.W_OK):
        checks.append(("macct.sam_ldb", False, f"{sam_ldb} is not readable and writable"))
    else:
        checks.append(("macct.sam_ldb", True, str(sam_ldb)))
    for label, tool in (("macct.ldbsearch", macct.ldbsearch), ("macct.ldbmodify", macct.ldbmodify)):
        found = shutil.which(tool)
        checks.append((label, found is not None, found or f"{tool} not found on PATH"))
    is_root = os.geteuid() == 0
    checks.append(("macct.root", is_root, "running as root" if is_root else "not running as root"))
    problems = CaptureStore(settings.state_dir).check_permissions()
    checks.append(("macct.capture_store", not problems, "; ".join(problems) or "private"))
    return checks
