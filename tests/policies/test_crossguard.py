"""The same policies wrapped for pulumi_policy, fed the way the CLI feeds them."""

from __future__ import annotations

import json
import runpy
from pathlib import Path
from typing import Any

import pulumi_policy
import pytest
from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.deserialize import deserialize_properties
from pulumi_policy.proxy import UNKNOWN_BOOLEAN_VALUE, UNKNOWN_STRING_VALUE, unknown_checking_proxy

from policies.crossguard import PACK_NAME, crossguard_policies, wrap
from policies.rules import BY_NAME, POLICIES
from tests.policies.helpers import KEY_ARN, PROD_TAGS, TAGS, bucket_set, log_bucket, urn

ROOT = Path(__file__).resolve().parents[2]


def opts(protect: bool = False) -> PolicyResourceOptions:
    return PolicyResourceOptions(protect, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])


def props(value: dict[str, Any]) -> Any:
    """Properties as the analyzer hands them over: deserialized, behind the checking proxy."""
    return unknown_checking_proxy(deserialize_properties(value))


class Recorder:
    def __init__(self) -> None:
        self.violations: list[tuple[str, str | None]] = []

    def __call__(self, message: str, urn: str | None = None) -> None:
        self.violations.append((message, urn))


def validate_resource(
    name: str,
    type_: str,
    inputs: dict[str, Any],
    protect: bool = False,
    config: dict[str, Any] | None = None,
) -> tuple[Recorder, str | None]:
    policy = wrap(BY_NAME[name])
    assert isinstance(policy, ResourceValidationPolicy)
    args = ResourceValidationArgs(
        type_, props(inputs), urn(type_, "r"), "r", opts(protect), None, config
    )
    recorder = Recorder()
    try:
        policy.validate(args, recorder)
    except Exception as exc:  # pulumi_policy's _NotApplicableError
        if type(exc).__name__ != "_NotApplicableError":
            raise
        return recorder, getattr(exc, "reason", None)
    return recorder, None


def test_every_policy_is_wrapped_with_its_metadata() -> None:
    wrapped = crossguard_policies()
    assert [p.name for p in wrapped] == [p.name for p in POLICIES]
    for spec, policy in zip(POLICIES, wrapped, strict=True):
        expected = StackValidationPolicy if spec.kind == "stack" else ResourceValidationPolicy
        assert isinstance(policy, expected)
        assert policy.description == spec.description
        assert (
            policy.enforcement_level
            == {"mandatory": EnforcementLevel.MANDATORY, "advisory": EnforcementLevel.ADVISORY}[
                spec.enforcement
            ]
        )
        assert policy.severity == Severity(spec.severity)
        assert policy.framework is not None and policy.framework.reference == spec.reference
        assert policy.config_schema is not None
        assert "environment" in policy.config_schema.properties
    gpu = next(p for p in wrapped if p.name == "ec2-instance-gpu-allowlist")
    assert gpu.config_schema is not None
    assert gpu.config_schema.properties["allowedGpuFamilies"]["default"] == [
        "g4dn",
        "g5",
        "g6",
        "g6e",
        "p4d",
        "p5",
    ]


def test_resource_policy_reports_violation_and_passes() -> None:
    bad, reason = validate_resource(
        "kms-key-rotation", "aws:kms/key:Key", {"enableKeyRotation": False, "tags": TAGS}
    )
    assert bad.violations == [("KMS key 'r' does not enable automatic rotation", None)]
    assert reason is None
    good, reason = validate_resource(
        "kms-key-rotation", "aws:kms/key:Key", {"enableKeyRotation": True}
    )
    assert good.violations == [] and reason is None


def test_unknown_during_preview_is_not_applicable_not_a_violation() -> None:
    recorder, reason = validate_resource(
        "kms-key-rotation", "aws:kms/key:Key", {"enableKeyRotation": UNKNOWN_BOOLEAN_VALUE}
    )
    assert recorder.violations == []
    assert reason == "skipped aws:kms/key:Key 'r': .enableKeyRotation is unknown during preview"


def test_other_types_are_ignored_and_config_sets_the_environment() -> None:
    recorder, _ = validate_resource("kms-key-rotation", "aws:sns/topic:Topic", {})
    assert recorder.violations == []
    bucket = "aws:s3/bucket:Bucket"
    dev, _ = validate_resource("aws-stateful-protected", bucket, {})
    assert dev.violations == []
    prod, _ = validate_resource(
        "aws-stateful-protected", bucket, {}, config={"environment": "prod"}
    )
    assert len(prod.violations) == 1 and "not protected" in prod.violations[0][0]
    protected, _ = validate_resource(
        "aws-stateful-protected", bucket, {"tags": PROD_TAGS}, protect=True
    )
    assert protected.violations == []


