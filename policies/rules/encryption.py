"""Encryption at rest (and in transit, where the same resource sets both) for the stores an
engineer adds beside the platform's: streams, queues, file systems, databases, caches, search
domains, volumes, notebooks, function environments and log groups.

Each rule reads the store's own switch, with AWS's default where the input is left out. Where AWS
already encrypts with a key it owns and only the choice of key is at stake (DynamoDB, Lambda
environments, CloudWatch Logs), the rule is advisory.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from policies.core import Context, PolicySpec, Resource, dig, listify

FIREHOSE = "aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream"
QUEUE = "aws:sqs/queue:Queue"
STREAM = "aws:kinesis/stream:Stream"
FILE_SYSTEM = "aws:efs/fileSystem:FileSystem"
RDS_INSTANCE = "aws:rds/instance:Instance"
RDS_CLUSTER = "aws:rds/cluster:Cluster"
TABLE = "aws:dynamodb/table:Table"
OPENSEARCH = "aws:opensearch/domain:Domain"
REPLICATION_GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"
VOLUME = "aws:ebs/volume:Volume"
INSTANCE = "aws:ec2/instance:Instance"
SPOT_INSTANCE = "aws:ec2/spotInstanceRequest:SpotInstanceRequest"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
FUNCTION = "aws:lambda/function:Function"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
NOTEBOOK = "aws:sagemaker/notebookInstance:NotebookInstance"


def _on(value: Any) -> bool:
    """A boolean input, which some resources (launch templates) take as a string."""
    return value is True or (isinstance(value, str) and value.lower() == "true")


def check_firehose(resource: Resource, _ctx: Context) -> Iterator[str]:
    if resource.get("kinesisSourceConfiguration") or resource.get("mskSourceConfiguration"):
        return  # records stay encrypted by their source stream or cluster
    if not _on(resource.get("serverSideEncryption", "enabled")):
        yield (
            f"delivery stream {resource.name!r} (DirectPut) does not encrypt records at rest: "
            "set serverSideEncryption.enabled (keyType CUSTOMER_MANAGED_CMK, keyArn)"
        )


def check_queue(resource: Resource, _ctx: Context) -> Iterator[str]:
    # SQS encrypts new queues with SSE-SQS unless told not to
    if not resource.get("kmsMasterKeyId") and resource.get("sqsManagedSseEnabled") is False:
        yield (
            f"queue {resource.name!r} is not encrypted at rest: sqsManagedSseEnabled is false "
            "and there is no kmsMasterKeyId"
        )


def check_stream(resource: Resource, _ctx: Context) -> Iterator[str]:
    kind = resource.get("encryptionType") or "NONE"
    if kind != "KMS":
        yield f"Kinesis stream {resource.name!r}: encryptionType is {kind!r}, not 'KMS'"


def check_file_system(resource: Resource, _ctx: Context) -> Iterator[str]:
    if not _on(resource.get("encrypted")):
        yield f"EFS file system {resource.name!r} is not encrypted (encrypted)"


def check_db_storage(resource: Resource, _ctx: Context) -> Iterator[str]:
    if resource.type == RDS_INSTANCE and resource.get("replicateSourceDb"):
        return  # a read replica has its source's encryption
    if resource.type == RDS_CLUSTER and resource.get("engineMode") == "serverless":
        return  # Aurora Serverless v1 is always encrypted
    if not _on(resource.get("storageEncrypted")):
        yield f"{resource.where()}: storageEncrypted is not true"


def check_table(resource: Resource, _ctx: Context) -> Iterator[str]:
    if not _on(resource.get("serverSideEncryption", "enabled")):
        yield (
            f"DynamoDB table {resource.name!r} uses the AWS-owned key: set "
            "serverSideEncryption.enabled (and kmsKeyArn) to control and audit the key"
        )


def check_opensearch(resource: Resource, _ctx: Context) -> Iterator[str]:
    name = resource.name
    if not _on(resource.get("encryptAtRest", "enabled")):
        yield f"OpenSearch domain {name!r}: encryptAtRest.enabled is not true"
    if not _on(resource.get("nodeToNodeEncryption", "enabled")):
        yield f"OpenSearch domain {name!r}: nodeToNodeEncryption.enabled is not true"
    if resource.get("domainEndpointOptions", "enforceHttps") is False:  # default: true
        yield f"OpenSearch domain {name!r}: domainEndpointOptions.enforceHttps is false"


def check_replication_group(resource: Resource, _ctx: Context) -> Iterator[str]:
    name = resource.name
    at_rest = resource.get("atRestEncryptionEnabled")
    valkey = resource.get("engine", default="redis") == "valkey"
    if at_rest is False or (at_rest is None and not valkey):  # unset: on for valkey only
        yield f"ElastiCache replication group {name!r}: atRestEncryptionEnabled is not true"
    if not _on(resource.get("transitEncryptionEnabled")):
        yield f"ElastiCache replication group {name!r}: transitEncryptionEnabled is not true"


def _block_devices(resource: Resource) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(label, EBS settings) of every volume the resource declares."""
    if resource.type == LAUNCH_TEMPLATE:
        for i, mapping in enumerate(listify(resource.get("blockDeviceMappings"))):
            ebs = dig(mapping, ("ebs",)) if isinstance(mapping, Mapping) else None
            if isinstance(ebs, Mapping):
                yield f"blockDeviceMappings[{i}].ebs", ebs
        return
    root = resource.get("rootBlockDevice")
    if isinstance(root, Mapping):
        yield "rootBlockDevice", root
    for i, device in enumerate(listify(resource.get("ebsBlockDevices"))):
        if isinstance(device, Mapping):
            yield f"ebsBlockDevices[{i}]", device


