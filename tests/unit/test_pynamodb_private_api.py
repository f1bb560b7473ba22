"""PynamoDB's private API is touched in one DAL helper only (issue #12 §4)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HELPER = ROOT / "layers/hostrelay/hostrelay/dal/pynamodb_private.py"
# The private members of pynamodb's Model that the helper wraps.
PRIVATE = re.compile(r"\._get_connection\(|\._connection\b")
SOURCES = ("layers/hostrelay/hostrelay", "local/hostrelay_local", "cli/hostrelay_cli")


def test_only_the_dal_helper_uses_pynamodbs_private_connection_api() -> None:
    # Given every control-plane, local-stack and CLI module
    sources = [path for top in SOURCES for path in sorted((ROOT / top).rglob("*.py"))]
    assert HELPER in sources
    # When their code is searched for Model._get_connection() and Model._connection
    users = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in sources
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if PRIVATE.search(line)
    ]
    # Then only the helper has them (everyone else calls its table_connection)
    assert users and all(user.startswith(str(HELPER.relative_to(ROOT))) for user in users), users
