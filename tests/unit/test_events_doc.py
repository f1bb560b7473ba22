"""docs/events.md names exactly the fields each state-change event's detail carries."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from hostrelay.domain.runs import RunState
from hostrelay.domain.state_changes import JobStateChange, RunStateChange

DOC = Path(__file__).resolve().parents[2] / "docs" / "events.md"


def _documented_fields(heading: str) -> set[str]:
    """The backquoted names in the first column of the table under `## <heading>`."""
    section = DOC.read_text().split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            names.update(re.findall(r"`([a-z_]+)`", line.split("|")[1]))
    return names


@pytest.mark.parametrize(
    ("heading", "model"),
    [("`Job State Change` detail", JobStateChange), ("`Run State Change` detail", RunStateChange)],
)
def test_each_detail_table_names_every_field_of_its_model(
    heading: str, model: type[BaseModel]
) -> None:
    # Given the detail table docs/events.md shows operators
    # Then it names every field the control plane puts on the bus, and no other
    assert _documented_fields(heading) == set(model.model_fields)


def test_the_run_states_documented_are_the_terminal_run_states() -> None:
    # Given the state row of the Run State Change table
    section = DOC.read_text().split("## `Run State Change` detail\n", 1)[1]
    row = next(line for line in section.splitlines() if line.startswith("| `state` |"))
    # Then it lists every terminal run state
    assert set(re.findall(r"`([A-Z_]+)`", row)) == {s.value for s in RunState if s.terminal}
