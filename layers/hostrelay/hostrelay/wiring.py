"""Composition root: builds each function's services from its validated settings, once.

Each builder imports what it builds, so a function's cold start loads only its own logic (the
dispatcher never imports connectors, discovery or enrollment code).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import timedelta
from functools import cache
from typing import TYPE_CHECKING, TypeVar

from hostrelay.dal.tables import HostRecord, JobRecord, bind_table

if TYPE_CHECKING:
    from hostrelay.api.services import ApiServices
    from hostrelay.dal.audit_repo import AuditRepository
    from hostrelay.dal.azure_arm import AzureSubscriptions
    from hostrelay.dal.bearer_token import RefreshingToken
    from hostrelay.dal.certificates import IotCertificateAuthority
    from hostrelay.dal.dispatch_queue import DispatchQueue
    from hostrelay.dal.google_apis import GcpProjects, WorkspaceDirectory
    from hostrelay.dal.jobs_repo import JobRepository
    from hostrelay.dal.okta import OktaOrg
    from hostrelay.dal.rest_source import RestSource
    from hostrelay.dal.self_hosted_sources import CloudSourceSession
    from hostrelay.dal.state_change_events import StateChangePublisher
    from hostrelay.dal.tokens_repo import TokenRepository
    from hostrelay.domain.cloud_sources import (
        AzureConnectorSettings,
        GcpConnectorSettings,
        WorkspaceConnectorSettings,
    )
    from hostrelay.domain.connector_settings import OktaConnectorSettings, SelfHostedSettings
    from hostrelay.domain.jobs import Job
    from hostrelay.logic.certificate_renewal import CertificateRenewal
    from hostrelay.logic.cloud_jobs import CloudJobHandler, CloudJobRunner
    from hostrelay.logic.connectors import ConnectorScheduler, ConnectorService
    from hostrelay.logic.dispatch import Dispatcher
    from hostrelay.logic.enrollment import EnrollmentService
    from hostrelay.logic.event_batch import EventBatch
    from hostrelay.logic.hosts import HostService
    from hostrelay.logic.ingest import EventIngester
    from hostrelay.logic.inventory import InventoryQueries, InventoryService, InventorySink
    from hostrelay.logic.job_output import JobOutputReader
    from hostrelay.logic.jobs import JobService
    from hostrelay.logic.macct import MacctService
    from hostrelay.logic.relay_cursor import RelayCursor
    from hostrelay.logic.relay_events import InventoryEvent
    from hostrelay.logic.run_orchestration import RunOrchestrator
    from hostrelay.logic.runs import RunService
    from hostrelay.logic.sweep import Sweeper
    from hostrelay.settings import (
        ApiSettings,
        CertificateSettings,
        DiscoverySettings,
        DispatchSettings,
        ResultsSettings,
        SchedulerSettings,
        SweeperSettings,
        TablesSettings,
    )


def _job_repository(settings: TablesSettings, dispatch_queue_url: str = "") -> JobRepository:
    """Jobs, kept for JOB_RETENTION_DAYS (the TTL of the job records) after their last change;
    the end of each is announced on STATE_CHANGE_BUS when the function has one. Given the
    dispatch queue (and a runs table), the end of a fleet run's job moves its run on in the same
    function (otherwise the sweeper does, within one tick)."""
    from hostrelay.dal.jobs_repo import JobRepository

    jobs = JobRepository(
        retention=timedelta(days=settings.job_retention_days),
        events=build_state_change_publisher(settings),
    )
    if settings.runs_table and dispatch_queue_url:
        # Built on the first run job's end: most invocations never see one, and the
        # orchestration's code would cost every cold start its import.
        orchestrator = cache(lambda: _run_orchestrator(settings, jobs, dispatch_queue_url))
        jobs.notify_run_job_finished(lambda job: orchestrator().job_finished(job))
    return jobs


def build_state_change_publisher(settings: TablesSettings) -> StateChangePublisher | None:
    """The publisher of `Job State Change` / `Run State Change` events; None without a bus."""
    if not settings.state_change_bus:
        return None
    from hostrelay.dal.state_change_events import StateChangePublisher

    return StateChangePublisher(settings.state_change_bus)


def _run_orchestrator(
    settings: TablesSettings, jobs: JobRepository, dispatch_queue_url: str
) -> RunOrchestrator:
    from hostrelay.dal.hosts_repo import HostRepository
    from hostrelay.dal.run_tables import RunRecord, RunTargetRecord
    from hostrelay.dal.runs_repo import RunRepository
    from hostrelay.logic.run_orchestration import RunOrchestrator

    bind_table(RunRecord, settings.runs_table, region=settings.aws_region)
    bind_table(RunTargetRecord, settings.runs_table, region=settings.aws_region)
    return RunOrchestrator(
        RunRepository(),
        jobs,
        HostRepository(),
        _dispatch_queue(dispatch_queue_url),
        events=build_state_change_publisher(settings),
    )


def build_run_service(settings: ApiSettings, jobs: JobService, hosts: HostService) -> RunService:
    """Fleet runs (the deployment has a runs table); they select hosts as `hosts` does."""
    from hostrelay.dal.idempotency_repo import IdempotencyRepository
    from hostrelay.dal.runs_repo import RunRepository
    from hostrelay.logic.runs import RunService

    records = jobs.records
    return RunService(
        RunRepository(),
        _run_orchestrator(settings, records, settings.dispatch_queue_url),
        jobs,
        records,
        hosts=hosts,
        idempotency=IdempotencyRepository(),
        audit=build_audit_repository(settings),
    )


def _bind_common(settings: TablesSettings) -> None:
    bind_table(JobRecord, settings.jobs_table, region=settings.aws_region)
    bind_table(HostRecord, settings.hosts_table, region=settings.aws_region)


def build_audit_repository(settings: CertificateSettings) -> AuditRepository:
    """The audit trail; a deployment without an audit table records nothing."""
    from hostrelay.dal.audit_repo import AuditRepository
    from hostrelay.dal.security_tables import AuditRecord

    if settings.audit_table:
        bind_table(AuditRecord, settings.audit_table, region=settings.aws_region)
    return AuditRepository(enabled=bool(settings.audit_table))


def build_api_services(settings: ApiSettings) -> ApiServices:
    """Everything the HTTP API's routes call, for one container."""
    from hostrelay.api.auth import AccessControl
    from hostrelay.api.services import ApiServices
    from hostrelay.logic.audit import AuditTrail
    from hostrelay.logic.tokens import Authenticator, TokenAdmin

    _bind_job_tables(settings)  # before any service: the lazy ones below use them too
    tokens = build_token_repository(settings)
    audit = build_audit_repository(settings)
    # Built later from what is bound now: rebinding a table then would drop its connection.
    jobs = cache(lambda: _job_service(settings, audit))
    # Hosts, job output and macct are built (and their code imported) by their first request.
    hosts = cache(lambda: _host_service(settings, audit))
    # Connectors, inventory and runs are built (and their code imported) by the first request
    # that uses them: most containers serve jobs and hosts only.
    connectors: Callable[[], ConnectorService] | None = None
    inventory: Callable[[], InventoryQueries] | None = None
    if settings.connectors_table and settings.inventory_table:
        connectors = cache(lambda: build_connector_service(settings, jobs()))
        inventory = cache(lambda: build_inventory_queries(settings))
    runs: Callable[[], RunService] | None = None
    if settings.runs_table:
        runs = cache(lambda: build_run_service(settings, jobs(), hosts()))
    return ApiServices(
        access=AccessControl(Authenticator(tokens, settings.bootstrap_token_hash)),
        jobs=jobs,
        hosts=hosts,
        output=cache(lambda: _job_output_reader(jobs())),
        tokens=TokenAdmin(tokens, audit=audit),
        macct=cache(lambda: _macct_service(settings, jobs())),
        audit=AuditTrail(audit),
        max_body_bytes=settings.max_body_bytes,
        enrollment=build_enrollment_provider(settings),
        connectors=connectors,
        inventory=inventory,
        runs=runs,
    )


