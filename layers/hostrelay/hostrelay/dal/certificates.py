"""Host certificates through IoT Core: sign a CSR, bind it to the host's thing, deactivate."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache

from cryptography import x509

from hostrelay.dal.aws_clients import client


@dataclass(frozen=True)
class IssuedCertificate:
    certificate_id: str
    certificate_arn: str
    certificate_pem: str
    not_after: datetime


@dataclass(frozen=True)
class BrokerEndpoint:
    host: str
    port: int


class IotCertificateAuthority:
    """IoT Core is the CA in AWS; locally the stack's IoT stand-in answers the same API.

    Each host is a thing named after it; the relay policy uses the thing name, so a
    certificate can only ever act on its own host's topics.
    """

    def __init__(self, policy_name: str, endpoint_url: str = "") -> None:
        self._policy_name = policy_name
        self._endpoint_url = endpoint_url or None

    @property
    def _iot(self):  # type: ignore[no-untyped-def]
        return client("iot", self._endpoint_url)

    def issue(self, host: str, csr_pem: str) -> IssuedCertificate:
        iot = self._iot
        created = iot.create_certificate_from_csr(
            certificateSigningRequest=csr_pem, setAsActive=True
        )
        try:
            iot.create_thing(thingName=host)
        except iot.exceptions.ResourceAlreadyExistsException:
            pass  # re-enrollment keeps the thing and swaps its certificate
        iot.attach_policy(policyName=self._policy_name, target=created["certificateArn"])
        iot.attach_thing_principal(thingName=host, principal=created["certificateArn"])
        cert = x509.load_pem_x509_certificate(created["certificatePem"].encode())
        return IssuedCertificate(
            certificate_id=created["certificateId"],
            certificate_arn=created["certificateArn"],
            certificate_pem=created["certificatePem"],
            not_after=cert.not_valid_after_utc,
        )

    def deactivate(self, certificate_id: str) -> None:
        """Revoke: IoT refuses connections with an inactive certificate from then on."""
        self._iot.update_certificate(certificateId=certificate_id, newStatus="INACTIVE")

    def broker_endpoint(self) -> BrokerEndpoint:
        return _describe_endpoint(self._endpoint_url)


@cache
def _describe_endpoint(endpoint_url: str | None) -> BrokerEndpoint:
    address = client("iot", endpoint_url).describe_endpoint(endpointType="iot:Data-ATS")
    host, _, port = address["endpointAddress"].partition(":")
    return BrokerEndpoint(host=host, port=int(port or 8883))
