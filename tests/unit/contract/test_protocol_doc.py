"""docs/protocol.md describes the job types and their error codes exactly as the contract
defines them."""

from __future__ import annotations

import re
from pathlib import Path

from hostrelay_contract.events import EVENT_MODELS
from hostrelay_contract.job_types import INTERNAL_JOB_TYPES, JOB_TYPES
from hostrelay_contract.protocol_doc import (
    BEGIN,
    END,
    ERRORS_BEGIN,
    ERRORS_END,
    generate,
    generate_error_codes,
)

PROTOCOL_MD = Path(__file__).resolve().parents[3] / "docs" / "protocol.md"


def checked_in(begin: str, end: str) -> str:
    document = PROTOCOL_MD.read_text()
    return document[document.index(begin) : document.index(end) + len(end) + 1]


def test_the_checked_in_job_types_section_is_the_generated_one() -> None:
    # Given the protocol document as checked in
    # Then its job types section is what the models generate today
    # (on a difference run: python -m hostrelay_contract.protocol_doc --write docs/protocol.md)
    assert checked_in(BEGIN, END) == generate()


def test_the_checked_in_error_codes_are_the_registry_s() -> None:
    # (on a difference run: python -m hostrelay_contract.protocol_doc --write docs/protocol.md)
    assert checked_in(ERRORS_BEGIN, ERRORS_END) == generate_error_codes()


def test_the_section_covers_every_type_with_params_and_result() -> None:
    section = generate()
    for name in ("ping", "macct.repair", "exec", "ldap.group_members", "okta.group_members"):
        assert f"### `{name}`" in section
    every = len(JOB_TYPES) + len(INTERNAL_JOB_TYPES)
    assert section.count("Params:") == section.count("Result:") == every
    # cert.install is described, and as what API clients cannot create
    internal = section[section.index("### `cert.install`") :]
    assert "`POST /v1/jobs` refuses it" in internal and "`certificate_pem`" in internal


def test_every_type_and_every_code_has_a_row() -> None:
    table = generate_error_codes()
    for name, spec in [*JOB_TYPES.items(), *INTERNAL_JOB_TYPES.items()]:
        assert f"`{name}`" in table
        for code in spec.error_codes():
            assert f"| `{code}` |" in table, (name, code)


def test_the_events_table_names_every_field_of_every_event_model() -> None:
    # Given the events table as checked in
    document = PROTOCOL_MD.read_text()
    start = document.index("## Events (relay → control plane)")
    table = document[start : document.index("### What the relay guarantees")]
    rows = dict(re.findall(r"^\| `([a-z_]+)` \| (.*) \|$", table, re.MULTILINE))

    # Then it has a row for each kind the contract models, naming each of its fields
    # (`name`, or `name: ...` where the row says more)
    assert set(rows) == set(EVENT_MODELS)
    for kind, model in EVENT_MODELS.items():
        named = set(re.findall(r"`([a-z_]+)", rows[kind]))
        unnamed = set(model.model_fields) - {"v", "kind", "event_id", "sent_at"} - named
        assert unnamed == set(), kind
