"""connector.sync of an Authentik instance on a relay: graph of nested groups, changes only,
deletes, paging, throttling, errors, and the token kept out of everything sent."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from hostrelay_relay.handlers.base import JobError
from hostrelay_relay.handlers.connector_group_members import ConnectorGroupMembersHandler
from hostrelay_relay.metrics import RelayMetrics
from tests.fakes.authentik import AuthentikFake, AuthentikState
from tests.integration.sources.conftest import AUTHENTIK_TOKEN, RelaySource, group_uuid

pytestmark = pytest.mark.integration

STAFF, TEACHERS, ADMINS, LAB = (group_uuid(n) for n in (1, 2, 3, 4))


def arrange(state: AuthentikState) -> dict[str, str]:
    """Four users (one a service account) and a group graph where LAB has two parents:
    STAFF <- TEACHERS <- LAB and STAFF <- ADMINS <- LAB."""
    ids = {
        "alice": state.add_user(1, "alice"),
        "bob": state.add_user(2, "bob"),
        "carol": state.add_user(3, "carol"),
        "backup": state.add_user(4, "backup-bot", user_type="service_account"),
    }
    state.add_group(STAFF, "staff", [1])
    state.add_group(TEACHERS, "teachers", [2], parents=[STAFF])
    state.add_group(ADMINS, "admins", [4], parents=[STAFF])
    state.add_group(LAB, "lab", [3], parents=[TEACHERS, ADMINS])
    return ids


def test_a_first_run_sends_users_and_the_group_graph(
    authentik: AuthentikFake, authentik_relay: RelaySource, caplog: pytest.LogCaptureFixture
) -> None:
    # Given an Authentik instance with nested groups, read two objects a page, throttled once
    ids = arrange(authentik.state)
    authentik.state.throttle_next = 1
    authentik.state.retry_after = "0"
    caplog.set_level(logging.DEBUG)
    # When the relay runs connector.sync
    result, published = authentik_relay.run(authentik_relay.params("authentik", page_size=2))
    # Then every user and group was sent, after waiting out the 429
    assert authentik.state.throttled == 1
    assert result["by_kind"] == {"authentik.group": 4, "authentik.user": 4}
    assert (result["created"], result["deleted"], result["total"]) == (8, 0, 8)
    # And it paged: groups 2 pages, users 2 pages, plus the retried call
    assert result["api_calls"] == authentik.state.calls() == 2 + 2 + 1
    upserts = published.upserts()
    # And LAB keeps both parents (a graph), and its members
    lab = upserts[LAB]
    assert lab["member_of"] == sorted([TEACHERS, ADMINS])
    assert lab["members"] == [ids["carol"]]
    assert sorted(upserts[STAFF]["members"]) == sorted([ids["alice"], TEACHERS, ADMINS])
    # And a user knows the groups it is in through nesting
    carol = upserts[ids["carol"]]
    assert carol["member_of"] == [LAB]
    assert carol["attributes"]["effective_groups"] == sorted([LAB, TEACHERS, ADMINS, STAFF])
    # And service accounts are users, marked as such
    backup = upserts[ids["backup"]]
    assert backup["attributes"]["service_account"] is True
    assert backup["attributes"]["type"] == "service_account"
    # And the token is in nothing it sent, returned or logged
    assert AUTHENTIK_TOKEN not in repr(published.events) + repr(result) + caplog.text


def test_a_second_run_sends_only_changes_and_deletes(
    authentik: AuthentikFake, authentik_relay: RelaySource
) -> None:
    # Given a first run
    ids = arrange(authentik.state)
    authentik_relay.run(authentik_relay.params("authentik"))
    # When bob is deleted, carol joins STAFF, and the relay runs again
    authentik.state.delete_user(2)
    authentik.state.members[STAFF].add(3)
    result, published = authentik_relay.run(authentik_relay.params("authentik"))
    # Then bob is a delete; carol, STAFF and TEACHERS (lost bob) are updates; nothing else sent
    assert published.deletes() == [ids["bob"]]
    assert set(published.upserts()) == {ids["carol"], STAFF, TEACHERS}
    assert (result["created"], result["updated"], result["deleted"]) == (0, 3, 1)
    assert result["unchanged"] == 4
    # And a third run with nothing changed sends nothing
    result, published = authentik_relay.run(authentik_relay.params("authentik"))
    assert published.events == [] and result["unchanged"] == result["total"] == 7


@pytest.mark.parametrize(
    ("arrange_failure", "code"),
    [
        (lambda fake: setattr(fake.state, "token", "another-token"), "bad_credentials"),
        (lambda fake: fake.state.denied.add("/api/v3/core/users/"), "permission_denied"),
        (lambda fake: fake.stop(), "source_unreachable"),
    ],
    ids=["bad-token", "missing-permission", "unreachable"],
)
def test_a_source_failure_is_a_clear_job_error(
    authentik: AuthentikFake, authentik_relay: RelaySource, arrange_failure: Any, code: str
) -> None:
    # Given an instance that refuses the token, lacks a permission, or is gone
    arrange(authentik.state)
    arrange_failure(authentik)
    # When the relay runs connector.sync, then the job fails with that code and names the call
    with pytest.raises(JobError) as failure:
        authentik_relay.run(authentik_relay.params("authentik"))
    assert failure.value.code == code
    assert failure.value.result == {"connector": "conn-1", "kind": "authentik"}
    assert AUTHENTIK_TOKEN not in failure.value.message


def test_a_token_file_others_can_read_is_refused(
    authentik: AuthentikFake, authentik_relay: RelaySource
) -> None:
    # Given the token file readable by everyone
    arrange(authentik.state)
    authentik_relay.credential_file.chmod(0o644)
    # When the relay runs, then it refuses before sending anything
    with pytest.raises(JobError) as failure:
        authentik_relay.run(authentik_relay.params("authentik"))
    assert failure.value.code == "credential_unavailable"
    assert "0644" in failure.value.message
    assert authentik.state.calls() == 0


@pytest.mark.parametrize(
    "change",
    [
        {"credential_file": "/etc/shadow"},
        {"source": {"kind": "authentik", "url": "https://collector.example.test"}},
        {"source": {"kind": "authentik", "url": "http://127.0.0.1:1"}},
        {"credential_file": "relative/token"},
        {"extra": 1},
    ],
    ids=["file-outside-dir", "other-origin", "plain-http", "relative-file", "unknown-field"],
)
def test_intake_refuses_params_that_would_send_a_token_elsewhere(
    authentik_relay: RelaySource, change: dict[str, Any]
) -> None:
    # Given params pointing the token somewhere the relay config does not allow
    params = {**authentik_relay.params("authentik"), **change}
    # When the relay validates the job, then it is refused (nothing runs)
    with pytest.raises(ValueError):
        authentik_relay.handler().validate(params)


def test_a_relay_without_sources_origins_does_not_run_connector_sync(
    authentik_relay: RelaySource,
) -> None:
    # Given the default config (no origins), then the job type is disabled, with the reason
    settings = authentik_relay.settings.model_copy(
        update={"sources": authentik_relay.settings.sources.model_copy(update={"origins": []})}
    )
    handler = type(authentik_relay.handler())(settings)
    assert handler.enabled() == "no sources.origins are configured on this relay"


def test_relay_metrics_count_connector_syncs(
    authentik: AuthentikFake, authentik_relay: RelaySource
) -> None:
    # Given a successful run and a failed one, reported as the executor reports them
    arrange(authentik.state)
    result, _ = authentik_relay.run(authentik_relay.params("authentik"))
    metrics = RelayMetrics("dc01", "test")
    metrics.job_finished("connector.sync", "succeeded", 1.5, result)
    metrics.job_finished(
        "connector.sync", "failed", 0.2, {"connector": "conn-1", "kind": "authentik"}
    )
    # When Prometheus scrapes the relay, then Elder's connector counters are there
    text = metrics.exposition()
    labels = 'connector="conn-1",kind="authentik"'
    assert f'connector_sync_total{{{labels},status="success"}} 1' in text
    assert f'connector_sync_total{{{labels},status="failed"}} 1' in text
    assert f'connector_entities_synced{{{labels},operation="created"}} 8' in text
    assert f"connector_sync_errors_total{{{labels}}} 1" in text
    assert f"connector_sync_duration_seconds_count{{{labels}}} 1" in text
    assert f"connector_last_sync_timestamp{{{labels}}}" in text


def test_relay_write_back_shows_the_diff_then_applies_exactly_it(
    authentik: AuthentikFake, authentik_relay: RelaySource
) -> None:
    # Given a relay that allows write-back, and TEACHERS with bob
    arrange(authentik.state)
    settings = authentik_relay.settings.model_copy(
        update={
            "sources": authentik_relay.settings.sources.model_copy(
                update={"allow_write_back": True}
            )
        }
    )
    handler = ConnectorGroupMembersHandler(settings)
    assert handler.enabled() is None
    params = {
        **authentik_relay.params("authentik"),
        "group": TEACHERS,
        "add": [1, 2],
        "remove": [3],
    }
    ctx = authentik_relay.context()
    # When it runs as a dry run (the default), then it shows the diff and changes nothing
    dry = handler.run(handler.validate(params), ctx)
    assert (dry["add"], dry["remove"], dry["unchanged"]) == ([1], [], [2, 3])
    assert authentik.state.calls("POST") == 0
    # When it is applied, then exactly the diff changed, and once
    applied = handler.run(handler.validate({**params, "dry_run": False}), ctx)
    assert applied["added"] == 1 and authentik.state.members[TEACHERS] == {1, 2}
    again = handler.run(handler.validate({**params, "dry_run": False}), ctx)
    assert again["add"] == [] and authentik.state.calls("POST") == 1
    # And an unknown group is a clear error
    with pytest.raises(JobError) as failure:
        handler.run(handler.validate({**params, "group": group_uuid(99)}), ctx)
    assert failure.value.code == "group_not_found"


def test_relay_write_back_is_off_by_default(authentik_relay: RelaySource) -> None:
    handler = ConnectorGroupMembersHandler(authentik_relay.settings)
    assert handler.enabled() == "sources.allow_write_back is false on this relay"
