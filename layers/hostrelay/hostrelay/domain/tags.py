"""Host tags: the one rule for keys, values and how many, and the `k=v` / `k:v` text form."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Annotated

from pydantic import Field, TypeAdapter, ValidationError

from hostrelay.domain.errors import InvalidRequest
from hostrelay_contract.text_patterns import TextPattern

MAX_TAGS = 16
# Lowercase, so `Role` and `role` cannot both exist; no `=` or `:`, so `k=v` and `k:v` parse.
TAG_KEY_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,62}$"
# Printable without spaces or quotes: safe in a shell line, a URL query and a table cell.
TAG_VALUE_PATTERN = r"^[A-Za-z0-9_.:/@+=-]{1,128}$"
TAG_KEY = TextPattern(
    TAG_KEY_PATTERN,
    "1-63 lower-case letters, digits, '_', '.' or '-', starting with a letter or digit",
)
TAG_VALUE = TextPattern(
    TAG_VALUE_PATTERN, "1-128 letters, digits or any of _ . : / @ + = - (no spaces or quotes)"
)

TagKey = Annotated[
    str,
    TAG_KEY,
    Field(description="1-63 of a-z, 0-9, '_', '.', '-'; starting with a letter or digit"),
]
TagValue = Annotated[
    str,
    TAG_VALUE,
    Field(description="1-128 of A-Z, a-z, 0-9 and _ . : / @ + = -"),
]
Tags = Annotated[
    dict[TagKey, TagValue],
    Field(max_length=MAX_TAGS, description=f"At most {MAX_TAGS} tags, `{{key: value}}`"),
]

_TAGS: TypeAdapter[dict[str, str]] = TypeAdapter(Tags)


def check_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """The tags if they follow the rule; InvalidRequest (422) naming each problem else."""
    try:
        return _TAGS.validate_python(dict(tags))
    except ValidationError as exc:
        details = [
            {
                "field": ".".join(str(part) for part in ("tags", *error["loc"])),
                "message": error["msg"],
            }
            for error in exc.errors(include_url=False, include_input=False)
        ]
        raise InvalidRequest("invalid tags", details=details) from None


def parse_tag(text: str) -> tuple[str, str]:
    """`key=value` or `key:value` (split at the first `=` or `:`) → (key, value), checked."""
    positions = [index for index in (text.find("="), text.find(":")) if index > 0]
    if not positions:
        raise InvalidRequest(
            f"tag {text!r} is not key=value or key:value", details=[{"field": "tag"}]
        )
    split = min(positions)
    key, value = text[:split], text[split + 1 :]
    check_tags({key: value})
    return key, value


def parse_tags(texts: Iterable[str]) -> dict[str, str]:
    """Several `k=v` / `k:v` texts as one map; a key given twice with two values is refused."""
    tags: dict[str, str] = {}
    for text in texts:
        key, value = parse_tag(text)
        if tags.get(key, value) != value:
            raise InvalidRequest(
                f"tag {key} is given twice with different values", details=[{"field": "tag"}]
            )
        tags[key] = value
    return check_tags(tags)
