"""The API refuses the ldap job params the relay would reject: TLS verification turned off."""

from __future__ import annotations

import pytest

from hostrelay.domain.errors import InvalidRequest
from hostrelay.job_types import validate_params


def job(**overrides: object) -> dict[str, object]:
    return {
        "connector": "corp",
        "base_dn": "dc=corp",
        "credential": "svc",
        "group_dn": "cn=g,dc=corp",
        **overrides,
    }


@pytest.mark.parametrize("job_type", ["ldap.sync", "ldap.group_members"])
def test_the_api_refuses_what_the_relay_refuses_about_tls(job_type: str) -> None:
    # Given a job that would turn TLS verification off
    params = job(verify_tls=False)

    # When it is posted, the API refuses it with 422, naming the field, as the relay would
    with pytest.raises(InvalidRequest) as refused:
        validate_params(job_type, params)
    assert refused.value.details[0]["field"] == "params.verify_tls"
    # And asking for verification is still fine
    assert validate_params(job_type, {**params, "verify_tls": True})["verify_tls"] is True
