"""Paths a job may name: absolute and already normalized, so text patterns hold."""

from __future__ import annotations

import posixpath


def normalized_absolute_path(value: str) -> bool:
    """Absolute, with no '.', '..' or '//' (so text patterns cannot be walked around)."""
    return value.startswith("/") and posixpath.normpath(value) == value and "//" not in value
