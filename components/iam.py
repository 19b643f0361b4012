"""IAM documents built from exact ARNs and prefixes.

Statements take Pulumi inputs (ARNs are usually Outputs) and become one JSON document through
`Output.json_dumps`, so nothing is formatted by hand around an Output. Actions are always explicit;
a `*` resource is allowed only with a `reason` naming the AWS limitation (policies check for it).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi

WILDCARD_REASON_KEY = "Sid"


@dataclass(frozen=True, slots=True)
class Statement:
    actions: Sequence[str]
    resources: Sequence[pulumi.Input[str]]
    effect: str = "Allow"
    sid: str | None = None
    conditions: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # Why `*` is the only resource AWS accepts for these actions (required when resources == ["*"]).
    wildcard_reason: str | None = None

    def __post_init__(self) -> None:
        if any(a == "*" or a.endswith(":*") for a in self.actions):
            raise ValueError(f"wildcard action in {self.actions}: name each action")
        if any(r == "*" for r in self.resources if isinstance(r, str)) and not self.wildcard_reason:
            raise ValueError(f"`*` resource for {self.actions} needs a wildcard_reason")

    def to_input(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "Effect": self.effect,
            "Action": sorted(self.actions),
            "Resource": list(self.resources),
        }
        sid = self.sid
        if self.wildcard_reason:
            # The reason travels in the Sid (alphanumeric only) so reviewers and policies see it;
            # the statement's own sid follows, so two statements with one reason stay distinct.
            reason = "".join(ch for ch in self.wildcard_reason.title() if ch.isalnum())
            own = "".join(ch for ch in (self.sid or "") if ch.isalnum())
            sid = "WildcardOnly" + reason[: 88 - len(own)] + own
        if sid:
            doc["Sid"] = sid[:100]
        if self.conditions:
            doc["Condition"] = {k: dict(v) for k, v in self.conditions.items()}
        return doc


def policy_document(statements: Sequence[Statement]) -> pulumi.Output[str]:
    return document([s.to_input() for s in statements])


def with_principal(statement: Statement, principal: Any) -> dict[str, Any]:
    """A resource-policy statement (key, bucket or topic policy): a statement plus its principal."""
    return {**statement.to_input(), "Principal": principal}


def document(statements: Sequence[Mapping[str, Any]]) -> pulumi.Output[str]:
    """A policy document from statements already in JSON form (`with_principal`, a Deny)."""
    return pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": list(statements)})


def assume_role_policy(
    service: str | None = None,
    *,
    federated: pulumi.Input[str] | None = None,
    conditions: Mapping[str, Mapping[str, Any]] | None = None,
    source_account: pulumi.Input[str] | None = None,
) -> pulumi.Output[str]:
    """Trust policy for one AWS service principal, or a web-identity (OIDC) provider."""
    if (service is None) == (federated is None):
        raise ValueError("give exactly one of service or federated")
    statement: dict[str, Any]
    if service is not None:
        statement = {
            "Effect": "Allow",
            "Principal": {"Service": service},
            "Action": "sts:AssumeRole",
        }
        if source_account is not None:
            statement["Condition"] = {"StringEquals": {"aws:SourceAccount": source_account}}
    else:
        statement = {
            "Effect": "Allow",
            "Principal": {"Federated": federated},
            "Action": "sts:AssumeRoleWithWebIdentity",
        }
        if conditions:
            statement["Condition"] = {k: dict(v) for k, v in conditions.items()}
    return pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": [statement]})


def prefix_arn(bucket_arn: pulumi.Input[str], prefix: str) -> pulumi.Output[str]:
    """`arn:aws:s3:::bucket/prefix/*` for an exact prefix (no leading or trailing slash)."""
    clean = prefix.strip("/")
    return (
        pulumi.Output.concat(bucket_arn, "/", clean, "/*")
        if clean
        else pulumi.Output.concat(bucket_arn, "/*")
    )


def loads(document: str) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(document)
    return parsed


def training_data_statements(
    features_bucket_arn: pulumi.Input[str],
    features_prefixes: Sequence[str],
    models_bucket_arn: pulumi.Input[str],
    models_prefixes: Sequence[str],
    key_arn: pulumi.Input[str],
    key_actions: Sequence[str] = ("kms:Decrypt", "kms:GenerateDataKey"),
) -> list[Statement]:
    """What a training run may touch: read its models' features tables, write their prefixes of the
    models bucket (a model's training role: its own; the GPU cluster's trainers: every model's)."""
    features = sorted({p.strip("/") for p in features_prefixes})
    models = sorted({p.strip("/") for p in models_prefixes})
    if not features or not models or "" in features or "" in models:
        raise ValueError(
            f"training_data_statements: features prefixes {list(features_prefixes)} and models "
            f"prefixes {list(models_prefixes)} must each name at least one non-empty prefix"
        )
    return [
        Statement(
            ["s3:ListBucket"],
            [features_bucket_arn],
            sid="ListFeatures",
            conditions={"StringLike": {"s3:prefix": [x for p in features for x in (p, f"{p}/*")]}},
        ),
        Statement(
            ["s3:GetObject"],
            [prefix_arn(features_bucket_arn, p) for p in features],
            sid="ReadFeatures",
        ),
        Statement(
            ["s3:ListBucket"],
            [models_bucket_arn],
            sid="ListTrainingPrefix",
            conditions={"StringLike": {"s3:prefix": [f"{p}/*" for p in models]}},
        ),
        Statement(
            ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"],
            [prefix_arn(models_bucket_arn, p) for p in models],
            sid="WriteTrainingPrefix",
        ),
        Statement(list(key_actions), [key_arn], sid="UseLakeKey"),
    ]


# What a service that places network interfaces in the VPC for a role (SageMaker jobs and endpoints,
# Lambda) needs: create and delete them, and (SageMaker) hand them to its own account.
SAGEMAKER_ENI_ACTIONS = (
    "ec2:CreateNetworkInterface",
    "ec2:CreateNetworkInterfacePermission",
    "ec2:DeleteNetworkInterface",
    "ec2:DeleteNetworkInterfacePermission",
)
LAMBDA_ENI_ACTIONS = (
    "ec2:CreateNetworkInterface",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
)


def network_interface_statements(
    sid: str,
    actions: Sequence[str],
    *,
    partition: pulumi.Input[str],
    region: pulumi.Input[str],
    account: pulumi.Input[str],
    vpc_id: pulumi.Input[str],
    security_group_ids: Sequence[pulumi.Input[str]],
    describe: Sequence[str] = (
        "ec2:DescribeDhcpOptions",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeSecurityGroups",
        "ec2:DescribeSubnets",
        "ec2:DescribeVpcs",
    ),
) -> list[Statement]:
    """Network interfaces in one VPC only: the interfaces, the subnets they go in and the named
    security groups, under an `ec2:Vpc` condition; `Describe*` (which takes no resource) apart."""
    ec2 = pulumi.Output.concat("arn:", partition, ":ec2:", region, ":", account, ":")
    return [
        Statement(
            actions=list(actions),
            resources=[
                pulumi.Output.concat(ec2, "network-interface/*"),
                pulumi.Output.concat(ec2, "subnet/*"),
                *(pulumi.Output.concat(ec2, "security-group/", g) for g in security_group_ids),
            ],
            sid=sid,
            conditions={"ArnEquals": {"ec2:Vpc": pulumi.Output.concat(ec2, "vpc/", vpc_id)}},
        ),
        Statement(
            actions=list(describe),
            resources=["*"],
            wildcard_reason="EC2 Describe actions support no resource-level permissions",
        ),
    ]


def image_pull_statements(repository_arn: pulumi.Input[str], sid: str) -> list[Statement]:
    """Pull the images of one ECR repository (the authorization token takes no resource)."""
    return [
        Statement(["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"], [repository_arn], sid=sid),
        Statement(
            ["ecr:GetAuthorizationToken"],
            ["*"],
            wildcard_reason="GetAuthorizationToken has no resource-level permissions",
        ),
    ]


def service_arn(
    partition: pulumi.Input[str],
    region: pulumi.Input[str],
    account: pulumi.Input[str],
    service: str,
    resource: pulumi.Input[str],
) -> pulumi.Output[str]:
    """`arn:<partition>:<service>:<region>:<account>:<resource>`."""
    return pulumi.Output.concat(
        "arn:", partition, ":", service, ":", region, ":", account, ":", resource
    )
