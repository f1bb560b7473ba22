"""`hostrelay` command line: jobs, hosts and tokens over the HTTP API."""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO, TypeAlias

from hostrelay_cli import output
from hostrelay_cli.client import ApiError, HostrelayClient
from hostrelay_cli.follow import print_output, wait_for_job
from hostrelay_cli.macct_commands import add_macct_commands
from hostrelay_cli.run_commands import add_runs_commands
from hostrelay_cli.security_commands import add_audit_commands, add_host_enroll_command
from hostrelay_cli.settings import CliSettings
from hostrelay_cli.tag_arguments import add_tag_argument, tag_argument, tag_key_argument, tags_of
from hostrelay_cli.version import cli_version

EXIT_OK = 0
EXIT_JOB_FAILED = 1  # the job ended but did not succeed
EXIT_USAGE = 2  # bad arguments, or the API refused or could not be reached
EXIT_INTERRUPTED = 130

SCOPES = ("admin", "operator", "reader", "service")
STATES = (
    "QUEUED", "DISPATCHED", "IN_PROGRESS", "SUCCEEDED", "FAILED", "TIMED_OUT", "CANCELED",
    "REJECTED", "EXPIRED",
)  # fmt: skip
_DURATION = re.compile(r"^(\d+)([smhd]?)$")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


class UsageError(Exception):
    """Arguments argparse accepted but that make no sense together."""


@dataclass
class Console:
    """Where the CLI writes; a TTY on stderr gets a spinner instead of state lines."""

    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    clock: Callable[[], datetime] = field(default_factory=lambda: lambda: datetime.now(UTC))
    sleep: Callable[[float], None] = time.sleep
    poll_s: float = 1.0

    @property
    def interactive(self) -> bool:
        return self.stderr.isatty()

    def out(self, text: str) -> None:
        print(text, file=self.stdout)

    def err(self, text: str) -> None:
        print(text, file=self.stderr)

    def write_output(self, stream: str, data: bytes) -> None:
        target = self.stderr if stream == "stderr" else self.stdout
        target.flush()
        buffer = getattr(target, "buffer", None)
        if buffer is not None:
            buffer.write(data)
            buffer.flush()
        else:
            target.write(data.decode("utf-8", errors="replace"))


# ---------------------------------------------------------------- argument values


def param_value(text: str) -> Any:
    """`--param k=v` values: JSON when they parse as JSON, else the plain string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_param(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, param_value(value)


def parse_params_json(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("must be a JSON object")
    return value


def parse_duration(text: str) -> int:
    """Seconds, or a number with s/m/h/d."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"expected seconds or e.g. 90m, 12h, 30d; got {text!r}")
    return int(match.group(1)) * _UNIT_S[match.group(2)]


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def check_params(job_type: str, params: dict[str, Any]) -> None:
    """Refuse, before anything is sent, params the API and the relay would refuse: the
    contract's model of the type judges them here too. A type this CLI does not know is
    left to the API (it may be newer)."""
    from pydantic import ValidationError

    from hostrelay_contract.job_types import JOB_TYPES, validate_params

    if job_type not in JOB_TYPES:
        return
    try:
        validate_params(job_type, params)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'params'}: {error['msg']}"
            for error in exc.errors()
        )
        raise UsageError(f"invalid params for {job_type}: {problems}") from None


def build_job_request(args: argparse.Namespace) -> dict[str, Any]:
    params: dict[str, Any] = dict(args.params_json or {})
    params.update(dict(args.param or []))
    if args.argv:
        if args.type != "exec":
            raise UsageError("a command after -- is only for exec jobs")
        params["argv"] = list(args.argv)
    check_params(args.type, params)
    body: dict[str, Any] = {"type": args.type, "host": args.host, "params": params}
    if args.timeout is not None:
        body["timeout_s"] = args.timeout
    if args.idempotency_key:
        body["idempotency_key"] = args.idempotency_key
    return body


# ---------------------------------------------------------------- commands


def cmd_jobs_run(args: argparse.Namespace, client: HostrelayClient, console: Console) -> int:
    job = client.create_job(build_job_request(args))
    if not args.wait:
        console.out(job["id"])
        console.err(f"queued {job['type']} job {job['id']} on {job['host']} ({job['state']})")
        return EXIT_OK
    return wait_and_report(job, client, console, follow_output=job["type"] == "exec")


