"""`hostrelay-relay enroll`: make this host's key here and trade a CSR for its certificate."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from hostrelay_contract.names import check_host_name
from hostrelay_relay import __version__, toml_reader

CONFIG_FILE = "relay.toml"
KEY_FILE = "client.key"
CERT_FILE = "client.pem"
CA_FILE = "ca.pem"
PUBLIC_KEY_FILE = "envelope-signing.pub"
HTTP_TIMEOUT_S = 30.0
MAX_RESPONSE_BYTES = 256 * 1024
_BUNDLE_FIELDS = (
    "host", "certificate_pem", "ca_pem", "broker_host", "broker_port",
    "envelope_public_key_pem", "control_plane_url",
)  # fmt: skip

PostJson = Callable[[str, dict[str, Any]], tuple[int, Any]]


class EnrollmentRefused(Exception):
    """Enrollment did not happen; nothing on this host was changed. The message says why."""


@dataclass(frozen=True)
class EnrollmentRequest:
    url: str
    host: str
    token: str
    config_dir: Path
    state_dir: Path


def new_key_and_csr(host: str) -> tuple[bytes, str]:
    """A fresh EC P-256 key (PKCS#8 PEM) and a CSR for it naming exactly CN=host."""
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return key_pem, csr.public_bytes(serialization.Encoding.PEM).decode()


def post_json(url: str, body: dict[str, Any]) -> tuple[int, Any]:
    """POST JSON and return (status, parsed body); EnrollmentRefused when unreachable."""
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked by the caller
        url,
        data=json.dumps(body).encode(),
        headers={
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": f"hostrelay-relay/{__version__}",
        },
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as response:  # noqa: S310
            status, raw = response.status, response.read(MAX_RESPONSE_BYTES)
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read(MAX_RESPONSE_BYTES)
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise EnrollmentRefused(f"cannot reach the control plane: {reason}") from None
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, None


def _api_message(status: int, body: Any) -> str:
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return f"{error['message']} (HTTP {status})"
    return f"the control plane answered HTTP {status}"


def request_certificate(
    request: EnrollmentRequest, csr_pem: str, post: PostJson = post_json
) -> dict[str, Any]:
    """Send the CSR with the token; the enrollment bundle, or EnrollmentRefused."""
    base = request.url.rstrip("/")
    if not base.startswith(("https://", "http://")):
        raise EnrollmentRefused(f"--url must be an http(s) URL, not {request.url!r}")
    url = f"{base}/v1/enroll/{quote(request.token, safe='')}/csr"
    status, body = post(url, {"host": request.host, "csr": csr_pem})
    if status != 200:
        raise EnrollmentRefused(_api_message(status, body))
    if not isinstance(body, dict) or any(name not in body for name in _BUNDLE_FIELDS):
        raise EnrollmentRefused("the control plane sent an incomplete enrollment answer")
    return body


def check_bundle(bundle: Mapping[str, Any], host: str, key_pem: bytes) -> x509.Certificate:
    """The certificate must name this host and carry the key made here."""
    try:
        cert = x509.load_pem_x509_certificate(str(bundle["certificate_pem"]).encode())
        x509.load_pem_x509_certificates(str(bundle["ca_pem"]).encode())
        serialization.load_pem_public_key(str(bundle["envelope_public_key_pem"]).encode())
    except ValueError as exc:
        raise EnrollmentRefused(f"the control plane sent unreadable certificates: {exc}") from None
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if bundle["host"] != host or [n.value for n in names] != [host]:
        raise EnrollmentRefused(f"the certificate is not for host {host}")
    key = serialization.load_pem_private_key(key_pem, password=None)
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    ours = key.public_key().public_bytes(serialization.Encoding.PEM, spki)
    if cert.public_key().public_bytes(serialization.Encoding.PEM, spki) != ours:
        raise EnrollmentRefused("the certificate does not carry the key made on this host")
    return cert


# ---------------------------------------------------------------- relay.toml


def _toml_scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, str | Path):
        return json.dumps(str(value))  # JSON escapes are valid TOML basic-string escapes
    if isinstance(value, list):
        return "[" + ", ".join(_toml_scalar(item) for item in value) + "]"
    if isinstance(value, dict):  # an inline table in a list: an exec launcher entry
        items = (f"{_toml_key(key)} = {_toml_scalar(item)}" for key, item in value.items())
        return "{" + ", ".join(items) + "}"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def _toml_key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() else json.dumps(key)


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _table_lines(document: Mapping[str, Any], prefix: str) -> list[str]:
    lines: list[str] = []
    nested: list[tuple[str, Any]] = []
    for key, value in document.items():
        if isinstance(value, dict) or _is_table_array(value):
            nested.append((key, value))
        else:
            lines.append(f"{_toml_key(key)} = {_toml_scalar(value)}")
    for key, value in nested:
        name = prefix + _toml_key(key)
        if isinstance(value, dict):
            lines += ["", f"[{name}]", *_table_lines(value, name + ".")]
        else:
            for item in value:
                lines += ["", f"[[{name}]]", *_table_lines(item, name + ".")]
    return lines


