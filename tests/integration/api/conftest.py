"""Fixtures for the HTTP API: the real Lambda handler fed API Gateway HTTP API (v2) events."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import pytest

from hostrelay.dal.hosts_repo import HostRepository
from hostrelay.dal.tokens_repo import TokenRepository
from hostrelay_local.functions import FunctionRuntime
from hostrelay_local.http_api import HttpApiGateway
from hostrelay_local.lambda_runtime import FakeLambdaContext, LambdaHandler
from tests.conftest import AwsStack


def http_event(
    method: str,
    path: str,
    *,
    headers: Mapping[str, str] | None = None,
    query: Mapping[str, Any] | None = None,
    body: str | bytes | None = None,
    base64_body: bool = False,
) -> dict[str, Any]:
    """An API Gateway HTTP API payload v2.0 event, as the catch-all {proxy+} route sends it."""
    query = {k: str(v) for k, v in (query or {}).items() if v is not None}
    raw_body: str | None
    if isinstance(body, bytes) or base64_body:
        data = body.encode() if isinstance(body, str) else (body or b"")
        raw_body, encoded = base64.b64encode(data).decode(), True
    else:
        raw_body, encoded = body, False
    request_id = uuid.uuid4().hex[:16]
    return {
        "version": "2.0",
        "routeKey": "ANY /{proxy+}",
        "rawPath": path,
        "rawQueryString": urlencode(query),
        "headers": {k.lower(): v for k, v in (headers or {}).items()},
        "queryStringParameters": query or None,
        "pathParameters": {"proxy": path.lstrip("/")},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api",
            "domainName": "api.example.com",
            "domainPrefix": "api",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "192.0.2.10",
                "userAgent": "pytest",
            },
            "requestId": request_id,
            "routeKey": "ANY /{proxy+}",
            "stage": "$default",
            "time": "01/Jan/2030:00:00:00 +0000",
            "timeEpoch": 1893456000000,
        },
        "body": raw_body,
        "isBase64Encoded": encoded,
    }


@dataclass
class HttpResult:
    status: int
    headers: dict[str, str]
    body: Any

    @property
    def error_code(self) -> str:
        return str(self.body["error"]["code"])


@dataclass
class Api:
    """Calls the ApiFunction handler the way API Gateway does."""

    handler: LambdaHandler
    token: str | None = None
    default_headers: dict[str, str] = field(default_factory=dict)

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        body: str | bytes | None = None,
        query: Mapping[str, Any] | None = None,
        token: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> HttpResult:
        sent = {"content-type": "application/json", **self.default_headers, **(headers or {})}
        bearer = token if token is not None else self.token
        if bearer:
            sent.setdefault("authorization", f"Bearer {bearer}")
        if json_body is not None:
            body = json.dumps(json_body)
        event = http_event(method, path, headers=sent, query=query, body=body)
        response = self.handler(event, FakeLambdaContext(function_name="api"))
        text = response.get("body") or ""
        if response.get("isBase64Encoded"):
            text = base64.b64decode(text).decode()
        headers_out = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
        parsed = json.loads(text) if text else None
        return HttpResult(status=response["statusCode"], headers=headers_out, body=parsed)

    def get(self, path: str, **kwargs: Any) -> HttpResult:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> HttpResult:
        return self.request("POST", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> HttpResult:
        return self.request("DELETE", path, **kwargs)


@dataclass
class Tokens:
    """Creates tokens straight in the tokens table (what an admin would have done)."""

    repo: TokenRepository

    def create(
        self,
        *scopes: str,
        name: str = "test",
        expires_at: datetime | None = None,
        job_types: list[str] | None = None,
        hosts: list[str] | None = None,
    ) -> str:
        secret, _ = self.repo.create(
            token_id=uuid.uuid4().hex[:12],
            name=name,
            scopes=list(scopes),
            created_by="test",
            expires_at=expires_at,
            job_types=job_types,
            hosts=hosts,
        )
        return secret


@pytest.fixture
def api_handler(aws: AwsStack) -> LambdaHandler:
    return aws.handler("ApiFunction")


@pytest.fixture
def tokens(api_handler: LambdaHandler) -> Tokens:
    """Token factory (the handler's cold start has bound the tables)."""
    return Tokens(TokenRepository())


@pytest.fixture
def api(api_handler: LambdaHandler) -> Api:
    return Api(api_handler)


@pytest.fixture
def operator(api: Api, tokens: Tokens) -> Api:
    """Given the API, an operator token, and host dc01 enrolled."""
    HostRepository().register("dc01")
    return Api(api.handler, token=tokens.create("operator", name="ops"))


@pytest.fixture
def admin(api: Api, tokens: Tokens) -> Api:
    return Api(api.handler, token=tokens.create("admin", name="root"))


@dataclass
class ServedApi:
    """The ApiFunction behind the local HTTP gateway (what `make run` serves), on a free port."""

    url: str
    admin_token: str

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.url.removeprefix("http://").rsplit(":", 1)
        return host, int(port)


@pytest.fixture
def served_api(aws: AwsStack) -> Iterator[ServedApi]:
    """Given the API served over HTTP by the local gateway, and an admin token."""
    spec = next(f for f in aws.template.functions() if f.logical_id == "ApiFunction")
    runtime = FunctionRuntime(spec, aws.environments["ApiFunction"])
    runtime.warm_up()  # its cold start binds the tables the token below is written to
    admin_token = Tokens(TokenRepository()).create("admin", name="root")
    gateway = HttpApiGateway(runtime, port=0)
    gateway.start()
    try:
        yield ServedApi(url=gateway.url, admin_token=admin_token)
    finally:
        gateway.stop()