def _host_service(settings: ApiSettings, audit: AuditRepository) -> HostService:
    from hostrelay.dal.hosts_repo import HostRepository
    from hostrelay.logic.hosts import HostService

    return HostService(HostRepository(), _certificate_authority_provider(settings), audit=audit)


def _job_output_reader(jobs: JobService) -> JobOutputReader:
    from hostrelay.dal.output_store import OutputStore
    from hostrelay.logic.job_output import JobOutputReader

    return JobOutputReader(jobs, OutputStore())


def _macct_service(settings: ApiSettings, jobs: JobService) -> MacctService:
    from hostrelay.logic.macct import MacctService

    return MacctService(jobs, _job_repository(settings))


def _certificate_authority_provider(
    settings: CertificateSettings,
) -> Callable[[], IotCertificateAuthority]:
    """The host certificate authority, built on first use (revocations are rare, and its code
    costs cold start to import)."""

    def build() -> IotCertificateAuthority:
        from hostrelay.dal.certificates import IotCertificateAuthority

        return IotCertificateAuthority(settings.relay_policy_name)

    return cache(build)


def build_job_service(settings: ApiSettings) -> JobService:
    """The job service, its tables bound."""
    _bind_job_tables(settings)
    return _job_service(settings, build_audit_repository(settings))


