"""discovery.aws through the real discovery handler against moto resources in two regions."""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from hostrelay_contract.jobs.cloud import DiscoveryAwsResult
from hostrelay_local.lambda_runtime import FakeLambdaContext
from hostrelay_local.template import REPO_ROOT
from tests.conftest import sqs_event
from tests.integration.connectors.conftest import ConnectorStack

pytestmark = pytest.mark.integration

REGIONS = ("us-east-1", "eu-west-1")


@dataclass
class RegionResources:
    region: str
    vpc: str
    subnet: str
    group: str
    instance: str
    bucket: str
    db_arn: str
    function_arn: str


def _lambda_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return event\n")
    return buffer.getvalue()


def name_tag(resource_type: str, name: str, region: str) -> dict[str, Any]:
    return {"ResourceType": resource_type, "Tags": [{"Key": "Name", "Value": f"{name}-{region}"}]}


def build_region(region: str, role_arn: str) -> RegionResources:
    """A VPC with a subnet, a security group, an instance in both, a bucket, a database
    and a function in the VPC, all in one region."""
    ec2 = boto3.client("ec2", region_name=region)
    vpc = ec2.create_vpc(
        CidrBlock="10.20.0.0/16", TagSpecifications=[name_tag("vpc", "main", region)]
    )
    subnets = [
        ec2.create_subnet(VpcId=vpc["Vpc"]["VpcId"], CidrBlock=cidr, AvailabilityZone=region + zone)
        for cidr, zone in (("10.20.1.0/24", "a"), ("10.20.2.0/24", "b"))
    ]
    vpc, subnets = vpc["Vpc"]["VpcId"], [s["Subnet"]["SubnetId"] for s in subnets]
    group = ec2.create_security_group(GroupName=f"web-{region}", Description="web", VpcId=vpc)[
        "GroupId"
    ]
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    instance = ec2.run_instances(
        ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.micro",
        SubnetId=subnets[0], SecurityGroupIds=[group],
        TagSpecifications=[name_tag("instance", "web", region)],
    )["Instances"][0]["InstanceId"]  # fmt: skip
    bucket = f"hostrelay-test-{region}"
    s3 = boto3.client("s3", region_name=region)
    if region == "us-east-1":
        s3.create_bucket(Bucket=bucket)
    else:
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
    rds = boto3.client("rds", region_name=region)
    rds.create_db_subnet_group(
        DBSubnetGroupName=f"db-{region}", DBSubnetGroupDescription="db", SubnetIds=subnets
    )
    db = rds.create_db_instance(
        DBInstanceIdentifier=f"db-{region}", DBInstanceClass="db.t3.micro", Engine="postgres",
        MasterUsername="admin", MasterUserPassword="not-a-real-one-1", AllocatedStorage=20,
        DBSubnetGroupName=f"db-{region}", VpcSecurityGroupIds=[group],
    )["DBInstance"]["DBInstanceArn"]  # fmt: skip
    function = boto3.client("lambda", region_name=region).create_function(
        FunctionName=f"fn-{region}", Runtime="python3.11", Role=role_arn, Handler="app.handler",
        Code={"ZipFile": _lambda_zip()},
        VpcConfig={"SubnetIds": [subnets[1]], "SecurityGroupIds": [group]},
    )["FunctionArn"]  # fmt: skip
    return RegionResources(
        region, vpc, subnets[0], group, instance, bucket, db, function
    )  # fmt: skip


@pytest.fixture
def account(stack: ConnectorStack) -> dict[str, RegionResources]:
    """Given resources of every discovered type in two regions (and a bucket elsewhere)."""
    role_arn = boto3.client("iam").create_role(
        RoleName="fn-role",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )["Role"]["Arn"]
    boto3.client("s3", region_name="ap-south-1").create_bucket(
        Bucket="hostrelay-test-elsewhere",
        CreateBucketConfiguration={"LocationConstraint": "ap-south-1"},
    )
    return {region: build_region(region, role_arn) for region in REGIONS}


