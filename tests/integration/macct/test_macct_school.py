"""macct.repair with `school`: lookup limited to the linuxmuster school's device OU."""

from __future__ import annotations

from hostrelay_relay.handlers.macct_capture import MacctCaptureHandler
from hostrelay_relay.handlers.macct_repair import MacctRepairHandler
from hostrelay_relay.macct.ldap_escape import compose_dn
from tests.integration.macct.conftest import Domain, RunJob


def test_school_limits_repair_to_that_schools_devices(domain: Domain, run_job: RunJob) -> None:
    # Given a captured image, a computer in school-a's room OU and one outside any school
    (source,) = domain.computers(1)
    assert run_job(MacctCaptureHandler, {"image": "lmn", "computer": source}).error is None
    devices_dn = domain.school("school-a")
    (inside,) = domain.computers(1, parent_dn=compose_dn([("OU", "r1")], devices_dn))
    (outside,) = domain.computers(1)
    before_outside = domain.secrets(outside)
    # When repair runs for both, limited to school-a
    run = run_job(
        MacctRepairHandler,
        {"image": "lmn", "computers": [inside, outside], "school": "school-a"},
    )
    # Then only the computer in the school is found and updated
    assert run.error is None
    assert run.statuses() == {inside: "updated", outside: "not_found"}
    assert domain.secrets(inside).unicode_pwd == domain.secrets(source).unicode_pwd
    assert domain.secrets(outside) == before_outside


def test_unknown_school_fails_with_school_not_found(domain: Domain, run_job: RunJob) -> None:
    # Given a captured image
    (source,) = domain.computers(1)
    assert run_job(MacctCaptureHandler, {"image": "lmn", "computer": source}).error is None
    # When repair names a school that has no OU
    run = run_job(
        MacctRepairHandler, {"image": "lmn", "computers": [source], "school": "no-such-school"}
    )
    # Then it fails with school_not_found
    assert run.error is not None and run.error.code == "school_not_found"
