"""The rule every group write-back request follows (Okta, Authentik; cloud or relay)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

Member = TypeVar("Member", int, str)


def check_membership_change(add: Sequence[Member], remove: Sequence[Member]) -> None:
    """ValueError unless the request names someone, and nobody both to add and to remove."""
    if not add and not remove:
        raise ValueError("add or remove must name at least one user")
    if set(add) & set(remove):
        raise ValueError("a user cannot be both added and removed")
