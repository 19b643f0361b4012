"""An intentionally insecure program, recorded offline, violates every policy of the pack."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pulumi_aws as aws
import pytest
import typer
from typer.testing import CliRunner

from mlplat.cli.commands import plan as plan_commands
from policies.core import evaluate_plan
from policies.rules import POLICIES

ROOT = Path(__file__).resolve().parents[2]
OTHER_ACCOUNT = "999988887777"  # not the stack's (its ARNs name 123456789012)
LOOSE_OBJECTS = [
    {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": "training",
            "labels": {"pod-security.kubernetes.io/enforce": "restricted"},
        },
    },
    {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "train", "namespace": "training"},
        "spec": {
            "template": {
                "spec": {
                    "containers": [{"name": "train", "image": "python:3.11"}],
                    "restartPolicy": "Never",
                }
            }
        },
    },
]
WILD = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "*", "Resource": "*"},
            {"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*"},
        ],
    }
)
SPOT_NO_CHECKPOINT = json.dumps(
    {
        "Version": "2020-12-01",
        "Steps": [
            {
                "Name": "Train",
                "Type": "Training",
                "Arguments": {
                    "EnableManagedSpotTraining": True,
                    # two instances, their traffic not encrypted
                    "ResourceConfig": {"InstanceType": "ml.g5.xlarge", "InstanceCount": 2},
                },
            }
        ],
    }
)


def insecure(tags: dict[str, str] | None = None) -> None:
    """Raw resources, each missing what a policy asks for."""
    tags = tags or {"environment": "prod"}  # owner and cost-center missing
    bucket = aws.s3.Bucket("raw", tags=tags)
    aws.s3.BucketServerSideEncryptionConfiguration(
        "raw-sse",
        bucket=bucket.id,
        rules=[
            aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                    sse_algorithm="AES256"
                )
            )
        ],
    )
    aws.s3.BucketPublicAccessBlock("raw-pab", bucket=bucket.id, block_public_acls=True)
    aws.s3.BucketPolicy(
        "raw-policy",
        bucket=bucket.id,
        policy=bucket.arn.apply(
            lambda arn: json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "PublicRead",
                            "Effect": "Allow",
                            "Principal": "*",
                            "Action": "s3:GetObject",
                            "Resource": f"{arn}/*",
                        }
                    ],
                }
            )
        ),
    )
    aws.kms.Key("lake", tags=tags)
    role = aws.iam.Role(
        "exec",
        assume_role_policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "sts:AssumeRole",
                        "Principal": {"Service": "sagemaker.amazonaws.com"},
                    }
                ],
            }
        ),
        inline_policies=[aws.iam.RoleInlinePolicyArgs(name="all", policy=WILD)],
        tags=tags,
    )
    aws.eks.Cluster(
        "training",
        role_arn=role.arn,
        tags=tags,
        vpc_config=aws.eks.ClusterVpcConfigArgs(
            subnet_ids=["subnet-0aaa", "subnet-0bbb"], endpoint_public_access=True
        ),
        enabled_cluster_log_types=["api"],
    )
    aws.ec2.LaunchTemplate(
        "gpu",
        instance_type="p3.2xlarge",
        metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(http_put_response_hop_limit=2),
        tags=tags,
    )
    aws.sagemaker.Pipeline(
        "train",
        pipeline_name="train",
        pipeline_display_name="train",
        role_arn=role.arn,
        pipeline_definition=SPOT_NO_CHECKPOINT,
        tags=tags,
    )
    aws.sagemaker.Model(
        "model",
        execution_role_arn=role.arn,
        tags=tags,
        primary_container=aws.sagemaker.ModelPrimaryContainerArgs(
            image="683313688378.dkr.ecr.us-east-1.amazonaws.com/sklearn"
        ),
    )
    config = aws.sagemaker.EndpointConfiguration(
        "config",
        tags=tags,
        production_variants=[
            aws.sagemaker.EndpointConfigurationProductionVariantArgs(
                variant_name="primary",
                model_name="model",
                instance_type="ml.m5.large",
                initial_instance_count=1,
            )
        ],
    )
    endpoint = aws.sagemaker.Endpoint(
        "churn", name="churn", endpoint_config_name=config.name, tags=tags
    )
    aws.appautoscaling.Target(
        "churn-scaling",
        service_namespace="sagemaker",
        scalable_dimension="sagemaker:variant:DesiredInstanceCount",
        resource_id="endpoint/other/variant/primary",
        min_capacity=1,
        max_capacity=2,
        tags=tags,
    )
    aws.cloudwatch.MetricAlarm(
        "latency",
        comparison_operator="GreaterThanThreshold",
        evaluation_periods=1,
        metric_name="ModelLatency",
        namespace="AWS/SageMaker",
        period=60,
        statistic="Average",
        threshold=1,
        dimensions={"EndpointName": endpoint.name},
        tags=tags,
    )
    aws.cloudwatch.LogGroup("logs", tags=tags)
    aws.sns.Topic("oncall", tags=tags)
    # a name the provider refuses (64 at most for a rule)
    aws.cloudwatch.EventRule("r" * 57, schedule_expression="rate(1 day)", tags=tags)
    # declares it applies objects through the training cluster's API, from outside the VPC
    deployer = aws.lambda_.Function(
        "deployer",
        role=role.arn,
        runtime="python3.13",
        handler="deploy.handler",
        environment=aws.lambda_.FunctionEnvironmentArgs(variables={"CLUSTER": "training"}),
        tags={**tags, "mlplatform.io/talks-to": "eks-api:training"},
    )
    # a namespace that denies nothing by default, and a job that may escalate, run as root...
    aws.lambda_.Invocation(
        "deploy-objects",
        function_name=deployer.name,
        input=json.dumps({"objects": LOOSE_OBJECTS}),
    )
    exposed(tags, deployer)
    unencrypted(tags)


def trusting(principal: Any) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": principal}],
        }
    )


def exposed(tags: dict[str, str], function: aws.lambda_.Function) -> None:
    """Reachable from outside: by anyone's credentials, from the internet, outside the VPC."""
    aws.iam.Role("anyone", assume_role_policy=trusting({"AWS": "*"}), tags=tags)
    service_key = {  # alarms of any account may use the key
        "Effect": "Allow",
        "Principal": {"Service": "cloudwatch.amazonaws.com"},
        "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
        "Resource": "*",
    }
    aws.kms.Key(
        "topic-key",
        enable_key_rotation=True,
        policy=json.dumps({"Version": "2012-10-17", "Statement": [service_key]}),
        tags=tags,
    )
    aws.iam.Role("partner", assume_role_policy=trusting({"AWS": f"{OTHER_ACCOUNT}"}), tags=tags)
    world = ["0.0.0.0/0"]
    aws.ec2.SecurityGroup(
        "open",
        vpc_id="vpc-01",
        ingress=[
            aws.ec2.SecurityGroupIngressArgs(
                protocol="tcp", from_port=22, to_port=22, cidr_blocks=world
            ),
            aws.ec2.SecurityGroupIngressArgs(
                protocol="tcp", from_port=443, to_port=443, cidr_blocks=world
            ),
        ],
        tags=tags,
    )
    aws.ec2.DefaultSecurityGroup(
        "default",
        vpc_id="vpc-01",
        egress=[
            aws.ec2.DefaultSecurityGroupEgressArgs(
                protocol="-1", from_port=0, to_port=0, cidr_blocks=world
            )
        ],
        tags=tags,
    )
    aws.sagemaker.NotebookInstance(
        "explore", instance_type="ml.t3.medium", role_arn=function.role, tags=tags
    )
    aws.rds.Instance(
        "db",
        engine="postgres",
        instance_class="db.t4g.micro",
        allocated_storage=20,
        publicly_accessible=True,
        tags=tags,
    )
    balancer = aws.lb.LoadBalancer("api", internal=False, subnets=["subnet-0aaa"], tags=tags)
    aws.lb.Listener(
        "api-http",
        load_balancer_arn=balancer.arn,
        protocol="HTTP",
        port=80,
        default_actions=[
            aws.lb.ListenerDefaultActionArgs(
                type="fixed-response",
                fixed_response=aws.lb.ListenerDefaultActionFixedResponseArgs(
                    content_type="text/plain", status_code="200"
                ),
            )
        ],
        tags=tags,
    )
    aws.opensearch.Domain("search", engine_version="OpenSearch_2.13", tags=tags)
    aws.lambda_.FunctionUrl("deployer-url", function_name=function.name, authorization_type="NONE")
    aws.lambda_.Permission(
        "deployer-anyone", action="lambda:InvokeFunction", function=function.name, principal="*"
    )
    aws.ec2.Instance(
        "bastion",
        ami="ami-0abcdef1234567890",
        instance_type="t3.micro",
        associate_public_ip_address=True,
        metadata_options=aws.ec2.InstanceMetadataOptionsArgs(http_tokens="required"),
        root_block_device=aws.ec2.InstanceRootBlockDeviceArgs(volume_size=20),
        tags=tags,
    )


