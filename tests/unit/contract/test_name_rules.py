"""Name rules: the JSON-schema patterns clients and fuzzers see agree with the checks."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hostrelay_contract.names import (
    COMPUTER_NAME_PATTERN,
    HOST_NAME_PATTERN,
    IMAGE_NAME_PATTERN,
    SCHOOL_NAME_PATTERN,
    check_host_name,
    check_image_name,
    check_school_name,
    normalize_computer_name,
)


def accepts(check: object, value: str) -> bool:
    try:
        check(value)  # type: ignore[operator]
    except ValueError:
        return False
    return True


# Printable ASCII and a few others: every character class the rules treat differently.
NAME_TEXT = st.text(alphabet=st.characters(min_codepoint=0x1F, max_codepoint=0x7F) | st.just("Ä"))


@settings(max_examples=3000, derandomize=True, database=None)
@given(value=NAME_TEXT.filter(lambda text: len(text) <= 18))
def test_the_computer_name_pattern_is_the_relays_rule(value: str) -> None:
    # Given any short text, the published pattern matches it exactly when the relay's
    # check accepts it as a computer name
    assert bool(re.fullmatch(COMPUTER_NAME_PATTERN, value)) == accepts(
        normalize_computer_name, value
    )


@settings(max_examples=500, derandomize=True, database=None)
@given(value=st.from_regex(COMPUTER_NAME_PATTERN, fullmatch=True))
def test_names_generated_from_the_pattern_are_accepted(value: str) -> None:
    # What a schema-driven generator makes from the pattern is a valid computer name
    assert normalize_computer_name(value)


@pytest.mark.parametrize(
    ("pattern", "check", "good", "bad"),
    [
        (HOST_NAME_PATTERN, check_host_name, ["dc01", "a", "x" * 63], ["DC01", "-a", "x" * 64]),
        (IMAGE_NAME_PATTERN, check_image_name, ["win11", "a.b_c-d"], ["win..11", ".x", ""]),
        (SCHOOL_NAME_PATTERN, check_school_name, ["north-1", "S_2"], ["north.1", "-x", ""]),
    ],
)
def test_pattern_rules_accept_and_refuse_as_documented(
    pattern: str, check: object, good: list[str], bad: list[str]
) -> None:
    for value in good:
        assert re.fullmatch(pattern, value) and accepts(check, value), value
    for value in bad:
        assert not re.fullmatch(pattern, value) and not accepts(check, value), value


def test_computer_names_become_upper_case_netbios_names() -> None:
    assert normalize_computer_name("r100-pc02$") == "R100-PC02"
    with pytest.raises(ValueError, match="1-15"):
        normalize_computer_name("A" * 16)
