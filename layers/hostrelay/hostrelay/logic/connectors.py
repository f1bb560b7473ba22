"""Connectors: validate and store them, start their runs (now or on schedule), list the runs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError
from ulid import ULID

from hostrelay.clock import isoformat, utcnow
from hostrelay.dal.connectors_repo import ConnectorRepository
from hostrelay.dal.hosts_repo import HostRepository
from hostrelay.dal.jobs_repo import JobRepository
from hostrelay.domain.connectors import (
    RELAY_SYNC_JOB,
    SECRET_KEY_MARKERS,
    SELF_HOSTED_KINDS,
    Connector,
    ConnectorKind,
    ConnectorRun,
)
from hostrelay.domain.errors import Conflict, DomainError, InvalidRequest, StaleWrite
from hostrelay.domain.hosts import HostState
from hostrelay.domain.jobs import Job
from hostrelay.domain.principal import Principal, Scope
from hostrelay.logic.jobs import JobService, NewJob
from hostrelay.logic.relay_cursor import RelayCursor
from hostrelay.logic.scheduling import parse_schedule
from hostrelay.observability import logger
from hostrelay_contract.names import CLOUD_HOST

if TYPE_CHECKING:
    from hostrelay.domain.connector_settings import SelfHostedSettings

SCHEDULER = Principal(token_id="scheduler", name="schedule", scopes=[Scope.OPERATOR])  # noqa: S106


@cache
def settings_models() -> dict[ConnectorKind, type[BaseModel]]:
    """Each connector kind's settings model. Imported on first use: they and the job models
    they reuse cost a cold start ~10 ms, and a scheduler tick with no due connector (most of
    them) or a container serving other routes needs none."""
    from hostrelay.domain.cloud_sources import (
        AzureConnectorSettings,
        GcpConnectorSettings,
        WorkspaceConnectorSettings,
    )
    from hostrelay.domain.connector_settings import (
        AuthentikConnectorSettings,
        AwsConnectorSettings,
        KubernetesConnectorSettings,
        LdapConnectorSettings,
        OktaConnectorSettings,
    )

    return {
        ConnectorKind.LDAP: LdapConnectorSettings,
        ConnectorKind.AWS: AwsConnectorSettings,
        ConnectorKind.OKTA: OktaConnectorSettings,
        ConnectorKind.WORKSPACE: WorkspaceConnectorSettings,
        ConnectorKind.GCP: GcpConnectorSettings,
        ConnectorKind.AZURE: AzureConnectorSettings,
        ConnectorKind.AUTHENTIK: AuthentikConnectorSettings,
        ConnectorKind.KUBERNETES: KubernetesConnectorSettings,
    }


_JOB_TYPES = {
    ConnectorKind.LDAP: "ldap.sync",
    ConnectorKind.AWS: "discovery.aws",
    ConnectorKind.OKTA: "okta.sync",
    ConnectorKind.WORKSPACE: "workspace.sync",
    ConnectorKind.GCP: "discovery.gcp",
    ConnectorKind.AZURE: "discovery.azure",
    ConnectorKind.AUTHENTIK: "authentik.sync",
    ConnectorKind.KUBERNETES: "kubernetes.sync",
}
# Kinds whose source is read by the discovery function (SaaS and cloud APIs).
CLOUD_KINDS = frozenset(
    {
        ConnectorKind.AWS,
        ConnectorKind.OKTA,
        ConnectorKind.WORKSPACE,
        ConnectorKind.GCP,
        ConnectorKind.AZURE,
    }
)


@dataclass(frozen=True)
class ConnectorDraft:
    """What a client sends to create or replace a connector."""

    name: str
    kind: ConnectorKind
    target: str
    settings: dict[str, Any]
    schedule: str | None = None
    enabled: bool = True


def _secret_paths(value: Any, path: str) -> list[str]:
    found: list[str] = []
    if isinstance(value, dict):
        for key, inner in value.items():
            here = f"{path}.{key}"
            if any(marker in str(key).lower() for marker in SECRET_KEY_MARKERS):
                found.append(here)
            found += _secret_paths(inner, here)
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            found += _secret_paths(inner, f"{path}[{index}]")
    return found


def validate_settings(kind: ConnectorKind, settings: dict[str, Any]) -> dict[str, Any]:
    """Clean settings of `kind`; secrets are refused outright, whatever they are called."""
    secrets = _secret_paths(settings, "settings")
    if secrets:
        raise InvalidRequest(
            "connector settings must not contain secrets: name a secret's ARN "
            "(settings.credential_arn) or, for a source a relay reads, a file on the relay "
            "(settings.credential_file) or a credential of its relay.toml (settings.credential, "
            "LDAP) instead",
            details=[{"field": path, "message": "secrets are not accepted"} for path in secrets],
        )
    try:
        model = settings_models()[kind].model_validate(settings)
    except ValidationError as exc:
        raise InvalidRequest(
            f"invalid settings for a {kind.value} connector",
            details=[
                {
                    "field": ".".join(str(p) for p in ("settings", *err["loc"])),
                    "message": err["msg"],
                }
                for err in exc.errors()
            ],
        ) from None
    return model.model_dump(mode="json", exclude_none=True)


def run_request(connector: Connector, since: dict[str, str] | None = None) -> NewJob:
    """The job one run of `connector` is: its settings become the job's params (a relay-run
    Kubernetes connector's cursor too, as `since`)."""
    job_type = _JOB_TYPES[connector.kind]
    params: dict[str, Any]
    if connector.kind is ConnectorKind.LDAP:
        params = {**connector.settings, "connector": connector.id}
    elif connector.kind in SELF_HOSTED_KINDS and connector.target != CLOUD_HOST:
        settings = self_hosted_settings(connector)
        job_type = RELAY_SYNC_JOB
        params = {
            "connector": connector.id,
            "source": settings.source().model_dump(mode="json", exclude_none=True),
            "credential_file": settings.credential_file,
        }
        if since:
            params["since"] = since
    elif connector.kind is not ConnectorKind.AWS:  # the handler reads the connector itself
        params = {"connector": connector.id}
    else:
        from hostrelay.domain.connector_settings import AwsConnectorSettings

        aws = AwsConnectorSettings.model_validate(connector.settings)
        params = {"connector": connector.id, "regions": aws.regions}
        if aws.assume_role_arn:
            params["assume_role_arn"] = aws.assume_role_arn
    return NewJob(
        type=job_type,
        host=connector.target,
        params=params,
        connector_id=connector.id,
    )


