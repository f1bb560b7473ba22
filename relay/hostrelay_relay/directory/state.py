"""Per-connector sync state on disk: the watermark and what the inventory was last sent."""

from __future__ import annotations

import fcntl
import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from hostrelay_contract.names import check_connector_id
from hostrelay_relay.directory.errors import DirectoryError
from hostrelay_relay.directory.flavors import Kind

log = logging.getLogger(__name__)

STATE_VERSION = 1


class KnownEntity(NamedTuple):
    """What the inventory holds for one id, as of the last committed run."""

    hash: str
    kind: Kind
    dn: str
    members: list[str] | None


@dataclass
class SyncState:
    """Everything a run needs from the previous one."""

    fingerprint: str
    flavor: str
    watermark: str | None
    runs_since_scan: int = 0
    entities: dict[str, KnownEntity] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "fingerprint": self.fingerprint,
            "flavor": self.flavor,
            "watermark": self.watermark,
            "runs_since_scan": self.runs_since_scan,
            "entities": self.entities,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SyncState:
        return cls(
            fingerprint=str(data["fingerprint"]),
            flavor=str(data["flavor"]),
            watermark=None if data["watermark"] is None else str(data["watermark"]),
            runs_since_scan=int(data["runs_since_scan"]),
            entities={key: KnownEntity(*row) for key, row in data["entities"].items()},
        )


def _known_entity_row(value: object) -> list[Any]:
    """orjson writes plain tuples but not NamedTuples: a KnownEntity is stored as its row."""
    if isinstance(value, KnownEntity):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


class SyncStateStore:
    """JSON files under `<state_dir>/directory/`, replaced atomically, one lock per connector."""

    def __init__(self, state_dir: Path) -> None:
        self.directory = state_dir / "directory"

    def path(self, connector: str) -> Path:
        return self.directory / f"{check_connector_id(connector)}.json"

    def load(self, connector: str) -> SyncState | None:
        """The last committed state, or None when there is none (or it is unreadable)."""
        path = self.path(connector)
        try:
            data = orjson.loads(path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            log.warning(
                "directory sync state unreadable, doing a full sync", extra={"path": str(path)}
            )
            return None
        if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
            log.warning("directory sync state has another version, doing a full sync")
            return None
        try:
            return SyncState.from_json(data)
        except (KeyError, TypeError, ValueError):
            log.warning(
                "directory sync state malformed, doing a full sync", extra={"path": str(path)}
            )
            return None

    def save(self, connector: str, state: SyncState) -> None:
        """Write the new state so a crash leaves either the old file or the new one."""
        path = self.path(connector)
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp_name = tempfile.mkstemp(dir=self.directory, prefix=f".{connector}.", suffix=".tmp")
        try:
            data = orjson.dumps(state.to_json(), default=_known_entity_row)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp_name, path)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise

    @contextmanager
    def locked(self, connector: str) -> Iterator[None]:
        """Hold the connector's lock; a second concurrent sync fails instead of racing."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        lock_path = self.directory / f"{check_connector_id(connector)}.lock"
        with lock_path.open("a") as handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise DirectoryError(
                    "ldap_busy",
                    f"another sync of connector {connector!r} is running on this relay",
                    retryable=True,
                ) from None
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