def run_discovery(stack: ConnectorStack, connector: dict[str, Any]) -> dict[str, Any]:
    job = stack.operator.post(f"/v1/connectors/{connector['id']}/run").body
    assert stack.run_cloud_jobs() == {"batchItemFailures": []}
    return stack.reader.get(f"/v1/jobs/{job['id']}").body  # type: ignore[no-any-return]


def relation_ids(stack: ConnectorStack, entity_id: str, relation: str) -> list[tuple[str, str]]:
    body = stack.reader.get(f"/v1/inventory/entities/{entity_id}").body
    return [(item["id"], item["kind"]) for item in body["relations"][relation]["items"]]


def test_discovery_inventories_two_regions_with_relations(
    stack: ConnectorStack, account: dict[str, RegionResources]
) -> None:
    connector = stack.create_connector(
        name="aws", kind="aws", target="cloud", settings={"regions": list(REGIONS)}
    )
    # When the discovery job runs
    job = run_discovery(stack, connector)
    # Then it succeeded and its result counts what it found
    assert job["state"] == "SUCCEEDED", job
    result = job["result"]
    DiscoveryAwsResult.model_validate(result)  # the shape the contract documents
    assert result["errors"] == [] and result["regions"] == list(REGIONS)
    assert result["created"] == result["total"] > 0
    for kind in ("aws.ec2.instance", "aws.rds.instance", "aws.lambda.function"):
        assert result["by_kind"][kind] == 2, kind
    # And each region's resources are entities related the way AWS relates them
    for region, made in account.items():
        instance = stack.reader.get(f"/v1/inventory/entities/{made.instance}").body
        assert (instance["kind"], instance["name"]) == ("aws.ec2.instance", f"web-{region}")
        assert instance["attributes"]["region"] == region
        assert relation_ids(stack, made.instance, "subnet") == [(made.subnet, "aws.ec2.subnet")]
        assert relation_ids(stack, made.instance, "vpc") == [(made.vpc, "aws.ec2.vpc")]
        assert relation_ids(stack, made.instance, "security_groups") == [
            (made.group, "aws.ec2.security_group")
        ]
        assert relation_ids(stack, made.subnet, "vpc") == [(made.vpc, "aws.ec2.vpc")]
        assert relation_ids(stack, made.group, "vpc") == [(made.vpc, "aws.ec2.vpc")]
        assert ("aws.ec2.vpc", f"main-{region}") == tuple(
            stack.reader.get(f"/v1/inventory/entities/{made.vpc}").body[k] for k in ("kind", "name")
        )
        db = stack.reader.get(f"/v1/inventory/entities/{made.db_arn}").body
        assert (db["name"], db["attributes"]["engine"]) == (f"db-{region}", "postgres")
        assert relation_ids(stack, made.db_arn, "vpc") == [(made.vpc, "aws.ec2.vpc")]
        function = stack.reader.get(f"/v1/inventory/entities/{made.function_arn}").body
        assert function["attributes"]["runtime"] == "python3.11"
        assert relation_ids(stack, made.function_arn, "security_groups") == [
            (made.group, "aws.ec2.security_group")
        ]
        bucket = stack.reader.get(f"/v1/inventory/entities/arn:aws:s3:::{made.bucket}").body
        assert bucket["attributes"]["region"] == region
    # And a bucket of a region not configured is left out (the stack's own bucket is in)
    names = [e["name"] for e in stack.reader.get(
        "/v1/inventory/entities", query={"kind": "aws.s3.bucket"}).body["entities"]]  # fmt: skip
    assert [n for n in names if n.startswith("hostrelay-test-")] == [
        "hostrelay-test-eu-west-1",
        "hostrelay-test-us-east-1",
    ]
    assert result["by_kind"]["aws.s3.bucket"] == len(names)
    # And the counts show the connector's resources
    counts = stack.reader.get("/v1/inventory/counts").body
    assert counts["by_connector"] == {connector["id"]: result["total"]}


