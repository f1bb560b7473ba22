"""AWS API shapes → inventory entities, and which kinds a partial snapshot may delete."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hostrelay.domain.connector_settings import AwsResourceType
from hostrelay.domain.inventory import SourceReadError
from hostrelay.logic.discovery_aws import (
    db_instance_entity,
    function_entity,
    instance_entity,
    security_group_entity,
    take_snapshot,
)

INSTANCE = {
    "InstanceId": "i-1", "InstanceType": "t3.micro", "State": {"Name": "running"},
    "SubnetId": "subnet-1", "VpcId": "vpc-1", "PrivateIpAddress": "10.0.0.5",
    "SecurityGroups": [{"GroupId": "sg-2"}, {"GroupId": "sg-1"}, {"GroupId": "sg-1"}],
    "LaunchTime": datetime(2025, 1, 1, tzinfo=UTC), "Tags": [{"Key": "Name", "Value": "web"}],
}  # fmt: skip


def test_an_instance_relates_to_its_subnet_vpc_and_groups() -> None:
    entity = instance_entity(INSTANCE, "eu-west-1")
    assert (entity.id, entity.kind, entity.name) == ("i-1", "aws.ec2.instance", "web")
    assert entity.relations == {
        "subnet": ["subnet-1"], "vpc": ["vpc-1"], "security_groups": ["sg-1", "sg-2"],
    }  # fmt: skip
    assert entity.attributes["launch_time"] == "2025-01-01T00:00:00+00:00"
    assert "public_ip" not in entity.attributes  # absent values are left out


def test_groups_databases_and_functions_name_their_vpc() -> None:
    group = security_group_entity({"GroupId": "sg-1", "GroupName": "web", "VpcId": "vpc-1"}, "r")
    assert (group.name, group.relations) == ("web", {"vpc": ["vpc-1"]})
    db = db_instance_entity(
        {"DBInstanceArn": "arn:db", "DBInstanceIdentifier": "db1", "Engine": "postgres",
         "DBSubnetGroup": {"VpcId": "vpc-1", "Subnets": [{"SubnetIdentifier": "subnet-1"}]},
         "VpcSecurityGroups": [{"VpcSecurityGroupId": "sg-1"}]},
        "r",
    )  # fmt: skip
    assert db.relations == {"vpc": ["vpc-1"], "subnets": ["subnet-1"], "security_groups": ["sg-1"]}
    outside = function_entity({"FunctionArn": "arn:fn", "FunctionName": "fn"}, "r")
    assert outside.relations == {}


class FlakyAccount:
    """Reads VPCs everywhere but instances only in one region."""

    def vpcs(self, region: str) -> list[dict[str, Any]]:
        return [{"VpcId": f"vpc-{region}"}]

    def instances(self, region: str) -> list[dict[str, Any]]:
        if region == "eu-west-1":
            raise SourceReadError("ec2.describe_instances in eu-west-1: UnauthorizedOperation")
        return [dict(INSTANCE, InstanceId=f"i-{region}")]


def test_a_kind_that_failed_somewhere_is_not_complete() -> None:
    snapshot = take_snapshot(
        FlakyAccount(),  # type: ignore[arg-type]
        ["us-east-1", "eu-west-1"],
        [AwsResourceType.EC2_VPC, AwsResourceType.EC2_INSTANCE],
    )
    assert sorted(e.id for e in snapshot.entities) == [
        "i-us-east-1",
        "vpc-eu-west-1",
        "vpc-us-east-1",
    ]
    assert snapshot.complete_kinds == {"aws.ec2.vpc"}
    assert snapshot.errors == [
        {"resource_type": "ec2.instance", "region": "eu-west-1",
         "error": "ec2.describe_instances in eu-west-1: UnauthorizedOperation"},
    ]  # fmt: skip