def check_volumes(resource: Resource, _ctx: Context) -> Iterator[str]:
    if resource.type == VOLUME:
        if not _on(resource.get("encrypted")):
            yield f"EBS volume {resource.name!r} is not encrypted (encrypted)"
        return
    for label, ebs in _block_devices(resource):
        if not _on(dig(ebs, ("encrypted",))):
            yield f"{resource.where()}: {label} is not encrypted (encrypted)"


def check_function_environment(resource: Resource, _ctx: Context) -> Iterator[str]:
    variables = resource.get("environment", "variables", default={})
    if isinstance(variables, Mapping) and variables and not resource.get("kmsKeyArn"):
        yield (
            f"function {resource.name!r}: environment variables are encrypted with the "
            "AWS-managed key; set kmsKeyArn"
        )


def check_log_group(resource: Resource, _ctx: Context) -> Iterator[str]:
    if not resource.get("kmsKeyId"):
        yield (
            f"log group {resource.name!r} is encrypted with the service-owned key; set kmsKeyId "
            "(the key policy must admit logs.<region>.amazonaws.com)"
        )


def check_notebook_kms(resource: Resource, _ctx: Context) -> Iterator[str]:
    if not resource.get("kmsKeyId"):
        yield f"notebook {resource.name!r}: its storage volume has no kmsKeyId"


POLICIES = (
    PolicySpec(
        name="firehose-deliverystream-encrypted",
        description="DirectPut Firehose streams encrypt records at rest "
        "(serverSideEncryption.enabled).",
        enforcement="mandatory",
        severity="medium",
        reference="CKV_AWS_240; AWS Security Hub DataFirehose.1",
        types=(FIREHOSE,),
        check=check_firehose,
    ),
    PolicySpec(
        name="sqs-queue-encrypted",
        description="SQS queues are encrypted at rest (a KMS key, or SSE-SQS not turned off).",
        enforcement="mandatory",
        severity="medium",
        reference="CKV_AWS_27; AWS Security Hub SQS.1",
        types=(QUEUE,),
        check=check_queue,
    ),
    PolicySpec(
        name="kinesis-stream-encrypted",
        description="Kinesis data streams use KMS encryption (encryptionType 'KMS').",
        enforcement="mandatory",
        severity="medium",
        reference="CKV_AWS_43; AWS Security Hub Kinesis.1",
        types=(STREAM,),
        check=check_stream,
    ),
    PolicySpec(
        name="efs-filesystem-encrypted",
        description="EFS file systems are encrypted at rest.",
        enforcement="mandatory",
        severity="medium",
        reference="CKV_AWS_42; AWS Security Hub EFS.1",
        types=(FILE_SYSTEM,),
        check=check_file_system,
    ),
    PolicySpec(
        name="rds-db-storage-encrypted",
        description="RDS instances and clusters encrypt their storage (replicas and Aurora "
        "Serverless v1 inherit or always have it).",
        enforcement="mandatory",
        severity="high",
        reference="CKV_AWS_16; CKV_AWS_96; AWS Security Hub RDS.3, RDS.27",
        types=(RDS_INSTANCE, RDS_CLUSTER),
        check=check_db_storage,
    ),
    PolicySpec(
        name="dynamodb-table-kms",
        description="DynamoDB tables use a KMS key rather than the AWS-owned default.",
        enforcement="advisory",
        severity="low",
        reference="CKV_AWS_119",
        types=(TABLE,),
        check=check_table,
    ),
    PolicySpec(
        name="opensearch-domain-encrypted",
        description="OpenSearch domains encrypt at rest and node to node, and enforce HTTPS.",
        enforcement="mandatory",
        severity="high",
        reference="CKV_AWS_5; CKV_AWS_6; CKV_AWS_83; AWS Security Hub Opensearch.1, "
        "Opensearch.3, Opensearch.8",
        types=(OPENSEARCH,),
        check=check_opensearch,
    ),
    PolicySpec(
        name="elasticache-replicationgroup-encrypted",
        description="ElastiCache replication groups encrypt at rest and in transit.",
        enforcement="mandatory",
        severity="medium",
        reference="CKV_AWS_29; CKV_AWS_30; AWS Security Hub ElastiCache.4, ElastiCache.5",
        types=(REPLICATION_GROUP,),
        check=check_replication_group,
    ),
    PolicySpec(
        name="ec2-volume-encrypted",
        description="EBS volumes, and the volumes instances and launch templates declare, are "
        "encrypted.",
        enforcement="mandatory",
        severity="medium",
        reference="CKV_AWS_3; CKV_AWS_8; AWS Security Hub EC2.3",
        types=(VOLUME, INSTANCE, SPOT_INSTANCE, LAUNCH_TEMPLATE),
        check=check_volumes,
    ),
    PolicySpec(
        name="lambda-function-env-kms",
        description="Functions with environment variables encrypt them with a customer-managed "
        "key (kmsKeyArn).",
        enforcement="advisory",
        severity="low",
        reference="CKV_AWS_173",
        types=(FUNCTION,),
        check=check_function_environment,
    ),
    PolicySpec(
        name="cloudwatch-loggroup-kms",
        description="Log groups are encrypted with a customer-managed KMS key (kmsKeyId): logs "
        "quote requests, events and errors.",
        enforcement="mandatory",
        severity="medium",
        reference="CKV_AWS_158",
        types=(LOG_GROUP,),
        check=check_log_group,
    ),
    PolicySpec(
        name="sagemaker-notebook-kms",
        description="Notebook instances encrypt their storage volume with a KMS key.",
        enforcement="mandatory",
        severity="medium",
        reference="CKV_AWS_22",
        types=(NOTEBOOK,),
        check=check_notebook_kms,
    ),
)