def test_bad_pack_config_raises_a_clear_error() -> None:
    with pytest.raises(ValueError, match="environment: 'production' is not allowed"):
        validate_resource(
            "kms-key-rotation", "aws:kms/key:Key", {}, config={"environment": "production"}
        )


def stack_resources(unknown_ids: bool) -> list[PolicyResource]:
    """A compliant S3 set as the engine shows it during a first preview: ids unknown."""
    resources = [*bucket_set("data"), *log_bucket()]
    buckets: dict[str, PolicyResource] = {}
    out: list[PolicyResource] = []
    for r in sorted(resources, key=lambda r: r.type != "aws:s3/bucket:Bucket"):
        inputs = json.loads(json.dumps(dict(r.props)))
        deps: dict[str, list[PolicyResource]] = {}
        for prop in ("bucket", "targetBucket"):
            if prop in inputs:
                deps[prop] = [buckets[inputs[prop].rsplit("-", 1)[0]]]
                if unknown_ids:
                    inputs[prop] = UNKNOWN_STRING_VALUE
        if unknown_ids and "policy" in inputs:
            inputs["policy"] = UNKNOWN_STRING_VALUE  # it embeds the bucket ARN
        resource = PolicyResource(
            r.type, props(inputs), r.urn, r.name, opts(), None, None, [], deps
        )
        if r.type == "aws:s3/bucket:Bucket":
            buckets[r.name] = resource
        out.append(resource)
    return out


def run_stack(name: str, resources: list[PolicyResource]) -> tuple[Recorder, str | None]:
    policy = wrap(BY_NAME[name])
    assert isinstance(policy, StackValidationPolicy)
    recorder = Recorder()
    try:
        policy.validate(StackValidationArgs(resources, None), recorder)
    except Exception as exc:
        if type(exc).__name__ != "_NotApplicableError":
            raise
        return recorder, getattr(exc, "reason", None)
    return recorder, None


@pytest.mark.parametrize("unknown_ids", [False, True])
def test_stack_policies_join_buckets_through_property_dependencies(unknown_ids: bool) -> None:
    resources = stack_resources(unknown_ids)
    for name in (
        "s3-bucket-versioning",
        "s3-bucket-public-access-block",
        "s3-bucket-access-logging",
        "s3-bucket-kms-encryption",
    ):
        recorder, reason = run_stack(name, resources)
        assert recorder.violations == [] and reason is None, name
    # the bucket policy document itself is unknown: skipped with a note, not failed
    recorder, reason = run_stack("s3-bucket-tls-only", resources)
    assert recorder.violations == []
    assert (reason is not None) == unknown_ids


def test_stack_violation_names_the_resource_urn() -> None:
    resources = [
        r
        for r in stack_resources(False)
        if r.resource_type != "aws:s3/bucketVersioning:BucketVersioning"
    ]
    recorder, _ = run_stack("s3-bucket-versioning", resources)
    assert sorted(recorder.violations) == [
        ("bucket 'data' has no versioning (BucketVersioning)", urn("aws:s3/bucket:Bucket", "data")),
        ("bucket 'logs' has no versioning (BucketVersioning)", urn("aws:s3/bucket:Bucket", "logs")),
    ]


def test_main_builds_the_pack(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def fake_pack(**kwargs: Any) -> None:  # the real one serves gRPC forever
        seen.update(kwargs)

    monkeypatch.setattr(pulumi_policy, "PolicyPack", fake_pack)
    runpy.run_path(str(ROOT / "policies" / "__main__.py"), run_name="__main__")
    assert seen["name"] == PACK_NAME
    assert [p.name for p in seen["policies"]] == [p.name for p in POLICIES]


def test_policy_project_file() -> None:
    import yaml

    project = yaml.safe_load((ROOT / "policies" / "PulumiPolicy.yaml").read_text())
    assert project["runtime"]["name"] == "python"
    assert project["version"] and project["description"]


def test_endpoint_config_kms_from_cli_values() -> None:
    recorder, _ = validate_resource(
        "sagemaker-endpointconfig-kms",
        "aws:sagemaker/endpointConfiguration:EndpointConfiguration",
        {
            "kmsKeyArn": KEY_ARN,
            "productionVariants": [
                {"variantName": "primary", "instanceType": "ml.m5.large", "initialInstanceCount": 2}
            ],
        },
    )
    assert recorder.violations == []
