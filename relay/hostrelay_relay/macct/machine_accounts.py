"""Which directory accounts macct may read or overwrite: workstation computers, never DCs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hostrelay_contract.names import account_name
from hostrelay_relay.macct.samdb import DirectoryAccount

WORKSTATION_TRUST_ACCOUNT = 0x1000
SERVER_TRUST_ACCOUNT = 0x2000
PARTIAL_SECRETS_ACCOUNT = 0x04000000


def refusal_reason(account: DirectoryAccount) -> str | None:
    """Why macct must not touch this account, or None for a plain workstation account."""
    if "computer" not in account.object_classes:
        return "not a computer account"
    if account.user_account_control & SERVER_TRUST_ACCOUNT:
        return "a domain controller account"
    if account.user_account_control & PARTIAL_SECRETS_ACCOUNT:
        return "a read-only domain controller account"
    if not account.user_account_control & WORKSTATION_TRUST_ACCOUNT:
        return "not a workstation trust account"
    return None


@dataclass(frozen=True)
class AccountLookup:
    """What a search found for one computer: the usable account, or why there is none."""

    computer: str
    account: DirectoryAccount | None = None
    refusal: str | None = None
    dn: str | None = None

    @property
    def found(self) -> bool:
        return self.account is not None or self.refusal is not None


def search_names(computers: Sequence[str]) -> list[str]:
    """sAMAccountNames to search: `NAME$`, and `NAME` too so a user named NAME is reported."""
    return [name for computer in computers for name in (account_name(computer), computer)]


def match_accounts(
    computers: Sequence[str], accounts: Sequence[DirectoryAccount]
) -> dict[str, AccountLookup]:
    """Pair every computer with the account a search for `search_names(computers)` returned."""
    by_name: dict[str, list[DirectoryAccount]] = {}
    for account in accounts:
        by_name.setdefault(account.sam_account_name.upper(), []).append(account)
    return {computer: _match_one(computer, by_name) for computer in computers}


def _match_one(computer: str, by_name: dict[str, list[DirectoryAccount]]) -> AccountLookup:
    machines = by_name.get(account_name(computer), [])
    if len(machines) > 1:
        return AccountLookup(computer, refusal=f"{len(machines)} accounts share its name")
    if machines:
        account = machines[0]
        reason = refusal_reason(account)
        if reason is not None:
            return AccountLookup(computer, refusal=reason, dn=account.dn)
        return AccountLookup(computer, account=account, dn=account.dn)
    others = by_name.get(computer, [])
    if others:
        reason = refusal_reason(others[0]) or "its account name does not end with '$'"
        return AccountLookup(computer, refusal=reason, dn=others[0].dn)
    return AccountLookup(computer)
