"""What the API's models share: their base classes, request field types and id patterns."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, StringConstraints

from hostrelay_contract.text_patterns import TextPattern

# A ULID: 26 characters of Crockford base32, the first at most 7 (48-bit timestamp).
ULID_PATTERN = r"^[0-7][0-9A-HJKMNP-TV-Z]{25}$"
ULID = TextPattern(
    ULID_PATTERN, "a ULID: 26 of 0-9 and A-Z without I, L, O and U, the first one 0-7"
)
JobTypeName = Annotated[str, StringConstraints(min_length=1, max_length=64)]


def _iso_8601_text(value: Any) -> Any:
    # Pydantic's lax mode would read 0 or 1.5e9 as a Unix time: the API takes only the text.
    if not isinstance(value, str):
        raise ValueError("expected an ISO 8601 date-time string with a UTC offset")
    return value


# Request fields take JSON's own types: no "10" or true for an integer, no 0 for a boolean
# (StrictInt, StrictBool), and date-times only as ISO 8601 text with an offset.
Timestamp = Annotated[AwareDatetime, BeforeValidator(_iso_8601_text)]


# Built on first use: a container serves a few routes, and each model costs ~1 ms to build.
class RequestModel(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)


class ResponseModel(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)


class FromDomain(ResponseModel):
    """A response read from a domain object's attributes: `Model.model_validate(obj)`."""

    model_config = ConfigDict(from_attributes=True)
