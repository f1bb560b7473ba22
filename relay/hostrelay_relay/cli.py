"""The `hostrelay-relay` command: run the daemon, show its status, or check the host."""

from __future__ import annotations

import argparse
import dataclasses
import fcntl
import json
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from hostrelay_relay import __version__
from hostrelay_relay.ledger import Ledger, LedgerSummary
from hostrelay_relay.log_format import configure_logging
from hostrelay_relay.settings import RelaySettings, load_settings

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2
STATUS_TIMEOUT_S = 3.0
LEDGER_SUMMARY_FIELDS = tuple(field.name for field in dataclasses.fields(LedgerSummary))


def _config_problem(exc: ValidationError | OSError | ValueError) -> str:
    """What is wrong with the config, naming keys but never echoing values (secrets)."""
    if isinstance(exc, ValidationError):
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'config'}: {err['msg']}"
            for err in exc.errors(include_url=False, include_input=False)
        )
        return f"invalid relay configuration: {problems}"
    return f"cannot read relay configuration: {exc}"  # unreadable file, TOML syntax error


def _load(config: Path | None) -> RelaySettings:
    try:
        return load_settings(config)
    except (ValidationError, OSError, ValueError) as exc:
        raise SystemExit(_fail(_config_problem(exc), EXIT_CONFIG)) from None


def _say(text: str) -> None:
    print(text)  # noqa: T201 - the command's output for the person who ran it


def _fail(message: str, code: int) -> int:
    print(f"hostrelay-relay: {message}", file=sys.stderr)  # noqa: T201 - a CLI speaks
    return code


def cmd_run(args: argparse.Namespace) -> int:
    settings = _load(args.config)
    configure_logging(settings.log_level, json_lines=not args.plain_logs)
    from hostrelay_relay.daemon import RelayAlreadyRunning, RelayDaemon

    try:
        daemon = RelayDaemon(settings)
    except (OSError, ValueError) as exc:
        return _fail(f"cannot load the envelope public key: {exc}", EXIT_CONFIG)
    try:
        return daemon.run_until_signal()
    except RelayAlreadyRunning as exc:
        return _fail(str(exc), EXIT_FAILED)


def _relay_pid(state_dir: Path) -> int | None:
    """The pid of the relay holding the state directory's lock, or None when none does."""
    lock_path = state_dir / "relay.lock"
    try:
        handle = lock_path.open("rb")
    except OSError:
        return None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = handle.read().decode(errors="replace").strip()
            return int(text) if text.isdigit() else -1
        return None


def _ago(when: float | None) -> str:
    if when is None:
        return "never"
    stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(when))
    return f"{stamp} ({max(0, int(time.time() - when))} s ago)"


def _live_status(address: str) -> dict[str, Any] | None:
    """The running relay's own /status (health endpoint), or None when it does not answer."""
    import http.client

    from hostrelay_relay.health_server import parse_listen

    try:
        host, port = parse_listen(address)
        connection = http.client.HTTPConnection(host, port, timeout=STATUS_TIMEOUT_S)
        try:
            connection.request("GET", "/status")
            response = connection.getresponse()
            body = json.loads(response.read()) if response.status == 200 else None
        finally:
            connection.close()
    except (OSError, ValueError, http.client.HTTPException):
        return None
    return body if isinstance(body, dict) else None


def _say_live(live: dict[str, Any]) -> None:
    _say(f"broker:       {'connected' if live.get('connected') else 'NOT connected'}")
    _say(f"uptime:       {live.get('uptime_s')} s")
    _say(f"heartbeat:    last acknowledged {_ago(live.get('last_heartbeat_ack_at'))}")
    for job in live.get("running_jobs") or []:
        _say(f"running:      {job['job_id']} ({job['type']}) since {_ago(job['started_at'])}")
    rejected = (live.get("counts") or {}).get("envelopes_rejected") or {}
    if rejected:
        listed = ", ".join(f"{reason} {count}" for reason, count in sorted(rejected.items()))
        _say(f"rejected:     {listed} (since start)")