def unencrypted(tags: dict[str, str]) -> None:
    """Stores, trails and query results left unencrypted (or unvalidated, or unenforced)."""
    aws.kinesis.FirehoseDeliveryStream(
        "clicks",
        destination="extended_s3",
        extended_s3_configuration=aws.kinesis.FirehoseDeliveryStreamExtendedS3ConfigurationArgs(
            bucket_arn="arn:aws:s3:::clicks", role_arn="arn:aws:iam::123456789012:role/firehose"
        ),
        tags=tags,
    )
    aws.sqs.Queue("jobs", sqs_managed_sse_enabled=False, tags=tags)
    aws.kinesis.Stream("events", shard_count=1, tags=tags)
    aws.efs.FileSystem("shared", tags=tags)
    aws.rds.Cluster("metadata", engine="aurora-postgresql", master_username="ml", tags=tags)
    aws.dynamodb.Table(
        "features",
        hash_key="id",
        billing_mode="PAY_PER_REQUEST",
        attributes=[aws.dynamodb.TableAttributeArgs(name="id", type="S")],
        tags=tags,
    )
    aws.elasticache.ReplicationGroup(
        "cache", description="feature cache", node_type="cache.t4g.micro", tags=tags
    )
    aws.ebs.Volume("scratch", availability_zone="us-east-1a", size=10, tags=tags)
    trail_bucket = aws.s3.Bucket("trail-bucket", tags=tags)  # no Object Lock, in prod
    aws.cloudtrail.Trail(
        "audit",
        s3_bucket_name=trail_bucket.bucket,  # and no CloudWatch Logs: nobody watches
        enable_logging=False,
        is_multi_region_trail=False,
        tags=tags,
    )
    aws.athena.Workgroup(
        "adhoc",
        configuration=aws.athena.WorkgroupConfigurationArgs(
            enforce_workgroup_configuration=False,
            result_configuration=aws.athena.WorkgroupConfigurationResultConfigurationArgs(
                output_location="s3://results/"
            ),
        ),
        tags=tags,
    )


