"""`hostrelay hosts enroll/list/tag --tag` against the ApiFunction served over HTTP."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest

from hostrelay.dal.hosts_repo import HostRepository
from hostrelay.dal.security_tables import EnrollmentRecord
from hostrelay_cli.main import Console, main
from hostrelay_cli.settings import CliSettings
from tests.integration.api.conftest import ServedApi

pytestmark = pytest.mark.integration


def run(served: ServedApi, *argv: str) -> tuple[int, str, str]:
    console = Console(
        stdout=io.StringIO(),
        stderr=io.StringIO(),
        clock=lambda: datetime(2030, 1, 1, tzinfo=UTC),
    )
    settings = CliSettings(url=served.url, token=served.admin_token)
    code = main(list(argv), settings=settings, console=console)
    assert isinstance(console.stdout, io.StringIO) and isinstance(console.stderr, io.StringIO)
    return code, console.stdout.getvalue(), console.stderr.getvalue()


def test_tag_hosts_then_list_them_by_tag(served_api: ServedApi) -> None:
    # Given two registered hosts
    for name in ("dc01", "web01"):
        HostRepository().register(name)
    # When an admin tags them from the CLI
    assert run(served_api, "hosts", "tag", "dc01", "role=dc", "site=north")[:2] == (
        0,
        "dc01 role=dc,site=north\n",
    )
    assert run(served_api, "hosts", "tag", "web01", "role:web", "site=north")[0] == 0
    # Then `hosts list --tag` shows the matching hosts with their tags
    code, out, _ = run(served_api, "hosts", "list", "--tag", "role=dc")
    assert code == 0
    rows = out.splitlines()
    assert "TAGS" in rows[0] and len(rows) == 2
    assert rows[1].startswith("dc01") and rows[1].endswith("role=dc,site=north")
    code, out, _ = run(served_api, "hosts", "list", "--tag", "site=north", "--tag", "role=web")
    assert [row.split()[0] for row in out.splitlines()[1:]] == ["web01"]
    # And --remove takes a tag off
    assert run(served_api, "hosts", "tag", "dc01", "--remove", "site")[1] == "dc01 role=dc\n"


def test_bad_tags_stop_the_cli_before_any_request(served_api: ServedApi) -> None:
    HostRepository().register("dc01")
    with pytest.raises(SystemExit) as usage:
        run(served_api, "hosts", "tag", "dc01", "Role=dc")
    assert usage.value.code == 2
    code, _, err = run(served_api, "hosts", "tag", "dc01", "role=dc", "role=web")
    assert code == 2 and "twice" in err
    code, _, err = run(served_api, "hosts", "tag", "dc01")
    assert code == 2 and "--remove" in err
    assert HostRepository().get("dc01").tags == {}


def test_enroll_with_tags_sends_them(served_api: ServedApi) -> None:
    code, out, _ = run(served_api, "hosts", "enroll", "web02", "--tag", "role=web")
    assert code == 0 and "/v1/enroll/hre_" in out
    # The enrollment holds the tags the host gets when it enrolls
    assert [record.tags for record in EnrollmentRecord.scan()] == [{"role": "web"}]
