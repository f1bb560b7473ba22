"""The scripts behind the pasted command: a refusal exits 1 and touches nothing."""

from __future__ import annotations

import shlex
import subprocess
from importlib import resources
from pathlib import Path
from string import Template

import pytest

from hostrelay.domain.errors import Forbidden, InvalidRequest
from hostrelay.logic.enrollment import _refusal, check_csr, check_host_name
from tests.integration.enrollment.conftest import HostKey


def run_script(script: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "HOSTRELAY_PREFIX": str(tmp_path / "opt"),
        "HOSTRELAY_CONFIG_DIR": str(tmp_path / "etc"),
        "HOSTRELAY_STATE_DIR": str(tmp_path / "var"),
    }
    return subprocess.run(
        ["bash"], input=script, capture_output=True, text=True, env=env, timeout=30, check=False
    )


def test_refusal_script_prints_the_reason_exits_1_and_changes_nothing(tmp_path: Path) -> None:
    # Given the script served for a used link
    script = _refusal("this enrollment link was already used; nothing was changed")

    # When it is piped into bash
    done = run_script(script, tmp_path)

    # Then it fails with the message, and nothing was created
    assert done.returncode == 1
    assert "hostrelay: this enrollment link was already used" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_refusal_message_cannot_break_out_of_the_script(tmp_path: Path) -> None:
    done = run_script(_refusal("x'; touch pwned; echo '"), tmp_path)
    assert done.returncode == 1
    assert not Path("pwned").exists() and list(tmp_path.iterdir()) == []


def test_enroll_script_quotes_every_value() -> None:
    template = Template(resources.files("hostrelay.bootstrap").joinpath("enroll.sh").read_text())
    script = template.substitute(
        host=shlex.quote("web01"),
        url=shlex.quote("https://api.example.com"),
        token=shlex.quote("hre_x"),
        relay_package=shlex.quote("/path with space/relay"),
        valid_until="2030-01-01 00:00:00",
    )
    assert "RELAY_PACKAGE='/path with space/relay'" in script
    done = subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True, check=False)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("name", ["web01", "a", "dc-01", "x" * 63])
def test_dns_label_host_names_are_accepted(name: str) -> None:
    assert check_host_name(name) == name


@pytest.mark.parametrize("name", ["Web01", "-a", "a-", "a.b", "a_b", "", "x" * 64, "cloud"])
def test_other_host_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidRequest):
        check_host_name(name)


def test_csr_must_name_exactly_the_enrolled_host() -> None:
    key = HostKey.new()
    check_csr(key.csr("web01"), "web01")
    with pytest.raises(Forbidden, match="CN=web01"):
        check_csr(key.csr("web02"), "web01")
    with pytest.raises(InvalidRequest, match="not a PEM"):
        check_csr("-----BEGIN CERTIFICATE REQUEST-----\ngarbage", "web01")