def _bind_job_tables(settings: ApiSettings) -> None:
    """The jobs, hosts, tokens, idempotency and output tables (record classes: no I/O)."""
    from hostrelay.dal.tables import IdempotencyRecord, OutputBatchRecord, TokenRecord

    _bind_common(settings)
    bind_table(TokenRecord, settings.tokens_table, region=settings.aws_region)
    bind_table(IdempotencyRecord, settings.idempotency_table, region=settings.aws_region)
    bind_table(OutputBatchRecord, settings.output_table, region=settings.aws_region)


def _job_service(settings: ApiSettings, audit: AuditRepository) -> JobService:
    from hostrelay.dal.dispatch_function import DispatchFunction
    from hostrelay.dal.hosts_repo import HostRepository
    from hostrelay.dal.idempotency_repo import IdempotencyRepository
    from hostrelay.logic.jobs import JobService

    return JobService(
        _job_repository(settings, settings.dispatch_queue_url),
        HostRepository(),
        IdempotencyRepository(),
        _dispatch_queue(settings.dispatch_queue_url),
        cloud_queue=_cloud_queue(settings.cloud_jobs_queue_url),
        audit=audit,
        dispatcher=(
            DispatchFunction(settings.dispatch_function_name)
            if settings.dispatch_function_name
            else None
        ),
    )


def build_enrollment_provider(settings: ApiSettings) -> Callable[[], EnrollmentService] | None:
    """Enrollment, built on first use (few containers ever enroll: that
    saves the rest ~30 ms of cold start); None where there is no enrollments table."""
    if not settings.enrollments_table:
        return None
    return cache(lambda: build_enrollment_service(settings))


def build_enrollment_service(settings: ApiSettings) -> EnrollmentService:
    from hostrelay.dal.certificates import IotCertificateAuthority, amazon_root_ca
    from hostrelay.dal.enrollments_repo import EnrollmentRepository
    from hostrelay.dal.hosts_repo import HostRepository
    from hostrelay.dal.security_tables import EnrollmentRecord
    from hostrelay.dal.signing_keys import SigningKeyStore
    from hostrelay.logic.enrollment import EnrollmentConfig, EnrollmentService

    _bind_common(settings)
    bind_table(EnrollmentRecord, settings.enrollments_table, region=settings.aws_region)
    if settings.broker_ca_file:
        with open(settings.broker_ca_file, encoding="ascii") as handle:
            ca_pem = handle.read()
    else:
        ca_pem = amazon_root_ca()
    return EnrollmentService(
        EnrollmentRepository(),
        HostRepository(),
        IotCertificateAuthority(settings.relay_policy_name),
        SigningKeyStore(settings.signing_key_param, settings.public_key_param),
        audit=build_audit_repository(settings),
        config=EnrollmentConfig(
            ttl=timedelta(seconds=settings.enrollment_ttl_s),
            public_url=settings.public_api_url,
            relay_package=settings.relay_package,
            broker_ca_pem=ca_pem,
            broker_host=settings.broker_host,
            broker_port=settings.broker_port,
        ),
    )


def _dispatch_queue(url: str) -> DispatchQueue:
    """The dispatch queue: its consumer, the dispatcher, takes the job a message carries."""
    from hostrelay.dal.dispatch_queue import DispatchQueue

    return DispatchQueue(url, carries_jobs=True)


