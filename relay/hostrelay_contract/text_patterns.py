"""Text patterns with the words a user reads when a value breaks one, never the regex itself.

A `TextPattern` is pydantic metadata (`Annotated[str, HOST_NAME]`): pydantic-core judges the
value against the regex exactly as `StringConstraints(pattern=...)` would, and the JSON
schema publishes the same `pattern`; only a mismatch's message changes, to `must be
<allowed>`. The error keeps pydantic's type (`string_pattern_mismatch`) and `pattern` context,
so the API's 422 details, the relay's rejection reasons and the CLI all show the words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, cast

from pydantic import GetCoreSchemaHandler, ValidationError
from pydantic_core import PydanticCustomError, core_schema

PATTERN_MISMATCH = "string_pattern_mismatch"


@dataclass(frozen=True)
class TextPattern:
    """A regex and, in words, what it allows (`1-63 lower-case letters, ...`)."""

    pattern: str
    allowed: str

    def __post_init__(self) -> None:
        # The message is a pydantic message template: braces would be read as placeholders.
        if "{" in self.allowed or "}" in self.allowed:
            raise ValueError("the wording of a pattern must not contain braces")

    @property
    def message(self) -> str:
        return f"must be {self.allowed}"

    def check(self, value: str, subject: str) -> str:
        """`value` if it matches in full, else ValueError naming `subject` (for plain
        strings: settings, file names, CLI arguments)."""
        if not re.fullmatch(self.pattern, value):
            raise ValueError(f"{subject} {self.message}")
        return value

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        schema = handler(source)
        if schema["type"] != "str":
            raise TypeError(f"a TextPattern applies to str, not {schema['type']}")
        # What StringConstraints(pattern=...) does: pydantic-core's own regex check.
        checked = cast(core_schema.StringSchema, {**schema, "pattern": self.pattern})
        return core_schema.no_info_wrap_validator_function(self._reworded, checked)

    def _reworded(self, value: Any, handler: core_schema.ValidatorFunctionWrapHandler) -> Any:
        try:
            return handler(value)
        except ValidationError as exc:
            if any(error["type"] == PATTERN_MISMATCH for error in exc.errors()):
                raise PydanticCustomError(
                    PATTERN_MISMATCH, self.message, {"pattern": self.pattern}
                ) from None
            raise
