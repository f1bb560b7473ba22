"""ldap.group_members against a real slapd: add/remove in one modify, dry runs, clean refusals."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from hostrelay_local.slapd import SlapdServer, team_dn, user_dn
from hostrelay_relay.handlers.base import JobError
from hostrelay_relay.handlers.ldap_group_members import LdapGroupMembersHandler
from tests.integration.ldap.conftest import SHAPE
from tests.integration.ldap.ldap_support import members_in_directory, relay_settings

pytestmark = pytest.mark.integration
RunGroupMembers = Callable[..., dict[str, Any]]
TEAM = team_dn(SHAPE, 2)  # members: user00050 … user00074


def params(server: SlapdServer, **overrides: Any) -> dict[str, Any]:
    return {
        "url": server.url,
        "base_dn": server.base_dn,
        "credential": "svc",
        "group_dn": TEAM,
        **overrides,
    }


def test_members_are_added_and_removed_in_one_change(
    fresh_directory: SlapdServer, tmp_path: Path, run_group_members: RunGroupMembers
) -> None:
    # Given a team of 25 users
    settings = relay_settings(tmp_path, fresh_directory)
    before = members_in_directory(fresh_directory, TEAM)

    # When two outsiders are added and one member is removed
    result = run_group_members(
        settings,
        **params(
            fresh_directory,
            add=[user_dn(SHAPE, 1), user_dn(SHAPE, 2)],
            remove=[user_dn(SHAPE, 50)],
        ),
    )

    # Then the directory holds exactly that change, and the result says what was done
    after = members_in_directory(fresh_directory, TEAM)
    assert after == (before | {user_dn(SHAPE, 1), user_dn(SHAPE, 2)}) - {user_dn(SHAPE, 50)}
    assert result["applied"] is True
    assert result["add"] == [user_dn(SHAPE, 1), user_dn(SHAPE, 2)]
    assert result["remove"] == [user_dn(SHAPE, 50)]


def test_dry_run_reports_the_change_and_makes_none(
    fresh_directory: SlapdServer, tmp_path: Path, run_group_members: RunGroupMembers
) -> None:
    settings = relay_settings(tmp_path, fresh_directory)
    before = members_in_directory(fresh_directory, TEAM)

    result = run_group_members(
        settings,
        **params(
            fresh_directory,
            add=[user_dn(SHAPE, 1), user_dn(SHAPE, 51)],
            remove=[user_dn(SHAPE, 52), user_dn(SHAPE, 3)],
            dry_run=True,
        ),
    )

    assert members_in_directory(fresh_directory, TEAM) == before
    assert result["applied"] is False
    assert result["add"] == [user_dn(SHAPE, 1)]
    assert result["already_members"] == [user_dn(SHAPE, 51)]
    assert result["remove"] == [user_dn(SHAPE, 52)]
    assert result["not_members"] == [user_dn(SHAPE, 3)]


def test_differently_spelled_dns_are_recognised_as_members(
    fresh_directory: SlapdServer, tmp_path: Path, run_group_members: RunGroupMembers
) -> None:
    settings = relay_settings(tmp_path, fresh_directory)
    spelled = user_dn(SHAPE, 60).upper().replace(",", ", ")

    result = run_group_members(settings, **params(fresh_directory, remove=[spelled]))

    assert result["remove"] == [user_dn(SHAPE, 60)]
    assert user_dn(SHAPE, 60) not in members_in_directory(fresh_directory, TEAM)


def test_adding_a_missing_entry_changes_nothing(
    fresh_directory: SlapdServer, tmp_path: Path, run_group_members: RunGroupMembers
) -> None:
    # Given a request that removes a real member and adds a DN that does not exist
    settings = relay_settings(tmp_path, fresh_directory)
    before = members_in_directory(fresh_directory, TEAM)
    ghost = f"uid=ghost,ou=dept01,ou=people,{SHAPE.base_dn}"

    # When it runs
    with pytest.raises(JobError) as failure:
        run_group_members(
            settings, **params(fresh_directory, add=[ghost], remove=[user_dn(SHAPE, 50)])
        )

    # Then it fails naming the missing entry, and the group is as it was
    assert failure.value.code == "ldap_no_such_object"
    assert "uid=ghost" in failure.value.message
    assert members_in_directory(fresh_directory, TEAM) == before


def test_only_groups_can_be_changed(
    directory: SlapdServer, tmp_path: Path, run_group_members: RunGroupMembers
) -> None:
    settings = relay_settings(tmp_path, directory)
    with pytest.raises(JobError) as failure:
        run_group_members(
            settings,
            **params(
                directory, group_dn=f"ou=dept01,ou=people,{SHAPE.base_dn}", add=[user_dn(SHAPE, 1)]
            ),
        )
    assert failure.value.code == "ldap_not_group"


def test_a_missing_group_fails_clearly(
    directory: SlapdServer, tmp_path: Path, run_group_members: RunGroupMembers
) -> None:
    settings = relay_settings(tmp_path, directory)
    with pytest.raises(JobError) as failure:
        run_group_members(
            settings,
            **params(
                directory, group_dn=f"cn=nope,ou=groups,{SHAPE.base_dn}", add=[user_dn(SHAPE, 1)]
            ),
        )
    assert failure.value.code == "ldap_no_such_object"


def test_a_service_account_without_write_access_is_refused(
    fresh_directory: SlapdServer, tmp_path: Path, run_group_members: RunGroupMembers
) -> None:
    # Given a group outside ou=groups, where the relay's account may only read
    settings = relay_settings(tmp_path, fresh_directory)
    outside = f"cn=admins,ou=services,{SHAPE.base_dn}"
    fresh_directory.modify(
        f"dn: {outside}\nchangetype: add\nobjectClass: groupOfNames\ncn: admins\n"
        f"member: {user_dn(SHAPE, 1)}\n\n"
    )

    with pytest.raises(JobError) as failure:
        run_group_members(
            settings, **params(fresh_directory, group_dn=outside, add=[user_dn(SHAPE, 2)])
        )

    assert failure.value.code == "ldap_access"
    assert members_in_directory(fresh_directory, outside) == {user_dn(SHAPE, 1)}


@pytest.mark.parametrize(
    ("override", "complaint"),
    [
        ({"add": [], "remove": []}, "nothing to do"),
        ({"add": ["uid=x,dc=elsewhere,dc=com"]}, "not below base_dn"),
        ({"add": [user_dn(SHAPE, 1)], "remove": [user_dn(SHAPE, 1).upper()]}, "both added"),
        ({"add": ["not a dn"]}, "DN"),
        ({"add": [TEAM]}, "itself"),
    ],
)
def test_invalid_changes_are_rejected_before_the_job_runs(
    directory: SlapdServer, tmp_path: Path, override: dict[str, Any], complaint: str
) -> None:
    handler = LdapGroupMembersHandler(relay_settings(tmp_path, directory))
    with pytest.raises(ValidationError, match=complaint):
        handler.validate(params(directory, **override))
