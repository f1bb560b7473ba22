"""The strict JSON body reader: media type, size, UTF-8, depth and number limits."""

from __future__ import annotations

import base64

import pytest

from hostrelay.api.errors import MalformedJson, PayloadTooLarge, UnsupportedMediaType
from hostrelay.api.json_body import (
    MAX_DEPTH,
    body_text,
    json_body_parser,
    parse_json,
    require_json,
)
from hostrelay.domain.errors import InvalidRequest


def nested_list(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_a_body_is_read_within_the_limits() -> None:
    text = '{"a": [1, -2.5, "x", null, true], "b": {"c": ' + "9" * 38 + "}}"
    assert parse_json(text) == {"a": [1, -2.5, "x", None, True], "b": {"c": int("9" * 38)}}


def test_depth_is_counted_from_the_body_itself() -> None:
    assert parse_json(nested_list(MAX_DEPTH)) is not None
    with pytest.raises(InvalidRequest, match="deeper than 32"):
        parse_json(nested_list(MAX_DEPTH + 1))


@pytest.mark.parametrize("depth", [5_000, 200_000])
def test_far_too_deep_is_refused_without_crashing(depth: int) -> None:
    with pytest.raises(InvalidRequest, match="deeper than 32"):
        parse_json('{"a": ' * depth + "1" + "}" * depth)


@pytest.mark.parametrize(
    "number", ["1" * 39, "-" + "1" * 39, "1" * 5000, "1e400", "-1e400", "1e126", "1e-131"]
)
def test_numbers_beyond_dynamodb_are_refused(number: str) -> None:
    with pytest.raises(InvalidRequest, match="out of range"):
        parse_json('{"n": ' + number + "}")


@pytest.mark.parametrize("number", ["0", "-0", "0.0", "1e125", "-1e-130", "1.5", "-" + "9" * 38])
def test_numbers_dynamodb_keeps_are_read(number: str) -> None:
    assert parse_json("[" + number + "]") == [
        float(number) if "." in number or "e" in number else int(number)
    ]


@pytest.mark.parametrize("text", ["NaN", '{"a": Infinity}', "[-Infinity]", "{", "[1,]", "'x'"])
def test_what_is_not_json_is_malformed(text: str) -> None:
    with pytest.raises(MalformedJson):
        parse_json(text)


@pytest.mark.parametrize("text", ['"\\ud800"', '{"\\udfff": 1}', '["ok", "\\ud83d"]'])
def test_escaped_lone_surrogates_are_malformed(text: str) -> None:
    with pytest.raises(MalformedJson, match="surrogate"):
        parse_json(text)


def test_an_escaped_surrogate_pair_is_text() -> None:
    assert parse_json('"\\ud83d\\ude00"') == "\U0001f600"


def test_base64_bodies_are_decoded_as_strict_utf8() -> None:
    encoded = base64.b64encode('{"a": "é"}'.encode()).decode()
    assert body_text(encoded, base64_encoded=True, max_body_bytes=100) == '{"a": "é"}'
    with pytest.raises(MalformedJson, match="UTF-8"):
        body_text(
            base64.b64encode(b'{"a": "\xff"}').decode(), base64_encoded=True, max_body_bytes=100
        )
    with pytest.raises(MalformedJson, match="base64"):
        body_text("not base64!", base64_encoded=True, max_body_bytes=100)


def test_size_is_checked_before_decoding_or_parsing() -> None:
    parse = json_body_parser(max_body_bytes=10)
    assert parse('{"a": 1}') == {"a": 1}
    with pytest.raises(PayloadTooLarge):
        parse("{" * 11)  # not JSON either: size is checked first
    with pytest.raises(PayloadTooLarge):
        parse('"éééééé"')  # 8 characters, 14 bytes
    with pytest.raises(PayloadTooLarge):
        body_text(base64.b64encode(b"x" * 11).decode(), base64_encoded=True, max_body_bytes=10)


@pytest.mark.parametrize(
    "content_type", [None, "", "application/json", "APPLICATION/JSON; charset=utf-8"]
)
def test_json_or_no_media_type_is_read(content_type: str | None) -> None:
    require_json(content_type)


@pytest.mark.parametrize(
    "content_type",
    [
        "multipart/form-data; boundary=x",
        "application/x-www-form-urlencoded",
        "text/plain",
        "application/jsonx",
    ],
)
def test_other_media_types_are_refused(content_type: str) -> None:
    with pytest.raises(UnsupportedMediaType):
        require_json(content_type)
