"""macct.repair against a real domain: captured secrets written back, every outcome truthful."""

from __future__ import annotations

from hostrelay_relay.handlers.macct_capture import MacctCaptureHandler
from hostrelay_relay.handlers.macct_repair import MacctRepairHandler
from tests.integration.macct.conftest import DC_NAME, Domain, RunJob


def _captured_image(domain: Domain, run_job: RunJob, image: str = "win10") -> str:
    """Given an image captured from a fresh computer; returns that computer's name."""
    (source,) = domain.computers(1)
    assert run_job(MacctCaptureHandler, {"image": image, "computer": source}).error is None
    return source


def test_repair_writes_the_captured_secrets_into_every_computer(
    domain: Domain, run_job: RunJob
) -> None:
    # Given an image captured from one computer and three computers with other passwords
    source = _captured_image(domain, run_job)
    captured = domain.secrets(source)
    restored = domain.computers(3)
    domain.change_passwords(list(restored.values()))
    assert all(domain.secrets(name).unicode_pwd != captured.unicode_pwd for name in restored)
    # When the image's secrets are repaired into them (and into the source itself)
    run = run_job(MacctRepairHandler, {"image": "win10", "computers": [*restored, source]})
    # Then the job succeeds, the restored computers are updated and the source unchanged
    assert run.error is None
    assert run.statuses() == {**dict.fromkeys(restored, "updated"), source: "unchanged"}
    assert run.report["counts"]["updated"] == 3
    # And each account now holds the captured values byte for byte
    for name in restored:
        now = domain.secrets(name)
        assert now.unicode_pwd == captured.unicode_pwd
        assert now.supplemental_credentials == captured.supplemental_credentials
    # And progress ended at done == total
    assert run.progress[-1][:2] == (4, 4)


def test_repair_again_reports_unchanged(domain: Domain, run_job: RunJob) -> None:
    # Given computers already repaired from an image
    _captured_image(domain, run_job)
    names = list(domain.computers(2))
    assert run_job(MacctRepairHandler, {"image": "win10", "computers": names}).error is None
    # When the same repair runs again
    run = run_job(MacctRepairHandler, {"image": "win10", "computers": names})
    # Then nothing needs writing
    assert run.error is None
    assert run.statuses() == dict.fromkeys(names, "unchanged")


def test_dry_run_reports_what_would_change_and_changes_nothing(
    domain: Domain, run_job: RunJob
) -> None:
    # Given a captured image and computers with other passwords
    _captured_image(domain, run_job)
    names = list(domain.computers(2))
    before = {name: domain.secrets(name) for name in names}
    # When a dry run repair is requested
    run = run_job(MacctRepairHandler, {"image": "win10", "computers": names, "dry_run": True})
    # Then it reports would_update and the accounts are untouched
    assert run.error is None
    assert run.report["dry_run"] is True
    assert run.statuses() == dict.fromkeys(names, "would_update")
    assert {name: domain.secrets(name) for name in names} == before


def test_unknown_computer_is_not_found_and_the_job_still_succeeds(
    domain: Domain, run_job: RunJob
) -> None:
    # Given a captured image and one existing computer
    _captured_image(domain, run_job)
    (name,) = domain.computers(1)
    # When repair names it and a computer that does not exist
    run = run_job(MacctRepairHandler, {"image": "win10", "computers": [name, "GHOSTPC"]})
    # Then the missing one is not_found, the other updated, and the job succeeds
    assert run.error is None
    assert run.statuses() == {name: "updated", "GHOSTPC": "not_found"}


def test_user_and_dc_accounts_are_refused_and_the_job_fails(
    domain: Domain, run_job: RunJob
) -> None:
    # Given a captured image, a computer, a user account and the domain controller
    _captured_image(domain, run_job)
    (name,) = domain.computers(1)
    user = domain.user()
    user_before = domain.secrets(user)
    dc_before = domain.secrets(DC_NAME)
    # When repair names all three
    run = run_job(MacctRepairHandler, {"image": "win10", "computers": [name, user, DC_NAME]})
    # Then the job fails with repair_failed, listing every computer's outcome
    assert run.error is not None and run.error.code == "repair_failed"
    by_name = {c["computer"]: c for c in run.report["computers"]}
    assert by_name[name]["status"] == "updated"
    assert by_name[user.upper()]["status"] == "failed"
    assert by_name[user.upper()]["reason"] == "not a computer account"
    assert by_name[DC_NAME]["status"] == "failed"
    assert by_name[DC_NAME]["reason"] == "a domain controller account"
    # And the user's and the DC's secrets are untouched
    assert domain.secrets(user) == user_before
    assert domain.secrets(DC_NAME) == dc_before


def test_repair_without_a_capture_fails_and_changes_nothing(
    domain: Domain, run_job: RunJob
) -> None:
    # Given a computer and no capture for the image
    (name,) = domain.computers(1)
    before = domain.secrets(name)
    # When repair is requested
    run = run_job(MacctRepairHandler, {"image": "never-captured", "computers": [name]})
    # Then it fails with capture_not_found
    assert run.error is not None and run.error.code == "capture_not_found"
    assert domain.secrets(name) == before


def test_canceled_repair_writes_nothing(domain: Domain, run_job: RunJob) -> None:
    # Given a captured image and a computer with another password
    _captured_image(domain, run_job)
    (name,) = domain.computers(1)
    before = domain.secrets(name)
    # When the job is canceled before it runs its tools
    run = run_job(MacctRepairHandler, {"image": "win10", "computers": [name]}, cancel=True)
    # Then it ends canceled and the account is untouched
    assert run.error is not None and run.error.outcome == "canceled"
    assert domain.secrets(name) == before
