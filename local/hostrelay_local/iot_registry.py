"""Stands in for IoT Core's control plane: host certificates from the local CA, things, policies.

Answers the few REST operations boto3 `iot` sends for enrollment, renewal and revocation
(point boto3 at it with AWS_ENDPOINT_URL_IOT). Deactivating a certificate revokes it in the
local CA, reloads mosquitto's CRL and disconnects the host, as IoT Core does.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from hostrelay_local.broker import MosquittoBroker
from hostrelay_local.local_http import BackgroundServer, LocalHttpServer, LocalRequestHandler
from hostrelay_local.pki import CsrRejected, LocalCA

logger = logging.getLogger(__name__)

ACCOUNT = "123456789012"
REGION = "us-east-1"
_INACTIVE = frozenset({"INACTIVE", "REVOKED"})
_CRL_RELOAD_S = 0.3  # mosquitto re-reads its CRL on SIGHUP, asynchronously


class IotApiError(Exception):
    def __init__(self, status: HTTPStatus, error_type: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message


@dataclass
class _Certificate:
    certificate_id: str
    arn: str
    pem: str
    serial: int
    common_name: str
    status: str
    policies: set[str] = field(default_factory=set)


@dataclass
class _Thing:
    name: str
    arn: str
    principals: set[str] = field(default_factory=set)


def _cert_id(pem: str) -> str:
    """IoT Core's certificate id: the SHA-256 of the DER certificate."""
    cert = x509.load_pem_x509_certificate(pem.encode())
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


class IotRegistryState:
    """Things, certificates and policy attachments, with IoT Core's rules for each call."""

    def __init__(
        self,
        ca: LocalCA,
        broker: MosquittoBroker | None = None,
        *,
        cert_valid_days: int = 397,
    ) -> None:
        self._ca = ca
        self._broker = broker
        self._valid_days = cert_valid_days
        self._lock = threading.Lock()
        self.certificates: dict[str, _Certificate] = {}
        self.things: dict[str, _Thing] = {}

    def _arn(self, kind: str, name: str) -> str:
        return f"arn:aws:iot:{REGION}:{ACCOUNT}:{kind}/{name}"

    def create_certificate_from_csr(self, csr_pem: str, active: bool) -> dict[str, Any]:
        try:
            csr = x509.load_pem_x509_csr(csr_pem.encode())
        except ValueError:
            raise IotApiError(
                HTTPStatus.BAD_REQUEST, "InvalidRequestException", "the CSR is not PEM"
            ) from None
        names = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        common_name = str(names[0].value) if names else ""
        try:
            pem = self._ca.sign_host_csr(
                csr_pem.encode(), common_name, valid_days=self._valid_days
            ).decode()
        except (CsrRejected, ValueError) as exc:
            raise IotApiError(HTTPStatus.BAD_REQUEST, "InvalidRequestException", str(exc)) from None
        certificate_id = _cert_id(pem)
        serial = x509.load_pem_x509_certificate(pem.encode()).serial_number
        record = _Certificate(
            certificate_id=certificate_id,
            arn=self._arn("cert", certificate_id),
            pem=pem,
            serial=serial,
            common_name=common_name,
            status="ACTIVE" if active else "INACTIVE",
        )
        with self._lock:
            self.certificates[certificate_id] = record
        logger.info("certificate issued", extra={"host": common_name, "serial": serial})
        return {
            "certificateArn": record.arn,
            "certificateId": certificate_id,
            "certificatePem": pem,
        }

    def create_thing(self, name: str) -> dict[str, Any]:
        with self._lock:
            if name in self.things:
                raise IotApiError(
                    HTTPStatus.CONFLICT, "ResourceAlreadyExistsException", f"thing {name} exists"
                )
            thing = self.things[name] = _Thing(name, self._arn("thing", name))
        return {"thingName": name, "thingArn": thing.arn, "thingId": name}

    def _certificate_by_arn(self, arn: str) -> _Certificate:
        certificate_id = arn.rpartition("/")[2]
        record = self.certificates.get(certificate_id)
        if record is None or record.arn != arn:
            raise IotApiError(
                HTTPStatus.NOT_FOUND, "ResourceNotFoundException", f"no certificate {arn}"
            )
        return record

    def attach_policy(self, policy_name: str, target: str) -> None:
        with self._lock:
            self._certificate_by_arn(target).policies.add(policy_name)

    def attach_thing_principal(self, thing_name: str, principal: str) -> None:
        with self._lock:
            thing = self.things.get(thing_name)
            if thing is None:
                raise IotApiError(
                    HTTPStatus.NOT_FOUND, "ResourceNotFoundException", f"no thing {thing_name}"
                )
            record = self._certificate_by_arn(principal)
            if record.common_name != thing_name:
                # IoT Core would allow it; the broker's ACL uses the CN, so keep them equal.
                raise IotApiError(
                    HTTPStatus.BAD_REQUEST,
                    "InvalidRequestException",
                    f"certificate {record.certificate_id} names {record.common_name}",
                )
            thing.principals.add(principal)

    def describe_certificate(self, certificate_id: str) -> dict[str, Any]:
        with self._lock:
            record = self.certificates.get(certificate_id)
        if record is None:
            raise IotApiError(
                HTTPStatus.NOT_FOUND,
                "ResourceNotFoundException",
                f"no certificate {certificate_id}",
            )
        return {
            "certificateDescription": {
                "certificateId": record.certificate_id,
                "certificateArn": record.arn,
                "status": record.status,
                "certificatePem": record.pem,
            }
        }

    def update_certificate(self, certificate_id: str, new_status: str) -> None:
        with self._lock:
            record = self.certificates.get(certificate_id)
            if record is None:
                raise IotApiError(
                    HTTPStatus.NOT_FOUND,
                    "ResourceNotFoundException",
                    f"no certificate {certificate_id}",
                )
            was_inactive = record.status in _INACTIVE
            record.status = new_status
        if new_status in _INACTIVE and not was_inactive:
            self._ca.revoke_serial(record.serial)
            logger.info(
                "certificate revoked", extra={"host": record.common_name, "serial": record.serial}
            )
            if self._broker is not None and self._broker.is_running():
                self._broker.reload()
                if not self._has_active_certificate(record.common_name):
                    # mosquitto keeps open sessions on a CRL reload; IoT Core drops them.
                    # With another active certificate (a rotation) the host is on that one.
                    time.sleep(_CRL_RELOAD_S)
                    self._broker.disconnect_client(record.common_name)

    def _has_active_certificate(self, common_name: str) -> bool:
        with self._lock:
            return any(
                cert.common_name == common_name and cert.status == "ACTIVE"
                for cert in self.certificates.values()
            )

    def endpoint(self) -> dict[str, Any]:
        if self._broker is None:
            raise IotApiError(HTTPStatus.NOT_FOUND, "ResourceNotFoundException", "no broker")
        endpoint = self._broker.endpoint
        return {"endpointAddress": f"{endpoint.host}:{endpoint.port}"}