def test_a_second_run_marks_vanished_resources_deleted_and_changes_nothing_else(
    stack: ConnectorStack, account: dict[str, RegionResources]
) -> None:
    connector = stack.create_connector(
        name="aws", kind="aws", target="cloud", settings={"regions": list(REGIONS)}
    )
    first = run_discovery(stack, connector)["result"]
    # When an instance is terminated and discovery runs again
    gone = account["eu-west-1"].instance
    boto3.client("ec2", region_name="eu-west-1").terminate_instances(InstanceIds=[gone])
    second = run_discovery(stack, connector)["result"]
    # Then only that instance is deleted; the rest is unchanged
    assert (second["created"], second["updated"], second["deleted"]) == (0, 0, 1)
    assert second["unchanged"] == first["total"] - 1
    instance = stack.reader.get(f"/v1/inventory/entities/{gone}").body
    assert instance["deleted_at"] is not None
    # And what is still there was seen again: last_seen moved, first_seen stayed
    vpc = stack.reader.get(f"/v1/inventory/entities/{account['eu-west-1'].vpc}").body
    assert vpc["first_seen"] < vpc["last_seen"] and vpc["deleted_at"] is None


def test_resource_types_limit_what_is_read_and_a_bad_role_fails_the_job(
    stack: ConnectorStack, account: dict[str, RegionResources]
) -> None:
    only_buckets = stack.create_connector(
        name="s3", kind="aws", target="cloud",
        settings={"regions": ["eu-west-1"], "resource_types": ["s3.bucket"]},
    )  # fmt: skip
    job = run_discovery(stack, only_buckets)
    assert job["state"] == "SUCCEEDED"
    assert job["result"]["by_kind"] == {"aws.s3.bucket": 1}
    # An assumed role in the same account works like our own credentials
    assumed = stack.create_connector(
        name="assumed", kind="aws", target="cloud",
        settings={"regions": ["us-east-1"], "resource_types": ["lambda.function"],
                  "assume_role_arn": "arn:aws:iam::123456789012:role/hostrelay-discovery-ro"},
    )  # fmt: skip
    job = run_discovery(stack, assumed)
    assert job["state"] == "SUCCEEDED", job
    assert job["result"]["by_kind"] == {"aws.lambda.function": 1}


def test_a_redelivered_cloud_job_message_runs_the_job_once(
    stack: ConnectorStack, account: dict[str, RegionResources]
) -> None:
    connector = stack.create_connector(
        name="aws", kind="aws", target="cloud",
        settings={"regions": ["us-east-1"], "resource_types": ["ec2.vpc"]},
    )  # fmt: skip
    job = stack.operator.post(f"/v1/connectors/{connector['id']}/run").body
    [message] = stack.queue_bodies("CloudJobsQueue")
    handler = stack.handler("DiscoveryFunction")
    response = handler(sqs_event([json.dumps(message)]), FakeLambdaContext("discovery"))
    assert response == {"batchItemFailures": []}
    done = stack.reader.get(f"/v1/jobs/{job['id']}").body
    assert done["state"] == "SUCCEEDED"
    # When SQS delivers the same message again
    response = handler(sqs_event([json.dumps(message)]), FakeLambdaContext("discovery"))
    # Then the finished job is left alone
    assert response == {"batchItemFailures": []}
    assert stack.reader.get(f"/v1/jobs/{job['id']}").body == done


def test_the_sample_event_for_an_unknown_job_is_dropped_not_retried(stack: ConnectorStack) -> None:
    event = json.loads((REPO_ROOT / "events" / "discovery_sqs.json").read_text())
    response = stack.handler("DiscoveryFunction")(event, FakeLambdaContext("discovery"))
    assert response == {"batchItemFailures": []}
