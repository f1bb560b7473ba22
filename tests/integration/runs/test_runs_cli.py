"""`hostrelay runs`: the CLI against the API served over HTTP, relays answering as it waits."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from hostrelay_cli.main import Console, main
from hostrelay_cli.settings import CliSettings
from tests.integration.api.conftest import ServedApi, served_api
from tests.integration.runs.conftest import Fleet

__all__ = ["served_api"]  # the API served over HTTP, from the API tests' fixtures


def _cli(served: ServedApi, fleet: Fleet, outcome) -> tuple[Console, CliSettings]:
    console = Console(
        stdout=io.StringIO(),
        stderr=io.StringIO(),
        clock=lambda: datetime.now(UTC),
        # Each poll of --wait lets one relay answer: the run moves between polls.
        sleep=lambda _: fleet.step(outcome),
        poll_s=0,
    )
    return console, CliSettings(url=served.url, token=served.admin_token)


def test_runs_start_wait_shows_progress_and_a_table_and_fails_on_a_failed_host(
    served_api: ServedApi, fleet: Fleet
) -> None:
    # Given dc01..dc04 tagged role=dc, whose dc03 fails its jobs
    fleet.enroll(["dc01", "dc02", "dc03", "dc04"], tags={"role": "dc"})
    outcome = lambda host: "failed" if host == "dc03" else "succeeded"  # noqa: E731
    console, settings = _cli(served_api, fleet, outcome)
    # When an operator starts a ping run by tag and waits
    code = main(
        ["runs", "start", "ping", "--tag", "role=dc", "--max-concurrency", "2",
         "--max-errors", "1", "--param", "message=hi", "--wait"],
        settings=settings,
        console=console,
    )  # fmt: skip
    out, err = console.stdout.getvalue(), console.stderr.getvalue()  # type: ignore[attr-defined]
    # Then it exits 1 (not every target succeeded)
    assert code == 1
    # And the progress line counted done, in flight and failed of the total
    assert "0 done, 2 in flight, 0 failed of 4" in err
    assert "4 done, 0 in flight, 1 failed of 4" in err
    # And the table has one row per host with its state, duration and error
    rows = {line.split()[0]: line for line in out.splitlines() if line.startswith("dc0")}
    assert set(rows) == {"dc01", "dc02", "dc03", "dc04"}
    assert "FAILED" in rows["dc03"] and "test failure" in rows["dc03"]
    assert all("SUCCEEDED" in rows[h] for h in ("dc01", "dc02", "dc04"))
    assert "FAILED: 1 FAILED, 3 SUCCEEDED (1 of 4 targets did not succeed)" in out


def test_runs_start_wait_exits_zero_when_every_target_succeeded_and_list_show_cancel(
    served_api: ServedApi, fleet: Fleet
) -> None:
    fleet.enroll(["web01", "web02"])
    console, settings = _cli(served_api, fleet, lambda host: "succeeded")
    code = main(
        ["runs", "start", "ping", "--host", "web01", "--host", "web02", "--wait"],
        settings=settings,
        console=console,
    )
    assert code == 0
    run_id = console.stderr.getvalue().split()[1].rstrip(":")  # type: ignore[attr-defined]
    # runs list names it, runs show prints its hosts
    console, settings = _cli(served_api, fleet, lambda host: None)
    assert main(["runs", "list"], settings=settings, console=console) == 0
    assert run_id in console.stdout.getvalue()  # type: ignore[attr-defined]
    console, settings = _cli(served_api, fleet, lambda host: None)
    assert main(["runs", "show", run_id], settings=settings, console=console) == 0
    shown = console.stdout.getvalue()  # type: ignore[attr-defined]
    assert "web01" in shown and "SUCCEEDED" in shown
    # runs cancel of a finished run is refused with the API's reason
    console, settings = _cli(served_api, fleet, lambda host: None)
    assert main(["runs", "cancel", run_id], settings=settings, console=console) == 2
    assert "already SUCCEEDED" in console.stderr.getvalue()  # type: ignore[attr-defined]