def _cloud_queue(url: str) -> DispatchQueue | None:
    """The cloud-jobs queue, when deployed: its consumer, the cloud-jobs function, refuses a
    carried job (its request model forbids unknown fields) and reads the job it runs."""
    from hostrelay.dal.dispatch_queue import DispatchQueue

    return DispatchQueue(url, carries_jobs=False) if url else None


def _bind_connectors(settings: TablesSettings, connectors_table: str, inventory_table: str) -> None:
    from hostrelay.dal.inventory_tables import (
        ConnectorRecord,
        InventoryCountRecord,
        InventoryRecord,
    )

    bind_table(ConnectorRecord, connectors_table, region=settings.aws_region)
    if inventory_table:
        bind_table(InventoryRecord, inventory_table, region=settings.aws_region)
        bind_table(InventoryCountRecord, inventory_table, region=settings.aws_region)


def build_connector_service(settings: ApiSettings, jobs: JobService) -> ConnectorService:
    from hostrelay.dal.connectors_repo import ConnectorRepository
    from hostrelay.dal.hosts_repo import HostRepository
    from hostrelay.logic.connectors import ConnectorService

    _bind_connectors(settings, settings.connectors_table, settings.inventory_table)
    return ConnectorService(
        ConnectorRepository(), HostRepository(), jobs, _job_repository(settings)
    )


def build_inventory_queries(settings: ApiSettings) -> InventoryQueries:
    from hostrelay.dal.connectors_repo import ConnectorRepository
    from hostrelay.dal.inventory_repo import InventoryRepository
    from hostrelay.logic.inventory import InventoryQueries

    _bind_connectors(settings, settings.connectors_table, settings.inventory_table)
    connectors = ConnectorRepository()
    return InventoryQueries(
        InventoryRepository(), lambda: [connector.id for connector in connectors.all()]
    )


def build_scheduler(settings: SchedulerSettings) -> ConnectorScheduler:
    from hostrelay.dal.connectors_repo import ConnectorRepository
    from hostrelay.dal.hosts_repo import HostRepository
    from hostrelay.dal.idempotency_repo import IdempotencyRepository
    from hostrelay.dal.tables import IdempotencyRecord
    from hostrelay.logic.connectors import ConnectorScheduler
    from hostrelay.logic.jobs import JobService

    _bind_common(settings)
    _bind_connectors(settings, settings.connectors_table, "")
    bind_table(IdempotencyRecord, settings.idempotency_table, region=settings.aws_region)
    jobs = JobService(
        _job_repository(settings),
        HostRepository(),
        IdempotencyRepository(),
        _dispatch_queue(settings.dispatch_queue_url),
        cloud_queue=_cloud_queue(settings.cloud_jobs_queue_url),
    )
    return ConnectorScheduler(ConnectorRepository(), jobs, _job_repository(settings))


