"""Read-only AWS describe/list calls of discovery, in our account or one reached via STS."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from hostrelay.dal.aws_clients import client
from hostrelay.domain.inventory import SourceReadError

RawResource = dict[str, Any]


def _read_error(what: str, exc: Exception) -> SourceReadError:
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "ClientError")
        return SourceReadError(f"{what}: {code}", details=[{"aws_error": code}])
    return SourceReadError(f"{what}: {type(exc).__name__}")


class AwsAccount:
    """One AWS account as discovery sees it: paginated describe/list calls per region."""

    def __init__(self, session: Any) -> None:
        self._session = session
        self._clients: dict[tuple[str, str], Any] = {}

    @classmethod
    def connect(cls, assume_role_arn: str | None, session_name: str) -> AwsAccount:
        """Our own account, or the one `assume_role_arn` belongs to (temporary credentials)."""
        import boto3

        if not assume_role_arn:
            return cls(boto3.session.Session())
        try:
            credentials = client("sts").assume_role(
                RoleArn=assume_role_arn, RoleSessionName=session_name, DurationSeconds=3600
            )["Credentials"]
        except (ClientError, BotoCoreError) as exc:
            raise _read_error(f"cannot assume {assume_role_arn}", exc) from None
        return cls(
            boto3.session.Session(
                aws_access_key_id=credentials["AccessKeyId"],
                aws_secret_access_key=credentials["SecretAccessKey"],
                aws_session_token=credentials["SessionToken"],
            )
        )

    def _client(self, service: str, region: str) -> Any:
        key = (service, region)
        if key not in self._clients:
            self._clients[key] = self._session.client(service, region_name=region)
        return self._clients[key]

    def _pages(
        self, service: str, region: str, operation: str, key: str, **kwargs: Any
    ) -> list[RawResource]:
        """Every item of a paginated call; any AWS error becomes one SourceReadError."""
        try:
            paginator = self._client(service, region).get_paginator(operation)
            return [item for page in paginator.paginate(**kwargs) for item in page.get(key, [])]
        except (ClientError, BotoCoreError) as exc:
            raise _read_error(f"{service}.{operation} in {region}", exc) from None

    def account_id(self, region: str) -> str:
        try:
            identity = self._client("sts", region).get_caller_identity()
        except (ClientError, BotoCoreError) as exc:
            raise _read_error("sts.get_caller_identity", exc) from None
        return str(identity["Account"])

    def vpcs(self, region: str) -> list[RawResource]:
        return self._pages("ec2", region, "describe_vpcs", "Vpcs")

    def subnets(self, region: str) -> list[RawResource]:
        return self._pages("ec2", region, "describe_subnets", "Subnets")

    def security_groups(self, region: str) -> list[RawResource]:
        return self._pages("ec2", region, "describe_security_groups", "SecurityGroups")

    def instances(self, region: str) -> list[RawResource]:
        reservations = self._pages("ec2", region, "describe_instances", "Reservations")
        return [instance for r in reservations for instance in r.get("Instances", [])]

    def db_instances(self, region: str) -> list[RawResource]:
        return self._pages("rds", region, "describe_db_instances", "DBInstances")

    def functions(self, region: str) -> list[RawResource]:
        return self._pages("lambda", region, "list_functions", "Functions")

    def buckets(self, region: str) -> list[tuple[RawResource, str]]:
        """(bucket, its region) of every bucket of the account; S3 lists them globally."""
        s3 = self._client("s3", region)
        found = []
        for bucket in self._pages("s3", region, "list_buckets", "Buckets"):
            located = bucket.get("BucketRegion")
            if not located:
                try:
                    location = s3.get_bucket_location(Bucket=bucket["Name"])
                except (ClientError, BotoCoreError) as exc:
                    raise _read_error(f"s3.get_bucket_location {bucket['Name']}", exc) from None
                # us-east-1 is reported as no constraint at all; EU is the old name of eu-west-1.
                constraint = location.get("LocationConstraint") or "us-east-1"
                located = "eu-west-1" if constraint == "EU" else constraint
            found.append((bucket, str(located)))
        return found
