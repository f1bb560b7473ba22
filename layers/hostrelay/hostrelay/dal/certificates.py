"""Host certificates through IoT Core: sign a CSR, bind it to the host's thing, deactivate."""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass
from datetime import datetime
from importlib import resources

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from hostrelay.dal.aws_clients import client


@dataclass(frozen=True)
class IssuedCertificate:
    certificate_id: str
    certificate_arn: str
    certificate_pem: str
    not_after: datetime

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the DER certificate: what a relay reports as the `cert_id` it uses."""
        return certificate_fingerprint(self.certificate_pem)


@dataclass(frozen=True)
class BrokerEndpoint:
    host: str
    port: int


def certificate_fingerprint(certificate_pem: str) -> str:
    cert = x509.load_pem_x509_certificate(certificate_pem.encode())
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


class IotCertificateAuthority:
    """IoT Core is the CA in AWS; locally the stack's IoT stand-in answers the same API.

    Each host is a thing named after it; the relay policy uses the thing name, so a
    certificate can only ever act on its own host's topics. The endpoint comes from boto3's
    configuration (AWS_ENDPOINT_URL_IOT points it at the local stand-in).
    """

    def __init__(self, policy_name: str) -> None:
        self._policy_name = policy_name
        self._endpoint: BrokerEndpoint | None = None

    @property
    def _iot(self):  # type: ignore[no-untyped-def]
        return client("iot")

    def issue(self, host: str, csr_pem: str) -> IssuedCertificate:
        iot = self._iot
        created = iot.create_certificate_from_csr(
            certificateSigningRequest=csr_pem, setAsActive=True
        )
        # Re-enrollment and renewal keep the thing and add a certificate to it.
        with contextlib.suppress(iot.exceptions.ResourceAlreadyExistsException):
            iot.create_thing(thingName=host)
        iot.attach_policy(policyName=self._policy_name, target=created["certificateArn"])
        iot.attach_thing_principal(thingName=host, principal=created["certificateArn"])
        cert = x509.load_pem_x509_certificate(created["certificatePem"].encode())
        return IssuedCertificate(
            certificate_id=created["certificateId"],
            certificate_arn=created["certificateArn"],
            certificate_pem=created["certificatePem"],
            not_after=cert.not_valid_after_utc,
        )

    def validity(self, certificate_id: str) -> tuple[datetime, datetime] | None:
        """(not before, not after) of an issued certificate, read from its PEM; None if unknown."""
        iot = self._iot
        try:
            described = iot.describe_certificate(certificateId=certificate_id)
        except iot.exceptions.ResourceNotFoundException:
            return None
        pem = described["certificateDescription"]["certificatePem"]
        cert = x509.load_pem_x509_certificate(str(pem).encode())
        return cert.not_valid_before_utc, cert.not_valid_after_utc

    def deactivate(self, certificate_id: str) -> None:
        """Revoke: IoT refuses connections with an inactive certificate from then on."""
        self._iot.update_certificate(certificateId=certificate_id, newStatus="INACTIVE")

    def broker_endpoint(self) -> BrokerEndpoint:
        """The account's ATS data endpoint (looked up once per container)."""
        if self._endpoint is None:
            address = self._iot.describe_endpoint(endpointType="iot:Data-ATS")["endpointAddress"]
            host, _, port = str(address).partition(":")
            self._endpoint = BrokerEndpoint(host=host, port=int(port or 8883))
        return self._endpoint


def amazon_root_ca() -> str:
    """Amazon Root CA 1, which signs IoT Core's ATS endpoints, from botocore's bundle."""
    import botocore

    bundle = resources.files(botocore).joinpath("cacert.pem").read_text()
    marker = '# Label: "Amazon Root CA 1"'
    start = bundle.index("-----BEGIN CERTIFICATE-----", bundle.index(marker))
    end = bundle.index("-----END CERTIFICATE-----", start) + len("-----END CERTIFICATE-----")
    return bundle[start:end] + "\n"
