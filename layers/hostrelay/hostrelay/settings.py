"""Typed settings of each function, read from its environment once at cold start."""

from __future__ import annotations

import os
from functools import cache
from typing import Annotated, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

# An API endpoint a connector calls (scheme, host, optional port and path; no credentials).
ApiRoot = Annotated[
    str, StringConstraints(pattern=r"^https?://[A-Za-z0-9.\-\[\]:]+(?:/[^\s?#@]*)?$")
]


class _FunctionSettings(BaseModel):
    """Each field's alias is the environment variable it comes from."""

    # Built when validated: a function uses one of these models.
    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)

    stage: str = Field(default="dev", alias="STAGE")
    aws_region: str = Field(default="us-east-1", alias="AWS_REGION")


class TablesSettings(_FunctionSettings):
    jobs_table: str = Field(alias="JOBS_TABLE")
    hosts_table: str = Field(alias="HOSTS_TABLE")
    job_retention_days: int = Field(
        default=90,
        alias="JOB_RETENTION_DAYS",
        ge=1,
        le=3650,
        description="DynamoDB TTL of a job record: this many days after its last change",
    )
    state_change_bus: str = Field(
        default="",
        alias="STATE_CHANGE_BUS",
        description="EventBridge bus that gets a `Job State Change` event when a job ends "
        "(docs/events.md); empty: no events",
    )
    runs_table: str = Field(
        default="",
        alias="RUNS_TABLE",
        description="Fleet runs and their targets; functions that end jobs move runs on",
    )


class CertificateSettings(TablesSettings):
    """Host certificates: IoT Core (or the local stack's stand-in) signs them."""

    audit_table: str = Field(default="", alias="AUDIT_TABLE")
    relay_policy_name: str = Field(
        default="",
        alias="RELAY_POLICY_NAME",
        description="IoT policy attached to every host certificate (uses the thing name)",
    )


class ApiSettings(CertificateSettings):
    tokens_table: str = Field(alias="TOKENS_TABLE")
    idempotency_table: str = Field(alias="IDEMPOTENCY_TABLE")
    output_table: str = Field(alias="OUTPUT_TABLE")
    enrollments_table: str = Field(default="", alias="ENROLLMENTS_TABLE")
    enrollment_ttl_s: int = Field(default=300, alias="ENROLLMENT_TTL_S", ge=60, le=86400)
    public_api_url: str = Field(
        default="",
        alias="PUBLIC_API_URL",
        description="Base URL hosts use in the enrollment command; default: the request's host",
    )
    relay_package: str = Field(
        default="hostrelay-relay",
        alias="RELAY_PACKAGE",
        description="What the bootstrap script pip-installs: a name, a wheel URL or a path",
    )
    broker_ca_file: str = Field(
        default="",
        alias="BROKER_CA_FILE",
        description="CA bundle of the broker's server certificate; default: Amazon Root CA 1",
    )
    broker_host: str = Field(
        default="", alias="BROKER_HOST", description="Default: the account's IoT data endpoint"
    )
    broker_port: int = Field(default=8883, alias="BROKER_PORT", ge=1, le=65535)
    dispatch_queue_url: str = Field(alias="DISPATCH_QUEUE_URL")
    dispatch_function_name: str = Field(
        default="",
        alias="DISPATCH_FUNCTION_NAME",
        description="the dispatch function a fresh host job starts with an asynchronous "
        "invocation (empty, or should the invocation fail: the dispatch queue)",
    )
    public_key_param: str = Field(alias="SIGNING_PUBLIC_KEY_PARAM")
    signing_key_param: str = Field(
        default="",
        alias="SIGNING_KEY_PARAM",
        description="Created (never read) by enrollment when no dispatch has created it yet",
    )
    max_body_bytes: int = Field(default=256 * 1024, alias="MAX_BODY_BYTES")
    bootstrap_token_hash: str = Field(
        default="",
        alias="BOOTSTRAP_ADMIN_TOKEN_SHA256",
        description="SHA-256 of an admin token accepted before any token exists (first login)",
    )
    token_cache_ttl_s: float = Field(
        default=5.0,
        alias="TOKEN_CACHE_TTL_S",
        ge=0,
        le=5,
        description="How long a container reuses a token it read; a revocation made through "
        "another container takes up to this long to reach it (0: read every request)",
    )
    connectors_table: str = Field(default="", alias="CONNECTORS_TABLE")
    inventory_table: str = Field(default="", alias="INVENTORY_TABLE")
    cloud_jobs_queue_url: str = Field(default="", alias="CLOUD_JOBS_QUEUE_URL")