class _RegistryRequestHandler(LocalRequestHandler):
    server: _RegistryHttpServer

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        parts = [unquote(part) for part in url.path.strip("/").split("/")]
        query = {key: values[0] for key, values in parse_qs(url.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body: dict[str, Any] = json.loads(raw) if raw else {}
            result = self._route(self.command, parts, query, body)
        except IotApiError as exc:
            self._reply(exc.status, {"message": exc.message}, exc.error_type)
            return
        except (ValueError, KeyError) as exc:
            self._reply(HTTPStatus.BAD_REQUEST, {"message": str(exc)}, "InvalidRequestException")
            return
        self._reply(HTTPStatus.OK, result or {})

    def _route(
        self, method: str, parts: list[str], query: dict[str, str], body: dict[str, Any]
    ) -> dict[str, Any] | None:
        state = self.server.state
        match method, parts:
            case "POST", ["certificates"]:
                active = query.get("setAsActive", "false").lower() == "true"
                return state.create_certificate_from_csr(body["certificateSigningRequest"], active)
            case "GET", ["certificates", certificate_id]:
                return state.describe_certificate(certificate_id)
            case "PUT", ["certificates", certificate_id]:
                state.update_certificate(certificate_id, query["newStatus"])
                return None
            case "POST", ["things", name]:
                return state.create_thing(name)
            case "PUT", ["things", name, "principals"]:
                state.attach_thing_principal(name, self.headers["x-amzn-principal"])
                return None
            case "PUT", ["target-policies", policy]:
                state.attach_policy(policy, body["target"])
                return None
            case "GET", ["endpoint"]:
                return state.endpoint()
        raise IotApiError(HTTPStatus.NOT_FOUND, "ResourceNotFoundException", "no such API")

    do_GET = do_POST = do_PUT = _dispatch

    def _reply(self, status: HTTPStatus, body: dict[str, Any], error_type: str = "") -> None:
        self.write_json(status, body, error_type)


class _RegistryHttpServer(LocalHttpServer):
    def __init__(self, address: tuple[str, int], state: IotRegistryState) -> None:
        super().__init__(address, _RegistryRequestHandler)
        self.state = state


class LocalIotRegistry:
    """The IoT control-plane endpoint of the local stack (`AWS_ENDPOINT_URL_IOT`)."""

    def __init__(
        self,
        ca: LocalCA,
        broker: MosquittoBroker | None = None,
        *,
        cert_valid_days: int = 397,
        bind: tuple[str, int] = ("127.0.0.1", 0),
    ) -> None:
        self.state = IotRegistryState(ca, broker, cert_valid_days=cert_valid_days)
        self._bind = bind
        self._serving = BackgroundServer("iot-registry")

    @property
    def endpoint_url(self) -> str:
        return self._serving.url

    def start(self) -> LocalIotRegistry:
        self._serving.start(_RegistryHttpServer(self._bind, self.state))
        return self

    def stop(self) -> None:
        self._serving.stop()

    def __enter__(self) -> LocalIotRegistry:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
