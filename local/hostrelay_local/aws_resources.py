"""Creates every table, queue, bucket and event bus of template.yaml in moto, as declared."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hostrelay_local.template import Resolver, Template, load_template

_TABLE_KEYS = (
    "AttributeDefinitions",
    "KeySchema",
    "GlobalSecondaryIndexes",
    "LocalSecondaryIndexes",
    "BillingMode",
)


@dataclass
class LocalResources:
    """Names of what was created, and a resolver for function environments."""

    stage: str
    refs: dict[str, str] = field(default_factory=dict)
    attrs: dict[tuple[str, str], str] = field(default_factory=dict)

    def resolver(self) -> Resolver:
        return Resolver(self.refs, self.attrs)


def create_resources(
    session: Any,
    *,
    prefix: str = "hostrelay-local",
    stage: str = "dev",
    template: Template | None = None,
    parameters: dict[str, str] | None = None,
    account: str = "123456789012",
) -> LocalResources:
    """Create DynamoDB tables, SQS queues (DLQs first), S3 buckets and EventBridge buses from
    the template.

    `session` is a boto3 Session (or the boto3 module) already pointed at moto.
    """
    template = template or load_template()
    resources = LocalResources(stage=stage)
    region = session.client("sts").meta.region_name
    resources.refs.update({"AWS::Region": region, "AWS::AccountId": account})
    resources.refs.update({"AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com"})
    for name, spec in template.parameters.items():
        resources.refs[name] = str(spec.get("Default", ""))
    resources.refs["Stage"] = stage
    resources.refs.update(parameters or {})

    dynamodb = session.client("dynamodb")
    for logical_id, resource in template.of_type("AWS::DynamoDB::Table").items():
        props = resource["Properties"]
        table_name = f"{prefix}-{logical_id}"
        kwargs = {k: props[k] for k in _TABLE_KEYS if k in props}
        dynamodb.create_table(TableName=table_name, **kwargs)
        ttl = props.get("TimeToLiveSpecification")
        if ttl:
            dynamodb.update_time_to_live(
                TableName=table_name,
                TimeToLiveSpecification={
                    "AttributeName": ttl["AttributeName"],
                    "Enabled": bool(ttl["Enabled"]),
                },
            )
        resources.refs[logical_id] = table_name
        resources.attrs[(logical_id, "Arn")] = (
            f"arn:aws:dynamodb:{region}:{account}:table/{table_name}"
        )

    sqs = session.client("sqs")
    queues = template.of_type("AWS::SQS::Queue")
    ordered = sorted(queues, key=lambda lid: "RedrivePolicy" in queues[lid].get("Properties", {}))
    for logical_id in ordered:
        props = queues[logical_id].get("Properties", {})
        queue_name = f"{prefix}-{logical_id}"
        attributes = {
            "VisibilityTimeout": str(props.get("VisibilityTimeout", 30)),
            "MessageRetentionPeriod": str(props.get("MessageRetentionPeriod", 345600)),
        }
        redrive = props.get("RedrivePolicy")
        if redrive:
            resolved = resources.resolver().resolve(redrive)
            attributes["RedrivePolicy"] = _json(resolved)
        url = sqs.create_queue(QueueName=queue_name, Attributes=attributes)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        resources.refs[logical_id] = url
        resources.attrs[(logical_id, "Arn")] = arn
        resources.attrs[(logical_id, "QueueUrl")] = url
        resources.attrs[(logical_id, "QueueName")] = queue_name

    s3 = session.client("s3")
    for logical_id in template.of_type("AWS::S3::Bucket"):
        bucket = f"{prefix}-{logical_id}".lower()
        s3.create_bucket(Bucket=bucket)
        resources.refs[logical_id] = bucket
        resources.attrs[(logical_id, "Arn")] = f"arn:aws:s3:::{bucket}"

    events = session.client("events")
    for logical_id in template.of_type("AWS::Events::EventBus"):
        bus = f"{prefix}-{logical_id}"
        resources.refs[logical_id] = bus
        resources.attrs[(logical_id, "Arn")] = events.create_event_bus(Name=bus)["EventBusArn"]
        resources.attrs[(logical_id, "Name")] = bus

    # Functions are not created in moto (they run in this process): their names only, for
    # the environment of a function that invokes another (hostrelay_local/lambda_invoke.py).
    for logical_id in template.of_type("AWS::Serverless::Function"):
        name = f"{prefix}-{logical_id}"
        resources.refs[logical_id] = name
        resources.attrs[(logical_id, "Arn")] = f"arn:aws:lambda:{region}:{account}:function:{name}"
    return resources


def function_environment(
    template: Template, logical_id: str, resources: LocalResources
) -> dict[str, str]:
    """The environment variables template.yaml gives one function, resolved locally."""
    for spec in template.functions():
        if spec.logical_id == logical_id:
            resolved = resources.resolver().resolve(spec.environment)
            return {k: str(v) for k, v in resolved.items()}
    raise KeyError(f"no function {logical_id} in template")


def _json(value: Any) -> str:
    import json

    return json.dumps(value)
