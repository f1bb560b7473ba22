"""`hostrelay runs start|list|show|cancel`: fleet runs, a live progress line, a per-host table."""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from typing import TYPE_CHECKING, Any, TextIO

from hostrelay_cli import output

if TYPE_CHECKING:
    from hostrelay_cli.client import HostrelayClient
    from hostrelay_cli.main import Console, Subparsers

TARGET_HEADERS = ["HOST", "STATE", "DURATION", "ERROR"]
RUN_HEADERS = ["ID", "TYPE", "STATE", "DONE", "FAILED", "TOTAL", "CREATED"]
_NOT_DONE = ("PENDING", "IN_FLIGHT")


def parse_tag(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key or not value:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def parse_limit(text: str) -> int | str:
    """A count, or a percentage of the targets: `5`, `10%`."""
    if text.endswith("%"):
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number or a percentage, got {text!r}"
        ) from None


def build_run_request(args: argparse.Namespace) -> dict[str, Any]:
    from hostrelay_cli.main import UsageError

    if not args.host and not args.tag:
        raise UsageError("name the targets: --host NAME and/or --tag KEY=VALUE")
    params: dict[str, Any] = dict(args.params_json or {})
    params.update(dict(args.param or []))
    targets: dict[str, Any] = {}
    if args.host:
        targets["hosts"] = list(dict.fromkeys(args.host))
    if args.tag:
        targets["tags"] = dict(args.tag)
    body: dict[str, Any] = {"type": args.type, "params": params, "targets": targets}
    for name, value in (
        ("max_concurrency", args.max_concurrency),
        ("max_errors", args.max_errors),
        ("timeout_s", args.timeout),
        ("idempotency_key", args.idempotency_key),
    ):
        if value is not None:
            body[name] = value
    if args.continuous:
        body["continuous"] = True
    if args.expired_not_error:
        body["expired_counts_as_error"] = False
    return body


def progress_text(run: dict[str, Any]) -> str:
    """`done/in flight/failed of total`, the run's state and why it stopped."""
    counts = run.get("counts", {})
    done = run["total"] - counts.get("PENDING", 0) - run["in_flight"]
    text = (
        f"{run['id']} {run['state']}: {done} done, {run['in_flight']} in flight, "
        f"{run['errors']} failed of {run['total']}"
    )
    if run.get("stopping") and run["state"] == "IN_PROGRESS":
        text += f" (stopping: {run['stopping']})"
    return text


class ProgressLine:
    """One line redrawn on a terminal; elsewhere a line each time the figures change."""

    def __init__(self, stream: TextIO, *, interactive: bool) -> None:
        self._stream = stream
        self._interactive = interactive
        self._last: str | None = None

    def update(self, run: dict[str, Any]) -> None:
        text = progress_text(run)
        if self._interactive:
            self._stream.write(f"\r\x1b[K{text}")
        elif text != self._last:
            self._stream.write(text + "\n")
        self._last = text
        self._stream.flush()

    def clear(self) -> None:
        if self._interactive and self._last is not None:
            self._stream.write("\r\x1b[K")
            self._stream.flush()


def _duration(target: dict[str, Any]) -> str:
    started = output.parse_time(target.get("started_at"))
    finished = output.parse_time(target.get("finished_at"))
    if started is None or finished is None:
        return "-"
    return f"{(finished - started).total_seconds():.1f}s"


def target_rows(targets: list[dict[str, Any]]) -> list[list[str]]:
    return [
        [
            target["host"],
            target["state"],
            _duration(target),
            (target.get("error") or {}).get("message", ""),
        ]
        for target in targets
    ]


def run_report(run: dict[str, Any], targets: list[dict[str, Any]]) -> str:
    table = output.format_table(TARGET_HEADERS, target_rows(targets))
    counts = ", ".join(f"{n} {state}" for state, n in sorted(run.get("counts", {}).items()))
    ending = f"run {run['id']} {run['state']}: {counts}"
    if run.get("reason"):
        ending += f" ({run['reason']})"
    return f"{table}\n\n{ending}"


def wait_for_run(client: HostrelayClient, run: dict[str, Any], console: Console) -> dict[str, Any]:
    line = ProgressLine(console.stderr, interactive=console.interactive)
    try:
        while True:
            line.update(run)
            if run["state"] != "IN_PROGRESS":
                return run
            console.sleep(console.poll_s)
            run = client.get_run(run["id"])
    finally:
        line.clear()


