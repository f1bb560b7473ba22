"""`hostrelay macct repair --wait` prints one row per computer and fails on any failure."""

from __future__ import annotations

import responses
from responses import matchers

from tests.unit.cli.conftest import URL, Cli, job

JOB = "01J00000000000000000000001"


def repair_result(*entries: tuple[str, str, str | None]) -> dict[str, object]:
    return {
        "image": "img",
        "computers": [
            {"computer": name, "status": status, **({"reason": why} if why else {})}
            for name, status, why in entries
        ],
    }


def test_repair_wait_shows_a_table_of_computers(api: responses.RequestsMock, cli: Cli) -> None:
    # Given the API queues one repair job that then succeeds
    queued = job(JOB, type="macct.repair", state="QUEUED")
    api.post(
        f"{URL}/v1/macct/repair",
        json={"created": queued, "reused": [], "computers": {"PC01": JOB, "PC02": JOB}},
        status=201,
        match=[matchers.json_params_matcher(
            {"host": "dc01", "image": "img", "computers": ["pc01", "pc02"]}
        )],
    )  # fmt: skip
    outcomes = repair_result(("PC01", "updated", None), ("PC02", "unchanged", None))
    done = job(JOB, type="macct.repair", state="SUCCEEDED", result=outcomes)
    api.get(f"{URL}/v1/jobs/{JOB}", json=done)
    # When the admin waits for it
    code, out, _ = cli(
        "macct", "repair", "--host", "dc01", "--image", "img", "pc01", "pc02", "--wait"
    )
    # Then each computer's outcome is a row, with totals, and the exit code is 0
    assert code == 0
    assert [line.split()[:2] for line in out.splitlines()[1:3]] == [
        ["PC01", "updated"],
        ["PC02", "unchanged"],
    ]
    assert "1 unchanged, 1 updated" in out


def test_repair_with_a_failed_computer_exits_non_zero(
    api: responses.RequestsMock, cli: Cli
) -> None:
    queued = job(JOB, type="macct.repair")
    api.post(f"{URL}/v1/macct/repair", json={"created": queued, "reused": [], "computers": {}},
             status=201)  # fmt: skip
    failed = job(JOB, type="macct.repair", state="FAILED",
                 error={"code": "repair_failed", "message": "1 computer failed"},
                 result=repair_result(("SRV1", "failed", "not a workstation account")))  # fmt: skip
    api.get(f"{URL}/v1/jobs/{JOB}", json=failed)
    code, out, err = cli("macct", "repair", "--host", "dc01", "--image", "img", "srv1", "--wait")
    assert code == 1
    assert "not a workstation account" in out
    assert "FAILED" in err
