"""Job params of macct.capture/macct.repair: bad names are rejected before anything runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from hostrelay_relay.handlers.macct_capture import MacctCaptureHandler
from hostrelay_relay.handlers.macct_repair import MacctRepairHandler
from hostrelay_relay.settings import RelaySettings

HOSTILE_COMPUTER_NAMES = [
    "PC01\ndn: CN=x",  # newline: a new LDIF line
    "PC01,CN=Users",  # DN separator
    "PC=01",
    "PC+01",
    'PC"01',
    "PC\\01",
    "PC<01>",
    "PC;01",
    "PC/01",
    "PC*",  # filter wildcard
    "PC?01",
    "PC:01",
    "PC|01",
    "PC[1]",
    "PC\x0001",
    "PC\t01",
    " PC01",
    "PC01 ",
    ".PC01",
    "PC01.",
    "",
    "$",
    "A" * 16,
    "12345",
    "PCÄ01",
]


@pytest.fixture
def repair(tmp_path: Path) -> MacctRepairHandler:
    return MacctRepairHandler(RelaySettings(host="dc01", state_dir=tmp_path))


@pytest.fixture
def capture(tmp_path: Path) -> MacctCaptureHandler:
    return MacctCaptureHandler(RelaySettings(host="dc01", state_dir=tmp_path))


@pytest.mark.parametrize("name", HOSTILE_COMPUTER_NAMES)
def test_hostile_computer_names_are_rejected(
    name: str, repair: MacctRepairHandler, capture: MacctCaptureHandler
) -> None:
    # When a name with LDIF/DN/filter metacharacters or outside NetBIOS rules is given,
    # Then both job types reject the params (the relay answers invalid_params)
    with pytest.raises(ValidationError, match=r"computers\.0|computers\[0\]"):
        repair.validate({"image": "win10", "computers": [name]})
    with pytest.raises(ValidationError, match="computer"):
        capture.validate({"image": "win10", "computer": name})


def test_computer_names_are_normalized_and_deduplicated(repair: MacctRepairHandler) -> None:
    # When names differ only in case or a trailing '$'
    params = repair.validate({"image": "win10", "computers": ["pc01", "PC01$", "r100-pc02"]})
    # Then they become the upper-case NetBIOS names, once each, in order
    assert params.computers == ["PC01", "R100-PC02"]
    assert params.school is None and params.dry_run is False


@pytest.mark.parametrize(
    "image", ["../etc", "a/b", ".hidden", "win..10", "", "x" * 129, "win 10", "win\n10"]
)
def test_bad_image_names_are_rejected(image: str, repair: MacctRepairHandler) -> None:
    # When an image name could escape the store directory or is not a plain name, Then rejected
    with pytest.raises(ValidationError, match="image"):
        repair.validate({"image": image, "computers": ["PC01"]})


@pytest.mark.parametrize("school", ["", "a,b", "OU=x", "school a", "-lead", "x" * 65, "sch\\ool"])
def test_bad_school_names_are_rejected(school: str, repair: MacctRepairHandler) -> None:
    with pytest.raises(ValidationError, match="school"):
        repair.validate({"image": "win10", "computers": ["PC01"], "school": school})


@pytest.mark.parametrize(
    "params",
    [
        {"image": "win10", "computers": []},
        {"image": "win10", "computers": [f"PC{i}" for i in range(501)]},
        {"image": "win10", "computers": "PC01"},
        {"image": "win10", "computers": ["PC01"], "dry_run": "yes"},
        {"image": "win10", "computers": ["PC01"], "extra": 1},
        {"computers": ["PC01"]},
    ],
)
def test_malformed_repair_params_are_rejected(
    params: dict[str, Any], repair: MacctRepairHandler
) -> None:
    with pytest.raises(ValidationError):
        repair.validate(params)


def test_five_hundred_computers_are_accepted(repair: MacctRepairHandler) -> None:
    params = repair.validate({"image": "win10", "computers": [f"PC{i:03d}" for i in range(500)]})
    assert len(params.computers) == 500
