"""The README's first-job, macct and exec commands, run as written against `make run`'s stack."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hostrelay_local.stack_process import StackProcess
from hostrelay_local.template import REPO_ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

# The sections a newcomer follows right after `make run`, by their README headings.
SECTIONS = ("## A first job", "### Machine accounts after a LINBO restore", "### Isolated commands")
README_URL = "http://127.0.0.1:3000"


def readme_section_commands(readme: str, heading: str) -> list[str]:
    """The shell lines of the ```sh blocks under `heading`, up to the next heading."""
    start = readme.index(heading)
    rest = readme[start + len(heading) :]
    next_heading = re.search(r"^#{2,3} ", rest, flags=re.MULTILINE)
    section = rest[: next_heading.start()] if next_heading else rest
    blocks = re.findall(r"^```sh\n(.*?)^```", section, flags=re.MULTILINE | re.DOTALL)
    joined = [block.replace("\\\n", " ") for block in blocks]  # continuation lines
    return [line.strip() for block in joined for line in block.splitlines() if line.strip()]


class ReadmeShell:
    """Runs README lines as a user would in a second terminal in the checkout: `export` sets
    variables, `. .venv/bin/activate` puts the venv first on PATH, `hostrelay …` runs."""

    def __init__(self, workdir: Path, api_url: str) -> None:
        self.workdir = workdir
        self.api_url = api_url
        self.env = dict(os.environ)
        self.ran: list[tuple[str, subprocess.CompletedProcess[str]]] = []

    def run(self, line: str) -> None:
        words = shlex.split(line, comments=True)
        if words[:1] == ["export"]:
            for assignment in words[1:]:
                name, _, value = assignment.partition("=")
                # The README's stack listens on :3000; this one on a free port.
                self.env[name] = value.replace(README_URL, self.api_url)
        elif words == [".", ".venv/bin/activate"]:
            self.env["PATH"] = f"{Path(sys.executable).parent}:{self.env['PATH']}"
        elif words[:1] == ["hostrelay"]:
            program = shutil.which("hostrelay", path=self.env["PATH"])
            assert program, "the hostrelay CLI is not installed in the venv"
            done = subprocess.run(
                [program, *words[1:]],
                cwd=self.workdir, env=self.env, capture_output=True, text=True,
                timeout=300, check=False,
            )  # fmt: skip
            self.ran.append((line, done))


@pytest.fixture(scope="module")
def make_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, StackProcess]]:
    """Given `make run` in a checkout (its state in `<checkout>/.hostrelay`), on a free port."""
    checkout = tmp_path_factory.mktemp("checkout")
    with StackProcess(checkout / ".hostrelay", extra_args=["--no-directory"]) as stack:
        yield checkout, stack


@pytest.mark.parametrize("heading", SECTIONS)
def test_readme_commands_succeed_as_written(
    make_run: tuple[Path, StackProcess], heading: str
) -> None:
    checkout, stack = make_run
    readme = (REPO_ROOT / "README.md").read_text()
    # Given a second terminal in the checkout, set up as the first-job section says
    shell = ReadmeShell(checkout, stack.api_url)
    for line in readme_section_commands(readme, SECTIONS[0]):
        if not line.startswith("hostrelay "):
            shell.run(line)

    # When the section's hostrelay commands are run as written
    for line in readme_section_commands(readme, heading):
        if line.startswith("hostrelay "):
            shell.run(line)

    # Then each one exits 0 (and the section has some)
    assert shell.ran, f"no hostrelay commands under {heading!r}"
    failed = [
        f"{line}\n  exit {done.returncode}\n  {done.stdout[-800:]}\n  {done.stderr[-800:]}"
        for line, done in shell.ran
        if done.returncode != 0
    ]
    assert not failed, "\n".join(failed)
