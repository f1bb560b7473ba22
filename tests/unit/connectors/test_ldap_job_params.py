"""The API refuses the ldap job params the relay would reject: TLS verification turned off."""

from __future__ import annotations

import pytest

from hostrelay.domain.errors import InvalidRequest
from hostrelay.domain.job_params import check_job_params

CONNECTION = {"base_dn": "dc=corp", "credential": "svc"}
VALID = {
    "ldap.sync": {**CONNECTION, "connector": "corp"},
    "ldap.group_members": {**CONNECTION, "group_dn": "cn=g,dc=corp", "add": ["uid=a,dc=corp"]},
}


@pytest.mark.parametrize("job_type", sorted(VALID))
def test_the_api_refuses_what_the_relay_refuses_about_tls(job_type: str) -> None:
    # Given a job that would turn TLS verification off
    params = {**VALID[job_type], "verify_tls": False}

    # When it is posted, the API refuses it with 422, naming the field, as the relay would
    with pytest.raises(InvalidRequest) as refused:
        check_job_params(job_type, params)
    assert refused.value.details[0]["field"] == "params.verify_tls"
    # And asking for verification is still fine
    assert check_job_params(job_type, {**params, "verify_tls": True})["verify_tls"] is True
