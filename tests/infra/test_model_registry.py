"""ModelRegistry: the model package group and its writers' artifacts-prefix policy."""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws
import pytest

from components.model_registry import (
    ModelRegistry,
    ModelRegistryArgs,
    artifacts_prefix,
    default_group_name,
)

BUCKET_ARN = "arn:aws:s3:::models-bucket"
KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"


def _program(**overrides):
    def program() -> None:
        role = aws.iam.Role("trainer", assume_role_policy="{}")
        args = {
            "group_name": "ml-platform-dev-churn",
            "models_bucket_arn": BUCKET_ARN,
            "kms_key_arn": KEY_ARN,
            "writer_role_names": {"training": role.name},
            "tags": {"owner": "ml-team"},
        }
        args.update(overrides)
        ModelRegistry("registry", ModelRegistryArgs(**args))

    return program


def _statements(resource) -> dict[str, dict]:
    doc = json.loads(resource.inputs["policy"])
    return {s["Sid"]: s for s in doc["Statement"]}


def test_group_policy_and_attachment_with_stable_logical_names(record, settings_for):
    plan = record(_program(protect=True), settings=settings_for("prod"))
    component = plan.named("registry")
    assert component.type == "mlplatform:serving:ModelRegistry"
    children = sorted((r.name, r.type) for r in plan.resources if r.parent == component.urn)
    # Logical names are API: renaming the group would replace it (and orphan its versions).
    assert children == [
        ("registry-artifacts", "aws:iam/policy:Policy"),
        ("registry-artifacts-training", "aws:iam/rolePolicyAttachment:RolePolicyAttachment"),
        ("registry-group", "aws:sagemaker/modelPackageGroup:ModelPackageGroup"),
    ]
    group = plan.named("registry-group")
    assert group.inputs["modelPackageGroupName"] == "ml-platform-dev-churn"
    assert group.inputs["tags"] == {"owner": "ml-team"}
    assert group.options["protect"] is True
    attachment = plan.named("registry-artifacts-training")
    assert attachment.inputs["policyArn"] == plan.named("registry-artifacts").state["arn"]
    assert attachment.inputs["role"] == plan.named("trainer").state["name"]


def test_writers_may_write_and_read_only_their_group_prefix(record):
    plan = record(_program())
    statements = _statements(plan.named("registry-artifacts"))
    assert set(statements) == {
        "ArtifactsReadWrite",
        "ArtifactsList",
        "ArtifactsKey",
        "RegisterVersions",
        "ReadGroup",
        "ListVersions",
    }
    rw = statements["ArtifactsReadWrite"]
    assert rw["Action"] == ["s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"]
    assert rw["Resource"] == [f"{BUCKET_ARN}/models/ml-platform-dev-churn/*"]
    listing = statements["ArtifactsList"]
    assert listing["Resource"] == [BUCKET_ARN]
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["models/ml-platform-dev-churn/*"]}}
    key = statements["ArtifactsKey"]
    assert key["Resource"] == [KEY_ARN]
    assert key["Condition"] == {"StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}}
    register = statements["RegisterVersions"]
    assert register["Resource"] == [
        "arn:aws:sagemaker:us-east-1:123456789012:model-package/ml-platform-dev-churn/*"
    ]
    assert "sagemaker:CreateModelPackage" in register["Action"]
    assert statements["ReadGroup"]["Resource"] == [plan.named("registry-group").state["arn"]]
    # Listing is held to the group's versions too: no `*` resource at all.
    assert statements["ListVersions"]["Resource"] == register["Resource"]
    assert [s for s in statements.values() if s["Resource"] == ["*"]] == []


def test_no_writers_means_no_attachments(record):
    plan = record(_program(writer_role_names={}))
    assert plan.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment") == []
    assert len(plan.of_type("aws:iam/policy:Policy")) == 1


@pytest.mark.parametrize("bad", ["Churn", "churn_model", "-churn", "a" * 64, ""])
def test_bad_group_name_is_refused(record, bad):
    with pytest.raises(Exception, match="group_name") as info:
        record(_program(group_name=bad))
    assert "lower-case" in str(info.value)


def test_bad_writer_label_is_refused(record):
    def program() -> None:
        ModelRegistry(
            "registry",
            ModelRegistryArgs(
                group_name="churn",
                models_bucket_arn=BUCKET_ARN,
                kms_key_arn=KEY_ARN,
                writer_role_names={"Training Role": "r"},
            ),
        )

    with pytest.raises(Exception, match="label 'Training Role'"):
        record(program)


def test_default_group_name_and_prefix():
    assert default_group_name("dev", "churn") == "ml-platform-dev-churn"
    assert default_group_name("Team_A.prod", "churn") == "ml-platform-team-a-prod-churn"
    assert default_group_name("dev", "spend") == "ml-platform-dev-spend"
    assert len(default_group_name("x" * 80, "churn")) <= 63
    assert artifacts_prefix("ml-platform-dev-churn") == "models/ml-platform-dev-churn"


def test_outputs_are_exposed(record):
    seen: dict[str, object] = {}

    def program() -> None:
        registry = ModelRegistry(
            "registry",
            ModelRegistryArgs(
                group_name="ml-platform-dev-churn",
                models_bucket_arn=BUCKET_ARN,
                kms_key_arn=KEY_ARN,
            ),
        )
        pulumi.Output.all(registry.group_name, registry.artifacts_policy_arn).apply(
            lambda v: seen.update(group=v[0], policy=v[1])
        )
        seen["prefix"] = registry.artifacts_prefix

    record(program)
    assert seen["group"] == "ml-platform-dev-churn"
    assert seen["prefix"] == "models/ml-platform-dev-churn"
    assert str(seen["policy"]).startswith("arn:aws:iam::123456789012:policy/")
