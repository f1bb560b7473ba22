"""Routes of /v1/connectors: manage connectors, run one now, and read its run history."""

# No `from __future__ import annotations`: Powertools reads these signatures at runtime.

from datetime import datetime
from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.depends import Depends
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StringConstraints

from hostrelay.api.models.jobs import JobErrorOut, JobOut
from hostrelay.api.openapi import BEARER_AUTH, BODY_ERRORS, responses
from hostrelay.api.pagination import decode_next_token, encode_next_token
from hostrelay.api.routers import new_router
from hostrelay.api.services import ApiServices
from hostrelay.domain.connectors import Connector, ConnectorKind, ConnectorRun
from hostrelay.domain.jobs import JobState
from hostrelay.domain.principal import Principal
from hostrelay.logic.connectors import ConnectorDraft, ConnectorService
from hostrelay_contract.names import CONNECTOR_ID, HostName

ConnectorId = Annotated[str, CONNECTOR_ID, Path(description="Connector id")]
# A listing of runs is a query of the jobs table's by_connector index.
_RUNS_KEYS = frozenset({"id", "connector_id", "created_at"})


class ConnectorRequest(BaseModel):
    """A connector: where inventory comes from, who runs the sync, and how often."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    name: Annotated[str, StringConstraints(min_length=1, max_length=128, strip_whitespace=True)]
    kind: ConnectorKind = Field(
        description="`ldap` (a relay syncs a directory); `aws`, `okta`, `workspace`, `gcp` or "
        "`azure` (the cloud reads them); `authentik` or `kubernetes` (the cloud or a relay, "
        "wherever the source is reachable)"
    )
    target: HostName = Field(
        description="The enrolled host that runs the sync (ldap, authentik, kubernetes), or "
        "`cloud` (aws, okta, workspace, gcp, azure, authentik, kubernetes)"
    )
    settings: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "ldap: url (one of the servers the relay's credential is for), base_dn, credential "
            "(the NAME of a relay credential), start_tls, verify_tls (true only), user_filter, "
            "group_filter, ou_filter, page_size, flavor. "
            "aws: regions, assume_role_arn, resource_types. okta: org_url, credential_arn "
            "(the ARN of a secret holding the API token), page_size, write_back. "
            "workspace: customer, admin_email, credential_arn (service account key), page_size. "
            "gcp: projects, credential_arn (service account key), resource_types, page_size. "
            "azure: tenant_id, client_id, subscriptions, credential_arn (client secret), "
            "resource_types."
            " authentik, kubernetes: url, page_size, credential_arn (target cloud) or "
            "credential_file (a 0600 file on the target relay); authentik write_back, "
            "kubernetes resources. Never secrets."
        ),
    )
    schedule: str | None = Field(
        default=None,
        max_length=256,
        description="`rate(5 minutes)` or `cron(0 3 * * ? *)` (UTC); unset: runs only on demand",
    )
    enabled: StrictBool = True

    def draft(self) -> ConnectorDraft:
        return ConnectorDraft(
            name=self.name,
            kind=self.kind,
            target=self.target,
            settings=self.settings,
            schedule=self.schedule,
            enabled=self.enabled,
        )


class ConnectorOut(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)

    id: str
    name: str
    kind: ConnectorKind
    target: str
    settings: dict[str, Any]
    schedule: str | None
    enabled: bool
    next_run_at: datetime | None
    last_run_at: datetime | None
    last_job_id: str | None
    created_by: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_domain(cls, connector: Connector) -> "ConnectorOut":
        return cls(
            id=connector.id,
            name=connector.name,
            kind=connector.kind,
            target=connector.target,
            settings=connector.settings,
            schedule=connector.schedule,
            enabled=connector.enabled,
            next_run_at=connector.next_run_at if connector.scheduled else None,
            last_run_at=connector.last_run_at,
            last_job_id=connector.last_job_id,
            created_by=connector.created_by,
            created_at=connector.created_at,
            updated_at=connector.updated_at,
        )


class ConnectorList(BaseModel):
    model_config = ConfigDict(defer_build=True)

    connectors: list[ConnectorOut]


class ConnectorRunOut(BaseModel):
    """One run: its job, and the counts and error its result reported."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    job_id: str
    state: JobState
    created_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    counts: dict[str, int] = Field(description="e.g. created, updated, deleted, unchanged, total")
    error: JobErrorOut | None

    @classmethod
    def from_domain(cls, run: ConnectorRun) -> "ConnectorRunOut":
        return cls(
            job_id=run.job_id,
            state=run.state,
            created_by=run.created_by,
            created_at=run.created_at,
            started_at=run.started_at,
            finished_at=run.finished_at,
            counts=run.counts,
            error=None if run.error is None else JobErrorOut.model_validate(run.error),
        )


class ConnectorRunPage(BaseModel):
    model_config = ConfigDict(defer_build=True)

    runs: list[ConnectorRunOut]
    next_token: str | None = None