def build_discovery(settings: DiscoverySettings) -> CloudJobRunner:
    """The cloud-jobs runner with one handler per cloud job type, each built (and its source's
    code imported) by the first job of its type: a container runs few of the types."""
    from hostrelay.dal.connectors_repo import ConnectorRepository
    from hostrelay.logic.cloud_jobs import CloudJobRunner

    _bind_common(settings)
    _bind_connectors(settings, settings.connectors_table, settings.inventory_table)
    connectors = ConnectorRepository()

    @cache
    def inventory() -> InventoryService:
        from hostrelay.dal.inventory_repo import InventoryRepository
        from hostrelay.logic.inventory import InventoryService

        return InventoryService(InventoryRepository())

    def aws() -> CloudJobHandler:
        from hostrelay.dal.aws_discovery import AwsAccount
        from hostrelay.logic.discovery_aws import AwsDiscovery

        return AwsDiscovery(
            connectors,
            inventory(),
            lambda role_arn: AwsAccount.connect(role_arn, settings.role_session_name),
        )

    def okta_sync() -> CloudJobHandler:
        from hostrelay.logic.source_sync import SourceSync
        from hostrelay.logic.sync_okta import OKTA_SOURCE

        return SourceSync(OKTA_SOURCE, connectors, inventory(), _okta_connector(settings))

    def okta_group_members() -> CloudJobHandler:
        from hostrelay.logic.sync_okta import OktaGroupMembers

        return OktaGroupMembers(connectors, _okta_connector(settings))

    def workspace_sync() -> CloudJobHandler:
        from hostrelay.logic.source_sync import SourceSync
        from hostrelay.logic.sync_workspace import WORKSPACE_SOURCE

        return SourceSync(WORKSPACE_SOURCE, connectors, inventory(), _workspace_connector(settings))

    def gcp() -> CloudJobHandler:
        from hostrelay.logic.source_sync import SourceSync
        from hostrelay.logic.sync_gcp import GCP_SOURCE

        return SourceSync(GCP_SOURCE, connectors, inventory(), _gcp_connector(settings))

    def azure() -> CloudJobHandler:
        from hostrelay.logic.source_sync import SourceSync
        from hostrelay.logic.sync_azure import AZURE_SOURCE

        return SourceSync(AZURE_SOURCE, connectors, inventory(), _azure_connector(settings))

    def authentik_sync() -> CloudJobHandler:
        from hostrelay.logic.source_sync import SourceSync
        from hostrelay.logic.sync_self_hosted import AUTHENTIK_SOURCE

        return SourceSync(
            AUTHENTIK_SOURCE, connectors, inventory(), _self_hosted_connector(settings)
        )

    def kubernetes_sync() -> CloudJobHandler:
        from hostrelay.logic.source_sync import SourceSync
        from hostrelay.logic.sync_self_hosted import KUBERNETES_SOURCE

        return SourceSync(
            KUBERNETES_SOURCE, connectors, inventory(), _self_hosted_connector(settings)
        )

    def authentik_group_members() -> CloudJobHandler:
        from hostrelay.logic.sync_self_hosted import AuthentikGroupMembers

        return AuthentikGroupMembers(connectors, _self_hosted_connector(settings))

    return CloudJobRunner(
        _job_repository(settings),
        BuiltOnFirstUse(
            {
                "discovery.aws": aws,
                "okta.sync": okta_sync,
                "okta.group_members": okta_group_members,
                "workspace.sync": workspace_sync,
                "discovery.gcp": gcp,
                "discovery.azure": azure,
                "authentik.sync": authentik_sync,
                "kubernetes.sync": kubernetes_sync,
                "authentik.group_members": authentik_group_members,
            }
        ),
    )


V = TypeVar("V")


class BuiltOnFirstUse(Mapping[str, V]):
    """A mapping whose values are built by their factories when first looked up, then kept."""

    def __init__(self, factories: dict[str, Callable[[], V]]) -> None:
        self._factories = factories
        self._built: dict[str, V] = {}

    def __getitem__(self, key: str) -> V:
        if key not in self._built:
            self._built[key] = self._factories[key]()
        return self._built[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._factories)

    def __len__(self) -> int:
        return len(self._factories)


def _self_hosted_connector(
    settings: DiscoverySettings,
) -> Callable[[SelfHostedSettings], CloudSourceSession]:
    def connect(source: SelfHostedSettings) -> CloudSourceSession:
        from hostrelay.dal.self_hosted_sources import CloudSourceSession

        return CloudSourceSession(
            source,
            ca_file=settings.source_ca_bundle or None,
            max_wait_s=settings.source_max_wait_s,
        )

    return connect


def _okta_connector(settings: DiscoverySettings) -> Callable[[OktaConnectorSettings], OktaOrg]:
    def connect(okta: OktaConnectorSettings) -> OktaOrg:
        from hostrelay.dal.cloud_secrets import read_credential
        from hostrelay.dal.okta import OktaOrg

        return OktaOrg.connect(
            okta.base_url,
            read_credential(okta.credential_arn),
            page_size=okta.page_size,
            ca_bundle=settings.source_ca_bundle or None,
            max_wait_s=settings.source_max_wait_s,
        )

    return connect


def _rest_source(
    settings: DiscoverySettings, root: str, token: RefreshingToken | None = None
) -> RestSource:
    """A client of one SaaS/cloud REST API, with the discovery function's CA bundle and wait."""
    from hostrelay.dal.rest_source import RestSource

    return RestSource(
        root,
        {},
        ca_bundle=settings.source_ca_bundle or None,
        max_wait_s=settings.source_max_wait_s,
        token=token,
    )


