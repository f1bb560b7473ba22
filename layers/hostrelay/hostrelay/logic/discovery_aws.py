"""`discovery.aws` cloud jobs: snapshot an AWS account's resources into the inventory."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from hostrelay.clock import utcnow
from hostrelay.dal.aws_discovery import AwsAccount, RawResource
from hostrelay.dal.connectors_repo import ConnectorRepository
from hostrelay.domain.connector_settings import AwsConnectorSettings, AwsResourceType
from hostrelay.domain.connectors import ConnectorKind
from hostrelay.domain.inventory import EntityUpsert, SourceReadError
from hostrelay.domain.jobs import Job, JobState
from hostrelay.logic.cloud_jobs import CANCELED, RunEnd, failed
from hostrelay.logic.inventory import InventoryService
from hostrelay.observability import logger
from hostrelay_contract.jobs.cloud import DiscoveryAwsParams

DISCOVERY_JOB_TYPE = "discovery.aws"


# ---------------------------------------------------------------- AWS resources → entities


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _tags(raw: RawResource) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in raw.get("Tags") or [] if "Key" in tag}


def _entity(
    resource_type: AwsResourceType,
    entity_id: str,
    name: str,
    attributes: dict[str, Any],
    relations: dict[str, list[str]],
) -> EntityUpsert:
    return EntityUpsert(
        id=entity_id,
        kind=resource_type.kind,
        name=name,
        attributes={k: _jsonable(v) for k, v in attributes.items() if v not in (None, "", {})},
        relations={k: sorted(set(v)) for k, v in relations.items() if v},
    )


def vpc_entity(raw: RawResource, region: str) -> EntityUpsert:
    tags = _tags(raw)
    return _entity(
        AwsResourceType.EC2_VPC,
        raw["VpcId"],
        tags.get("Name") or raw["VpcId"],
        {
            "region": region,
            "account": raw.get("OwnerId"),
            "cidr_block": raw.get("CidrBlock"),
            "state": raw.get("State"),
            "is_default": raw.get("IsDefault"),
            "tags": tags,
        },
        {},
    )


def subnet_entity(raw: RawResource, region: str) -> EntityUpsert:
    tags = _tags(raw)
    return _entity(
        AwsResourceType.EC2_SUBNET,
        raw["SubnetId"],
        tags.get("Name") or raw["SubnetId"],
        {
            "region": region,
            "account": raw.get("OwnerId"),
            "availability_zone": raw.get("AvailabilityZone"),
            "cidr_block": raw.get("CidrBlock"),
            "state": raw.get("State"),
            "available_ips": raw.get("AvailableIpAddressCount"),
            "tags": tags,
        },
        {"vpc": [raw["VpcId"]] if raw.get("VpcId") else []},
    )


def security_group_entity(raw: RawResource, region: str) -> EntityUpsert:
    return _entity(
        AwsResourceType.EC2_SECURITY_GROUP,
        raw["GroupId"],
        raw.get("GroupName") or raw["GroupId"],
        {
            "region": region,
            "account": raw.get("OwnerId"),
            "description": raw.get("Description"),
            "inbound_rules": len(raw.get("IpPermissions") or []),
            "outbound_rules": len(raw.get("IpPermissionsEgress") or []),
            "tags": _tags(raw),
        },
        {"vpc": [raw["VpcId"]] if raw.get("VpcId") else []},
    )


def instance_entity(raw: RawResource, region: str) -> EntityUpsert:
    tags = _tags(raw)
    return _entity(
        AwsResourceType.EC2_INSTANCE,
        raw["InstanceId"],
        tags.get("Name") or raw["InstanceId"],
        {
            "region": region,
            "instance_type": raw.get("InstanceType"),
            "state": (raw.get("State") or {}).get("Name"),
            "image_id": raw.get("ImageId"),
            "private_ip": raw.get("PrivateIpAddress"),
            "public_ip": raw.get("PublicIpAddress"),
            "availability_zone": (raw.get("Placement") or {}).get("AvailabilityZone"),
            "launch_time": raw.get("LaunchTime"),
            "tags": tags,
        },
        {
            "subnet": [raw["SubnetId"]] if raw.get("SubnetId") else [],
            "vpc": [raw["VpcId"]] if raw.get("VpcId") else [],
            "security_groups": [g["GroupId"] for g in raw.get("SecurityGroups") or []],
        },
    )


def bucket_entity(raw: RawResource, region: str) -> EntityUpsert:
    return _entity(
        AwsResourceType.S3_BUCKET,
        f"arn:aws:s3:::{raw['Name']}",
        raw["Name"],
        {"region": region, "created_at": raw.get("CreationDate")},
        {},
    )


def db_instance_entity(raw: RawResource, region: str) -> EntityUpsert:
    subnet_group = raw.get("DBSubnetGroup") or {}
    endpoint = raw.get("Endpoint") or {}
    return _entity(
        AwsResourceType.RDS_INSTANCE,
        raw["DBInstanceArn"],
        raw["DBInstanceIdentifier"],
        {
            "region": region,
            "engine": raw.get("Engine"),
            "engine_version": raw.get("EngineVersion"),
            "instance_class": raw.get("DBInstanceClass"),
            "status": raw.get("DBInstanceStatus"),
            "endpoint": endpoint.get("Address"),
            "port": endpoint.get("Port"),
            "multi_az": raw.get("MultiAZ"),
            "storage_gb": raw.get("AllocatedStorage"),
        },
        {
            "vpc": [subnet_group["VpcId"]] if subnet_group.get("VpcId") else [],
            "subnets": [
                s["SubnetIdentifier"]
                for s in subnet_group.get("Subnets") or []
                if s.get("SubnetIdentifier")
            ],
            "security_groups": [
                g["VpcSecurityGroupId"] for g in raw.get("VpcSecurityGroups") or []
            ],
        },
    )


def function_entity(raw: RawResource, region: str) -> EntityUpsert:
    vpc = raw.get("VpcConfig") or {}
    return _entity(
        AwsResourceType.LAMBDA_FUNCTION,
        raw["FunctionArn"],
        raw["FunctionName"],
        {
            "region": region,
            "runtime": raw.get("Runtime"),
            "handler": raw.get("Handler"),
            "memory_mb": raw.get("MemorySize"),
            "timeout_s": raw.get("Timeout"),
            "package_type": raw.get("PackageType"),
            "last_modified": raw.get("LastModified"),
        },
        {
            "vpc": [vpc["VpcId"]] if vpc.get("VpcId") else [],
            "subnets": list(vpc.get("SubnetIds") or []),
            "security_groups": list(vpc.get("SecurityGroupIds") or []),
        },
    )


def _regional(
    account: AwsAccount, resource_type: AwsResourceType, region: str
) -> list[EntityUpsert]:
    if resource_type is AwsResourceType.EC2_VPC:
        return [vpc_entity(raw, region) for raw in account.vpcs(region)]
    if resource_type is AwsResourceType.EC2_SUBNET:
        return [subnet_entity(raw, region) for raw in account.subnets(region)]
    if resource_type is AwsResourceType.EC2_SECURITY_GROUP:
        return [security_group_entity(raw, region) for raw in account.security_groups(region)]
    if resource_type is AwsResourceType.EC2_INSTANCE:
        return [
            instance_entity(raw, region)
            for raw in account.instances(region)
            # Terminated instances linger in describe calls for a while; they are gone.
            if (raw.get("State") or {}).get("Name") != "terminated"
        ]
    if resource_type is AwsResourceType.RDS_INSTANCE:
        return [db_instance_entity(raw, region) for raw in account.db_instances(region)]
    if resource_type is AwsResourceType.LAMBDA_FUNCTION:
        return [function_entity(raw, region) for raw in account.functions(region)]
    raise ValueError(f"{resource_type} is not regional")


@dataclass
class Snapshot:
    entities: list[EntityUpsert] = field(default_factory=list)
    complete_kinds: set[str] = field(default_factory=set)
    errors: list[dict[str, str]] = field(default_factory=list)
    scopes_read: int = 0
    canceled: bool = False


def take_snapshot(
    account: AwsAccount,
    regions: list[str],
    types: list[AwsResourceType],
    should_stop: Callable[[], bool] = lambda: False,
) -> Snapshot:
    """Read every (type, region); a failing one is recorded, and its kind not complete."""
    snapshot = Snapshot()
    for resource_type in types:
        complete = True
        # S3 is one global listing, filtered by the configured regions.
        scopes = [regions[0]] if resource_type is AwsResourceType.S3_BUCKET else regions
        for region in scopes:
            if should_stop():
                snapshot.canceled = True
                return snapshot
            try:
                if resource_type is AwsResourceType.S3_BUCKET:
                    found = [
                        bucket_entity(raw, located)
                        for raw, located in account.buckets(region)
                        if located in regions
                    ]
                else:
                    found = _regional(account, resource_type, region)
            except SourceReadError as exc:
                complete = False
                snapshot.errors.append(
                    {"resource_type": resource_type.value, "region": region, "error": exc.message}
                )
                continue
            snapshot.scopes_read += 1
            snapshot.entities.extend(found)
        if complete:
            snapshot.complete_kinds.add(resource_type.kind)
    return snapshot


# ---------------------------------------------------------------- the cloud job


class AwsDiscovery:
    """The discovery.aws handler of the cloud-jobs runner: one snapshot of an account."""

    kind = ConnectorKind.AWS.value

    def __init__(
        self,
        connectors: ConnectorRepository,
        inventory: InventoryService,
        connect: Callable[[str | None], AwsAccount],
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._connectors = connectors
        self._inventory = inventory
        self._connect = connect
        self._clock = clock

    def run(self, job: Job, should_stop: Callable[[], bool]) -> RunEnd:
        started = self._clock()
        try:
            params = DiscoveryAwsParams.model_validate(job.params)
        except ValidationError:
            return failed("invalid_params", "bad params")
        connector = self._connectors.find(params.connector)
        if connector is None or connector.kind is not ConnectorKind.AWS:
            return failed("connector_missing", f"no aws connector {params.connector}")
        settings = AwsConnectorSettings.model_validate(connector.settings)
        regions = params.regions or settings.regions
        try:
            account = self._connect(params.assume_role_arn)
        except SourceReadError as exc:
            return failed(exc.code, exc.message)
        snapshot = take_snapshot(account, regions, settings.types(), should_stop=should_stop)
        if snapshot.canceled:
            return CANCELED
        report = self._inventory.replace_all(
            connector.id, snapshot.entities, started, complete_kinds=snapshot.complete_kinds
        )
        result: dict[str, Any] = {
            "connector": connector.id,
            **report.counts(),
            "total": len(snapshot.entities),
            "by_kind": dict(sorted(Counter(e.kind for e in snapshot.entities).items())),
            "regions": regions,
            "errors": snapshot.errors,
            "duration_s": round((self._clock() - started).total_seconds(), 3),
        }
        logger.info(
            "aws discovery finished",
            extra={"job_id": job.id, "connector": connector.id, "counts": report.counts()},
        )
        if snapshot.scopes_read == 0 and snapshot.errors:
            first = snapshot.errors[0]["error"]
            return failed("discovery_failed", f"nothing read: {first}", result)
        return RunEnd(JobState.SUCCEEDED, result)