def render_toml(document: Mapping[str, Any]) -> str:
    """TOML for nested tables of scalars and lists (what relay.toml holds)."""
    return "\n".join(_table_lines(document, "")).strip("\n") + "\n"


def relay_config(
    existing: Mapping[str, Any], request: EnrollmentRequest, bundle: Mapping[str, Any]
) -> dict[str, Any]:
    """The existing relay.toml with what enrollment decides replaced (the rest is kept)."""
    config_dir = request.config_dir
    document = dict(existing)
    broker = dict(document.get("broker") or {})
    broker.update(
        host=str(bundle["broker_host"]),
        port=int(bundle["broker_port"]),
        ca_file=str(config_dir / CA_FILE),
        cert_file=str(config_dir / CERT_FILE),
        key_file=str(config_dir / KEY_FILE),
    )
    document.update(
        host=request.host,
        state_dir=str(request.state_dir),
        public_key_file=str(config_dir / PUBLIC_KEY_FILE),
        control_plane_url=str(bundle["control_plane_url"]),
        broker=broker,
    )
    return document


# ---------------------------------------------------------------- files


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def install_files(request: EnrollmentRequest, files: Mapping[str, bytes]) -> None:
    """Put the files in place all at once: a staged directory renamed into place, or (when
    the config directory exists) each file replaced atomically, relay.toml last.
    """
    config_dir = request.config_dir.absolute()
    config_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".hostrelay-enroll-", dir=config_dir.parent))
    try:
        staging.chmod(0o700)
        for name, data in files.items():
            _write_private(staging / name, data)
        if not config_dir.exists():
            staging.rename(config_dir)
        else:
            config_dir.chmod(0o700)
            for name in sorted(files, key=lambda n: n == CONFIG_FILE):
                (staging / name).replace(config_dir / name)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    request.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    request.state_dir.chmod(0o700)


def _existing_config(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        with path.open("rb") as handle:
            return toml_reader.load(handle)
    except (OSError, toml_reader.TOMLDecodeError) as exc:
        raise EnrollmentRefused(f"cannot read the existing {path}: {exc}") from None


def enroll(request: EnrollmentRequest, post: PostJson = post_json) -> Path:
    """The whole enrollment; returns the relay.toml written. Changes nothing when refused."""
    try:
        check_host_name(request.host)
    except ValueError as exc:
        raise EnrollmentRefused(str(exc)) from None
    if not request.token.strip():
        raise EnrollmentRefused("no enrollment token on standard input")
    config_path = request.config_dir / CONFIG_FILE
    existing = _existing_config(config_path)  # unreadable: refuse before using the token
    key_pem, csr_pem = new_key_and_csr(request.host)
    bundle = request_certificate(request, csr_pem, post)
    check_bundle(bundle, request.host, key_pem)
    document = relay_config(existing, request, bundle)
    install_files(
        request,
        {
            KEY_FILE: key_pem,
            CERT_FILE: str(bundle["certificate_pem"]).encode(),
            CA_FILE: str(bundle["ca_pem"]).encode(),
            PUBLIC_KEY_FILE: str(bundle["envelope_public_key_pem"]).encode(),
            CONFIG_FILE: render_toml(document).encode(),
        },
    )
    return config_path