def wait_and_report(
    job: dict[str, Any], client: HostrelayClient, console: Console, *, follow_output: bool
) -> int:
    line = output.StateLine(console.stderr, interactive=console.interactive)
    started = time.monotonic()

    def sink(stream: str, data: bytes) -> None:
        line.clear()
        console.write_output(stream, data)

    try:
        final = wait_for_job(
            client,
            job["id"],
            on_update=lambda current: line.update(current, time.monotonic() - started),
            sink=sink if follow_output else None,
            poll_s=console.poll_s,
            sleep=console.sleep,
        )
    finally:
        line.clear()
    # Streamed output owns stdout; the summary then goes to stderr.
    summary = output.job_summary(final, console.clock())
    if follow_output:
        console.err(summary)
    else:
        console.out(summary)
    return EXIT_OK if final["state"] == "SUCCEEDED" else EXIT_JOB_FAILED


def cmd_jobs_show(args: argparse.Namespace, client: HostrelayClient, console: Console) -> int:
    job = client.get_job(args.id)
    if args.json:
        console.out(json.dumps(job, indent=2, sort_keys=True))
    else:
        console.out(output.job_summary(job, console.clock()))
    return EXIT_OK


def cmd_jobs_list(args: argparse.Namespace, client: HostrelayClient, console: Console) -> int:
    jobs: list[dict[str, Any]] = []
    token: str | None = None
    while len(jobs) < args.limit:
        page = client.list_jobs(
            host=args.host,
            state=args.state,
            job_type=args.type,
            limit=min(200, args.limit - len(jobs)),
            next_token=token,
        )
        jobs += page["jobs"]
        token = page.get("next_token")
        if not token:
            break
    if args.json:
        console.out(json.dumps(jobs, indent=2, sort_keys=True))
    else:
        console.out(output.format_table(output.JOB_HEADERS, output.job_rows(jobs, console.clock())))
    return EXIT_OK


def cmd_jobs_cancel(args: argparse.Namespace, client: HostrelayClient, console: Console) -> int:
    job = client.cancel_job(args.id)
    if job["state"] == "CANCELED":
        console.out(f"{job['id']} CANCELED")
    else:
        console.out(f"{job['id']} {job['state']}: cancel requested")
    return EXIT_OK


def cmd_jobs_logs(args: argparse.Namespace, client: HostrelayClient, console: Console) -> int:
    print_output(
        client,
        args.id,
        console.write_output,
        follow=args.follow,
        poll_s=console.poll_s,
        sleep=console.sleep,
    )
    return EXIT_OK


def cmd_hosts_list(args: argparse.Namespace, client: HostrelayClient, console: Console) -> int:
    rows = output.host_rows(client.list_hosts(tags_of(args.tag)), console.clock())
    console.out(output.format_table(output.HOST_HEADERS, rows))
    return EXIT_OK


def cmd_hosts_tag(args: argparse.Namespace, client: HostrelayClient, console: Console) -> int:
    patch: dict[str, str | None] = dict(tags_of(args.tags))
    for key in args.remove or []:
        if key in patch:
            raise UsageError(f"tag {key} is both set and removed")
        patch[key] = None
    if not patch:
        raise UsageError("give tags to set (key=value) or --remove KEY")
    host = client.patch_host_tags(args.name, patch)
    console.out(f"{host['name']} {output.format_tags(host.get('tags'))}")
    return EXIT_OK


def cmd_hosts_show(args: argparse.Namespace, client: HostrelayClient, console: Console) -> int:
    console.out(output.host_summary(client.get_host(args.name), console.clock()))
    return EXIT_OK


def cmd_hosts_revoke(args: argparse.Namespace, client: HostrelayClient, console: Console) -> int:
    host = client.revoke_host(args.name)
    console.out(f"{host['name']} {host['state']}")
    return EXIT_OK


def cmd_tokens_create(args: argparse.Namespace, client: HostrelayClient, console: Console) -> int:
    body: dict[str, Any] = {"name": args.name, "scopes": sorted(set(args.scope))}
    if args.job_type:
        body["job_types"] = args.job_type
    if args.host:
        body["hosts"] = args.host
    if args.expires_in is not None:
        body["expires_in_s"] = args.expires_in
    token = client.create_token(body)
    expires = output.format_time(token.get("expires_at"), console.clock())
    console.err(
        f"token {token['id']} ({token['name']}; {','.join(token['scopes'])}; "
        f"expires {expires if token.get('expires_at') else 'never'}): "
        "store the secret below now, it is not shown again"
    )
    console.out(token["token"])
    return EXIT_OK


