"""The contract package stays installable anywhere the relay runs: stdlib and pydantic only."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import hostrelay_contract

PACKAGE = Path(hostrelay_contract.__file__).parent
# pydantic_core is pydantic's own core, installed with it (its error and schema types).
ALLOWED = {"pydantic", "pydantic_core", "hostrelay_contract", "__future__"}


def imported_top_levels(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_every_module_imports_only_the_standard_library_and_pydantic() -> None:
    for path in sorted(PACKAGE.rglob("*.py")):
        foreign = imported_top_levels(path) - ALLOWED - set(sys.stdlib_module_names)
        assert not foreign, f"{path.name} imports {sorted(foreign)}"


def test_importing_the_registry_builds_no_model() -> None:
    # Given a fresh interpreter, when the job type registry and envelope are imported,
    # then no job type's models are loaded (a relay pays only for the types it meets)
    script = (
        "import sys, hostrelay_contract.job_types, hostrelay_contract.envelope;"
        "print(sorted(m for m in sys.modules if m.startswith('hostrelay_contract.jobs.')))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == "[]"
