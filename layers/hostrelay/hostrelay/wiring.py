"""Composition root: builds each function's services from its validated settings, once."""

from __future__ import annotations

from hostrelay.dal.dispatch_queue import DispatchQueue
from hostrelay.dal.hosts_repo import HostRepository
from hostrelay.dal.idempotency_repo import IdempotencyRepository
from hostrelay.dal.iot_publisher import IotPublisher
from hostrelay.dal.jobs_repo import JobRepository
from hostrelay.dal.output_store import OutputStore
from hostrelay.dal.signing_keys import SigningKeyStore
from hostrelay.dal.tables import (
    HostRecord,
    IdempotencyRecord,
    JobRecord,
    OutputChunkRecord,
    TokenRecord,
    bind_table,
)
from hostrelay.dal.tokens_repo import TokenRepository
from hostrelay.logic.dispatch import Dispatcher
from hostrelay.logic.ingest import EventIngester
from hostrelay.logic.jobs import JobService
from hostrelay.logic.sweep import Sweeper
from hostrelay.settings import (
    ApiSettings,
    DispatchSettings,
    ResultsSettings,
    SweeperSettings,
    TablesSettings,
)


def _bind_common(settings: TablesSettings) -> None:
    bind_table(JobRecord, settings.jobs_table, region=settings.aws_region)
    bind_table(HostRecord, settings.hosts_table, region=settings.aws_region)


def build_job_service(settings: ApiSettings) -> JobService:
    _bind_common(settings)
    bind_table(TokenRecord, settings.tokens_table, region=settings.aws_region)
    bind_table(IdempotencyRecord, settings.idempotency_table, region=settings.aws_region)
    bind_table(OutputChunkRecord, settings.output_table, region=settings.aws_region)
    return JobService(
        JobRepository(),
        HostRepository(),
        IdempotencyRepository(),
        DispatchQueue(settings.dispatch_queue_url),
    )


def build_token_repository(settings: ApiSettings) -> TokenRepository:
    bind_table(TokenRecord, settings.tokens_table, region=settings.aws_region)
    return TokenRepository()


def build_dispatcher(settings: DispatchSettings) -> Dispatcher:
    _bind_common(settings)
    return Dispatcher(
        JobRepository(),
        HostRepository(),
        SigningKeyStore(settings.signing_key_param, settings.public_key_param),
        IotPublisher(settings.iot_endpoint),
        settings.envelope_ttl_s,
    )


def build_ingester(settings: ResultsSettings) -> EventIngester:
    _bind_common(settings)
    bind_table(OutputChunkRecord, settings.output_table, region=settings.aws_region)
    return EventIngester(
        JobRepository(),
        HostRepository(),
        OutputStore(settings.output_bucket),
        DispatchQueue(settings.dispatch_queue_url),
        retry_base_s=settings.retry_base_s,
    )


def build_sweeper(settings: SweeperSettings) -> Sweeper:
    _bind_common(settings)
    return Sweeper(
        JobRepository(),
        HostRepository(),
        DispatchQueue(settings.dispatch_queue_url),
        heartbeat_s=settings.heartbeat_s,
        cancel_grace_s=settings.cancel_grace_s,
        timeout_grace_s=settings.timeout_grace_s,
    )
