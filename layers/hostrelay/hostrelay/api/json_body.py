"""Reads a request body as strict JSON within the limits the API (and DynamoDB) can keep."""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Callable, Iterator
from typing import Any

from hostrelay.api.errors import MalformedJson, PayloadTooLarge, UnsupportedMediaType
from hostrelay.domain.errors import InvalidRequest

JSON_MEDIA_TYPE = "application/json"
# DynamoDB nests documents 32 levels deep and keeps numbers of 38 significant digits
# between 1e-130 and 1e126: a body beyond that would be stored by moto and refused by AWS.
MAX_DEPTH = 32
MAX_DIGITS = 38
MAX_MAGNITUDE = 1e126
MIN_MAGNITUDE = 1e-130
_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class _NumberOutOfRange(ValueError):
    pass


def media_type(content_type: str | None) -> str:
    """`application/json` of `Application/JSON; charset=utf-8`."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def require_json(content_type: str | None) -> None:
    """A body must be JSON; a request without Content-Type is read as JSON."""
    received = media_type(content_type)
    if received not in ("", JSON_MEDIA_TYPE):
        raise UnsupportedMediaType(
            f"send the body as {JSON_MEDIA_TYPE}",
            details=[{"received": received[:100], "expected": JSON_MEDIA_TYPE}],
        )


def body_text(body: str | None, *, base64_encoded: bool, max_body_bytes: int) -> str:
    """The body as API Gateway passed it (text, or base64 for bytes it could not pass as text),
    decoded as UTF-8. The size is checked before anything is decoded."""
    raw = body or ""
    too_large = PayloadTooLarge(
        f"request body exceeds {max_body_bytes} bytes", details=[{"limit_bytes": max_body_bytes}]
    )
    if not base64_encoded:
        if len(raw) > max_body_bytes or len(raw.encode("utf-8", "surrogatepass")) > max_body_bytes:
            raise too_large
        if _has_lone_surrogate(raw):
            raise _not_unicode()
        return raw
    if len(raw) > (max_body_bytes + 2) // 3 * 4:
        raise too_large
    try:
        data = base64.b64decode(raw, validate=True)
    except binascii.Error:
        raise MalformedJson("the request body is not valid base64") from None
    if len(data) > max_body_bytes:
        raise too_large
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise MalformedJson(
            "the request body is not valid UTF-8", details=[{"byte_offset": error.start}]
        ) from None


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_DIGITS:
        raise _NumberOutOfRange(f"integers may have at most {MAX_DIGITS} digits")
    return int(text)


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or abs(value) >= MAX_MAGNITUDE:
        raise _NumberOutOfRange(f"numbers must be smaller than {MAX_MAGNITUDE:g} in magnitude")
    if value != 0 and abs(value) < MIN_MAGNITUDE:
        raise _NumberOutOfRange(f"non-zero numbers must be at least {MIN_MAGNITUDE:g}")
    return value


def _reject_constant(name: str) -> Any:
    # NaN and Infinity are not JSON, and DynamoDB cannot store them either.
    raise json.JSONDecodeError(f"{name} is not valid JSON", name, 0)


def _not_unicode() -> MalformedJson:
    # `"\\ud800"` is JSON, but no string of Unicode characters: nothing downstream could encode it.
    return MalformedJson("the request body holds a string that is not Unicode (a lone surrogate)")


def _too_deep() -> InvalidRequest:
    return InvalidRequest(
        f"the body nests deeper than {MAX_DEPTH} levels", details=[{"max_depth": MAX_DEPTH}]
    )


def _has_lone_surrogate(text: str) -> bool:
    return _SURROGATE.search(text) is not None


def _strings(document: Any) -> Iterator[str]:
    pending = [document]
    while pending:
        value = pending.pop()
        if isinstance(value, str):
            yield value
        elif isinstance(value, dict):
            yield from value
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)


def _deeper_than(document: Any, limit: int) -> bool:
    """Walked level by level, without recursion: a limit check must not be a way to crash."""
    level = [document] if isinstance(document, dict | list) else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        children: list[Any] = []
        for value in level:
            children.extend(value.values() if isinstance(value, dict) else value)
        level = [child for child in children if isinstance(child, dict | list)]
    return False


def _check_document(text: str, document: Any) -> None:
    # Cheap tests on the text first: most bodies cannot nest that deep or hold a surrogate.
    if text.count("{") + text.count("[") > MAX_DEPTH and _deeper_than(document, MAX_DEPTH):
        raise _too_deep()
    if _SURROGATE_ESCAPE.search(text) and any(map(_has_lone_surrogate, _strings(document))):
        raise _not_unicode()


def parse_json(text: str) -> Any:
    """Strict JSON (no NaN or Infinity) within MAX_DEPTH and the number limits.

    MalformedJson (400) when it is not JSON; InvalidRequest (422) when it is, beyond a limit.
    """
    try:
        document = json.loads(
            text, parse_constant=_reject_constant, parse_int=_parse_int, parse_float=_parse_float
        )
    except json.JSONDecodeError as error:
        raise MalformedJson(
            "the request body is not valid JSON",
            details=[{"position": error.pos, "reason": error.msg}],
        ) from None
    except _NumberOutOfRange as error:
        raise InvalidRequest(
            f"a number is out of range: {error}",
            details=[{"max_digits": MAX_DIGITS, "max_magnitude": f"{MAX_MAGNITUDE:g}"}],
        ) from None
    except RecursionError:
        # The parser recurses per level: far beyond MAX_DEPTH, it gives up before we can count.
        raise _too_deep() from None
    _check_document(text, document)
    return document


def json_body_parser(max_body_bytes: int) -> Callable[[str], Any]:
    """Parses a text body as strict JSON, refusing an oversized one before parsing."""

    def parse(body: str) -> Any:
        return parse_json(body_text(body, base64_encoded=False, max_body_bytes=max_body_bytes))

    return parse
