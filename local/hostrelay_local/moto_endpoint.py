"""moto (DynamoDB, SQS, S3, IoT, SSM, ...) for the local stack, served on a free local port."""

from __future__ import annotations

import base64
import functools
import importlib
import importlib.metadata
import io
import json
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote

from hostrelay_local.local_http import BackgroundServer, LocalHttpServer, LocalRequestHandler
from hostrelay_local.moto_expressions import cheaper_expressions
from hostrelay_local.moto_transactions import roll_back_only_touched_items

logger = logging.getLogger(__name__)

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


# tune_moto replaces moto internals; these are the releases it was checked against
# ([first, end)): a moto outside them is refused with a clear message, never half-patched.
TESTED_MOTO_RELEASES = ((5, 2), (5, 3))


class UntestedMotoVersion(RuntimeError):
    """The installed moto is not a release the local stack's patches were checked on."""


def check_moto_version(installed: str | None = None) -> None:
    """Refuse a moto release outside TESTED_MOTO_RELEASES (the lock pins a tested one)."""
    version = installed or importlib.metadata.version("moto")
    release = tuple(int(part) for part in version.split(".")[:2] if part.isdigit())
    first, end = TESTED_MOTO_RELEASES
    if not first <= release < end:
        raise UntestedMotoVersion(
            f"moto {version} is installed, but the local stack patches moto internals checked "
            f"only on moto {first[0]}.{first[1]}.x; install the locked versions with "
            "`make venv` (requirements/dev.lock), or re-check local/hostrelay_local/"
            "moto_endpoint.py's tune_moto and widen TESTED_MOTO_RELEASES"
        )


_FAST_JSON_ACTIONS = frozenset(
    {"GetItem", "BatchGetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan"}
)
_tune_lock = threading.Lock()
_tuned = threading.Event()


def _json_default(value: object) -> str:
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")  # binary attributes travel as base64
    raise TypeError(type(value).__name__)


def tune_moto(per_item_rollback: bool = True) -> None:
    """Adjust moto for the local stack, once per process (idempotent; the first call decides).

    `per_item_rollback=False` leaves moto's whole-table transaction rollback in place: the
    benches' "before" figures (`--whole-table-rollback`), nothing else.

    - One DynamoDB request at a time: moto applies a conditional write as check-then-update
      without a lock, so two concurrent UpdateItems with the same condition could both
      succeed. DynamoDB never lets that happen and the control plane's optimistic
      versioning relies on it.
    - Item results (GetItem, BatchGetItem, Query, ...) are already in DynamoDB's wire shape;
      encoding them with json instead of moto's model-driven serializer makes a GetItem about
      3x cheaper, and a BatchGetItem of 100 inventory entities about 5x (it was 85 % of
      re-reading an unchanged inventory). Anything else (errors, other actions) keeps moto's
      serializer.
    - moto lists its package directory on every server request to route it; the list is
      fixed, so it is listed once. Likewise the methods of each response class, which it
      listed with inspect on every call of any service, and the snake_case of names it
      converts some twenty times a call (the attributes of an SQS queue).
    - moto parses an UpdateItem's update expression twice per call; a parsed expression is
      kept per text (its validator works on a deep copy, so the parse is never changed).
      pynamodb writes the same few expressions over and over.
    - moto runs a look-behind regex over every response body to stamp an XML <RequestId>;
      on a JSON body of a megabyte (a Query page, ten SQS messages) that scan costs more than
      the call. Bodies without the tag are returned as they are.
    - For every message it hands out, moto's ReceiveMessage computes all of the queue's
      attributes (counting every message three times) to read its retention period.
    - S3 objects stay in memory up to 64 MiB instead of spilling to a temporary file past
      5 MiB (a job's 10 MB log is written to disk and read back otherwise).
    - Update and condition expressions are checked with moto's rules at a third less cost
      (moto_expressions.py says what each change skips and why the answer cannot differ).
    - TransactWriteItems keeps a copy of the items it names instead of a deep copy of every
      table it touches, once per item (moto_transactions.py says what that cost).
    """
    check_moto_version()
    from moto import backends
    from moto.dynamodb.responses import DynamoHandler

    moto_responses: Any = importlib.import_module("moto.core.responses")
    sqs_models: Any = importlib.import_module("moto.sqs.models")
    expressions: Any = importlib.import_module("moto.dynamodb.parsing.expressions")

    with _tune_lock:
        if _tuned.is_set():
            return
        os.environ.setdefault("MOTO_S3_DEFAULT_KEY_BUFFER_SIZE", str(64 * 1024 * 1024))
        lock = threading.RLock()
        call_action = DynamoHandler.call_action
        serialized = DynamoHandler.serialized

        def one_at_a_time(self: Any) -> Any:
            with lock:
                return call_action(self)

        def json_serialized(self: Any, action_result: Any) -> Any:
            result = action_result.result
            if isinstance(result, dict) and self._get_action() in _FAST_JSON_ACTIONS:
                try:
                    body = json.dumps(result, default=_json_default)
                except TypeError:
                    return serialized(self, action_result)
                headers = {"Content-Type": "application/x-amz-json-1.0", **self.response_headers}
                return 200, headers, body
            return serialized(self, action_result)

        enrich = moto_responses.BaseResponse._enrich_response

        def enrich_xml_only(headers: dict[str, str], body: Any) -> Any:
            if isinstance(body, str) and "<RequestId>" not in body:
                if "status" in headers:
                    headers["status"] = str(headers["status"])
                moto_responses.gen_amzn_requestid_long(headers)
                return headers, body
            return enrich(headers, body)

        moto_responses.BaseResponse._enrich_response = staticmethod(enrich_xml_only)

        def retained(self: Any, queue_name: str, message: Any) -> bool:
            period = int(self.get_queue(queue_name).message_retention_period)
            return bool(period + message.sent_timestamp / 1000 > sqs_models.unix_time())

        sqs_models.SQSBackend.is_message_valid_based_on_retention_period = retained
        DynamoHandler.call_action = one_at_a_time  # type: ignore[method-assign]
        DynamoHandler.serialized = json_serialized  # type: ignore[method-assign]
        modules = tuple(backends.list_of_moto_modules())
        backends.list_of_moto_modules = lambda: modules
        moto_responses.method_names_from_class = functools.cache(
            moto_responses.method_names_from_class
        )
        snake_case = functools.lru_cache(maxsize=4096)(moto_responses.camelcase_to_underscores)
        moto_responses.camelcase_to_underscores = snake_case
        sqs_models.camelcase_to_underscores = snake_case
        parser = expressions.UpdateExpressionParser
        parse_update: Any = functools.lru_cache(maxsize=512)(parser.make.__func__)
        parser.make = classmethod(parse_update)
        cheaper_expressions()
        if per_item_rollback:
            roll_back_only_touched_items()
        _tuned.set()


