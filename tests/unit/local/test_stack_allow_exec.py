"""`hostrelay-local run --allow-exec` refuses command launchers before starting anything."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_the_local_stack_refuses_to_allow_a_launcher_before_starting(tmp_path: Path) -> None:
    """Given `hostrelay-local run --allow-exec /usr/bin/env`, then it exits 2 at once saying
    why, and creates no state."""
    state_dir = tmp_path / "state"
    command = [sys.executable, "-m", "hostrelay_local.stack", "run", "--allow-exec", "/usr/bin/env"]
    environment = {**os.environ, "HOSTRELAY_STATE_DIR": str(state_dir), "HOSTRELAY_PORT": "0"}

    done = subprocess.run(
        command, check=False, capture_output=True, text=True, env=environment, timeout=60
    )

    assert done.returncode == 2
    assert "--allow-exec /usr/bin/env is a command launcher" in done.stderr
    assert not state_dir.exists()