def next_run(connectors: ConnectorRepository, connector: Connector, now: datetime) -> NewJob:
    """The job of `connector`'s next run: a relay-run Kubernetes connector's reads the changes
    since its cursor, unless this run is due to read everything (domain.sync_cursor)."""
    since = None
    if connector.kind is ConnectorKind.KUBERNETES and connector.target != CLOUD_HOST:
        since = RelayCursor(connectors).since(connector, now)
    return run_request(connector, since)


def self_hosted_settings(connector: Connector) -> SelfHostedSettings:
    from hostrelay.domain.connector_settings import (
        AuthentikConnectorSettings,
        KubernetesConnectorSettings,
    )

    if connector.kind is ConnectorKind.AUTHENTIK:
        return AuthentikConnectorSettings.model_validate(connector.settings)
    return KubernetesConnectorSettings.model_validate(connector.settings)


def _check_self_hosted_credential(
    kind: ConnectorKind, target: str, settings: dict[str, Any]
) -> None:
    """The cloud reads a secret (credential_arn), a relay a file on its host (credential_file)."""
    wanted = "credential_arn" if target == CLOUD_HOST else "credential_file"
    if wanted not in settings:
        where = "in the cloud" if target == CLOUD_HOST else f"on relay {target!r}"
        raise InvalidRequest(
            f"a {kind.value} connector that runs {where} needs settings.{wanted}",
            details=[{"field": f"settings.{wanted}", "message": f"required for target {target!r}"}],
        )