def _google_token(
    settings: DiscoverySettings,
    credential_arn: str,
    scopes: Sequence[str],
    subject: str | None = None,
) -> RefreshingToken:
    """A renewing access token of the service account whose key the secret holds, renewed
    once now so that a refused key fails the run before any read."""
    from hostrelay.dal.bearer_token import RefreshingToken
    from hostrelay.dal.cloud_secrets import read_credential
    from hostrelay.dal.google_token import service_account_token

    key_json = read_credential(credential_arn)
    token = RefreshingToken(
        lambda: service_account_token(
            key_json,
            scopes=scopes,
            token_uri=settings.google_token_uri,
            subject=subject,
            ca_bundle=settings.source_ca_bundle or None,
        )
    )
    token.renew()
    return token


def _workspace_connector(
    settings: DiscoverySettings,
) -> Callable[[WorkspaceConnectorSettings], WorkspaceDirectory]:
    def connect(workspace: WorkspaceConnectorSettings) -> WorkspaceDirectory:
        from hostrelay.dal.google_apis import WORKSPACE_SCOPES, WorkspaceDirectory

        token = _google_token(
            settings, workspace.credential_arn, WORKSPACE_SCOPES, subject=workspace.admin_email
        )
        source = _rest_source(settings, settings.workspace_api_root, token)
        return WorkspaceDirectory(source, workspace.customer, workspace.page_size, token)

    return connect


def _gcp_connector(settings: DiscoverySettings) -> Callable[[GcpConnectorSettings], GcpProjects]:
    def connect(gcp: GcpConnectorSettings) -> GcpProjects:
        from hostrelay.dal.google_apis import GCP_SCOPES, GcpProjects

        token = _google_token(settings, gcp.credential_arn, GCP_SCOPES)
        compute = _rest_source(settings, settings.gcp_compute_root, token)
        storage = _rest_source(settings, settings.gcp_storage_root, token)
        return GcpProjects(compute, storage, gcp.page_size, token)

    return connect


def _azure_connector(
    settings: DiscoverySettings,
) -> Callable[[AzureConnectorSettings], AzureSubscriptions]:
    def connect(azure: AzureConnectorSettings) -> AzureSubscriptions:
        from hostrelay.dal.azure_arm import AzureSubscriptions, client_credentials_token
        from hostrelay.dal.bearer_token import RefreshingToken
        from hostrelay.dal.cloud_secrets import read_credential

        login = _rest_source(settings, settings.azure_login_root)
        client_secret = read_credential(azure.credential_arn)
        token = RefreshingToken(
            lambda: client_credentials_token(login, azure.tenant_id, azure.client_id, client_secret)
        )
        token.renew()
        return AzureSubscriptions(_rest_source(settings, settings.azure_arm_root, token), login)

    return connect


def build_token_repository(settings: ApiSettings) -> TokenRepository:
    from hostrelay.dal.tables import TokenRecord
    from hostrelay.dal.tokens_repo import TokenRepository

    bind_table(TokenRecord, settings.tokens_table, region=settings.aws_region)
    return TokenRepository(cache_ttl_s=settings.token_cache_ttl_s)


def build_dispatcher(settings: DispatchSettings) -> Dispatcher:
    from hostrelay.dal.hosts_repo import HostRepository
    from hostrelay.dal.iot_publisher import IotPublisher
    from hostrelay.dal.signing_keys import SigningKeyStore
    from hostrelay.logic.dispatch import Dispatcher

    _bind_common(settings)
    return Dispatcher(
        # The dispatcher ends jobs too (EXPIRED past deliver_by): their runs count it at once.
        _job_repository(settings, settings.dispatch_queue_url),
        HostRepository(),
        SigningKeyStore(settings.signing_key_param, settings.public_key_param),
        IotPublisher(settings.iot_endpoint),
        settings.envelope_ttl_s,
    )


