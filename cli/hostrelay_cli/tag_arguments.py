"""`--tag key=value` arguments, checked by the control plane's own tag rule (domain/tags.py)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from hostrelay.domain.errors import InvalidRequest
from hostrelay.domain.tags import check_tags, parse_tag, parse_tags


def tag_argument(text: str) -> str:
    """A `key=value` (or `key:value`) argument, refused by argparse when the API would."""
    try:
        parse_tag(text)
    except InvalidRequest as exc:
        raise argparse.ArgumentTypeError(_reason(exc)) from None
    return text


def tag_key_argument(text: str) -> str:
    try:
        check_tags({text: "x"})
    except InvalidRequest as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {_reason(exc)}") from None
    return text


def add_tag_argument(parser: argparse.ArgumentParser, help_text: str) -> None:
    parser.add_argument(
        "--tag", action="append", type=tag_argument, metavar="KEY=VALUE", help=help_text
    )


def tags_of(texts: Sequence[str] | None) -> dict[str, str]:
    """The checked arguments as one map (`{}` for none); UsageError if they contradict."""
    from hostrelay_cli.main import UsageError

    try:
        return parse_tags(texts or [])
    except InvalidRequest as exc:
        raise UsageError(_reason(exc)) from None


def _reason(error: InvalidRequest) -> str:
    issues = [str(detail["message"]) for detail in error.details if "message" in detail]
    return "; ".join([error.message, *issues])
