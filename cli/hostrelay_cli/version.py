"""The CLI's version: the installed distribution's."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def cli_version() -> str:
    try:
        return version("hostrelay")
    except PackageNotFoundError:
        return "0+unknown"
