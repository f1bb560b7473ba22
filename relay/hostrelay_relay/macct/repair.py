"""Write an image's captured machine secrets back into many computer accounts in one run."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from hostrelay_contract.names import account_name
from hostrelay_relay.macct.capture_store import CaptureStore
from hostrelay_relay.macct.computer_locks import computer_locks
from hostrelay_relay.macct.errors import (
    RepairFailed,
    SchoolNotFound,
    SearchBaseMissing,
    StepTimedOut,
)
from hostrelay_relay.macct.ldap_escape import compose_dn
from hostrelay_relay.macct.ldif import LdifRecord
from hostrelay_relay.macct.machine_accounts import AccountLookup, match_accounts, search_names
from hostrelay_relay.macct.run_limits import RunLimits
from hostrelay_relay.macct.samdb import DirectoryAccount, MachineSecrets, ModifyRun, SamDb
from hostrelay_relay.settings import RelaySettings

logger = logging.getLogger(__name__)

Status = Literal["updated", "unchanged", "would_update", "not_found", "failed"]
STATUSES: tuple[Status, ...] = ("updated", "unchanged", "would_update", "not_found", "failed")
MAX_WRITE_ROUNDS = 3
SETTLE_GRACE_S = 10.0
Progress = Callable[[int, int | None, str], None]


@dataclass(frozen=True)
class ComputerOutcome:
    computer: str
    status: Status
    dn: str | None = None
    reason: str | None = None

    def as_result(self) -> dict[str, Any]:
        result: dict[str, Any] = {"computer": self.computer, "status": self.status}
        if self.dn is not None:
            result["dn"] = self.dn
        if self.reason is not None:
            result["reason"] = self.reason
        return result


@dataclass(frozen=True)
class RepairTarget:
    """An account to overwrite; `dn` is the one the directory returned, never composed."""

    computer: str
    dn: str


def school_devices_dn(domain_dn: str, school: str) -> str:
    """linuxmuster layout: a school's computers live under OU=Devices,OU=<school>,OU=SCHOOLS."""
    return compose_dn([("OU", "Devices"), ("OU", school), ("OU", "SCHOOLS")], domain_dn)


def repair_machine_accounts(
    settings: RelaySettings,
    *,
    image: str,
    computers: Sequence[str],
    school: str | None,
    dry_run: bool,
    limits: RunLimits,
    progress: Progress,
) -> dict[str, Any]:
    """Give every computer the image's captured secrets; report each computer's outcome.

    Raises RepairFailed (with the full per-computer result) if any computer failed.
    """
    samdb = SamDb(settings.macct)
    total = len(computers)
    progress(0, total, "looking up computers")
    with computer_locks(settings.state_dir, computers, limits):
        captured = CaptureStore(settings.state_dir).load(image).secrets
        base_dn, accounts = _find_accounts(samdb, computers, school, limits)
        outcomes, targets = plan_repair(match_accounts(computers, accounts), captured, dry_run)
        if targets:
            limits.check("repair")  # the last point at which a cancel leaves nothing changed
            progress(total - len(targets), total, f"writing {len(targets)} accounts")
            try:
                apply_repair(
                    samdb,
                    targets,
                    captured=captured,
                    base_dn=base_dn,
                    limits=limits,
                    outcomes=outcomes,
                )
            except StepTimedOut as exc:
                exc.result = _result(image, school, dry_run, computers, outcomes)
                raise
    progress(total, total, "done")
    result = _result(image, school, dry_run, computers, outcomes)
    logger.info("macct repair finished", extra={"image": image, **result["counts"]})
    if result["counts"]["failed"]:
        raise RepairFailed(
            f"{result['counts']['failed']} of {total} computers could not be repaired",
            result=result,
        )
    return result


def plan_repair(
    lookups: dict[str, AccountLookup], captured: MachineSecrets, dry_run: bool
) -> tuple[dict[str, ComputerOutcome], list[RepairTarget]]:
    """Settle what needs no write; list the accounts whose secrets differ from the capture."""
    outcomes: dict[str, ComputerOutcome] = {}
    targets: list[RepairTarget] = []
    for computer, lookup in lookups.items():
        if not lookup.found:
            outcomes[computer] = ComputerOutcome(computer, "not_found")
        elif lookup.account is None:
            outcomes[computer] = ComputerOutcome(computer, "failed", lookup.dn, lookup.refusal)
        elif lookup.account.secrets() == captured:
            outcomes[computer] = ComputerOutcome(computer, "unchanged", lookup.dn)
        elif dry_run:
            outcomes[computer] = ComputerOutcome(computer, "would_update", lookup.dn)
        else:
            targets.append(RepairTarget(computer, lookup.account.dn))
    return outcomes, targets


