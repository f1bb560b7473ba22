"""The scripts behind the pasted command: a refusal exits 1 and touches nothing."""

from __future__ import annotations

import shlex
import shutil
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


@pytest.mark.parametrize(
    "name",
    ["Web01", "-a", "a-", "a.b", "a_b", "", "x" * 64, "cloud", "hostrelay-topic-rules-1"],
)
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


def render_enroll_script(python: str) -> str:
    template = Template(resources.files("hostrelay.bootstrap").joinpath("enroll.sh").read_text())
    script = template.substitute(
        host="web01",
        url="https://api.example.com",
        token="hre_x",
        relay_package="hostrelay-relay",
        valid_until="2030-01-01 00:00:00",
    )
    return f"export HOSTRELAY_PYTHON={shlex.quote(python)}\n{script}"


def fake_python(tmp_path: Path, *, version: str, has_venv: bool) -> Path:
    """A `python3` as a stock host has it: its version, with or without the venv module."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("id", "install", "rm"):
        found = shutil.which(tool)
        assert found is not None, tool
        (bin_dir / tool).symlink_to(found)
    major, minor = (int(part) for part in version.split("."))
    venv_check = "exit 0" if has_venv else "exit 1"
    python = bin_dir / "python3"
    python.write_text(
        "#!/bin/bash\n"
        'case "$*" in\n'
        f"  *version_info*) [ {minor} -ge 10 ] && [ {major} -eq 3 ] && exit 0; exit 1;;\n"
        f"  *ensurepip*) {venv_check};;\n"
        f"  -V) echo 'Python {version}';;\n"
        "  *) exit 1;;\n"
        "esac\n"
    )
    python.chmod(0o755)
    return bin_dir


def run_on_stock_host(tmp_path: Path, bin_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": str(bin_dir),
        "HOSTRELAY_PREFIX": str(tmp_path / "opt"),
        "HOSTRELAY_CONFIG_DIR": str(tmp_path / "etc"),
        "HOSTRELAY_STATE_DIR": str(tmp_path / "var"),
    }
    return subprocess.run(
        ["/bin/bash"],
        input=render_enroll_script(str(bin_dir / "python3")),
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )


def test_enroll_script_names_python3_venv_when_it_cannot_install_it(tmp_path: Path) -> None:
    # Given a host whose Python 3.10 lacks the venv module and that has no apt-get
    bin_dir = fake_python(tmp_path, version="3.10", has_venv=False)
    # When the enrollment script runs
    done = run_on_stock_host(tmp_path, bin_dir)
    # Then it states its requirements, names the package to install, and changes nothing
    assert done.returncode == 1
    assert "requirements: root, python3 >= 3.10 with venv, no compiler needed" in done.stderr
    assert "python3-venv" in done.stderr
    assert not (tmp_path / "opt").exists() and not (tmp_path / "etc").exists()


def test_enroll_script_refuses_a_python_older_than_3_10(tmp_path: Path) -> None:
    # Given a host with Python 3.9 only
    bin_dir = fake_python(tmp_path, version="3.9", has_venv=True)
    # When the enrollment script runs, Then it says what is needed and changes nothing
    done = run_on_stock_host(tmp_path, bin_dir)
    assert done.returncode == 1
    assert "python 3.10 or newer is required (Python 3.9 found)" in done.stderr
    assert not (tmp_path / "opt").exists()
