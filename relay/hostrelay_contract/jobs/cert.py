"""`cert.install` (internal): a renewed client certificate, the answer to `cert_renewal`."""

from __future__ import annotations

from pydantic import Field

from hostrelay_contract.base import JobResult, StrictParams


class CertInstallParams(StrictParams):
    certificate_pem: str = Field(
        min_length=1, max_length=16 * 1024, description="The certificate IoT Core signed (PEM)"
    )


class CertInstallResult(JobResult):
    cert_id: str = Field(description="SHA-256 (hex) of the DER certificate: IoT's certificate id")
    not_after: str = Field(description="When the certificate expires (ISO 8601, UTC)")