class ConnectorService:
    def __init__(
        self,
        connectors: ConnectorRepository,
        hosts: HostRepository,
        jobs: JobService,
        job_records: JobRepository,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._connectors = connectors
        self._hosts = hosts
        self._jobs = jobs
        self._job_records = job_records
        self._clock = clock

    def _validated(self, draft: ConnectorDraft) -> tuple[dict[str, Any], datetime | None]:
        """(clean settings, first run) of a draft; raises InvalidRequest naming the field."""
        now = self._clock()
        if draft.kind in CLOUD_KINDS and draft.target != CLOUD_HOST:
            raise InvalidRequest(
                f"{draft.kind.value} connectors run in the cloud: target must be {CLOUD_HOST!r}",
                details=[{"field": "target", "message": f"must be {CLOUD_HOST!r}"}],
            )
        relay_side = draft.kind is ConnectorKind.LDAP or (
            draft.kind in SELF_HOSTED_KINDS and draft.target != CLOUD_HOST
        )
        if relay_side:
            host = self._hosts.find(draft.target) if draft.target != CLOUD_HOST else None
            if host is None or host.state == HostState.REVOKED:
                raise InvalidRequest(
                    f"target {draft.target!r} is not an enrolled host",
                    details=[{"field": "target", "message": "must name an enrolled host"}],
                )
        settings = validate_settings(draft.kind, draft.settings)
        if draft.kind in SELF_HOSTED_KINDS:
            _check_self_hosted_credential(draft.kind, draft.target, settings)
        next_run = None
        if draft.schedule is not None:
            next_run = parse_schedule(draft.schedule, now=now).next_after(now)
        return settings, next_run

    def create(self, draft: ConnectorDraft, principal: Principal) -> Connector:
        settings, next_run = self._validated(draft)
        now = self._clock()
        connector = Connector(
            id=str(ULID()),
            name=draft.name,
            kind=draft.kind,
            target=draft.target,
            settings=settings,
            schedule=draft.schedule.strip() if draft.schedule else None,
            enabled=draft.enabled,
            next_run_at=next_run,
            created_by=principal.label,
            created_at=now,
            updated_at=now,
        )
        created = self._connectors.create(connector)
        logger.info("connector created", extra={"connector": created.id, "kind": draft.kind})
        return created

    def get(self, connector_id: str) -> Connector:
        return self._connectors.get(connector_id)

    def all(self) -> list[Connector]:
        return sorted(self._connectors.all(), key=lambda c: (c.name.lower(), c.id))

    def replace(self, connector_id: str, draft: ConnectorDraft) -> Connector:
        """PUT: the draft replaces the connector; an unchanged schedule keeps its next run."""
        settings, next_run = self._validated(draft)
        schedule = draft.schedule.strip() if draft.schedule else None
        for _ in range(5):
            current = self._connectors.get(connector_id)
            if current.kind is not draft.kind:
                raise InvalidRequest(
                    "a connector's kind cannot change; create a new connector",
                    details=[{"field": "kind", "message": f"is {current.kind.value}"}],
                )
            keep_next = current.schedule == schedule and current.next_run_at is not None
            updated = current.model_copy(
                update={
                    "name": draft.name,
                    "target": draft.target,
                    "settings": settings,
                    "schedule": schedule,
                    "enabled": draft.enabled,
                    "next_run_at": current.next_run_at if keep_next else next_run,
                    "updated_at": self._clock(),
                }
            )
            try:
                return self._connectors.replace(updated)
            except StaleWrite:
                continue
        raise Conflict(f"connector {connector_id} keeps changing; try again")

    def delete(self, connector_id: str) -> None:
        """The connector goes; its inventory and past runs stay readable."""
        self._connectors.delete(connector_id)
        logger.info("connector deleted", extra={"connector": connector_id})

    def run_now(self, connector_id: str, principal: Principal) -> Job:
        """Queue a run at once, unless one is still queued or running (409)."""
        connector = self._connectors.get(connector_id)
        latest = self._latest_run(connector.id)
        if latest is not None and not latest.state.terminal:
            raise Conflict(
                f"connector {connector.id} already has a run in progress ({latest.id})",
                details=[{"job_id": latest.id, "state": latest.state.value}],
            )
        job, _ = self._jobs.create(next_run(self._connectors, connector, self._clock()), principal)
        self._connectors.record_run(connector.id, job.id)
        return job

    def group_members(self, connector_id: str, change: dict[str, Any], principal: Principal) -> Job:
        """Queue a write-back of one group's members where the connector runs: the cloud
        (authentik.group_members) or its relay (connector.group_members)."""
        connector = self._connectors.get(connector_id)
        if connector.kind is not ConnectorKind.AUTHENTIK:
            raise InvalidRequest(
                f"a {connector.kind.value} connector has no group write-back here"
                " (okta: an okta.group_members job; ldap: ldap.group_members)",
                details=[{"field": "connector_id", "message": "must be an authentik connector"}],
            )
        from hostrelay.domain.connector_settings import AuthentikConnectorSettings

        settings = AuthentikConnectorSettings.model_validate(connector.settings)
        if not settings.write_back:
            raise InvalidRequest(
                f"connector {connector.id} does not allow write-back",
                details=[{"field": "settings.write_back", "message": "is false"}],
            )
        params: dict[str, Any] = {**change, "connector": connector.id}
        job_type = "authentik.group_members"
        if connector.target != CLOUD_HOST:
            job_type = "connector.group_members"
            params |= {
                "source": settings.source().model_dump(mode="json", exclude_none=True),
                "credential_file": settings.credential_file,
            }
        job, _ = self._jobs.create(
            NewJob(type=job_type, host=connector.target, params=params), principal
        )
        return job

    def runs(
        self, connector_id: str, *, limit: int, start_key: dict[str, Any] | None
    ) -> tuple[list[ConnectorRun], dict[str, Any] | None]:
        self._connectors.get(connector_id)
        jobs, next_key = self._job_records.list_for_connector(
            connector_id, limit=limit, start_key=start_key
        )
        return [ConnectorRun.from_job(job) for job in jobs], next_key

    def _latest_run(self, connector_id: str) -> Job | None:
        jobs, _ = self._job_records.list_for_connector(connector_id, limit=1)
        return jobs[0] if jobs else None


@dataclass
class TickReport:
    started: list[str] = field(default_factory=list)
    skipped_busy: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    lost_race: int = 0


class ConnectorScheduler:
    """One scheduler tick: start every due connector's run, exactly once per period.

    Concurrent ticks may both see a connector due. Each creates the run with the same
    idempotency key (connector + due time), so both get the same job, and only one of them
    wins the conditional write that moves next_run_at on.
    """

    def __init__(
        self,
        connectors: ConnectorRepository,
        jobs: JobService,
        job_records: JobRepository,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._connectors = connectors
        self._jobs = jobs
        self._job_records = job_records
        self._clock = clock

    def tick(self) -> TickReport:
        now = self._clock()
        report = TickReport()
        for connector in self._connectors.due(now):
            self._start(connector, now, report)
        logger.info(
            "scheduler tick finished",
            extra={
                "started": len(report.started),
                "skipped_busy": len(report.skipped_busy),
                "failed": len(report.failed),
                "lost_race": report.lost_race,
            },
        )
        return report

    def _start(self, connector: Connector, now: datetime, report: TickReport) -> None:
        due = connector.next_run_at
        if due is None or connector.schedule is None:
            return
        following = parse_schedule(connector.schedule).following(due, now)
        if following is None:  # a cron whose last firing has passed: park it far away
            following = datetime(9999, 1, 1, tzinfo=UTC)
        job_id: str | None = None
        if self._busy(connector.id, due):
            outcome = report.skipped_busy
        else:
            key = f"schedule:{connector.id}:{isoformat(due)}"
            try:
                job, _ = self._jobs.create(
                    replace(next_run(self._connectors, connector, now), idempotency_key=key),
                    SCHEDULER,
                )
                job_id, outcome = job.id, report.started
            except DomainError as exc:
                outcome = report.failed
                logger.warning(
                    "scheduled run not started",
                    extra={"connector": connector.id, "code": exc.code, "reason": exc.message},
                )
        if not self._connectors.claim_run(connector.id, due, following, job_id):
            report.lost_race += 1
            return
        outcome.append(connector.id)

    def _busy(self, connector_id: str, due: datetime) -> bool:
        """A run is still going: a manual one, or the scheduler's of an earlier period.

        The scheduler's own run of this period (a concurrent tick made it) is not "busy":
        creating it again with the same idempotency key returns that same job.
        """
        latest, _ = self._job_records.list_for_connector(connector_id, limit=1)
        if not latest or latest[0].state.terminal:
            return False
        job = latest[0]
        return job.created_by != SCHEDULER.label or job.created_at < due
