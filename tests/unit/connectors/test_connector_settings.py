"""Connector settings: secrets are refused, each kind's settings checked, runs built from them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from hostrelay.domain.connectors import Connector, ConnectorKind
from hostrelay.domain.errors import InvalidRequest
from hostrelay.domain.job_params import check_job_params
from hostrelay.logic.connectors import run_request, validate_settings

LDAP = {
    "url": "ldap://dc01.example.test:389",
    "base_dn": "DC=example,DC=test",
    "credential": "sync",
}


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({**LDAP, "password": "x"}, "settings.password"),
        ({**LDAP, "bind_password": "x"}, "settings.bind_password"),
        ({**LDAP, "BindPassword": "x"}, "settings.BindPassword"),
        ({**LDAP, "extra": {"client_secret": "x"}}, "settings.extra.client_secret"),
        ({**LDAP, "list": [{"passwd": "x"}]}, "settings.list[0].passwd"),
    ],
)
def test_secrets_are_refused_wherever_they_hide(settings: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        validate_settings(ConnectorKind.LDAP, settings)
    assert "secrets" in raised.value.message
    assert [d["field"] for d in raised.value.details] == [field]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"url": "http://dc01"}, "settings.url"),
        ({"url": "ldap://user:pw@dc01"}, "settings.url"),
        ({"base_dn": ""}, "settings.base_dn"),
        ({"credential": "has space"}, "settings.credential"),
        ({"page_size": 0}, "settings.page_size"),
        ({"flavor": "novell"}, "settings.flavor"),
        ({"unknown": 1}, "settings.unknown"),
        ({"url": "ldaps://dc01", "start_tls": True}, "settings"),
        ({"verify_tls": False}, "settings.verify_tls"),
    ],
)
def test_ldap_settings_are_checked(changes: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        validate_settings(ConnectorKind.LDAP, {**LDAP, **changes})
    assert raised.value.details[0]["field"] == field


def test_clean_ldap_settings_get_defaults_and_become_valid_job_params() -> None:
    settings = validate_settings(ConnectorKind.LDAP, {**LDAP, "user_filter": "(mail=*)"})
    # verify_tls is left to the relay's credential config unless a connector asks for it
    assert settings["page_size"] == 500 and "verify_tls" not in settings
    now = datetime(2025, 1, 1, tzinfo=UTC)
    connector = Connector(
        id="C1", name="n", kind=ConnectorKind.LDAP, target="dc01", settings=settings,
        created_by="t", created_at=now, updated_at=now,
    )  # fmt: skip
    request = run_request(connector)
    assert (request.type, request.host, request.connector_id) == ("ldap.sync", "dc01", "C1")
    assert request.params == {**settings, "connector": "C1"}
    assert check_job_params(request.type, request.params)["connector"] == "C1"


def test_aws_run_carries_regions_and_role_only() -> None:
    settings = validate_settings(
        ConnectorKind.AWS,
        {"regions": ["eu-central-1"], "assume_role_arn": "arn:aws:iam::210987654321:role/ro",
         "resource_types": ["ec2.instance"]},
    )  # fmt: skip
    now = datetime(2025, 1, 1, tzinfo=UTC)
    connector = Connector(
        id="C2", name="n", kind=ConnectorKind.AWS, target="cloud", settings=settings,
        created_by="t", created_at=now, updated_at=now,
    )  # fmt: skip
    request = run_request(connector)
    assert (request.type, request.host) == ("discovery.aws", "cloud")
    assert check_job_params(request.type, request.params) == {
        "connector": "C2",
        "regions": ["eu-central-1"],
        "assume_role_arn": "arn:aws:iam::210987654321:role/ro",
    }