def cmd_runs_start(args: argparse.Namespace, client: HostrelayClient, console: Console) -> int:
    from hostrelay_cli.main import EXIT_JOB_FAILED, EXIT_OK

    run = client.create_run(build_run_request(args))
    console.err(
        f"run {run['id']}: {run['type']} on {run['total']} hosts, "
        f"{run['window']} at a time, {run['error_limit']} failures tolerated"
    )
    if not args.wait:
        console.out(run["id"])
        return EXIT_OK
    final = wait_for_run(client, run, console)
    console.out(run_report(final, client.run_targets(final["id"])))
    return EXIT_OK if final["state"] == "SUCCEEDED" else EXIT_JOB_FAILED


def cmd_runs_show(args: argparse.Namespace, client: HostrelayClient, console: Console) -> int:
    run = client.get_run(args.id)
    targets = client.run_targets(args.id, state=args.state)
    if args.json:
        console.out(json.dumps({"run": run, "targets": targets}, indent=2, sort_keys=True))
    else:
        console.out(progress_text(run))
        console.out(run_report(run, targets))
    return 0


def cmd_runs_list(args: argparse.Namespace, client: HostrelayClient, console: Console) -> int:
    page = client.list_runs(limit=args.limit)
    now: datetime = console.clock()
    rows = [
        [
            run["id"],
            run["type"],
            run["state"],
            str(run["total"] - run.get("counts", {}).get("PENDING", 0) - run["in_flight"]),
            str(run["errors"]),
            str(run["total"]),
            output.format_time(run["created_at"], now),
        ]
        for run in page["runs"]
    ]
    if args.json:
        console.out(json.dumps(page["runs"], indent=2, sort_keys=True))
    else:
        console.out(output.format_table(RUN_HEADERS, rows))
    return 0


def cmd_runs_cancel(args: argparse.Namespace, client: HostrelayClient, console: Console) -> int:
    run = client.cancel_run(args.id)
    console.out(progress_text(run))
    return 0


def add_runs_commands(resources: Subparsers) -> None:
    from hostrelay_cli.main import parse_param, parse_params_json, positive_int

    runs = resources.add_parser("runs", help="run one job type on many hosts")
    commands = runs.add_subparsers(dest="command", required=True, metavar="COMMAND")
    start = commands.add_parser(
        "start",
        help="start a fleet run",
        description="One job per host named with --host or carrying every --tag, at most "
        "--max-concurrency at once (a sliding window); more than --max-errors failures stop it. "
        "With --wait: a live progress line, then a table per host; exit 0 only if every "
        "target succeeded.",
    )
    start.add_argument("type", help="job type, e.g. ping")
    start.add_argument("--host", action="append", help="a target host (repeatable)")
    start.add_argument(
        "--tag", action="append", type=parse_tag, metavar="KEY=VALUE", help="hosts with this tag"
    )
    start.add_argument("--param", action="append", type=parse_param, metavar="KEY=VALUE")
    start.add_argument("--params-json", type=parse_params_json, metavar="JSON")
    start.add_argument(
        "--max-concurrency", type=parse_limit, metavar="N|P%", help="default 10; '10%%' rounds up"
    )
    start.add_argument(
        "--max-errors", type=parse_limit, metavar="N|P%", help="default 0; '10%%' rounds down"
    )
    start.add_argument("--timeout", type=positive_int, metavar="S", help="per job, seconds")
    start.add_argument("--continuous", action="store_true", help="hosts tagged later join")
    start.add_argument(
        "--expired-not-error",
        action="store_true",
        help="an EXPIRED target (host offline past deliver_by) does not count as a failure",
    )
    start.add_argument("--idempotency-key", metavar="KEY")
    start.add_argument("--wait", action="store_true", help="follow the run to its end")
    start.set_defaults(func=cmd_runs_start)

    show = commands.add_parser("show", help="a run's progress and its targets")
    show.add_argument("id")
    show.add_argument("--state", type=str.upper, help="only targets in this state")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=cmd_runs_show)

    listing = commands.add_parser("list", help="runs, newest first")
    listing.add_argument("--limit", type=positive_int, default=20)
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_runs_list)

    cancel = commands.add_parser("cancel", help="cancel a run")
    cancel.add_argument("id")
    cancel.set_defaults(func=cmd_runs_cancel)
