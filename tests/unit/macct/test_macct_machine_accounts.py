"""Which accounts macct may touch: workstation computers only, never users or (RO)DCs."""

from __future__ import annotations

from hostrelay_relay.macct.machine_accounts import match_accounts, search_names
from hostrelay_relay.macct.samdb import DirectoryAccount

COMPUTER = frozenset({"top", "person", "organizationalperson", "user", "computer"})
USER = frozenset({"top", "person", "organizationalperson", "user"})


def _account(sam: str, classes: frozenset[str] = COMPUTER, uac: int = 0x1000) -> DirectoryAccount:
    return DirectoryAccount(f"CN={sam.rstrip('$')},DC=t", sam, classes, uac, b"p", b"s")


def test_search_covers_the_machine_account_and_a_same_named_user() -> None:
    assert search_names(["PC01", "PC02"]) == ["PC01$", "PC01", "PC02$", "PC02"]


def test_each_computer_gets_its_workstation_account_or_a_reason() -> None:
    # Given what a search returned for six names
    accounts = [
        _account("pc01$"),  # a workstation (the directory keeps its own case)
        _account("DC01$", uac=0x2000 | 0x80000),  # a writable DC
        _account("RODC1$", uac=0x04001000),  # a read-only DC
        _account("ALICE", USER, uac=0x200),  # a user with the plain name
        _account("ODD$", uac=0x200),  # a computer object without the workstation flag
        _account("PC09", uac=0x1000),  # a workstation whose name lacks the '$'
    ]
    names = ["PC01", "DC01", "RODC1", "ALICE", "ODD", "PC09", "GHOST"]
    # When they are matched
    found = match_accounts(names, accounts)
    # Then only PC01 is usable and every other name says why not
    assert found["PC01"].account is not None and found["PC01"].refusal is None
    assert found["DC01"].refusal == "a domain controller account"
    assert found["RODC1"].refusal == "a read-only domain controller account"
    assert found["ALICE"].refusal == "not a computer account"
    assert found["ODD"].refusal == "not a workstation trust account"
    assert found["PC09"].refusal == "its account name does not end with '$'"
    assert not found["GHOST"].found
    assert all(found[name].found for name in names[:-1])


def test_a_machine_account_wins_over_a_user_with_the_plain_name() -> None:
    found = match_accounts(["PC01"], [_account("PC01", USER, 0x200), _account("PC01$")])
    assert found["PC01"].account is not None and found["PC01"].dn == "CN=PC01,DC=t"


def test_two_accounts_with_one_name_are_refused() -> None:
    found = match_accounts(["PC01"], [_account("PC01$"), _account("pc01$")])
    assert found["PC01"].account is None
    assert found["PC01"].refusal == "2 accounts share its name"