class _WsgiRequestHandler(LocalRequestHandler):
    """HTTP/1.1 with keep-alive in front of a WSGI app.

    werkzeug's development server closes every connection (and lingers 10 ms draining it), so
    each AWS call would pay for a new connection and thread; botocore keeps connections open.
    """

    server: _WsgiHttpServer

    def handle_one_request(self) -> None:
        self.raw_requestline = self.rfile.readline(65537)
        if not self.raw_requestline:
            self.close_connection = True
            return
        if not self.parse_request():
            return
        self._run_app(self._read_body())

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while size := int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _environ(self, body: bytes) -> dict[str, Any]:
        path, _, query = self.path.partition("?")
        host, port = self.server.server_address[:2]
        environ: dict[str, Any] = {
            "REQUEST_METHOD": self.command,
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote(path, "latin-1"),
            "QUERY_STRING": query,
            "RAW_URI": self.path,
            "REQUEST_URI": self.path,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "SERVER_NAME": str(host),
            "SERVER_PORT": str(port),
            "SERVER_PROTOCOL": self.request_version,
            "REMOTE_ADDR": self.client_address[0],
            "REMOTE_PORT": self.client_address[1],
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        for name, value in self.headers.items():
            key = "HTTP_" + name.upper().replace("-", "_")
            if key in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
                continue
            environ[key] = f"{environ[key]},{value}" if key in environ else value
        return environ

    def _run_app(self, body: bytes) -> None:
        response: dict[str, Any] = {}

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:
            response["status"], response["headers"] = status, headers
            return lambda data: None

        try:
            result = self.server.app(self._environ(body), start_response)
            try:
                data = b"".join(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        except Exception:
            logger.exception("moto failed on a request", extra={"path": self.path})
            response = {"status": "500 Internal Server Error", "headers": []}
            data = b""
        payload = b"" if self.command == "HEAD" else data
        self.write_reply(response["status"], response["headers"], payload, length=len(data))


class _WsgiHttpServer(LocalHttpServer):
    def __init__(self, address: tuple[str, int], app: WsgiApp) -> None:
        super().__init__(address, _WsgiRequestHandler)
        self.app = app


def make_moto_server(host: str, port: int) -> LocalHttpServer:
    """moto's app behind a keep-alive HTTP/1.1 server, one DynamoDB request at a time."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    tune_moto()
    return _WsgiHttpServer((host, port), DomainDispatcherApplication(create_backend_app))


_SIGNER_EVENT = "choose-signer"
_UNSIGNED_ID = "hostrelay-local-unsigned"


def _unsigned(**kwargs: Any) -> Any:
    from botocore import UNSIGNED

    return UNSIGNED


def sign_nothing_in_process(enabled: bool) -> None:
    """AWS calls made in this process go into moto's mock, which checks no signature:
    computing SigV4 for them is a fifth of a DynamoDB call's cost and proves nothing.
    Affects clients created afterwards (every function creates its own on first use)."""
    import boto3
    from botocore.handlers import BUILTIN_HANDLERS

    hook = (_SIGNER_EVENT, _unsigned)
    session = boto3.DEFAULT_SESSION
    if enabled:
        if hook not in BUILTIN_HANDLERS:
            BUILTIN_HANDLERS.append(hook)
        if session is not None:
            session.events.register(_SIGNER_EVENT, _unsigned, unique_id=_UNSIGNED_ID)
    else:
        if hook in BUILTIN_HANDLERS:
            BUILTIN_HANDLERS.remove(hook)
        if session is not None:
            session.events.unregister(_SIGNER_EVENT, unique_id=_UNSIGNED_ID)


class MotoServer:
    """moto for the local stack: every AWS service, state in memory.

    boto3 calls made in this process go straight into moto (its `mock_aws`: no HTTP and no
    signature, which makes each call several times cheaper), and the same state is served
    over HTTP on `endpoint_url` for everything else (the aws CLI, scripts, tests in other
    processes).
    """

    def __init__(self) -> None:
        self.port = 0
        self._serving = BackgroundServer("moto")
        self._mock: Any = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        from moto import mock_aws

        tune_moto()
        self._mock = mock_aws()
        self._mock.start()
        sign_nothing_in_process(True)
        server = make_moto_server("127.0.0.1", 0)
        self.port = int(server.server_address[1])
        self._serving.start(server)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop serving and end the mock; harmless when not running. The state is gone."""
        self._serving.stop(timeout_s)
        mock, self._mock = self._mock, None
        if mock is not None:
            sign_nothing_in_process(False)
            mock.stop()
