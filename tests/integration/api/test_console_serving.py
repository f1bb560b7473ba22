"""The web console's files and the two reads it needs, through the real ApiFunction handler."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import re
from typing import Any

import pytest

from hostrelay.console.assets import STATIC_DIR
from hostrelay_local.lambda_runtime import FakeLambdaContext, LambdaHandler
from tests.integration.api.conftest import Api, Tokens, http_event

pytestmark = pytest.mark.integration

CONSOLE_DIR = STATIC_DIR.parent


def fetch(handler: LambdaHandler, path: str, headers: dict[str, str] | None = None) -> Any:
    event = http_event("GET", path, headers=headers)
    return handler(event, FakeLambdaContext(function_name="api"))


def body_bytes(response: dict[str, Any]) -> bytes:
    raw = response.get("body") or ""
    data = base64.b64decode(raw) if response.get("isBase64Encoded") else raw.encode()
    if response["headers"].get("Content-Encoding") == "gzip":
        data = gzip.decompress(data)
    return data


def test_console_page_is_served_with_a_strict_policy(api_handler: LambdaHandler) -> None:
    # When a browser opens /console/
    response = fetch(api_handler, "/console/")
    # Then it gets the page, never cached, with a CSP that allows nothing inline or foreign
    headers = response["headers"]
    assert response["statusCode"] == 200
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert headers["Cache-Control"] == "no-store"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    policy = dict(
        part.strip().split(" ", 1) for part in headers["Content-Security-Policy"].split(";")
    )
    assert policy["default-src"] == "'none'"
    assert policy["script-src"] == "'self'"
    assert policy["style-src"] == "'self'"
    assert policy["connect-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    assert "unsafe" not in headers["Content-Security-Policy"]
    page = body_bytes(response).decode()
    # And the page has no inline script or style for that policy to block
    assert '<script type="module" src="app.js"></script>' in page
    assert "<style" not in page
    assert " style=" not in page


def test_console_assets_have_their_types_and_revalidate_by_etag(api_handler: LambdaHandler) -> None:
    # When the browser loads the script, asking for gzip
    first = fetch(api_handler, "/console/app.js", {"accept-encoding": "gzip"})
    # Then it is JavaScript, compressed, revalidated on each use
    assert first["statusCode"] == 200
    assert first["headers"]["Content-Type"] == "text/javascript; charset=utf-8"
    assert first["headers"]["Content-Encoding"] == "gzip"
    assert first["headers"]["Cache-Control"] == "no-cache"
    assert body_bytes(first) == (STATIC_DIR / "app.js").read_bytes()
    # And a second load with its ETag costs a 304 and no body
    again = fetch(api_handler, "/console/app.js", {"if-none-match": first["headers"]["ETag"]})
    assert again["statusCode"] == 304
    assert not again.get("body")
    assert fetch(api_handler, "/console/console.css")["headers"]["Content-Type"].startswith(
        "text/css"
    )


@pytest.mark.parametrize(
    "path",
    ["/console/nothing.js", "/console/..%2Fassets.py", "/console/__init__.py", "/console/.env"],
)
def test_console_serves_only_its_own_files(api_handler: LambdaHandler, path: str) -> None:
    # When a path outside the console's files is asked for
    response = fetch(api_handler, path)
    # Then it is a clean 404 in the API's error shape, never a file from elsewhere
    assert response["statusCode"] == 404
    assert json.loads(body_bytes(response))["error"]["code"] == "not_found"


def test_console_without_slash_redirects_to_the_page(api_handler: LambdaHandler) -> None:
    response = fetch(api_handler, "/console")
    assert response["statusCode"] == 308
    assert response["headers"]["Location"] == "/console/"


def test_vendored_view_library_matches_its_manifest() -> None:
    # Given the manifest written when the library was copied from the npm registry
    manifest = json.loads((CONSOLE_DIR / "vendor" / "manifest.json").read_text())
    for entry in manifest["vendored"]:
        # Then the file served is byte for byte the one recorded, with its licences beside it
        data = (CONSOLE_DIR / entry["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], entry["file"]
        assert entry["version"] and entry["license"]
        for licence in entry["license_files"]:
            assert (CONSOLE_DIR / licence).is_file()


def test_whoami_names_the_token_and_its_scopes_never_its_secret(api: Api, tokens: Tokens) -> None:
    # Given a reader token
    secret = tokens.create("reader", name="wall display")
    # When the console asks who it is
    response = api.get("/v1/whoami", token=secret)
    # Then it learns the name and scopes, and nothing secret
    assert response.status == 200
    assert response.body["name"] == "wall display"
    assert response.body["scopes"] == ["reader"]
    assert response.body["may"] == ["reader"]
    assert response.body["label"].startswith("token:") and response.body["label"].endswith(
        "/wall display"
    )
    assert secret not in json.dumps(response.body)
    # And without a valid token it is a 401, like every other route
    assert api.get("/v1/whoami", token="nope").status == 401


def test_job_types_carry_the_schemas_the_api_validates_with(api: Api, tokens: Tokens) -> None:
    # When the console asks for the job types to build its start form
    response = api.get("/v1/job-types", token=tokens.create("reader"))
    # Then every type comes with its params schema, bounds included
    assert response.status == 200
    types = {entry["name"]: entry for entry in response.body["job_types"]}
    assert {"ping", "exec", "macct.repair", "discovery.aws"} <= set(types)
    exec_schema = types["exec"]["params_schema"]
    assert exec_schema["required"] == ["argv"]
    assert exec_schema["properties"]["argv"]["minItems"] == 1
    assert types["ping"]["params_schema"]["properties"]["sleep_s"]["maximum"] == 3600
    assert types["discovery.aws"]["runs_in"] == "cloud"
    # And the OpenAPI document names both routes
    document = api.get("/v1/openapi.json").body
    assert {"/v1/whoami", "/v1/job-types"} <= set(document["paths"])


def test_page_preloads_every_module_it_imports() -> None:
    # Given the console page and its modules
    page = (STATIC_DIR / "index.html").read_text()
    modules = {path.name for path in STATIC_DIR.glob("*.js")} - {"app.js"}
    # Then each is fetched at once (modulepreload), not one import level after another
    preloaded = set(re.findall(r'<link rel="modulepreload" href="([^"]+)">', page))
    assert preloaded == modules