def violated(plan_json: dict[str, Any]) -> set[str]:
    return {v.policy for v in evaluate_plan(plan_json["resources"]).violations}


def test_insecure_program_violates_every_policy(record, settings_for) -> None:
    plan = record(insecure, settings=settings_for("prod"))
    report = evaluate_plan([r.to_json() for r in plan.resources])
    assert {v.policy for v in report.violations} == {p.name for p in POLICIES}
    assert report.skipped == ()
    assert report.mandatory_failed
    by_policy = {(v.policy, v.name) for v in report.violations}
    assert ("aws-stateful-protected", "raw") in by_policy
    assert ("aws-stateful-protected", "churn") in by_policy
    assert ("iam-policy-passrole-scoped", "exec") in by_policy
    assert ("s3-bucket-public-access-block", "raw") in by_policy
    assert ("ec2-instance-gpu-allowlist", "gpu") in by_policy
    assert ("aws-resourcepolicy-not-public", "raw-policy") in by_policy
    assert ("aws-resourcepolicy-not-public", "deployer-anyone") in by_policy
    assert ("iam-role-trust-cross-account", "partner") in by_policy
    assert ("iam-role-trust-confused-deputy", "exec") in by_policy
    assert ("ec2-securitygroup-no-public-ingress", "open") in by_policy
    assert ("ec2-volume-encrypted", "bastion") in by_policy
    assert ("rds-db-storage-encrypted", "metadata") in by_policy


def test_cli_preview_exits_1_and_still_writes_the_plan(monkeypatch, tmp_path) -> None:
    from stacks import composition

    def build(settings: Any) -> dict[str, Any]:
        insecure({"environment": settings.environment})
        return {"stack": settings.stack}

    monkeypatch.setattr(composition, "build", build)
    app = typer.Typer()
    plan_commands.register(app)
    out = tmp_path / "plan.json"
    result = CliRunner().invoke(
        app, ["--stack", "dev", "--json", str(out), "--project-dir", str(ROOT)]
    )
    assert result.exit_code == 1, result.output
    assert "mandatory policies violated:" in result.stderr
    assert "kms-key-rotation" in result.stderr and "iam-policy-passrole-scoped" in result.stderr
    assert "CRITICAL" in result.stdout and "HIGH" in result.stdout
    written = json.loads(out.read_text())
    assert set(written) == {"project", "stack", "resources", "outputs", "policies", "cost"}
    names = {v["policy"] for v in written["policies"]["violations"]}
    # dev: the prod-only rules stay quiet
    assert "aws-stateful-protected" not in names and "sagemaker-model-vpc" not in names
    assert {
        "kms-key-rotation",
        "s3-bucket-tls-only",
        "aws-resource-required-tags",
        "sagemaker-endpoint-alarms",
    } <= names
    for violation in written["policies"]["violations"]:
        assert set(violation) == {
            "policy",
            "enforcement",
            "severity",
            "urn",
            "name",
            "type",
            "message",
        }


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_environment_tag_drives_prod_rules(record, settings_for, environment: str) -> None:
    plan = record(
        lambda: insecure({"environment": environment}), settings=settings_for(environment)
    )
    names = violated(plan.to_json())
    assert ("sagemaker-model-network-isolation" in names) == (environment == "prod")
