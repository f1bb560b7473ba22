"""Fixtures for the relay's connector.sync: the handler run directly, sources as local fakes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from hostrelay_contract.jobs.sources import ConnectorSyncParams
from hostrelay_relay.handlers.base import JobContext
from hostrelay_relay.handlers.connector_sync import ConnectorSyncHandler
from hostrelay_relay.settings import RelaySettings, SourcesSettings
from tests.fakes.authentik import AuthentikFake
from tests.fakes.kubernetes import KubernetesFake

pytestmark = pytest.mark.integration

AUTHENTIK_TOKEN = "ak-relay-test-token-5c0ffee1d2"  # what no event, result or log may contain
KUBERNETES_TOKEN = "eyJrelay-k8s-test-token.7a9b3c"


def group_uuid(number: int) -> str:
    return str(uuid.UUID(int=(1 << 64) + number))


@dataclass
class RelayRun:
    """One connector.sync job as the relay runs it, with what it published."""

    events: list[dict[str, Any]] = field(default_factory=list)

    def upserts(self) -> dict[str, dict[str, Any]]:
        return {u["id"]: u for e in self.events for u in e["upserts"]}

    def deletes(self) -> list[str]:
        return [d for e in self.events for d in e["deletes"]]


@dataclass
class RelaySource:
    """A relay configured for one source: its settings, token file and a way to run jobs."""

    settings: RelaySettings
    credential_file: Path
    url: str

    def params(self, kind: str, connector: str = "conn-1", **source: Any) -> dict[str, Any]:
        return {
            "connector": connector,
            "source": {"kind": kind, "url": self.url, **source},
            "credential_file": str(self.credential_file),
        }

    def handler(self) -> ConnectorSyncHandler:
        return ConnectorSyncHandler(self.settings)

    def context(self, published: RelayRun | None = None) -> JobContext:
        sink = published if published is not None else RelayRun()

        def report_event(kind: str, body: dict[str, Any]) -> None:
            assert kind == "inventory"
            sink.events.append(body)

        return JobContext(
            job_id="01JOBTEST",
            attempt=1,
            host="dc01",
            settings=self.settings,
            timeout_s=60,
            report_progress=lambda done, total, message: None,
            report_output=lambda stream, data: None,
            report_event=report_event,
        )

    def run(self, params: dict[str, Any]) -> tuple[dict[str, Any], RelayRun]:
        handler = self.handler()
        validated: ConnectorSyncParams = handler.validate(params)
        published = RelayRun()
        return handler.run(validated, self.context(published)), published


def _relay_source(tmp_path: Path, url: str, ca_file: str, token: str) -> RelaySource:
    credential_dir = tmp_path / "sources"
    credential_dir.mkdir(mode=0o700, parents=True)
    credential_file = credential_dir / "token"
    credential_file.write_text(token + "\n", encoding="utf-8")
    credential_file.chmod(0o600)
    settings = RelaySettings(
        host="dc01",
        state_dir=tmp_path / "state",
        sources=SourcesSettings(
            credential_dir=credential_dir, origins=[url], ca_file=Path(ca_file), max_wait_s=5
        ),
    )
    return RelaySource(settings, credential_file, url)


@pytest.fixture
def authentik(tmp_path: Path) -> Iterator[AuthentikFake]:
    fake = AuthentikFake(tmp_path / "authentik", AUTHENTIK_TOKEN).start()
    yield fake
    fake.stop()


@pytest.fixture
def kubernetes(tmp_path: Path) -> Iterator[KubernetesFake]:
    fake = KubernetesFake(tmp_path / "kubernetes", KUBERNETES_TOKEN).start()
    yield fake
    fake.stop()
    # Every request and answer of the test was one Kubernetes' OpenAPI document allows.
    assert fake.state.violations == []


@pytest.fixture
def authentik_relay(tmp_path: Path, authentik: AuthentikFake) -> RelaySource:
    """Given a relay whose config trusts the Authentik fake and holds its token in a 0600 file."""
    return _relay_source(tmp_path / "relay", authentik.base_url, authentik.ca_file, AUTHENTIK_TOKEN)


@pytest.fixture
def kubernetes_relay(tmp_path: Path, kubernetes: KubernetesFake) -> RelaySource:
    return _relay_source(
        tmp_path / "relay", kubernetes.base_url, kubernetes.ca_file, KUBERNETES_TOKEN
    )
