"""docs/protocol.md describes the job types exactly as the contract's models define them."""

from __future__ import annotations

from pathlib import Path

from hostrelay_contract.job_types import JOB_TYPES
from hostrelay_contract.protocol_doc import BEGIN, END, generate

PROTOCOL_MD = Path(__file__).resolve().parents[3] / "docs" / "protocol.md"


def test_the_checked_in_job_types_section_is_the_generated_one() -> None:
    # Given the protocol document as checked in
    document = PROTOCOL_MD.read_text()
    checked_in = document[document.index(BEGIN) : document.index(END) + len(END) + 1]
    # Then its job types section is what the models generate today
    # (on a difference run: python -m hostrelay_contract.protocol_doc --write docs/protocol.md)
    assert checked_in == generate()


def test_the_section_covers_every_type_with_params_and_result() -> None:
    section = generate()
    for name in ("ping", "macct.repair", "exec", "ldap.group_members", "okta.group_members"):
        assert f"### `{name}`" in section
    assert section.count("Params:") == section.count("Result:") == len(JOB_TYPES)
