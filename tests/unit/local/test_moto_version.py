"""The local stack patches moto internals only on the moto releases they were checked on."""

from __future__ import annotations

import importlib.metadata

import pytest

from hostrelay_local.moto_endpoint import UntestedMotoVersion, check_moto_version


def test_the_installed_moto_is_a_tested_release() -> None:
    # Given the locked dev environment, When the version is checked, Then it passes
    check_moto_version()
    assert importlib.metadata.version("moto").startswith("5.2.")


@pytest.mark.parametrize("version", ["5.1.9", "5.3.0", "6.0.0", "4.2.14"])
def test_an_untested_moto_is_refused_with_the_fix(version: str) -> None:
    # Given a moto release outside the tested range; When checked
    with pytest.raises(UntestedMotoVersion) as refused:
        check_moto_version(version)
    # Then the message names the version and the fix
    assert version in str(refused.value) and "make venv" in str(refused.value)
