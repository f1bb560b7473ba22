"""`hostrelay macct capture|repair`: the LINBO machine-account jobs, with per-computer results."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from hostrelay_cli import output

if TYPE_CHECKING:
    from hostrelay_cli.client import HostrelayClient
    from hostrelay_cli.main import Console, Subparsers


def computer_rows(job: dict[str, Any]) -> list[list[str]]:
    """One row per computer of a finished repair: name, outcome, reason or DN."""
    result = job.get("result") or {}
    return [
        [
            str(entry.get("computer", "")),
            str(entry.get("status", "")),
            str(entry.get("reason") or entry.get("dn") or ""),
        ]
        for entry in result.get("computers", [])
    ]


def repair_report(jobs: list[dict[str, Any]]) -> str:
    rows = [row for job in jobs for row in computer_rows(job)]
    if not rows:
        return "no per-computer results (the job did not get that far)"
    counts: dict[str, int] = {}
    for _, status, _ in rows:
        counts[status] = counts.get(status, 0) + 1
    totals = ", ".join(f"{count} {status}" for status, count in sorted(counts.items()))
    return output.format_table(["COMPUTER", "RESULT", "DETAIL"], rows) + f"\n\n{totals}"


def cmd_macct_repair(args: argparse.Namespace, client: HostrelayClient, console: Console) -> int:
    from hostrelay_cli.follow import wait_for_job
    from hostrelay_cli.main import EXIT_JOB_FAILED, EXIT_OK

    body: dict[str, Any] = {"host": args.host, "image": args.image, "computers": args.computers}
    if args.school:
        body["school"] = args.school
    if args.dry_run:
        body["dry_run"] = True
    response = client.macct_repair(body)
    jobs = ([response["created"]] if response["created"] else []) + list(response["reused"])
    for job in jobs:
        console.err(f"{job['type']} job {job['id']} ({job['state']}) on {job['host']}")
    if not args.wait:
        for job in jobs:
            console.out(job["id"])
        return EXIT_OK
    line = output.StateLine(console.stderr, interactive=console.interactive)
    finals = []
    for job in jobs:
        try:
            finals.append(
                wait_for_job(
                    client,
                    job["id"],
                    on_update=lambda current: line.update(current, 0.0),
                    sink=None,
                    poll_s=console.poll_s,
                    sleep=console.sleep,
                )
            )
        finally:
            line.clear()
    console.out(repair_report(finals))
    failed = [job for job in finals if job["state"] != "SUCCEEDED"]
    for job in failed:
        error = job.get("error") or {}
        console.err(f"job {job['id']} {job['state']}: {error.get('message', '')}".rstrip(": "))
    return EXIT_JOB_FAILED if failed else EXIT_OK


def cmd_macct_capture(args: argparse.Namespace, client: HostrelayClient, console: Console) -> int:
    from hostrelay_cli.main import wait_and_report

    job = client.macct_capture({"host": args.host, "image": args.image, "computer": args.computer})
    if not args.wait:
        console.out(job["id"])
        return 0
    return wait_and_report(job, client, console, follow_output=False)


def add_macct_commands(resources: Subparsers) -> None:
    macct = resources.add_parser(
        "macct", help="capture and repair machine accounts on a domain controller (LINBO)"
    )
    commands = macct.add_subparsers(dest="command", required=True, metavar="COMMAND")
    capture = commands.add_parser(
        "capture", help="store a computer's machine-account secrets for an image, on the DC"
    )
    capture.add_argument("--host", required=True, help="the domain controller's relay host")
    capture.add_argument("--image", required=True, help="LINBO image name")
    capture.add_argument("computer", help="the computer whose secrets the image carries")
    capture.add_argument("--wait", action="store_true", help="wait for the result")
    capture.set_defaults(func=cmd_macct_capture)
    repair = commands.add_parser(
        "repair", help="write an image's captured secrets into computers' accounts"
    )
    repair.add_argument("--host", required=True, help="the domain controller's relay host")
    repair.add_argument("--image", required=True, help="LINBO image name")
    repair.add_argument("computers", nargs="+", help="computer names (1 to 500)")
    repair.add_argument("--school", help="limit lookups to this school's OU")
    repair.add_argument("--dry-run", action="store_true", help="report, change nothing")
    repair.add_argument("--wait", action="store_true", help="wait and show per-computer results")
    repair.set_defaults(func=cmd_macct_repair)
