"""What the relay would reject for its shape is a 422 from the API, before a job exists.

The four cases issue #12 found: each used to get 201 and then end REJECTED on the relay
(or, for ldap.group_members, the reverse).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.api.conftest import Api

pytestmark = pytest.mark.integration

LDAP = {"base_dn": "dc=corp,dc=example", "credential": "svc"}


def job(job_type: str, **params: Any) -> dict[str, Any]:
    return {"type": job_type, "host": "dc01", "params": params}


def refused_fields(response: Any) -> set[str]:
    return {detail["field"] for detail in response.body["error"]["details"]}


def test_a_16_character_computer_name_is_refused_on_both_routes(operator: Api) -> None:
    # When a computer name one character over NetBIOS's 15 is sent to either route
    generic = operator.post(
        "/v1/jobs", json_body=job("macct.capture", image="w", computer="A" * 16)
    )
    linbo = operator.post(
        "/v1/macct/repair", json_body={"host": "dc01", "image": "w", "computers": ["A" * 16]}
    )
    # Then both refuse it with 422 naming the field, and no job exists
    assert (generic.status, linbo.status) == (422, 422)
    assert refused_fields(generic) == {"params.computer"}
    assert operator.get("/v1/jobs").body["jobs"] == []


def test_a_school_with_a_dot_is_refused_on_both_routes(operator: Api) -> None:
    params = {"image": "w", "computers": ["PC01"], "school": "north.1"}
    generic = operator.post("/v1/jobs", json_body=job("macct.repair", **params))
    linbo = operator.post("/v1/macct/repair", json_body={"host": "dc01", **params})
    assert (generic.status, linbo.status) == (422, 422)
    assert refused_fields(generic) == {"params.school"}


@pytest.mark.parametrize("field", ["env", "limits", "isolation", "cwd", "stdin"])
def test_exec_refuses_null_for_an_optional_field_as_the_relay_does(
    operator: Api, field: str
) -> None:
    # When an exec job sends null instead of leaving the field out
    response = operator.post("/v1/jobs", json_body=job("exec", argv=["/bin/true"], **{field: None}))
    # Then it is refused, as the relay would (leaving it out takes the default)
    assert response.status == 422
    assert refused_fields(response) == {f"params.{field}"}
    assert operator.post("/v1/jobs", json_body=job("exec", argv=["/bin/true"])).status == 201


def test_ldap_group_members_needs_no_connector(operator: Api) -> None:
    # When a group change names no connector (the relay and docs/protocol.md need none)
    response = operator.post(
        "/v1/jobs",
        json_body=job(
            "ldap.group_members", **LDAP, group_dn="cn=g,dc=corp,dc=example",
            add=["uid=a,dc=corp,dc=example"],
        ),
    )  # fmt: skip
    # Then the job is queued with the params as sent
    assert response.status == 201
    assert "connector" not in response.body["params"]


def test_job_types_publish_params_and_result_schemas(operator: Api) -> None:
    types = {t["name"]: t for t in operator.get("/v1/job-types").body["job_types"]}
    repair = types["macct.repair"]
    assert repair["params_schema"]["properties"]["school"]["anyOf"][0]["pattern"]
    assert set(repair["result_schema"]["properties"]) >= {"counts", "computers"}
