"""The cursor of a Kubernetes connector a relay runs: its result moves it on, the next run's
params carry it (`since`), and the same rule as in the cloud says when a run reads everything.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from hostrelay.dal.connectors_repo import ConnectorRepository
from hostrelay.domain.connectors import RELAY_SYNC_JOB, Connector, ConnectorKind
from hostrelay.domain.jobs import Job, JobState
from hostrelay.domain.sync_cursor import next_cursor, run_is_full, settings_fingerprint
from hostrelay.observability import logger

if TYPE_CHECKING:
    from hostrelay.domain.connector_settings import KubernetesConnectorSettings


def relay_source_params(settings: KubernetesConnectorSettings) -> dict[str, Any]:
    """The `source` of a connector.sync job for these settings."""
    return settings.source().model_dump(mode="json", exclude_none=True)


def _kubernetes_settings(connector: Connector) -> KubernetesConnectorSettings:
    # Imported here: the connector kinds' settings models (and the job models they reuse) cost
    # a cold start ~10 ms, and most scheduler ticks and result batches need none of them.
    from hostrelay.domain.connector_settings import KubernetesConnectorSettings

    return KubernetesConnectorSettings.model_validate(connector.settings)


def moves_cursor(job: Job) -> bool:
    """A finished job whose result moves a relay-run connector's cursor on (cheap: read
    before anything is loaded for it)."""
    result = job.result or {}
    return (
        job.type == RELAY_SYNC_JOB
        and job.state is JobState.SUCCEEDED
        and isinstance(result.get("resource_versions"), dict)
    )


class RelayCursor:
    def __init__(self, connectors: ConnectorRepository) -> None:
        self._connectors = connectors

    def since(self, connector: Connector, now: datetime) -> dict[str, str] | None:
        """The resourceVersions the next run reads the changes after; None: read everything."""
        settings = _kubernetes_settings(connector)
        cursor = self._connectors.sync_cursor(connector.id)
        if cursor is None or run_is_full(cursor, settings_fingerprint(settings), settings, now):
            return None
        return dict(cursor.position)

    def job_finished(self, job: Job) -> None:
        """Keep the versions a succeeded connector.sync of a Kubernetes connector reached, if
        the connector still reads what the job read (else its next run reads everything)."""
        if not moves_cursor(job):
            return
        connector = self._connectors.find(job.connector_id or str(job.params.get("connector")))
        if (
            connector is None
            or connector.kind is not ConnectorKind.KUBERNETES
            or connector.target != job.host
        ):
            return
        settings = _kubernetes_settings(connector)
        if job.params.get("source") != relay_source_params(settings):
            logger.info("connector changed during its run", extra={"connector": connector.id})
            return
        result = job.result or {}
        versions = {str(k): str(v) for k, v in result["resource_versions"].items()}
        self._connectors.save_sync_cursor(
            connector.id,
            next_cursor(
                self._connectors.sync_cursor(connector.id),
                settings_fingerprint(settings),
                versions,
                full=result.get("mode") != "incremental",
                started=job.started_at or job.created_at,
            ),
        )