class GroupMembersRequest(BaseModel):
    """A change of one Authentik group's members (checked again by the job's params model)."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    group: str = Field(max_length=64, description="The group's uuid")
    add: list[int] = Field(default_factory=list, max_length=1000, description="User pks")
    remove: list[int] = Field(default_factory=list, max_length=1000, description="User pks")
    dry_run: StrictBool = Field(default=True, description="Only show the diff (the default)")


def connectors_router(services: ApiServices, connectors: ConnectorService) -> Router:
    router = new_router()
    access = services.access

    @router.post(
        "/v1/connectors",
        summary="Create a connector",
        description=(
            "Settings are checked for the kind; secrets (password, secret, ...) are refused: "
            "name a credential of the relay's config instead. An ldap connector's target must "
            "be an enrolled host; an aws connector's target is `cloud`."
        ),
        tags=["connectors"],
        security=BEARER_AUTH,
        responses=responses({201: "The connector"}, 403, *BODY_ERRORS),
    )
    def create_connector(
        body: ConnectorRequest, principal: Annotated[Principal, Depends(access.admin)]
    ) -> Response[ConnectorOut]:
        connector = connectors.create(body.draft(), principal)
        return Response(
            status_code=HTTPStatus.CREATED.value,
            content_type=content_types.APPLICATION_JSON,
            body=ConnectorOut.from_domain(connector),
            headers={"Location": f"/v1/connectors/{connector.id}"},
        )

    @router.get(
        "/v1/connectors",
        summary="List connectors",
        tags=["connectors"],
        security=BEARER_AUTH,
        responses=responses({200: "Every connector, by name"}, 403),
    )
    def list_connectors(principal: Annotated[Principal, Depends(access.reader)]) -> ConnectorList:
        return ConnectorList(connectors=[ConnectorOut.from_domain(c) for c in connectors.all()])

    @router.get(
        "/v1/connectors/<connector_id>",
        summary="Get a connector",
        tags=["connectors"],
        security=BEARER_AUTH,
        responses=responses({200: "The connector"}, 403, 404),
    )
    def get_connector(
        connector_id: ConnectorId, principal: Annotated[Principal, Depends(access.reader)]
    ) -> ConnectorOut:
        return ConnectorOut.from_domain(connectors.get(connector_id))

    @router.put(
        "/v1/connectors/<connector_id>",
        summary="Replace a connector",
        description="The kind cannot change. An unchanged schedule keeps its next run time.",
        tags=["connectors"],
        security=BEARER_AUTH,
        responses=responses({200: "The updated connector"}, 403, 404, 409, *BODY_ERRORS),
    )
    def replace_connector(
        connector_id: ConnectorId,
        body: ConnectorRequest,
        principal: Annotated[Principal, Depends(access.admin)],
    ) -> ConnectorOut:
        return ConnectorOut.from_domain(connectors.replace(connector_id, body.draft()))

    @router.delete(
        "/v1/connectors/<connector_id>",
        summary="Delete a connector",
        description="Its inventory and past runs stay readable.",
        tags=["connectors"],
        security=BEARER_AUTH,
        status_code=HTTPStatus.NO_CONTENT.value,
        responses=responses({204: "Deleted"}, 403, 404),
    )
    def delete_connector(
        connector_id: ConnectorId, principal: Annotated[Principal, Depends(access.admin)]
    ) -> Response[str]:
        connectors.delete(connector_id)
        return Response(status_code=HTTPStatus.NO_CONTENT.value, body="")

    @router.post(
        "/v1/connectors/<connector_id>/run",
        summary="Run a connector now",
        description="Queues a sync job at once; 409 while a run is still queued or running.",
        tags=["connectors"],
        security=BEARER_AUTH,
        status_code=HTTPStatus.ACCEPTED.value,
        responses=responses({202: "The queued job"}, 403, 404, 409),
    )
    def run_connector(
        connector_id: ConnectorId, principal: Annotated[Principal, Depends(access.operator)]
    ) -> Response[JobOut]:
        job = connectors.run_now(connector_id, principal)
        return Response(
            status_code=HTTPStatus.ACCEPTED.value,
            content_type=content_types.APPLICATION_JSON,
            body=JobOut.model_validate(job),
            headers={"Location": f"/v1/jobs/{job.id}"},
        )

    @router.post(
        "/v1/connectors/<connector_id>/group_members",
        summary="Change a group's members (write-back)",
        description=(
            "authentik connectors with write_back: queues authentik.group_members (target "
            "cloud) or connector.group_members on the connector's relay. A dry run (the "
            "default) shows the diff; dry_run false applies exactly it."
        ),
        tags=["connectors"],
        security=BEARER_AUTH,
        status_code=HTTPStatus.ACCEPTED.value,
        responses=responses({202: "The queued job"}, 403, 404, 422, *BODY_ERRORS),
    )
    def connector_group_members(
        connector_id: ConnectorId,
        body: GroupMembersRequest,
        principal: Annotated[Principal, Depends(access.operator)],
    ) -> Response[JobOut]:
        job = connectors.group_members(connector_id, body.model_dump(), principal)
        return Response(
            status_code=HTTPStatus.ACCEPTED.value,
            content_type=content_types.APPLICATION_JSON,
            body=JobOut.model_validate(job),
            headers={"Location": f"/v1/jobs/{job.id}"},
        )

    @router.get(
        "/v1/connectors/<connector_id>/runs",
        summary="A connector's runs",
        description="Newest first, with the counts and error each run's result reported.",
        tags=["connectors"],
        security=BEARER_AUTH,
        responses=responses({200: "A page of runs"}, 400, 403, 404),
    )
    def connector_runs(
        connector_id: ConnectorId,
        principal: Annotated[Principal, Depends(access.reader)],
        limit: Annotated[int, Query(ge=1, le=200, description="Page size")] = 50,
        next_token: Annotated[
            str | None, Query(max_length=2048, description="From the previous page")
        ] = None,
    ) -> ConnectorRunPage:
        start_key = None
        if next_token:
            start_key = decode_next_token(
                next_token, keys=_RUNS_KEYS, fixed={"connector_id": connector_id}
            )
        runs, last_key = connectors.runs(connector_id, limit=limit, start_key=start_key)
        return ConnectorRunPage(
            runs=[ConnectorRunOut.from_domain(run) for run in runs],
            next_token=encode_next_token(last_key),
        )

    return router
