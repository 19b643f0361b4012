"""The model registry: a SageMaker model package group and who may write its artifacts.

Model versions are registered into one model package group (`aws.sagemaker.ModelPackageGroup`);
their artifacts live in the models bucket under `models/<group>/`. A stack makes one registry per
model of its `models` list. The component also builds the
one IAM policy a training/registration role needs for that: write and read objects under exactly
that prefix (through the lake key, only via S3), list only that prefix, and register, describe and
update versions of exactly this group. Roles that train and register models get the policy attached
through `writer_role_names` (a stable label per role, so attachments keep their logical names).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components.iam import Statement, policy_document, prefix_arn
from components.names import ARTIFACTS_ROOT, artifacts_prefix, default_group_name

__all__ = [
    "ARTIFACTS_ROOT",
    "GROUP_NAME_PATTERN",
    "ModelRegistry",
    "ModelRegistryArgs",
    "artifacts_prefix",
    "default_group_name",
]

# SageMaker model package group names; lower case only, because SageMaker lower-cases names in the
# ARNs it returns (a policy written for `Churn` would not match `model-package/churn/1`).
GROUP_NAME_PATTERN = r"[a-z0-9](-*[a-z0-9]){0,62}"


@dataclass(frozen=True, slots=True)
class ModelRegistryArgs:
    group_name: str  # plain: `ml/` finds the group through the platform outputs
    models_bucket_arn: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]  # the lake key the models bucket is encrypted with
    description: str = "Model versions of an ml-platform model"
    # Roles that train and register models: label -> role name. The label names the attachment.
    writer_role_names: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    protect: bool = False


class ModelRegistry(pulumi.ComponentResource):
    """The model package group and the artifacts-prefix policy of its writers."""

    group_name: pulumi.Output[str]
    group_arn: pulumi.Output[str]
    artifacts_prefix: str
    artifacts_policy_arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: ModelRegistryArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlplatform:serving:ModelRegistry", name, None, opts)
        if not re.fullmatch(GROUP_NAME_PATTERN, args.group_name):
            raise ValueError(
                f"ModelRegistry {name!r}: group_name {args.group_name!r} is not allowed; expected "
                "1-63 lower-case letters, digits and '-', starting and ending with a letter or "
                "digit "
                f"(e.g. {default_group_name('dev', 'churn')!r})"
            )
        for label in args.writer_role_names:
            if not re.fullmatch(r"[a-z][a-z0-9-]{0,30}", label):
                raise ValueError(
                    f"ModelRegistry {name!r}: writer_role_names label {label!r} must be lower-case "
                    "letters, digits and '-' (it names the policy attachment)"
                )
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(args.tags)

        group = aws.sagemaker.ModelPackageGroup(
            f"{name}-group",
            model_package_group_name=args.group_name,
            model_package_group_description=args.description,
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )

        prefix = artifacts_prefix(args.group_name)
        region = aws.get_region_output().region
        account = aws.get_caller_identity_output().account_id
        partition_info = aws.get_partition_output()
        partition = partition_info.partition
        package_arns = pulumi.Output.concat(
            "arn:",
            partition,
            ":sagemaker:",
            region,
            ":",
            account,
            ":model-package/",
            args.group_name,
            "/*",
        )
        statements = [
            Statement(
                sid="ArtifactsReadWrite",
                actions=["s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload"],
                resources=[prefix_arn(args.models_bucket_arn, prefix)],
            ),
            Statement(
                sid="ArtifactsList",
                actions=["s3:ListBucket"],
                resources=[args.models_bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{prefix}/*"]}},
            ),
            Statement(
                sid="ArtifactsKey",
                actions=["kms:GenerateDataKey", "kms:Decrypt"],
                resources=[args.kms_key_arn],
                conditions={
                    "StringEquals": {
                        "kms:ViaService": pulumi.Output.concat(
                            "s3.", region, ".", partition_info.dns_suffix
                        )
                    }
                },
            ),
            Statement(
                sid="RegisterVersions",
                actions=[
                    "sagemaker:CreateModelPackage",
                    "sagemaker:DescribeModelPackage",
                    "sagemaker:UpdateModelPackage",
                ],
                resources=[package_arns],
            ),
            Statement(
                sid="ReadGroup",
                actions=["sagemaker:DescribeModelPackageGroup"],
                resources=[group.arn],
            ),
            # The Service Authorization Reference lists the model-package resource for
            # ListModelPackages, and AWS's cross-account registry example grants it on
            # model-package/<group>/*: listing is held to this group's versions.
            Statement(
                sid="ListVersions",
                actions=["sagemaker:ListModelPackages"],
                resources=[package_arns],
            ),
        ]
        policy = aws.iam.Policy(
            f"{name}-artifacts",
            description=f"Write and read s3://<models>/{prefix}/ and register versions of "
            f"{args.group_name}",
            policy=policy_document(statements),
            tags=tags,
            opts=child,
        )
        for label, role_name in sorted(args.writer_role_names.items()):
            aws.iam.RolePolicyAttachment(
                f"{name}-artifacts-{label}", role=role_name, policy_arn=policy.arn, opts=child
            )

        self.group_name = group.model_package_group_name
        self.group_arn = group.arn
        self.artifacts_prefix = prefix
        self.artifacts_policy_arn = policy.arn
        self.register_outputs(
            {
                "group_name": self.group_name,
                "group_arn": self.group_arn,
                "artifacts_prefix": prefix,
                "artifacts_policy_arn": self.artifacts_policy_arn,
            }
        )