def apply_repair(
    samdb: SamDb,
    targets: Sequence[RepairTarget],
    *,
    captured: MachineSecrets,
    base_dn: str,
    limits: RunLimits,
    outcomes: dict[str, ComputerOutcome],
) -> None:
    """Write all targets in one ldbmodify run, recording each computer's outcome.

    If the run fails, the accounts are re-read so every outcome is what the directory holds;
    the account ldbmodify named is failed and the rest are retried (a few rounds at most).
    A cancel is not honoured once writing starts; the deadline is.
    """
    write_limits = limits.without_cancel()
    pending = list(targets)
    for _ in range(MAX_WRITE_ROUNDS):
        records = [LdifRecord("replace", t.dn, captured.as_attributes()) for t in pending]
        try:
            run = samdb.replace_attributes(records, write_limits)
        except StepTimedOut:
            settle_limits = RunLimits(time.monotonic() + SETTLE_GRACE_S)
            _settle(
                samdb,
                pending,
                captured=captured,
                base_dn=base_dn,
                limits=settle_limits,
                run=None,
                outcomes=outcomes,
            )
            raise
        if run.ok and run.modified == len(pending):
            for target in pending:
                outcomes[target.computer] = ComputerOutcome(target.computer, "updated", target.dn)
            return
        remaining = _settle(
            samdb,
            pending,
            captured=captured,
            base_dn=base_dn,
            limits=write_limits,
            run=run,
            outcomes=outcomes,
        )
        if len(remaining) == len(pending):
            for target in remaining:
                outcomes[target.computer] = ComputerOutcome(
                    target.computer, "failed", target.dn, run.message
                )
            return
        pending = remaining
    for target in pending:
        outcomes[target.computer] = ComputerOutcome(
            target.computer, "failed", target.dn, "not written: ldbmodify kept failing"
        )


def _settle(
    samdb: SamDb,
    pending: Sequence[RepairTarget],
    *,
    captured: MachineSecrets,
    base_dn: str,
    limits: RunLimits,
    run: ModifyRun | None,
    outcomes: dict[str, ComputerOutcome],
) -> list[RepairTarget]:
    """Re-read `pending`; record those now updated or failed; return those still to write."""
    try:
        current = samdb.find_accounts([account_name(t.computer) for t in pending], base_dn, limits)
    except StepTimedOut:
        for target in pending:
            outcomes[target.computer] = ComputerOutcome(
                target.computer, "failed", target.dn, "state unknown: stopped at the deadline"
            )
        return []
    by_dn = {account.dn.lower(): account for account in current}
    failed_dn = run.failed_dn.lower() if run is not None and run.failed_dn else None
    remaining: list[RepairTarget] = []
    for target in pending:
        account = by_dn.get(target.dn.lower())
        if account is not None and account.secrets() == captured:
            outcomes[target.computer] = ComputerOutcome(target.computer, "updated", target.dn)
        elif run is not None and target.dn.lower() == failed_dn:
            outcomes[target.computer] = ComputerOutcome(
                target.computer, "failed", target.dn, run.message
            )
        elif account is None:
            outcomes[target.computer] = ComputerOutcome(
                target.computer, "failed", target.dn, "account vanished during the repair"
            )
        elif run is None:
            outcomes[target.computer] = ComputerOutcome(
                target.computer, "failed", target.dn, "not written before the job deadline"
            )
        else:
            remaining.append(target)
    return remaining


def _find_accounts(
    samdb: SamDb, computers: Sequence[str], school: str | None, limits: RunLimits
) -> tuple[str, list[DirectoryAccount]]:
    """Search the whole domain, or only the school's device OU; return the base and accounts."""
    domain_dn = samdb.domain_dn(limits)
    base_dn = domain_dn if school is None else school_devices_dn(domain_dn, school)
    try:
        return base_dn, samdb.find_accounts(search_names(computers), base_dn, limits)
    except SearchBaseMissing as exc:
        if school is None:
            raise
        raise SchoolNotFound(f"school {school} has no device OU ({base_dn})") from exc


def _result(
    image: str,
    school: str | None,
    dry_run: bool,
    computers: Sequence[str],
    outcomes: dict[str, ComputerOutcome],
) -> dict[str, Any]:
    ordered = [outcomes[c] for c in computers if c in outcomes]
    counts = {status: sum(1 for o in ordered if o.status == status) for status in STATUSES}
    return {
        "image": image,
        "school": school,
        "dry_run": dry_run,
        "counts": counts,
        "computers": [outcome.as_result() for outcome in ordered],
    }
