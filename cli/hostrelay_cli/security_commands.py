"""`hostrelay hosts enroll`, `hostrelay audit` and the `tokens --json` listing."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from hostrelay_cli import output
from hostrelay_cli.tag_arguments import add_tag_argument, tags_of

if TYPE_CHECKING:
    from hostrelay_cli.client import HostrelayClient
    from hostrelay_cli.main import Console, Subparsers

AUDIT_HEADERS = ("AT", "ACTOR", "ACTION", "TARGET", "DETAILS")


def cmd_hosts_enroll(args: argparse.Namespace, client: HostrelayClient, console: Console) -> int:
    """Print the one command to paste as root on the new host (stdout: just the command)."""
    from hostrelay_cli.main import EXIT_OK

    body: dict[str, Any] = {"host": args.name}
    if args.role:
        body["roles"] = sorted(set(args.role))
    if args.replace:
        body["replace"] = True
    if args.tag:
        body["tags"] = tags_of(args.tag)
    offer = client.create_enrollment(body)
    expires = output.format_time(offer.get("expires_at"), console.clock())
    console.err(
        f"paste this as root on {offer['host']}; it works once and expires {expires}"
        + (" (its current certificate is revoked when it runs)" if args.replace else "")
        + ":"
    )
    console.out(offer["command"])
    return EXIT_OK


def _details(details: dict[str, Any]) -> str:
    return " ".join(
        f"{key}={json.dumps(value) if not isinstance(value, str) else value}"
        for key, value in sorted(details.items())
        if value not in (None, [], {})
    )


def audit_rows(events: list[dict[str, Any]], console: Console) -> list[list[str]]:
    now = console.clock()
    return [
        [
            output.format_time(event.get("at"), now, with_relative=False),
            str(event["actor"]),
            str(event["action"]),
            str(event["target"]),
            _details(event.get("details") or {}),
        ]
        for event in events
    ]


def cmd_audit(args: argparse.Namespace, client: HostrelayClient, console: Console) -> int:
    from hostrelay_cli.main import EXIT_OK

    events = client.read_audit(
        since=args.since, until=args.until, action=args.action, limit=args.limit
    )
    if args.json:
        console.out(json.dumps(events, indent=2, sort_keys=True))
    else:
        console.out(output.format_table(AUDIT_HEADERS, audit_rows(events, console)))
    return EXIT_OK


def add_host_enroll_command(host_cmds: Subparsers) -> None:
    enroll = host_cmds.add_parser(
        "enroll",
        help="print the one-shot command that enrolls a new host",
        description="Create a one-shot enrollment (admin) and print the command to paste as "
        "root on the host. It works once, expires after a few minutes, and generates the "
        "host's key on the host.",
    )
    enroll.add_argument("name", help="the host's name: a lowercase DNS label")
    enroll.add_argument("--role", action="append", help="a role of the host (repeatable)")
    enroll.add_argument(
        "--replace",
        action="store_true",
        help="re-enroll an existing host; its current certificate is revoked",
    )
    add_tag_argument(enroll, "a tag the host gets once enrolled (repeatable)")
    enroll.set_defaults(func=cmd_hosts_enroll)


def add_audit_commands(resources: Subparsers) -> None:
    audit = resources.add_parser(
        "audit",
        help="who did what: tokens, enrollments, revocations, jobs (admin)",
        description="Read the audit trail, newest first (default: the last day).",
    )
    audit.add_argument("--since", metavar="TIME", help="oldest time, ISO 8601")
    audit.add_argument("--until", metavar="TIME", help="newest time, ISO 8601")
    audit.add_argument("--action", help="only this action, e.g. host.revoke")
    audit.add_argument("--limit", type=int, default=100, help="most events (1-1000)")
    audit.add_argument("--json", action="store_true", help="print JSON")
    audit.set_defaults(func=cmd_audit)
