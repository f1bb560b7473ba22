"""`hostrelay tokens bootstrap`: a first admin token for a new deployment, made offline."""

from __future__ import annotations

from tests.unit.cli.conftest import URL, Cli


def test_tokens_bootstrap_needs_no_api_and_prints_a_matching_hash(cli: Cli) -> None:
    import hashlib

    cli.settings = type(cli.settings)(url=URL, token="")
    code, out, _ = cli("tokens", "bootstrap")
    token = out.split("token:", 1)[1].split()[0]
    digest = out.split("sha256:", 1)[1].split()[0]
    assert code == 0 and token.startswith("hr_")
    assert hashlib.sha256(token.encode()).hexdigest() == digest
