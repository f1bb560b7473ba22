"""Fixtures for enrollment: the API handler on moto, the relay IoT policy, CSRs and admins."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from hostrelay.dal.tokens_repo import TokenRepository
from hostrelay_local.lambda_runtime import LambdaHandler
from hostrelay_local.template import Resolver
from tests.conftest import AwsStack
from tests.integration.api.conftest import Api, Tokens

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class HostKey:
    """A key an enrolling host made, and CSRs signed with it."""

    key: ec.EllipticCurvePrivateKey

    @classmethod
    def new(cls) -> HostKey:
        return cls(ec.generate_private_key(ec.SECP256R1()))

    def csr(self, common_name: str) -> str:
        request = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .sign(self.key, hashes.SHA256())
        )
        return request.public_bytes(serialization.Encoding.PEM).decode()


@pytest.fixture
def host_key() -> HostKey:
    return HostKey.new()


@pytest.fixture
def relay_policy(aws: AwsStack) -> str:
    """Given the template's relay IoT policy in moto (SAM would have created it)."""
    policy = aws.template.resources["RelayPolicy"]["Properties"]
    resolved = Resolver(aws.resources.refs, aws.resources.attrs).resolve(policy)
    aws.client("iot").create_policy(
        policyName=resolved["PolicyName"], policyDocument=json.dumps(resolved["PolicyDocument"])
    )
    return str(resolved["PolicyName"])


@pytest.fixture
def api_handler(aws: AwsStack, relay_policy: str) -> LambdaHandler:
    return aws.handler("ApiFunction")


@pytest.fixture
def tokens(api_handler: LambdaHandler) -> Tokens:
    return Tokens(TokenRepository())


@pytest.fixture
def api(api_handler: LambdaHandler) -> Api:
    return Api(api_handler, default_headers={"host": "api.example.com"})


@pytest.fixture
def admin(api: Api, tokens: Tokens) -> Api:
    return Api(
        api.handler, token=tokens.create("admin", name="root"), default_headers=api.default_headers
    )


@pytest.fixture
def operator(api: Api, tokens: Tokens) -> Api:
    return Api(
        api.handler,
        token=tokens.create("operator", name="ops"),
        default_headers=api.default_headers,
    )


@dataclass(frozen=True)
class Script:
    status: int
    content_type: str
    text: str


def fetch_script(api: Api, path: str) -> Script:
    """GET a shell script from the API (the Api helper expects JSON)."""
    import base64

    from hostrelay_local.lambda_runtime import FakeLambdaContext
    from tests.integration.api.conftest import http_event

    event = http_event("GET", path, headers={"host": "api.example.com"})
    response = api.handler(event, FakeLambdaContext(function_name="api"))
    body = response.get("body") or ""
    if response.get("isBase64Encoded"):
        body = base64.b64decode(body).decode()
    headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
    return Script(response["statusCode"], headers.get("content-type", ""), body)
