"""The in-process benches still run end to end (at a tiny size): a pipeline change once left
bench/run_orchestration.py raising "nothing moves" for every scenario, unnoticed until its
figures were wanted. Figures are not checked here (bench/ prints them; timing is not tested)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    ("script", "args", "says"),
    [
        ("run_orchestration.py", ["--hosts", "3", "--windows", "2"], "run window 2"),
        ("cost_per_job.py", ["--jobs", "2", "--warmup", "1"], "total AWS requests per job"),
    ],
)
def test_bench_runs_to_its_figures(script: str, args: list[str], says: str) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "bench")])}
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-3000:]
    assert says in done.stdout
