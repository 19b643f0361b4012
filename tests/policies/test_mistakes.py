"""Sixteen common mistakes of an engineer extending the stacks, as a Pulumi program: each is caught
by the policy meant for it, and the corrected program is not. A hardened program of every type the
newer policies cover passes them all: their property names are the SDK's on both sides."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest

from mlplat.plan.engine import Plan
from policies.core import PolicyReport, evaluate_plan
from policies.rules import athena, cloudtrail, encryption, exposure, trust

ACCOUNT = "123456789012"  # the offline engine's account (tests/conftest.py settings)
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/ml-platform-reader"
NEW_POLICIES = (
    *trust.POLICIES,
    *exposure.POLICIES,
    *encryption.POLICIES,
    *cloudtrail.POLICIES,
    *athena.POLICIES,
)

# logical name of the mistaken resource -> the policies that must catch it
MISTAKES: dict[str, tuple[str, ...]] = {
    # missed before: an older type, public access, unvalidated or unencrypted data
    "legacy-bucket": ("s3-bucket-kms-encryption", "s3-bucket-public-access-block"),
    "site-policy": ("aws-resourcepolicy-not-public",),
    "ci-role": ("iam-role-trust-not-public",),
    "admin-sg": ("ec2-securitygroup-no-public-ingress",),
    "explore": ("sagemaker-notebook-no-direct-internet", "sagemaker-notebook-no-root-access"),
    "trail": ("cloudtrail-trail-log-validation",),
    "clicks": ("firehose-deliverystream-encrypted",),
    "adhoc": ("athena-workgroup-enforce-config",),
    # caught before
    "data-key": ("kms-key-rotation",),
    "etl-policy": ("iam-policy-no-wildcard-actions",),
    "cluster": ("eks-cluster-private-endpoint",),
    "workers": ("ec2-launchtemplate-imdsv2",),
    "app-logs": ("cloudwatch-loggroup-retention",),
    "alerts": ("sns-topic-encrypted",),
    "errors": ("cloudwatch-alarm-actions",),
    "exports": ("s3-bucket-public-access-block",),
}


def document(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def common_mistakes(fixed: bool = False) -> Callable[[], None]:
    """The program with each of the sixteen mistakes, or each corrected (`fixed`)."""

    def program() -> None:
        tags = {"owner": "ml-team", "environment": "prod", "cost-center": "ml-1234"}
        key = aws.kms.Key("data-key", enable_key_rotation=fixed, tags=tags)

        legacy = aws.s3.BucketV2("legacy-bucket", tags=tags)
        if fixed:
            aws.s3.BucketServerSideEncryptionConfigurationV2(
                "legacy-bucket-sse",
                bucket=legacy.id,
                rules=[
                    aws.s3.BucketServerSideEncryptionConfigurationV2RuleArgs(
                        apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationV2RuleApplyServerSideEncryptionByDefaultArgs(
                            sse_algorithm="aws:kms", kms_master_key_id=key.arn
                        )
                    )
                ],
            )
            block_public(legacy, "legacy-bucket-pab")

        site = aws.s3.Bucket("site", tags=tags)
        reader = {"AWS": ROLE_ARN} if fixed else "*"
        aws.s3.BucketPolicy(
            "site-policy",
            bucket=site.id,
            policy=site.arn.apply(
                lambda arn: document(
                    {
                        "Effect": "Allow",
                        "Principal": reader,
                        "Action": "s3:GetObject",
                        "Resource": f"{arn}/*",
                    }
                )
            ),
        )

        exports = aws.s3.Bucket("exports", tags=tags)
        if fixed:
            block_public(exports, "exports-pab")

        ci = {"AWS": ROLE_ARN} if fixed else {"AWS": "*"}
        aws.iam.Role(
            "ci-role",
            assume_role_policy=document(
                {"Effect": "Allow", "Principal": ci, "Action": "sts:AssumeRole"}
            ),
            tags=tags,
        )
        aws.iam.Policy(
            "etl-policy",
            policy=document(
                {
                    "Effect": "Allow",
                    "Action": ["s3:GetObject"] if fixed else ["s3:*"],
                    "Resource": ["arn:aws:s3:::exports/*"],
                }
            ),
            tags=tags,
        )

        aws.ec2.SecurityGroup(
            "admin-sg",
            vpc_id="vpc-01",
            description="SSH for the team",
            ingress=[
                aws.ec2.SecurityGroupIngressArgs(
                    protocol="tcp",
                    from_port=22,
                    to_port=22,
                    cidr_blocks=["10.40.0.0/16" if fixed else "0.0.0.0/0"],
                )
            ],
            tags=tags,
        )

        aws.sagemaker.NotebookInstance(
            "explore",
            instance_type="ml.t3.medium",
            role_arn=ROLE_ARN,
            direct_internet_access="Disabled" if fixed else "Enabled",
            root_access="Disabled" if fixed else "Enabled",
            subnet_id="subnet-0aaa",
            security_groups=["sg-0abc"],
            kms_key_id=key.arn,
            tags=tags,
        )

        aws.cloudtrail.Trail(
            "trail",
            s3_bucket_name="audit",
            is_multi_region_trail=True,
            kms_key_id=key.arn,
            enable_log_file_validation=fixed,
            tags=tags,
        )

        encrypted = aws.kinesis.FirehoseDeliveryStreamServerSideEncryptionArgs(
            enabled=True, key_type="CUSTOMER_MANAGED_CMK", key_arn=key.arn
        )
        aws.kinesis.FirehoseDeliveryStream(
            "clicks",
            destination="extended_s3",
            extended_s3_configuration=aws.kinesis.FirehoseDeliveryStreamExtendedS3ConfigurationArgs(
                bucket_arn=exports.arn, role_arn=ROLE_ARN
            ),
            server_side_encryption=encrypted if fixed else None,
            tags=tags,
        )

        aws.athena.Workgroup(
            "adhoc",
            configuration=aws.athena.WorkgroupConfigurationArgs(
                enforce_workgroup_configuration=fixed,
                result_configuration=aws.athena.WorkgroupConfigurationResultConfigurationArgs(
                    output_location="s3://exports/athena/",
                    encryption_configuration=aws.athena.WorkgroupConfigurationResultConfigurationEncryptionConfigurationArgs(
                        encryption_option="SSE_KMS", kms_key_arn=key.arn
                    ),
                ),
            ),
            tags=tags,
        )

        aws.eks.Cluster(
            "cluster",
            role_arn=ROLE_ARN,
            vpc_config=aws.eks.ClusterVpcConfigArgs(
                subnet_ids=["subnet-0aaa", "subnet-0bbb"],
                endpoint_private_access=fixed,
                endpoint_public_access=not fixed,
            ),
            tags=tags,
        )
        aws.ec2.LaunchTemplate(
            "workers",
            instance_type="m6i.large",
            metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
                http_tokens="required" if fixed else "optional"
            ),
            tags=tags,
        )
        aws.cloudwatch.LogGroup(
            "app-logs", retention_in_days=30 if fixed else None, kms_key_id=key.arn, tags=tags
        )
        topic = aws.sns.Topic("alerts", kms_master_key_id=key.arn if fixed else None, tags=tags)
        aws.cloudwatch.MetricAlarm(
            "errors",
            comparison_operator="GreaterThanThreshold",
            evaluation_periods=1,
            metric_name="Errors",
            namespace="AWS/Lambda",
            period=60,
            statistic="Sum",
            threshold=1,
            alarm_actions=[topic.arn] if fixed else [],
            tags=tags,
        )

    return program


def block_public(bucket: aws.s3.BucketV2 | aws.s3.Bucket, name: str) -> None:
    aws.s3.BucketPublicAccessBlock(
        name,
        bucket=bucket.id,
        block_public_acls=True,
        block_public_policy=True,
        ignore_public_acls=True,
        restrict_public_buckets=True,
    )


def report_of(plan: Plan, policies: Any = None) -> PolicyReport:
    return evaluate_plan([r.to_json() for r in plan.resources], {"environment": "prod"}, policies)


@pytest.fixture(scope="module")
def recorded(record_module: Callable[..., Plan]) -> dict[bool, Plan]:
    return {fixed: record_module(common_mistakes(fixed)) for fixed in (False, True)}


@pytest.fixture(scope="module")
def record_module() -> Callable[..., Plan]:
    from mlplat.plan import engine
    from tests.conftest import make_config, make_settings

    def run(program: Callable[[], None]) -> Plan:
        return engine.run(make_settings("prod"), make_config("prod"), program=program)

    return run


def test_there_are_sixteen_and_the_program_has_each(recorded: dict[bool, Plan]) -> None:
    assert len(MISTAKES) == 16
    names = {r.name for r in recorded[False].resources}
    assert set(MISTAKES) <= names
    assert recorded[False].named("legacy-bucket").type == "aws:s3/bucketV2:BucketV2"


@pytest.mark.parametrize("mistake", sorted(MISTAKES))
def test_each_mistake_is_caught_by_its_policy(recorded: dict[bool, Plan], mistake: str) -> None:
    report = report_of(recorded[False])
    assert report.skipped == ()
    caught = {v.policy for v in report.violations if v.name == mistake}
    assert set(MISTAKES[mistake]) <= caught, caught
    assert all(
        v.enforcement == "mandatory"
        for v in report.violations
        if v.name == mistake and v.policy in MISTAKES[mistake]
    )


def test_the_corrected_program_is_not_caught_for_them(recorded: dict[bool, Plan]) -> None:
    report = report_of(recorded[True])
    assert report.skipped == ()
    still = {(v.policy, v.name) for v in report.violations if v.policy in MISTAKES.get(v.name, ())}
    assert still == set()


def test_an_aliased_bucket_is_reported_under_its_declared_type(
    recorded: dict[bool, Plan],
) -> None:
    report = report_of(recorded[False])
    (found,) = [
        v
        for v in report.violations
        if v.name == "legacy-bucket" and v.policy == "s3-bucket-versioning"
    ]
    assert found.type == "aws:s3/bucketV2:BucketV2"
    assert found.message == "bucket 'legacy-bucket' has no versioning (BucketVersioning)"


# --- a hardened program: every type the newer policies cover, done right ------------------------


def hardened() -> None:
    tags = {"owner": "ml-team", "environment": "prod", "cost-center": "ml-1234"}
    key = aws.kms.Key(
        "key",
        enable_key_rotation=True,
        policy=document(
            {
                "Sid": "WildcardOnlyAKeyPolicyNamesItsOwnKeyAsStarUseInAccount",
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                "Resource": "*",
                "Condition": {"StringEquals": {"kms:CallerAccount": ACCOUNT}},
            }
        ),
        tags=tags,
    )
    in_account = {"StringEquals": {"aws:SourceAccount": ACCOUNT}}
    aws.iam.Role(
        "fn-role",
        assume_role_policy=document(
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
                "Condition": in_account,
            }
        ),
        tags=tags,
    )
    aws.iam.Role(
        "vendor-role",
        assume_role_policy=document(
            {
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::999988887777:root"},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"sts:ExternalId": "vendor-7f3a"}},
            }
        ),
        tags=tags,
    )
    queue = aws.sqs.Queue("jobs", kms_master_key_id=key.arn, tags=tags)
    aws.sqs.QueuePolicy(
        "jobs-policy",
        queue_url=queue.url,
        policy=queue.arn.apply(
            lambda arn: document(
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "events.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": arn,
                    "Condition": in_account,
                }
            )
        ),
    )
    aws.ec2.SecurityGroup(
        "internal",
        vpc_id="vpc-01",
        ingress=[
            aws.ec2.SecurityGroupIngressArgs(
                protocol="tcp", from_port=5432, to_port=5432, cidr_blocks=["10.40.0.0/16"]
            )
        ],
        tags=tags,
    )
    aws.vpc.SecurityGroupIngressRule(
        "internal-https",
        security_group_id="sg-0abc",
        ip_protocol="tcp",
        from_port=443,
        to_port=443,
        cidr_ipv4="10.40.0.0/16",
        tags=tags,
    )
    aws.ec2.DefaultSecurityGroup("default", vpc_id="vpc-01", tags=tags)
    aws.sagemaker.NotebookInstance(
        "explore",
        instance_type="ml.t3.medium",
        role_arn=ROLE_ARN,
        subnet_id="subnet-0aaa",
        security_groups=["sg-0abc"],
        direct_internet_access="Disabled",
        root_access="Disabled",
        kms_key_id=key.arn,
        tags=tags,
    )
    aws.rds.Instance(
        "db",
        engine="postgres",
        instance_class="db.t4g.micro",
        allocated_storage=20,
        storage_encrypted=True,
        kms_key_id=key.arn,
        publicly_accessible=False,
        tags=tags,
    )
    aws.rds.Cluster(
        "metadata",
        engine="aurora-postgresql",
        storage_encrypted=True,
        kms_key_id=key.arn,
        tags=tags,
    )
    balancer = aws.lb.LoadBalancer("api", internal=True, subnets=["subnet-0aaa"], tags=tags)
    aws.alb.Listener(
        "api-http",
        load_balancer_arn=balancer.arn,
        protocol="HTTP",
        port=80,
        default_actions=[
            aws.alb.ListenerDefaultActionArgs(
                type="redirect",
                redirect=aws.alb.ListenerDefaultActionRedirectArgs(
                    protocol="HTTPS", port="443", status_code="HTTP_301"
                ),
            )
        ],
        tags=tags,
    )
    aws.opensearch.Domain(
        "search",
        engine_version="OpenSearch_2.13",
        vpc_options=aws.opensearch.DomainVpcOptionsArgs(
            subnet_ids=["subnet-0aaa"], security_group_ids=["sg-0abc"]
        ),
        encrypt_at_rest=aws.opensearch.DomainEncryptAtRestArgs(enabled=True, kms_key_id=key.arn),
        node_to_node_encryption=aws.opensearch.DomainNodeToNodeEncryptionArgs(enabled=True),
        domain_endpoint_options=aws.opensearch.DomainDomainEndpointOptionsArgs(enforce_https=True),
        tags=tags,
    )
    function = aws.lambda_.Function(
        "scorer",
        role=ROLE_ARN,
        runtime="python3.13",
        handler="score.handler",
        code=pulumi.StringAsset("def handler(event, context): return event"),
        environment=aws.lambda_.FunctionEnvironmentArgs(variables={"MODEL": "churn"}),
        kms_key_arn=key.arn,
        tags=tags,
    )
    aws.lambda_.FunctionUrl("scorer-url", function_name=function.name, authorization_type="AWS_IAM")
    aws.lambda_.Permission(
        "scorer-from-rule",
        action="lambda:InvokeFunction",
        function=function.name,
        principal="events.amazonaws.com",
        source_account=ACCOUNT,
    )
    aws.ec2.Instance(
        "box",
        ami="ami-0abcdef1234567890",
        instance_type="t3.micro",
        associate_public_ip_address=False,
        metadata_options=aws.ec2.InstanceMetadataOptionsArgs(http_tokens="required"),
        root_block_device=aws.ec2.InstanceRootBlockDeviceArgs(
            volume_size=20, encrypted=True, kms_key_id=key.arn
        ),
        tags=tags,
    )
    aws.ebs.Volume(
        "scratch", availability_zone="us-east-1a", size=10, encrypted=True, kms_key_id=key.arn
    )
    aws.kinesis.Stream(
        "events", shard_count=1, encryption_type="KMS", kms_key_id=key.arn, tags=tags
    )
    aws.efs.FileSystem("shared", encrypted=True, kms_key_id=key.arn, tags=tags)
    aws.dynamodb.Table(
        "features",
        hash_key="id",
        billing_mode="PAY_PER_REQUEST",
        attributes=[aws.dynamodb.TableAttributeArgs(name="id", type="S")],
        server_side_encryption=aws.dynamodb.TableServerSideEncryptionArgs(
            enabled=True, kms_key_arn=key.arn
        ),
        tags=tags,
    )
    aws.elasticache.ReplicationGroup(
        "cache",
        description="feature cache",
        node_type="cache.t4g.micro",
        at_rest_encryption_enabled=True,
        transit_encryption_enabled=True,
        kms_key_id=key.arn,
        tags=tags,
    )
    aws.cloudwatch.LogGroup("app-logs", retention_in_days=30, kms_key_id=key.arn, tags=tags)
    trail_logs = aws.cloudwatch.LogGroup(
        "trail-logs", name="/audit/trail", retention_in_days=365, kms_key_id=key.arn, tags=tags
    )
    aws.cloudwatch.LogMetricFilter(
        "trail-changed",
        log_group_name=trail_logs.name,
        pattern='{ $.eventName = "StopLogging" }',
        metric_transformation=aws.cloudwatch.LogMetricFilterMetricTransformationArgs(
            name="TrailChanged", namespace="Audit", value="1"
        ),
    )
    aws.cloudwatch.MetricAlarm(
        "trail-changed",
        namespace="Audit",
        metric_name="TrailChanged",
        statistic="Sum",
        period=300,
        evaluation_periods=1,
        threshold=1,
        comparison_operator="GreaterThanOrEqualToThreshold",
        alarm_actions=["arn:aws:sns:us-east-1:123456789012:on-call"],
        tags=tags,
    )
    aws.cloudtrail.Trail(
        "audit",
        s3_bucket_name="audit",  # the log archive account's bucket
        cloud_watch_logs_group_arn=trail_logs.arn.apply(lambda arn: f"{arn}:*"),
        cloud_watch_logs_role_arn=ROLE_ARN,
        enable_logging=True,
        enable_log_file_validation=True,
        is_multi_region_trail=True,
        kms_key_id=key.arn,
        tags=tags,
    )
    aws.kinesis.FirehoseDeliveryStream(
        "clicks",
        destination="extended_s3",
        extended_s3_configuration=aws.kinesis.FirehoseDeliveryStreamExtendedS3ConfigurationArgs(
            bucket_arn="arn:aws:s3:::exports", role_arn=ROLE_ARN
        ),
        server_side_encryption=aws.kinesis.FirehoseDeliveryStreamServerSideEncryptionArgs(
            enabled=True, key_type="CUSTOMER_MANAGED_CMK", key_arn=key.arn
        ),
        tags=tags,
    )
    aws.athena.Workgroup(
        "adhoc",
        configuration=aws.athena.WorkgroupConfigurationArgs(
            enforce_workgroup_configuration=True,
            result_configuration=aws.athena.WorkgroupConfigurationResultConfigurationArgs(
                output_location="s3://exports/athena/",
                encryption_configuration=aws.athena.WorkgroupConfigurationResultConfigurationEncryptionConfigurationArgs(
                    encryption_option="SSE_KMS", kms_key_arn=key.arn
                ),
            ),
        ),
        tags=tags,
    )


def test_the_hardened_program_passes_every_newer_policy(record: Callable[..., Plan]) -> None:
    plan = record(hardened)
    report = report_of(plan, NEW_POLICIES)
    assert report.skipped == ()
    assert [(v.policy, v.name, v.message) for v in report.violations] == []
