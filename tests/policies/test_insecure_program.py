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
                    "ResourceConfig": {"InstanceType": "ml.g5.xlarge", "InstanceCount": 1},
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
        policy=json.dumps({"Version": "2012-10-17", "Statement": []}),
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
    aws.ec2.LaunchTemplate("gpu", instance_type="p3.2xlarge", tags=tags)
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
    aws.lambda_.Function(
        "deployer",
        role=role.arn,
        runtime="python3.13",
        handler="deploy.handler",
        tags={**tags, "mlplatform.io/talks-to": "eks-api:training"},
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