def cmd_tokens_bootstrap(
    args: argparse.Namespace, client: HostrelayClient | None, console: Console
) -> int:
    import hashlib
    import secrets

    token = "hr_" + secrets.token_urlsafe(32)
    console.out(f"token:  {token}")
    console.out(f"sha256: {hashlib.sha256(token.encode()).hexdigest()}")
    console.err(
        "keep the token secret; deploy with "
        "--parameter-overrides BootstrapAdminTokenSha256=<sha256>, then create real tokens"
    )
    return EXIT_OK


def cmd_tokens_list(args: argparse.Namespace, client: HostrelayClient, console: Console) -> int:
    tokens = client.list_tokens()
    if args.json:
        console.out(json.dumps(tokens, indent=2, sort_keys=True))
        return EXIT_OK
    rows = output.token_rows(tokens, console.clock())
    console.out(output.format_table(output.TOKEN_HEADERS, rows))
    return EXIT_OK


def cmd_tokens_revoke(args: argparse.Namespace, client: HostrelayClient, console: Console) -> int:
    token = client.revoke_token(args.id)
    console.out(f"{token['id']} revoked")
    return EXIT_OK


# ---------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hostrelay",
        description="Run jobs on hostrelay hosts and manage hosts and API tokens.",
        epilog="Environment: HOSTRELAY_URL (default http://127.0.0.1:3000), HOSTRELAY_TOKEN "
        "or HOSTRELAY_TOKEN_FILE.",
    )
    parser.add_argument("--version", action="version", version=f"hostrelay {cli_version()}")
    parser.add_argument("--url", help="API base URL (overrides HOSTRELAY_URL)")
    resources = parser.add_subparsers(dest="resource", required=True, metavar="RESOURCE")
    _add_jobs_commands(resources)
    add_runs_commands(resources)
    _add_hosts_commands(resources)
    _add_tokens_commands(resources)
    add_macct_commands(resources)
    add_audit_commands(resources)
    return parser


Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def _add_jobs_commands(resources: Subparsers) -> None:
    jobs = resources.add_parser("jobs", help="queue, follow and cancel jobs")
    job_cmds = jobs.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = job_cmds.add_parser(
        "run",
        help="queue a job",
        usage="hostrelay jobs run TYPE --host HOST [options] [-- COMMAND [ARG ...]]",
        description="Queue a job. For exec, everything after -- is the command (params.argv): "
        "hostrelay jobs run exec --host dc01 --wait -- /usr/bin/env A=B",
    )
    run.add_argument("type", help="job type, e.g. ping, exec, macct.repair")
    run.add_argument("--host", required=True, help="target host (or cloud)")
    run.add_argument(
        "--param",
        action="append",
        type=parse_param,
        metavar="KEY=VALUE",
        help="a parameter; VALUE is parsed as JSON when it can be (repeatable)",
    )
    run.add_argument(
        "--params-json", type=parse_params_json, metavar="JSON", help="parameters as an object"
    )
    run.add_argument("--timeout", type=positive_int, metavar="S", help="run time limit, seconds")
    run.add_argument("--idempotency-key", metavar="KEY", help="retry-safe key for this request")
    run.add_argument(
        "--wait",
        action="store_true",
        help="wait for the job to end; exit 1 unless it succeeded (exec: show its output)",
    )
    run.set_defaults(func=cmd_jobs_run)

    show = job_cmds.add_parser("show", help="show a job")
    show.add_argument("id")
    show.add_argument("--json", action="store_true", help="the job as JSON")
    show.set_defaults(func=cmd_jobs_show)

    listing = job_cmds.add_parser("list", help="list jobs")
    listing.add_argument("--host")
    listing.add_argument("--state", choices=STATES, type=str.upper)
    listing.add_argument("--type")
    listing.add_argument("--limit", type=positive_int, default=50)
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_jobs_list)

    cancel = job_cmds.add_parser("cancel", help="cancel a job")
    cancel.add_argument("id")
    cancel.set_defaults(func=cmd_jobs_cancel)

    logs = job_cmds.add_parser("logs", help="print a job's output")
    logs.add_argument("id")
    logs.add_argument("-f", "--follow", action="store_true", help="until the job has ended")
    logs.set_defaults(func=cmd_jobs_logs)


