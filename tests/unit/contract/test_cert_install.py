"""`cert.install` is a registered job type both sides use, and only the control plane makes."""

from __future__ import annotations

import pytest

from hostrelay.domain.errors import InvalidRequest
from hostrelay.domain.job_params import check_job_params
from hostrelay.logic import certificate_renewal
from hostrelay_contract.job_types import INTERNAL_JOB_TYPES, JOB_TYPES, host_job_types
from hostrelay_relay.cert_rotation import CERT_INSTALL_TYPE, CertInstallHandler

PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def test_cert_install_is_registered_as_internal_with_the_models_both_sides_use() -> None:
    spec = INTERNAL_JOB_TYPES["cert.install"]
    assert spec.internal and spec.runs_in == "host"
    # The relay's handler and the control plane's renewal use the registered name and models
    assert CERT_INSTALL_TYPE == certificate_renewal.CERT_INSTALL_TYPE == spec.name
    assert CertInstallHandler.params_model is spec.params
    assert spec.default_timeout_s == certificate_renewal.INSTALL_TIMEOUT_S
    assert spec.params.model_validate({"certificate_pem": PEM}).certificate_pem == PEM
    assert spec.errors and {error.code for error in spec.errors} <= spec.error_codes()


def test_the_api_refuses_to_create_a_cert_install_job() -> None:
    # When a client asks POST /v1/jobs for a cert.install job, even with valid params
    with pytest.raises(InvalidRequest) as refused:
        check_job_params("cert.install", {"certificate_pem": PEM})

    # Then it is an unknown type (422), and not one the API lists as allowed
    assert refused.value.message == "unknown job type 'cert.install'"
    [detail] = refused.value.details
    assert "cert.install" not in detail["allowed"] and "ping" in detail["allowed"]
    # Nor is it a type tokens, fleet runs or the relay's handler table know
    assert "cert.install" not in JOB_TYPES and "cert.install" not in host_job_types()