def build_ingester(settings: ResultsSettings) -> EventIngester:
    from hostrelay.dal.hosts_repo import PRESENCE_REFRESH_S, HostRepository
    from hostrelay.dal.output_store import OutputStore
    from hostrelay.dal.tables import OutputBatchRecord
    from hostrelay.logic.ingest import EventIngester

    _bind_common(settings)
    bind_table(OutputBatchRecord, settings.output_table, region=settings.aws_region)
    sink = None
    if settings.connectors_table and settings.inventory_table:
        sink = _inventory_sink(settings)
    renewal = None
    if settings.relay_policy_name:
        # Built on first use: renewals are rare, and their code costs ~30 ms to import.
        renewal = cache(lambda: build_certificate_renewal(settings))
    return EventIngester(
        _job_repository(settings, settings.dispatch_queue_url),
        # Relays report every few seconds: a container need not re-write presence each time.
        HostRepository(presence_refresh_s=PRESENCE_REFRESH_S),
        OutputStore(settings.output_bucket),
        _dispatch_queue(settings.dispatch_queue_url),
        retry_base_s=settings.retry_base_s,
        inventory_sink=sink,
        renewal=renewal,
        output_wait_s=settings.output_wait_s,
        on_result=_relay_cursor(settings) if sink is not None else None,
    )


def _relay_cursor(settings: ResultsSettings) -> Callable[[Job], None]:
    """Keeps the cursor a relay-run Kubernetes sync's result carries; built on the first such
    result (the connector code costs every other container's cold start its import)."""

    @cache
    def build() -> RelayCursor:
        from hostrelay.dal.connectors_repo import ConnectorRepository
        from hostrelay.logic.relay_cursor import RelayCursor

        _bind_connectors(settings, settings.connectors_table, settings.inventory_table)
        return RelayCursor(ConnectorRepository())

    def job_ended(job: Job) -> None:
        if job.result and "resource_versions" in job.result:  # logic.relay_cursor decides
            build().job_finished(job)

    return job_ended


def _inventory_sink(settings: ResultsSettings) -> Callable[[str, InventoryEvent], None]:
    """Applies `inventory` events; built on the first (only sync jobs send them, and the
    inventory and connector code costs every other container's cold start its import)."""

    @cache
    def build() -> InventorySink:
        from hostrelay.dal.connectors_repo import ConnectorRepository
        from hostrelay.dal.inventory_repo import InventoryRepository
        from hostrelay.logic.inventory import InventoryService, InventorySink

        _bind_connectors(settings, settings.connectors_table, settings.inventory_table)
        return InventorySink(
            ConnectorRepository(),
            _job_repository(settings),
            InventoryService(InventoryRepository(), batched=settings.inventory_batch_writes),
        )

    def apply(host: str, event: InventoryEvent) -> None:
        build()(host, event)

    return apply


def build_event_batch(settings: ResultsSettings) -> EventBatch:
    """The results function's batches of relay events, applied by one ingester."""
    from hostrelay.dal.results_queue import ResultsQueue
    from hostrelay.logic.event_batch import EventBatch

    requeue = ResultsQueue(settings.results_queue_url).send if settings.results_queue_url else None
    return EventBatch(build_ingester(settings), requeue)


def build_certificate_renewal(settings: ResultsSettings) -> CertificateRenewal:
    from hostrelay.dal.certificates import IotCertificateAuthority
    from hostrelay.dal.hosts_repo import HostRepository
    from hostrelay.logic.certificate_renewal import CertificateRenewal

    return CertificateRenewal(
        HostRepository(),
        _job_repository(settings),
        _dispatch_queue(settings.dispatch_queue_url),
        IotCertificateAuthority(settings.relay_policy_name),
        build_audit_repository(settings),
    )


def build_sweeper(settings: SweeperSettings) -> Sweeper:
    from hostrelay.dal.hosts_repo import HostRepository
    from hostrelay.logic.sweep import Sweeper

    _bind_common(settings)
    jobs = _job_repository(settings, settings.dispatch_queue_url)
    return Sweeper(
        jobs,
        HostRepository(),
        _dispatch_queue(settings.dispatch_queue_url),
        cloud_queue=_cloud_queue(settings.cloud_jobs_queue_url),
        heartbeat_s=settings.heartbeat_s,
        cancel_grace_s=settings.cancel_grace_s,
        timeout_grace_s=settings.timeout_grace_s,
        runs=_run_orchestrator(settings, jobs, settings.dispatch_queue_url)
        if settings.runs_table
        else None,
    )
