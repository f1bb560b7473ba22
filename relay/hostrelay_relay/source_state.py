"""Per-connector state of `connector.sync`: what each entity last looked like when sent."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from hostrelay_contract.names import check_connector_id

log = logging.getLogger(__name__)

STATE_VERSION = 1


class SourceBusy(Exception):
    """Another sync of the same connector holds its lock."""


@dataclass
class SourceState:
    """The source the state is about (kind + URL) and id → hash of the entity sent."""

    fingerprint: str
    hashes: dict[str, str] = field(default_factory=dict)


class SourceStateStore:
    """JSON files under `<state_dir>/sources/`, replaced atomically, one lock per connector."""

    def __init__(self, state_dir: Path) -> None:
        self.directory = state_dir / "sources"

    def _path(self, connector: str, suffix: str) -> Path:
        return self.directory / f"{check_connector_id(connector)}{suffix}"

    def load(self, connector: str, fingerprint: str) -> SourceState:
        """The last committed state of this source; empty when none, unreadable or another's."""
        path = self._path(connector, ".json")
        try:
            data = json.loads(path.read_bytes())
        except FileNotFoundError:
            return SourceState(fingerprint)
        except (OSError, ValueError):
            log.warning(
                "source sync state unreadable, sending everything", extra={"path": str(path)}
            )
            return SourceState(fingerprint)
        if (
            not isinstance(data, dict)
            or data.get("version") != STATE_VERSION
            or data.get("fingerprint") != fingerprint
            or not isinstance(data.get("hashes"), dict)
        ):
            return SourceState(fingerprint)
        return SourceState(fingerprint, {str(k): str(v) for k, v in data["hashes"].items()})

    def save(self, connector: str, state: SourceState) -> None:
        """Write the new state so a crash leaves either the old file or the new one."""
        path = self._path(connector, ".json")
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp_name = tempfile.mkstemp(dir=self.directory, prefix=f".{connector}.", suffix=".tmp")
        try:
            text = json.dumps(
                {
                    "version": STATE_VERSION,
                    "fingerprint": state.fingerprint,
                    "hashes": state.hashes,
                },
                separators=(",", ":"),
            )
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp_name, path)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise

    @contextmanager
    def locked(self, connector: str) -> Iterator[None]:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        with self._path(connector, ".lock").open("a") as handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise SourceBusy(connector) from None
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
