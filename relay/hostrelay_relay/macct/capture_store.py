"""Captured machine secrets per image, kept on the DC only: 0600 files sealed with an HMAC."""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hostrelay_contract.names import check_image_name, normalize_computer_name
from hostrelay_relay.macct.errors import CaptureMissing, CaptureUntrusted
from hostrelay_relay.macct.samdb import MachineSecrets

CAPTURE_VERSION = 1
KEY_BYTES = 32
MAX_CAPTURE_BYTES = 1024 * 1024
_HMAC_CONTEXT = b"hostrelay-macct-capture-v1\n"
_OPEN_FLAGS = os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True)
class Capture:
    """The secrets of the computer an image was uploaded from, and where they came from."""

    image: str
    computer: str
    dn: str
    captured_at: str
    secrets: MachineSecrets


class CaptureStore:
    """`<state_dir>/macct/images/<image>.json`, keyed by `<state_dir>/macct/capture.key`.

    Every directory is 0700 and every file 0600, owned by the relay's user (root). A file
    with other ownership or permissions, a symlink, or a failing HMAC makes `load` refuse.
    """

    def __init__(self, state_dir: Path) -> None:
        self.root = state_dir / "macct"
        self.images_dir = self.root / "images"
        self.key_file = self.root / "capture.key"

    def path_for(self, image: str) -> Path:
        return self.images_dir / f"{check_image_name(image)}.json"

    def save(self, capture: Capture) -> Path:
        """Atomically write (tmp + fsync + rename) the capture for its image."""
        self._secure_dir(self.root, create=True)
        self._secure_dir(self.images_dir, create=True)
        key = self._key(create=True)
        document = _document(capture)
        document["hmac"] = _seal(key, document)
        path = self.path_for(capture.image)
        _write_atomically(path, json.dumps(document, sort_keys=True).encode())
        return path

    def load(self, image: str) -> Capture:
        """Read and verify the capture of `image`; raise CaptureMissing or CaptureUntrusted."""
        path = self.path_for(image)
        if not self.images_dir.exists():
            raise CaptureMissing(f"no capture stored for image {image}")
        self._secure_dir(self.root, create=False)
        self._secure_dir(self.images_dir, create=False)
        try:
            raw = _read_private_file(path)
        except FileNotFoundError as exc:
            raise CaptureMissing(f"no capture stored for image {image}") from exc
        key = self._key(create=False)
        try:
            document = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CaptureUntrusted(f"capture of image {image} is not valid JSON") from exc
        if not isinstance(document, dict) or not isinstance(document.get("hmac"), str):
            raise CaptureUntrusted(f"capture of image {image} carries no HMAC")
        claimed = document.pop("hmac")
        if not hmac.compare_digest(claimed, _seal(key, document)):
            raise CaptureUntrusted(f"capture of image {image} fails its HMAC check (tampered?)")
        return _capture_from(document, image)

    def check_permissions(self) -> list[str]:
        """Problems with the store's directories and key (empty when all is well)."""
        problems: list[str] = []
        for path, is_dir in ((self.root, True), (self.images_dir, True), (self.key_file, False)):
            if not path.exists():
                continue
            try:
                if is_dir:
                    self._secure_dir(path, create=False)
                else:
                    _read_private_file(path)
            except CaptureUntrusted as exc:
                problems.append(exc.message)
        return problems

    def _key(self, *, create: bool) -> bytes:
        try:
            key = _read_private_file(self.key_file)
        except FileNotFoundError as exc:
            if not create:
                raise CaptureUntrusted(f"capture key {self.key_file} is missing") from exc
            _create_key(self.key_file)
            key = _read_private_file(self.key_file)
        if len(key) != KEY_BYTES:
            raise CaptureUntrusted(f"capture key {self.key_file} has the wrong length")
        return key

    @staticmethod
    def _secure_dir(path: Path, *, create: bool) -> None:
        if create:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            with contextlib.suppress(FileExistsError):
                path.mkdir(mode=0o700)
        info = os.lstat(path)
        if not stat.S_ISDIR(info.st_mode):
            raise CaptureUntrusted(f"{path} is not a directory")
        _check_owner_and_mode(path, info)


def _check_owner_and_mode(path: Path, info: os.stat_result) -> None:
    if info.st_uid != os.geteuid():
        raise CaptureUntrusted(f"{path} is owned by uid {info.st_uid}, not {os.geteuid()}")
    if info.st_mode & 0o077:
        raise CaptureUntrusted(
            f"{path} has mode {stat.S_IMODE(info.st_mode):o}; group/other must have no access"
        )


def _read_private_file(path: Path) -> bytes:
    """Read a regular file (no symlink) owned by us with no group/other access."""
    try:
        fd = os.open(path, os.O_RDONLY | _OPEN_FLAGS)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise CaptureUntrusted(f"{path} cannot be opened safely: {exc.strerror}") from exc
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise CaptureUntrusted(f"{path} is not a regular file")
        _check_owner_and_mode(path, info)
        if info.st_size > MAX_CAPTURE_BYTES:
            raise CaptureUntrusted(f"{path} is larger than {MAX_CAPTURE_BYTES} bytes")
        return handle.read(MAX_CAPTURE_BYTES + 1)


def _create_key(path: Path) -> None:
    """Create the key once; a concurrent creator wins the link and we use its key."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    _write_new_file(tmp, secrets.token_bytes(KEY_BYTES))
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    _fsync_dir(path.parent)


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    _write_new_file(tmp, data)
    try:
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _write_new_file(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _OPEN_FLAGS, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError:
        path.unlink(missing_ok=True)
        raise


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _document(capture: Capture) -> dict[str, Any]:
    return {
        "version": CAPTURE_VERSION,
        "image": capture.image,
        "computer": capture.computer,
        "dn": capture.dn,
        "captured_at": capture.captured_at,
        "secrets": {
            "unicodePwd": base64.b64encode(capture.secrets.unicode_pwd).decode(),
            "supplementalCredentials": base64.b64encode(
                capture.secrets.supplemental_credentials
            ).decode(),
        },
    }


def _seal(key: bytes, document: dict[str, Any]) -> str:
    body = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hmac.new(key, _HMAC_CONTEXT + body.encode(), hashlib.sha256).hexdigest()


def _capture_from(document: dict[str, Any], image: str) -> Capture:
    """Rebuild a Capture from a document whose HMAC already verified."""
    try:
        if document["version"] != CAPTURE_VERSION or document["image"] != image:
            raise CaptureUntrusted(f"capture file of image {image} belongs to another image")
        sealed = document["secrets"]
        return Capture(
            image=image,
            computer=normalize_computer_name(document["computer"]),
            dn=str(document["dn"]),
            captured_at=str(document["captured_at"]),
            secrets=MachineSecrets(
                unicode_pwd=base64.b64decode(sealed["unicodePwd"], validate=True),
                supplemental_credentials=base64.b64decode(
                    sealed["supplementalCredentials"], validate=True
                ),
            ),
        )
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise CaptureUntrusted(f"capture of image {image} is malformed") from exc
