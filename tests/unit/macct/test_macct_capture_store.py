"""The capture store: atomic private files sealed with an HMAC; anything doubtful is refused."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from hostrelay_relay.macct.capture_store import Capture, CaptureStore
from hostrelay_relay.macct.errors import CaptureMissing, CaptureUntrusted
from hostrelay_relay.macct.samdb import MachineSecrets

SECRETS = MachineSecrets(unicode_pwd=b"\x11" * 16, supplemental_credentials=b"\x00blob\xff" * 50)
NOBODY = 65534


def _capture(image: str = "win10") -> Capture:
    return Capture(image, "PC01", "CN=PC01,CN=Computers,DC=t", "2026-01-01T00:00:00Z", SECRETS)


@pytest.fixture
def store(tmp_path: Path) -> CaptureStore:
    return CaptureStore(tmp_path / "state")


def test_saved_capture_loads_back_unchanged(store: CaptureStore) -> None:
    # Given a saved capture, When loaded, Then it is identical
    path = store.save(_capture())
    assert store.load("win10") == _capture()
    # And the file, its directories and the key are private
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.root.stat().st_mode) == 0o700
    assert stat.S_IMODE(store.images_dir.stat().st_mode) == 0o700
    assert store.check_permissions() == []


def test_secrets_never_show_in_a_repr() -> None:
    assert "\\x11" not in repr(_capture()) and "blob" not in repr(_capture())


def test_missing_capture_is_reported_as_missing(store: CaptureStore) -> None:
    with pytest.raises(CaptureMissing):
        store.load("win10")
    store.save(_capture("other"))
    with pytest.raises(CaptureMissing):
        store.load("win10")


@pytest.mark.parametrize(
    "field_path",
    [("secrets", "unicodePwd"), ("secrets", "supplementalCredentials"), ("computer",), ("dn",)],
)
def test_any_edited_field_fails_the_hmac(store: CaptureStore, field_path: tuple[str, ...]) -> None:
    # Given a saved capture with one field edited on disk
    path = store.save(_capture())
    document = json.loads(path.read_bytes())
    node = document
    for key in field_path[:-1]:
        node = node[key]
    node[field_path[-1]] = "AAAA" if field_path[0] == "secrets" else "PC02"
    path.write_text(json.dumps(document))
    # When loaded, Then it is refused
    with pytest.raises(CaptureUntrusted, match="HMAC"):
        store.load("win10")


def test_capture_sealed_with_another_key_is_refused(store: CaptureStore) -> None:
    # Given the store's key replaced by a new one
    store.save(_capture())
    store.key_file.write_bytes(os.urandom(32))
    # When loaded, Then it is refused
    with pytest.raises(CaptureUntrusted, match="HMAC"):
        store.load("win10")


def test_missing_key_and_garbage_file_are_refused(store: CaptureStore) -> None:
    path = store.save(_capture())
    store.key_file.unlink()
    with pytest.raises(CaptureUntrusted, match="key"):
        store.load("win10")
    store.save(_capture())
    path.write_text("not json")
    with pytest.raises(CaptureUntrusted):
        store.load("win10")


def test_wrong_modes_and_owners_are_refused(store: CaptureStore) -> None:
    # Given a saved capture whose file or directories are opened up, or owned by someone else
    path = store.save(_capture())
    for target, mode in ((path, 0o640), (store.images_dir, 0o711), (store.root, 0o750)):
        target.chmod(mode)
        # When loaded, Then it is refused
        with pytest.raises(CaptureUntrusted, match="mode"):
            store.load("win10")
        target.chmod(0o700 if target.is_dir() else 0o600)
    os.chown(path, NOBODY, NOBODY)
    with pytest.raises(CaptureUntrusted, match="owned by"):
        store.load("win10")


def test_check_permissions_reports_an_open_directory(store: CaptureStore) -> None:
    store.save(_capture())
    store.images_dir.chmod(0o755)
    (problem,) = store.check_permissions()
    assert "images" in problem and "755" in problem


def test_symlinked_capture_is_refused(store: CaptureStore, tmp_path: Path) -> None:
    path = store.save(_capture())
    real = tmp_path / "real.json"
    real.write_bytes(path.read_bytes())
    real.chmod(0o600)
    path.unlink()
    path.symlink_to(real)
    with pytest.raises(CaptureUntrusted):
        store.load("win10")


def test_save_replaces_atomically_and_leaves_no_temp_files(store: CaptureStore) -> None:
    store.save(_capture())
    newer = Capture("win10", "PC09", "CN=PC09,DC=t", "2026-02-01T00:00:00Z", SECRETS)
    store.save(newer)
    assert store.load("win10") == newer
    assert sorted(p.name for p in store.images_dir.iterdir()) == ["win10.json"]
