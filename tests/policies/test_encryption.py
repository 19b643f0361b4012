"""Encryption at rest of the stores an engineer adds, trails and Athena workgroups: a passing and
a failing case per policy (`POLICY_CASES`), then the defaults and exemptions each rule relies on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from policies.core import Resource
from tests.policies.helpers import KEY_ARN, PROD_TAGS, TAGS, Case, check_case, res, violations

TRAIL = "aws:cloudtrail/trail:Trail"
WORKGROUP = "aws:athena/workgroup:Workgroup"
GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"
SSE_KMS = {"encryptionOption": "SSE_KMS", "kmsKeyArn": KEY_ARN}


def one(type_: str, name: str, **props: Any) -> Callable[[], list[Resource]]:
    return lambda: [res(type_, name, {"tags": TAGS, **props})]


def trail(name: str = "audit", **over: Any) -> Resource:
    props: dict[str, Any] = {
        "s3BucketName": "audit",
        "enableLogging": True,
        "enableLogFileValidation": True,
        "kmsKeyId": KEY_ARN,
        "isMultiRegionTrail": True,
        "includeGlobalServiceEvents": True,
        "tags": TAGS,
        **over,
    }
    return res(TRAIL, name, props)


TRAIL_GROUP = "arn:aws:logs:us-east-1:123456789012:log-group:/audit/trail:*"
TOPIC = "arn:aws:sns:us-east-1:123456789012:on-call"


def watched_trail(alarmed: bool = True) -> list[Resource]:
    """A trail delivered to a log group whose filter feeds an alarm (or none)."""
    metric = {"name": "TrailChanged", "namespace": "Audit", "value": "1"}
    alarm = {"namespace": "Audit", "metricName": "TrailChanged", "alarmActions": [TOPIC]}
    return [
        trail(cloudWatchLogsGroupArn=TRAIL_GROUP, cloudWatchLogsRoleArn="arn:aws:iam::1:role/d"),
        res("aws:cloudwatch/logGroup:LogGroup", "trail-logs", {"name": "/audit/trail"}),
        res(
            "aws:cloudwatch/logMetricFilter:LogMetricFilter",
            "trail-changed",
            {
                "logGroupName": "/audit/trail",
                "pattern": "{ $.x = 1 }",
                "metricTransformation": metric,
            },
        ),
        *(
            [res("aws:cloudwatch/metricAlarm:MetricAlarm", "trail-changed", alarm)]
            if alarmed
            else []
        ),
    ]


def prod_trail_bucket(locked: bool) -> list[Resource]:
    lock = {"bucket": "audit", "rule": {"defaultRetention": {"mode": "GOVERNANCE", "days": 365}}}
    return [
        trail(tags=PROD_TAGS),
        res("aws:s3/bucket:Bucket", "audit-bucket", {"bucket": "audit", "tags": PROD_TAGS}),
        *(
            [
                res(
                    "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration",
                    "lock",
                    lock,
                )
            ]
            if locked
            else []
        ),
    ]


def workgroup(**configuration: Any) -> Resource:
    config: dict[str, Any] = {
        "enforceWorkgroupConfiguration": True,
        "resultConfiguration": {
            "outputLocation": "s3://results/",
            "encryptionConfiguration": SSE_KMS,
        },
        **configuration,
    }
    return res(WORKGROUP, "lake", {"configuration": config, "tags": TAGS})


def opensearch(**over: Any) -> Resource:
    props: dict[str, Any] = {
        "encryptAtRest": {"enabled": True, "kmsKeyId": KEY_ARN},
        "nodeToNodeEncryption": {"enabled": True},
        "domainEndpointOptions": {"enforceHttps": True, "tlsSecurityPolicy": "Policy-Min-TLS-1-2"},
        "tags": TAGS,
        **over,
    }
    return res("aws:opensearch/domain:Domain", "search", props)


def firehose(**over: Any) -> Resource:
    props: dict[str, Any] = {
        "destination": "extended_s3",
        "extendedS3Configuration": {"bucketArn": "arn:aws:s3:::raw", "roleArn": "arn:role"},
        "tags": TAGS,
        **over,
    }
    return res("aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream", "ingest", props)


POLICY_CASES: dict[str, Case] = {
    "firehose-deliverystream-encrypted": (
        lambda: [
            firehose(
                serverSideEncryption={
                    "enabled": True,
                    "keyType": "CUSTOMER_MANAGED_CMK",
                    "keyArn": KEY_ARN,
                }
            ),
            # records arriving from a Kinesis stream keep that stream's encryption
            firehose(kinesisSourceConfiguration={"kinesisStreamArn": "arn:stream", "roleArn": "r"}),
        ],
        lambda: [firehose()],
        "delivery stream 'ingest' (DirectPut) does not encrypt records at rest",
    ),
    "sqs-queue-encrypted": (
        lambda: [
            res("aws:sqs/queue:Queue", "jobs", {"tags": TAGS}),  # SSE-SQS, AWS's default
            res("aws:sqs/queue:Queue", "dlq", {"kmsMasterKeyId": KEY_ARN, "tags": TAGS}),
        ],
        one("aws:sqs/queue:Queue", "jobs", sqsManagedSseEnabled=False),
        "queue 'jobs' is not encrypted at rest",
    ),
    "kinesis-stream-encrypted": (
        one("aws:kinesis/stream:Stream", "events", encryptionType="KMS", kmsKeyId=KEY_ARN),
        one("aws:kinesis/stream:Stream", "events", shardCount=1),
        "encryptionType is 'NONE', not 'KMS'",
    ),
    "efs-filesystem-encrypted": (
        one("aws:efs/fileSystem:FileSystem", "shared", encrypted=True, kmsKeyId=KEY_ARN),
        one("aws:efs/fileSystem:FileSystem", "shared"),
        "EFS file system 'shared' is not encrypted",
    ),
    "rds-db-storage-encrypted": (
        lambda: [
            res("aws:rds/instance:Instance", "db", {"storageEncrypted": True, "tags": TAGS}),
            res(
                "aws:rds/instance:Instance", "db-replica", {"replicateSourceDb": "db", "tags": TAGS}
            ),
            res(
                "aws:rds/cluster:Cluster", "serverless", {"engineMode": "serverless", "tags": TAGS}
            ),
        ],
        one("aws:rds/cluster:Cluster", "metadata", engine="aurora-postgresql"),
        "aws:rds/cluster:Cluster 'metadata': storageEncrypted is not true",
    ),
    "dynamodb-table-kms": (
        one(
            "aws:dynamodb/table:Table",
            "features",
            serverSideEncryption={"enabled": True, "kmsKeyArn": KEY_ARN},
        ),
        one("aws:dynamodb/table:Table", "features", hashKey="id"),
        "DynamoDB table 'features' uses the AWS-owned key",
    ),
    "opensearch-domain-encrypted": (
        lambda: [opensearch(), opensearch(domainEndpointOptions=None)],  # HTTPS: on by default
        lambda: [opensearch(nodeToNodeEncryption=None)],
        "nodeToNodeEncryption.enabled is not true",
    ),
    "elasticache-replicationgroup-encrypted": (
        lambda: [
            res(
                GROUP,
                "cache",
                {"atRestEncryptionEnabled": True, "transitEncryptionEnabled": True, "tags": TAGS},
            ),
            res(GROUP, "valkey", {"engine": "valkey", "transitEncryptionEnabled": True}),
        ],
        one(GROUP, "cache", transitEncryptionEnabled=True),  # redis: off unless asked
        "atRestEncryptionEnabled is not true",
    ),
    "ec2-volume-encrypted": (
        lambda: [
            res("aws:ebs/volume:Volume", "scratch", {"encrypted": True, "kmsKeyId": KEY_ARN}),
            res(
                "aws:ec2/launchTemplate:LaunchTemplate",
                "nodes",
                {
                    "blockDeviceMappings": [
                        {
                            "deviceName": "/dev/xvda",
                            "ebs": {"encrypted": "true", "kmsKeyId": KEY_ARN},
                        }
                    ]
                },
            ),
            res("aws:ec2/instance:Instance", "box", {"instanceType": "t3.micro"}),  # AMI's own
        ],
        one("aws:ec2/instance:Instance", "box", rootBlockDevice={"volumeSize": 100}),
        "aws:ec2/instance:Instance 'box': rootBlockDevice is not encrypted",
    ),
    "lambda-function-env-kms": (
        lambda: [
            res(
                "aws:lambda/function:Function",
                "scorer",
                {"environment": {"variables": {"MODEL": "churn"}}, "kmsKeyArn": KEY_ARN},
            ),
            res("aws:lambda/function:Function", "plain", {"runtime": "python3.13"}),
        ],
        one("aws:lambda/function:Function", "scorer", environment={"variables": {"MODEL": "x"}}),
        "function 'scorer': environment variables are encrypted with the AWS-managed key",
    ),
    "cloudwatch-loggroup-kms": (
        one("aws:cloudwatch/logGroup:LogGroup", "app", retentionInDays=30, kmsKeyId=KEY_ARN),
        one("aws:cloudwatch/logGroup:LogGroup", "app", retentionInDays=30),
        "log group 'app' is encrypted with the service-owned key",
    ),
    "sagemaker-notebook-kms": (
        one("aws:sagemaker/notebookInstance:NotebookInstance", "explore", kmsKeyId=KEY_ARN),
        one("aws:sagemaker/notebookInstance:NotebookInstance", "explore"),
        "notebook 'explore': its storage volume has no kmsKeyId",
    ),
    "cloudtrail-trail-logging-enabled": (
        lambda: [trail(), trail(enableLogging=None)],  # on by default
        lambda: [trail(enableLogging=False)],
        "enableLogging is false",
    ),
    "cloudtrail-trail-log-validation": (
        lambda: [trail()],
        lambda: [trail(enableLogFileValidation=None)],
        "enableLogFileValidation is not true",
    ),
    "cloudtrail-trail-kms": (
        lambda: [trail()],
        lambda: [trail(kmsKeyId=None)],
        "log files are not encrypted with a KMS key",
    ),
    "cloudtrail-trail-multi-region": (
        lambda: [trail()],
        lambda: [trail(isMultiRegionTrail=False)],
        "records one region only",
    ),
    "cloudtrail-trail-watched": (
        lambda: watched_trail(),
        lambda: watched_trail(alarmed=False),
        "no alarm with actions on the filtered metric(s) Audit/TrailChanged",
    ),
    "cloudtrail-trail-bucket-locked": (
        lambda: [*prod_trail_bucket(locked=True), trail(name="dev-trail")],  # dev: no lock needed
        lambda: prod_trail_bucket(locked=False),
        "its bucket 'audit-bucket' has no Object Lock",
    ),
    "athena-workgroup-enforce-config": (
        lambda: [workgroup(), workgroup(enforceWorkgroupConfiguration=None)],  # default: true
        lambda: [workgroup(enforceWorkgroupConfiguration=False)],
        "configuration.enforceWorkgroupConfiguration is false",
    ),
    "athena-workgroup-results-encrypted": (
        lambda: [workgroup()],
        lambda: [workgroup(resultConfiguration={"outputLocation": "s3://results/"})],
        "query results are not encrypted",
    ),
}


@pytest.mark.parametrize("name", sorted(POLICY_CASES))
def test_policy_passes_and_fails(name: str) -> None:
    check_case(name, POLICY_CASES[name])


def test_a_workgroup_without_configuration_enforces_nothing() -> None:
    bare = res(WORKGROUP, "adhoc", {"tags": TAGS})
    assert violations("athena-workgroup-enforce-config", [bare]) == [
        "workgroup 'adhoc' has no configuration: each client picks where query results go and "
        "whether they are encrypted"
    ]
    assert len(violations("athena-workgroup-results-encrypted", [bare])) == 1


def test_an_opensearch_domain_missing_everything() -> None:
    bare = opensearch(
        encryptAtRest=None, nodeToNodeEncryption=None, domainEndpointOptions={"enforceHttps": False}
    )
    assert len(violations("opensearch-domain-encrypted", [bare])) == 3
    # the pre-2021 Elasticsearch type is the same domain
    legacy = res("aws:elasticsearch/domain:Domain", "search", dict(bare.props))
    found = violations("opensearch-domain-encrypted", [legacy])
    assert len(found) == 3 and found[0].startswith("OpenSearch domain 'search'")


def test_launch_template_volumes_and_instance_ebs_devices() -> None:
    template = res(
        "aws:ec2/launchTemplate:LaunchTemplate",
        "nodes",
        {"blockDeviceMappings": [{"deviceName": "/dev/xvda", "ebs": {"volumeSize": 50}}]},
    )
    assert violations("ec2-volume-encrypted", [template]) == [
        "aws:ec2/launchTemplate:LaunchTemplate 'nodes': blockDeviceMappings[0].ebs is not "
        "encrypted (encrypted)"
    ]
    instance = res(
        "aws:ec2/instance:Instance",
        "box",
        {"ebsBlockDevices": [{"deviceName": "/dev/sdf", "encrypted": False, "volumeSize": 10}]},
    )
    assert len(violations("ec2-volume-encrypted", [instance])) == 1
    unencrypted = res("aws:ebs/volume:Volume", "scratch", {"size": 10})
    assert violations("ec2-volume-encrypted", [unencrypted]) == [
        "EBS volume 'scratch' is not encrypted (encrypted)"
    ]


def test_redis_in_transit_and_rds_instance() -> None:
    group = res(GROUP, "cache", {"atRestEncryptionEnabled": True})
    assert violations("elasticache-replicationgroup-encrypted", [group]) == [
        "ElastiCache replication group 'cache': transitEncryptionEnabled is not true"
    ]
    db = res("aws:rds/instance:Instance", "db", {"storageEncrypted": False})
    assert violations("rds-db-storage-encrypted", [db]) == [
        "aws:rds/instance:Instance 'db': storageEncrypted is not true"
    ]


def test_a_trail_that_writes_to_s3_only_is_not_watched() -> None:
    (found,) = violations("cloudtrail-trail-watched", [trail()])
    assert "writes to S3 only" in found
    # nor is one whose log group has no filter
    (found,) = violations("cloudtrail-trail-watched", watched_trail()[:2])
    assert "no metric filter on its log group 'trail-logs'" in found