def cmd_status(args: argparse.Namespace) -> int:
    settings = _load(args.config)
    if not settings.ledger_path.exists():
        return _fail(f"no ledger at {settings.ledger_path}: the relay has not run yet", EXIT_FAILED)
    try:
        ledger = Ledger(settings.ledger_path, read_only=True)
        summary = ledger.summary()
        address = ledger.get_meta("health_address")
        ledger.close()
    except sqlite3.Error as exc:
        return _fail(f"cannot read {settings.ledger_path}: {exc}", EXIT_FAILED)
    pid = _relay_pid(settings.state_dir)
    # A running relay answers for itself (connection, running jobs); else the ledger speaks.
    live = _live_status(address) if pid is not None and address else None
    if live is not None and set(LEDGER_SUMMARY_FIELDS) <= live.keys():
        summary = LedgerSummary(**{key: live[key] for key in LEDGER_SUMMARY_FIELDS})
    if args.json:
        body = {"host": settings.host, "relay_pid": pid, **dataclasses.asdict(summary)}
        body |= {"source": "ledger"} if live is None else {**live, "source": "relay"}
        _say(json.dumps(body, indent=2))
        return EXIT_OK
    relay = "not running" if pid is None else f"running (pid {pid})"
    oldest = (
        "" if summary.oldest_outbox_at is None else f", oldest {_ago(summary.oldest_outbox_at)}"
    )
    _say(f"host:         {settings.host}")
    _say(f"relay:        {relay}")
    _say(
        f"jobs:         {summary.accepted} queued, {summary.running} running, "
        f"{summary.finished} finished"
    )
    _say(f"outbox:       {summary.outbox_depth} events not yet acknowledged{oldest}")
    _say(f"last connect: {_ago(summary.last_connect_at)}")
    if live is not None:
        _say_live(live)
    return EXIT_OK


def cmd_doctor(args: argparse.Namespace) -> int:
    # Imported here: the x509 machinery costs the long-running daemon memory it never uses.
    from hostrelay_relay.doctor import Check, run_checks

    try:
        settings = load_settings(args.config)
    except (ValidationError, OSError, ValueError) as exc:
        checks = [Check("configuration", False, _config_problem(exc))]
    else:
        checks = [Check("configuration", True, f"host {settings.host}"), *run_checks(settings)]
    failed = [check for check in checks if not check.ok]
    if args.json:
        _say(json.dumps([check._asdict() for check in checks], indent=2))
    else:
        for check in checks:
            _say(f"{'ok  ' if check.ok else 'FAIL'}  {check.name}: {check.detail}")
        _say(f"{len(failed)} of {len(checks)} checks failed" if failed else "all checks passed")
    return EXIT_FAILED if failed else EXIT_OK


def cmd_enroll(args: argparse.Namespace) -> int:
    """Make this host's key here, send a CSR with the one-shot token, write the config."""
    from hostrelay_relay.enrollment import EnrollmentRefused, EnrollmentRequest, enroll

    token = sys.stdin.readline().strip() if args.token_stdin else ""
    request = EnrollmentRequest(
        url=args.url,
        host=args.host,
        token=token,
        config_dir=args.config_dir,
        state_dir=args.state_dir,
    )
    try:
        config_path = enroll(request)
    except EnrollmentRefused as exc:
        return _fail(f"enrollment refused: {exc}; nothing on this host was changed", EXIT_FAILED)
    except OSError as exc:
        return _fail(f"cannot write the relay configuration: {exc}", EXIT_FAILED)
    _say(f"enrolled {args.host}: wrote {config_path} (key, certificate and CA beside it)")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hostrelay-relay", description="Runs signed hostrelay jobs on this host."
    )
    parser.add_argument("--version", action="version", version=__version__)
    commands = parser.add_subparsers(dest="command", required=True)

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument(
            "--config",
            type=Path,
            default=None,
            help="relay config file (default: $HOSTRELAY_RELAY_CONFIG or "
            "/etc/hostrelay/relay.toml)",
        )
        return sub

    run = add("run", "run the relay in the foreground until SIGTERM or Ctrl-C")
    run.add_argument("--plain-logs", action="store_true", help="key=value logs instead of JSON")
    run.set_defaults(handler=cmd_run)
    status = add("status", "show jobs, outbox depth and last connect from the ledger")
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(handler=cmd_status)
    doctor = add("doctor", "check config, certificates, keys, broker and permissions")
    doctor.add_argument("--json", action="store_true", help="print JSON")
    doctor.set_defaults(handler=cmd_doctor)
    enroll = commands.add_parser(
        "enroll",
        help="enroll this host with a one-shot token (the enrollment script runs this)",
        description="Generate this host's private key here (it never leaves the host), send a "
        "CSR with the one-shot token, and write relay.toml, the certificate, the CA and the "
        "envelope key (0600 files in a 0700 directory). Refused: nothing is written.",
    )
    enroll.add_argument("--url", required=True, help="control plane API URL")
    enroll.add_argument("--host", required=True, help="this host's enrolled name")
    enroll.add_argument(
        "--token-stdin",
        action="store_true",
        required=True,
        help="read the enrollment token from standard input (never from the command line)",
    )
    enroll.add_argument("--config-dir", type=Path, default=Path("/etc/hostrelay"))
    enroll.add_argument("--state-dir", type=Path, default=Path("/var/lib/hostrelay"))
    enroll.set_defaults(handler=cmd_enroll)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
