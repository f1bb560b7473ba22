"""`doctor_checks` and handler `enabled()` on a real DC domain and on a host without one."""

from __future__ import annotations

from pathlib import Path

from hostrelay_relay.handlers.macct_repair import MacctRepairHandler
from hostrelay_relay.macct.doctor import doctor_checks
from hostrelay_relay.settings import MacctSettings, RelaySettings


def test_doctor_passes_on_a_dc(settings: RelaySettings) -> None:
    # Given settings pointing at a provisioned domain, When the checks run
    checks = doctor_checks(settings)
    # Then every check passes and the handler is enabled
    assert [name for name, ok, _ in checks if not ok] == []
    assert {name for name, _, _ in checks} >= {"macct.sam_ldb", "macct.ldbmodify", "macct.root"}
    assert MacctRepairHandler(settings).enabled() is None


def test_doctor_and_enabled_explain_a_missing_sam_ldb(tmp_path: Path) -> None:
    # Given a host without sam.ldb
    settings = RelaySettings(
        host="agent1",
        state_dir=tmp_path,
        macct=MacctSettings(sam_ldb=tmp_path / "missing" / "sam.ldb"),
    )
    # When the checks run, Then sam.ldb fails, and the handler says why it is disabled
    failed = {name: detail for name, ok, detail in doctor_checks(settings) if not ok}
    assert "macct.sam_ldb" in failed
    reason = MacctRepairHandler(settings).enabled()
    assert reason is not None and "sam.ldb not found" in reason
