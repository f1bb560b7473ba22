"""The one tag rule (domain/tags.py): keys, values, how many, and the k=v / k:v text form."""

from __future__ import annotations

import pytest

from hostrelay.domain.errors import InvalidRequest
from hostrelay.domain.tags import MAX_TAGS, check_tags, parse_tag, parse_tags


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("role=dc", ("role", "dc")),
        ("role:dc", ("role", "dc")),
        ("url=https://x.example/a", ("url", "https://x.example/a")),  # split at the first
        ("site.room_2:a=b", ("site.room_2", "a=b")),
        ("0-rack=7", ("0-rack", "7")),
    ],
)
def test_tag_text_splits_at_the_first_equals_or_colon(text: str, expected: tuple[str, str]) -> None:
    assert parse_tag(text) == expected


@pytest.mark.parametrize(
    "text",
    ["role", "=dc", ":dc", "role=", "Role=dc", "ro le=dc", "role=d c", "role=d,c", "_x=1", ""],
)
def test_bad_tag_text_is_refused(text: str) -> None:
    with pytest.raises(InvalidRequest):
        parse_tag(text)


def test_at_most_sixteen_tags() -> None:
    sixteen = {f"k{index}": "v" for index in range(MAX_TAGS)}
    assert check_tags(sixteen) == sixteen
    with pytest.raises(InvalidRequest) as refused:
        check_tags({**sixteen, "one-more": "v"})
    assert refused.value.details[0]["field"] == "tags"


def test_keys_are_short_lowercase_names_and_values_bounded() -> None:
    assert check_tags({"k" * 63: "v" * 128})
    for bad in ({"k" * 64: "v"}, {"k": "v" * 129}, {"K": "v"}, {"k": ""}, {"k": "a'b"}):
        with pytest.raises(InvalidRequest) as refused:
            check_tags(bad)
        assert refused.value.details and refused.value.details[0]["field"].startswith("tags")


def test_several_texts_make_one_map_and_a_contradiction_is_refused() -> None:
    assert parse_tags(["role=dc", "site:north", "role=dc"]) == {"role": "dc", "site": "north"}
    with pytest.raises(InvalidRequest, match="twice"):
        parse_tags(["role=dc", "role=web"])
