"""The reusable demo/test domain helper: provisioned once, reused after, half-made ones redone."""

from __future__ import annotations

from pathlib import Path

import pytest

from hostrelay_local.samba_domain import SambaDomain, SambaDomainError, ensure_domain


def test_an_existing_domain_is_reused(samba_domain: SambaDomain) -> None:
    # Given the session's provisioned domain, When ensured again, Then it is reused as is
    again, created = ensure_domain(samba_domain.target_dir)
    assert not created
    assert (again.realm, again.netbios_domain, again.dc_name) == ("MACCT.TEST", "MACCT", "DC1")
    assert again.sam_ldb == samba_domain.sam_ldb
    assert again.domain_dn == "DC=macct,DC=test"


def test_a_half_made_domain_directory_with_foreign_files_is_refused(tmp_path: Path) -> None:
    # Given a directory with leftovers of a failed provision (no completion marker) and a
    # file no provisioning makes
    (tmp_path / "private").mkdir()
    (tmp_path / "notes.txt").write_text("mine")
    # When ensured, Then it is refused rather than reused or removed
    with pytest.raises(SambaDomainError, match="incomplete"):
        ensure_domain(tmp_path)
    assert (tmp_path / "notes.txt").exists()