def _add_hosts_commands(resources: Subparsers) -> None:
    hosts = resources.add_parser("hosts", help="enroll, list, show, tag and revoke hosts")
    host_cmds = hosts.add_subparsers(dest="command", required=True, metavar="COMMAND")
    host_list = host_cmds.add_parser("list", help="list hosts")
    add_tag_argument(host_list, "only hosts with this tag (repeatable: all must match)")
    host_list.set_defaults(func=cmd_hosts_list)
    host_tag = host_cmds.add_parser(
        "tag", help="set or remove tags of a host (admin)", description="Tags are key=value."
    )
    host_tag.add_argument("name")
    host_tag.add_argument("tags", nargs="*", type=tag_argument, metavar="KEY=VALUE")
    host_tag.add_argument(
        "--remove", action="append", type=tag_key_argument, metavar="KEY", help="(repeatable)"
    )
    host_tag.set_defaults(func=cmd_hosts_tag)
    host_show = host_cmds.add_parser("show", help="show a host")
    host_show.add_argument("name")
    host_show.set_defaults(func=cmd_hosts_show)
    host_revoke = host_cmds.add_parser(
        "revoke", help="revoke a host: its certificate is deactivated and it cannot connect"
    )
    host_revoke.add_argument("name")
    host_revoke.set_defaults(func=cmd_hosts_revoke)
    add_host_enroll_command(host_cmds)


def _add_tokens_commands(resources: Subparsers) -> None:
    tokens = resources.add_parser("tokens", help="create, list and revoke API tokens")
    token_cmds = tokens.add_subparsers(dest="command", required=True, metavar="COMMAND")
    create = token_cmds.add_parser("create", help="create a token (its secret is shown once)")
    create.add_argument("name")
    create.add_argument("--scope", action="append", required=True, choices=SCOPES)
    create.add_argument(
        "--job-type",
        action="append",
        help="service tokens (required, repeatable): a job type it may create; '*' for all",
    )
    create.add_argument(
        "--host",
        action="append",
        help="service tokens (required, repeatable): a host it may target; '*' for all",
    )
    create.add_argument(
        "--expires-in", type=parse_duration, metavar="S", help="lifetime: seconds, or 12h, 30d"
    )
    create.set_defaults(func=cmd_tokens_create)
    bootstrap = token_cmds.add_parser(
        "bootstrap",
        help="make a first admin token for a new deployment (offline; prints its SHA-256)",
        description="Prints a new random admin token and the SHA-256 to pass as the template "
        "parameter BootstrapAdminTokenSha256. Nothing is sent anywhere.",
    )
    bootstrap.set_defaults(func=cmd_tokens_bootstrap, needs_token=False)
    token_list = token_cmds.add_parser(
        "list", help="list tokens: scopes, limits, expiry, last use (never the secrets)"
    )
    token_list.add_argument("--json", action="store_true", help="print JSON")
    token_list.set_defaults(func=cmd_tokens_list)
    token_revoke = token_cmds.add_parser("revoke", help="revoke a token")
    token_revoke.add_argument("id")
    token_revoke.set_defaults(func=cmd_tokens_revoke)


Command = Callable[[argparse.Namespace, HostrelayClient, Console], int]


def split_command(argv: list[str]) -> tuple[list[str], list[str]]:
    """Split at the first `--`: the CLI's own arguments, then an exec job's command.

    argparse cannot take a free-form command after options and a positional, so the
    command is cut off before parsing.
    """
    if "--" not in argv:
        return argv, []
    cut = argv.index("--")
    return argv[:cut], argv[cut + 1 :]


def main(
    argv: Sequence[str] | None = None,
    *,
    settings: CliSettings | None = None,
    console: Console | None = None,
) -> int:
    parser = build_parser()
    options, command_argv = split_command(sys.argv[1:] if argv is None else list(argv))
    args = parser.parse_args(options)
    args.argv = command_argv
    console = console or Console()
    settings = settings or CliSettings.from_env()
    if not getattr(args, "needs_token", True):
        return int(args.func(args, None, console))
    if not settings.token:
        console.err("hostrelay: set HOSTRELAY_TOKEN (or HOSTRELAY_TOKEN_FILE) to an API token")
        return EXIT_USAGE
    client = HostrelayClient(args.url or settings.url, settings.token)
    command: Command = args.func
    try:
        if command_argv and command is not cmd_jobs_run:
            raise UsageError("only `jobs run exec` takes a command after --")
        return command(args, client, console)
    except UsageError as exc:
        parser.print_usage(console.stderr)
        console.err(f"hostrelay: error: {exc}")
        return EXIT_USAGE
    except ApiError as exc:
        console.err(f"hostrelay: {exc.code}: {exc.message}")
        for detail in exc.details:
            console.err("  " + ", ".join(f"{k}={v}" for k, v in detail.items()))
        return EXIT_USAGE
    except KeyboardInterrupt:
        console.err("hostrelay: interrupted")
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
