"""A relay credential goes only to the servers its config lists, with TLS verified unless the
config itself says otherwise: a job can pick among them, never add one or weaken TLS."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from hostrelay_contract.jobs.ldap import LdapSyncParams
from hostrelay_relay.directory.connection import connection_spec
from hostrelay_relay.directory.errors import DirectoryError
from hostrelay_relay.handlers.ldap_group_members import LdapGroupMembersHandler
from hostrelay_relay.handlers.ldap_sync import LdapSyncHandler
from hostrelay_relay.settings import LdapCredential, LdapSettings, RelaySettings

DC = "ldaps://dc01.corp.example"
DC2 = "ldaps://dc02.corp.example:1636"


def settings(tmp_path: Path, *, verify_tls: bool = True) -> RelaySettings:
    credential = LdapCredential(
        bind_dn="cn=svc,dc=corp", password="s3cret", urls=[DC, DC2], verify_tls=verify_tls
    )
    return RelaySettings(
        host="dc01", state_dir=tmp_path, ldap=LdapSettings(credentials={"svc": credential})
    )


def job(**overrides: Any) -> dict[str, Any]:
    return {"connector": "corp", "base_dn": "dc=corp", "credential": "svc", **overrides}


def spec_for(relay: RelaySettings, **overrides: Any) -> Any:
    params = LdapSyncParams.model_validate(job(**overrides))
    return connection_spec(params, relay.ldap.credentials["svc"], relay.ldap)


def test_a_job_without_url_gets_the_credentials_first_server_with_verified_tls(
    tmp_path: Path,
) -> None:
    spec = spec_for(settings(tmp_path))
    assert (spec.url, spec.verify_tls) == (DC, True)


@pytest.mark.parametrize(
    "asked", [DC2, "LDAPS://DC02.corp.example:1636/", "ldaps://dc01.corp.example:636"]
)
def test_a_job_may_pick_any_listed_server_however_it_spells_it(tmp_path: Path, asked: str) -> None:
    spec = spec_for(settings(tmp_path), url=asked)
    assert spec.url in (DC, DC2)
    assert spec.verify_tls is True


@pytest.mark.parametrize(
    "elsewhere",
    [
        "ldaps://attacker.example",
        "ldaps://dc01.corp.example:1636",  # right host, another port
        "ldap://dc01.corp.example",  # right host, plain LDAP
        "ldaps://127.0.0.1:636",
    ],
)
@pytest.mark.parametrize("handler_class", [LdapSyncHandler, LdapGroupMembersHandler])
def test_a_job_naming_another_server_is_rejected_at_intake(
    tmp_path: Path, elsewhere: str, handler_class: type[Any]
) -> None:
    # Given a relay whose credential svc is for dc01 and dc02 only
    handler = handler_class(settings(tmp_path))
    params = job(url=elsewhere)
    if handler_class is LdapGroupMembersHandler:
        params = {**params, "group_dn": "cn=g,dc=corp", "add": ["uid=a,dc=corp"]}
        params.pop("connector")

    # When a job names the credential with another server
    # Then it is rejected before it runs (nothing is ever sent there), and the reason says why
    with pytest.raises(ValueError, match="may only be sent to"):
        handler.validate(params)


def test_the_run_refuses_the_same_way_if_intake_was_skipped(tmp_path: Path) -> None:
    with pytest.raises(DirectoryError) as refused:
        spec_for(settings(tmp_path), url="ldaps://attacker.example")
    assert refused.value.code == "ldap_credential"
    assert "s3cret" not in refused.value.message


def test_a_job_cannot_turn_tls_verification_off(tmp_path: Path) -> None:
    handler = LdapSyncHandler(settings(tmp_path))
    with pytest.raises(ValidationError, match="only the relay config"):
        handler.validate(job(url=DC, verify_tls=False))


def test_only_the_relay_config_turns_verification_off_and_a_job_can_turn_it_back_on(
    tmp_path: Path,
) -> None:
    relaxed = settings(tmp_path, verify_tls=False)
    assert spec_for(relaxed).verify_tls is False
    assert spec_for(relaxed, verify_tls=True).verify_tls is True


@pytest.mark.parametrize(
    ("urls", "why"),
    [([], "at least 1"), (["http://dc01"], "scheme"), (["ldaps://u:p@dc01"], "credentials")],
)
def test_a_credential_must_name_the_servers_it_is_for(urls: list[str], why: str) -> None:
    with pytest.raises(ValidationError, match=why):
        LdapCredential(bind_dn="cn=x", password="p", urls=urls)
    with pytest.raises(ValidationError, match="urls"):
        LdapCredential.model_validate({"bind_dn": "cn=x", "password": "p"})
