"""The execution role of one model's SageMaker training jobs (`ml.remote_training`, `mlplat train`).

The jobs run in the VPC's private subnets: the role reads the model's own features table, writes
the model's own prefix of the models bucket (code, checkpoints, model artifacts: its registry's
artifacts prefix), uses the lake key (and grants it to the jobs' volumes), writes the jobs' logs
and metrics, manages their network interfaces, and pulls the platform image the jobs run in.
Nothing of another model's data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components.iam import (
    SAGEMAKER_ENI_ACTIONS,
    Statement,
    assume_role_policy,
    image_pull_statements,
    network_interface_statements,
    policy_document,
    training_data_statements,
)


class TrainingJobRoleError(ValueError):
    """The training job role's arguments are inconsistent."""


@dataclass(frozen=True, slots=True)
class TrainingJobRoleArgs:
    lake_kms_key_arn: pulumi.Input[str]
    features_bucket_arn: pulumi.Input[str]
    models_bucket_arn: pulumi.Input[str]
    # the private network jobs run in: their network interfaces only there, in these groups
    vpc_id: pulumi.Input[str]
    security_group_ids: Sequence[pulumi.Input[str]]
    # the model's features table (its key prefix in the features bucket): what jobs read
    features_prefix: str
    # the model's prefix of the models bucket: code, checkpoints and model artifacts of its jobs
    models_prefix: str
    tags: Mapping[str, str] = field(default_factory=dict)
    # the platform image's ECR repository: jobs run the platform image (Python and libraries of
    # the `ml` bundle, `ml.remote_training`), so the role pulls it; None: no image grant
    image_repository_arn: pulumi.Input[str] | None = None


class TrainingJobRole(pulumi.ComponentResource):
    """The execution role of SageMaker training jobs (`ml.remote_training`), in the VPC."""

    role_arn: pulumi.Output[str]
    role_name: pulumi.Output[str]

    def __init__(
        self, name: str, args: TrainingJobRoleArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlplatform:training:TrainingJobRole", name, None, opts)
        self.role_names: list[pulumi.Output[str]] = []  # every role made here (audited)
        child = pulumi.ResourceOptions(parent=self)
        partition = aws.get_partition_output().partition
        region = aws.get_region_output().region
        account = aws.get_caller_identity_output().account_id
        prefix = args.models_prefix.strip("/")
        if not prefix:
            raise TrainingJobRoleError("models_prefix must name a prefix of the models bucket")
        if not args.features_prefix.strip("/"):
            raise TrainingJobRoleError("features_prefix must name a table of the features bucket")
        role = aws.iam.Role(
            f"{name}-role",
            assume_role_policy=assume_role_policy(
                "sagemaker.amazonaws.com", source_account=account
            ),
            description="SageMaker training jobs: features in, model artifacts out",
            tags=dict(args.tags),
            opts=child,
        )
        self.role_names.append(role.name)
        log_group = pulumi.Output.format(
            "arn:{0}:logs:{1}:{2}:log-group:/aws/sagemaker/TrainingJobs", partition, region, account
        )
        aws.iam.RolePolicy(
            f"{name}-policy",
            role=role.id,
            policy=policy_document(
                [
                    *training_data_statements(
                        args.features_bucket_arn,
                        [args.features_prefix],
                        args.models_bucket_arn,
                        [prefix],
                        args.lake_kms_key_arn,
                        key_actions=("kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"),
                    ),
                    Statement(
                        ["kms:CreateGrant"],
                        [args.lake_kms_key_arn],
                        sid="VolumeKeyGrant",
                        conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}},
                    ),
                    Statement(
                        [
                            "logs:CreateLogGroup",
                            "logs:CreateLogStream",
                            "logs:PutLogEvents",
                            "logs:DescribeLogStreams",
                        ],
                        [log_group, pulumi.Output.concat(log_group, ":*")],
                        sid="JobLogs",
                    ),
                    Statement(
                        ["cloudwatch:PutMetricData"],
                        ["*"],
                        conditions={
                            "StringEquals": {"cloudwatch:namespace": "/aws/sagemaker/TrainingJobs"}
                        },
                        wildcard_reason="PutMetricData supports no resource-level permissions",
                    ),
                    # job network interfaces in the platform's VPC only
                    *network_interface_statements(
                        "JobNetworkInterfaces",
                        SAGEMAKER_ENI_ACTIONS,
                        partition=partition,
                        region=region,
                        account=account,
                        vpc_id=args.vpc_id,
                        security_group_ids=list(args.security_group_ids),
                    ),
                    *(
                        image_pull_statements(args.image_repository_arn, "PlatformImage")
                        if args.image_repository_arn is not None
                        else []
                    ),
                ]
            ),
            opts=child,
        )
        self.role_arn = role.arn
        self.role_name = role.name
        self.register_outputs({"role_arn": self.role_arn, "role_name": self.role_name})