class DispatchSettings(TablesSettings):
    signing_key_param: str = Field(alias="SIGNING_KEY_PARAM")
    public_key_param: str = Field(alias="SIGNING_PUBLIC_KEY_PARAM")
    envelope_ttl_s: int = Field(default=300, alias="ENVELOPE_TTL_S", ge=30, le=3600)
    iot_endpoint: str = Field(default="", alias="IOT_DATA_ENDPOINT")
    dispatch_queue_url: str = Field(
        default="",
        alias="DISPATCH_QUEUE_URL",
        description="where a fleet run's next job goes when the dispatcher expires one of its "
        "jobs (with RUNS_TABLE); empty: the sweeper moves the run on",
    )


class ResultsSettings(CertificateSettings):
    output_table: str = Field(alias="OUTPUT_TABLE")
    output_bucket: str = Field(alias="OUTPUT_BUCKET")
    dispatch_queue_url: str = Field(alias="DISPATCH_QUEUE_URL")
    results_queue_url: str = Field(
        default="",
        alias="RESULTS_QUEUE_URL",
        description="where a result the topic rule handed over directly goes to wait for its "
        "output (empty: it fails, and Lambda retries the invocation)",
    )
    retry_base_s: int = Field(default=5, alias="RETRY_BASE_S", ge=0, le=900)
    output_wait_s: float = Field(
        default=3.0,
        alias="OUTPUT_WAIT_S",
        ge=0,
        le=20,
        description="how long a result waits for the rest of its output before SQS retries it",
    )
    connectors_table: str = Field(default="", alias="CONNECTORS_TABLE")
    inventory_table: str = Field(default="", alias="INVENTORY_TABLE")
    inventory_batch_writes: bool = Field(
        default=True,
        alias="INVENTORY_BATCH_WRITES",
        description="conditional TransactWriteItems (100 items a call) for inventory; "
        "false: one conditional UpdateItem per entity",
    )


class SweeperSettings(TablesSettings):
    dispatch_queue_url: str = Field(alias="DISPATCH_QUEUE_URL")
    cloud_jobs_queue_url: str = Field(default="", alias="CLOUD_JOBS_QUEUE_URL")
    heartbeat_s: int = Field(default=30, alias="HEARTBEAT_S", ge=1)
    cancel_grace_s: int = Field(default=30, alias="CANCEL_GRACE_S", ge=0)
    timeout_grace_s: int = Field(default=15, alias="TIMEOUT_GRACE_S", ge=0)


class SchedulerSettings(TablesSettings):
    connectors_table: str = Field(alias="CONNECTORS_TABLE")
    idempotency_table: str = Field(alias="IDEMPOTENCY_TABLE")
    dispatch_queue_url: str = Field(alias="DISPATCH_QUEUE_URL")
    cloud_jobs_queue_url: str = Field(alias="CLOUD_JOBS_QUEUE_URL")


class DiscoverySettings(TablesSettings):
    connectors_table: str = Field(alias="CONNECTORS_TABLE")
    inventory_table: str = Field(alias="INVENTORY_TABLE")
    role_session_name: str = Field(
        default="hostrelay-discovery", alias="DISCOVERY_ROLE_SESSION_NAME", max_length=64
    )
    source_ca_bundle: str = Field(
        default="",
        alias="SOURCE_CA_BUNDLE",
        description="CA file that SaaS connectors trust instead of the system's (local fakes); "
        "TLS is verified either way",
    )
    source_max_wait_s: float = Field(
        default=60.0,
        alias="SOURCE_MAX_WAIT_S",
        ge=0,
        le=600,
        description="Longest Retry-After a connector waits out; a longer one fails the run",
    )
    # Where the Google and Azure connectors send their calls: the providers' public endpoints
    # unless a deployment (or a test, with local fakes) names others.
    google_token_uri: ApiRoot = Field(
        default="https://oauth2.googleapis.com/token", alias="GOOGLE_TOKEN_URI"
    )
    workspace_api_root: ApiRoot = Field(
        default="https://admin.googleapis.com", alias="WORKSPACE_API_ROOT"
    )
    gcp_compute_root: ApiRoot = Field(
        default="https://compute.googleapis.com", alias="GCP_COMPUTE_ROOT"
    )
    gcp_storage_root: ApiRoot = Field(
        default="https://storage.googleapis.com", alias="GCP_STORAGE_ROOT"
    )
    azure_login_root: ApiRoot = Field(
        default="https://login.microsoftonline.com", alias="AZURE_LOGIN_ROOT"
    )
    azure_arm_root: ApiRoot = Field(default="https://management.azure.com", alias="AZURE_ARM_ROOT")


SettingsT = TypeVar("SettingsT", bound=_FunctionSettings)


@cache
def load_settings(kind: type[SettingsT]) -> SettingsT:
    """Validate the environment for one function; a missing variable fails the cold start."""
    return kind.model_validate(dict(os.environ))
