"""Aliased and legacy type tokens are checked as their canonical type, by every policy and in both
engines; the table agrees with the installed pulumi-aws."""

from __future__ import annotations

import re
from pathlib import Path

import pulumi_aws
import pytest
from pulumi_policy import PolicyResource, ResourceValidationArgs

from policies.core import CANONICAL_TYPES, canonical_type, evaluate
from policies.crossguard import resource_of, stack_resource_of
from policies.rules import POLICIES
from tests.policies.helpers import TAGS, bucket_set, log_bucket, res, violations
from tests.policies.test_crossguard import opts, props, run_stack, validate_resource

SDK = Path(pulumi_aws.__file__).parent
CLASS_TOKEN = re.compile(r"super\(\w+, __self__\)\.__init__\(\s*'([^']+)'")
ALIAS_TOKEN = re.compile(r'pulumi\.Alias\(type_="([^"]+)"\)')
S3_POLICIES = sorted(p.name for p in POLICIES if p.name.startswith("s3-bucket-"))


def sdk_tokens() -> tuple[set[str], dict[str, str]]:
    """Every resource class token of the installed SDK, and alias -> the token declaring it."""
    classes: set[str] = set()
    aliases: dict[str, str] = {}
    for path in SDK.rglob("*.py"):
        text = path.read_text()
        own = CLASS_TOKEN.findall(text)
        classes.update(own)
        for alias in ALIAS_TOKEN.findall(text):
            if own and alias != own[0]:
                aliases[alias] = own[0]
    return classes, aliases


def test_the_table_agrees_with_the_installed_sdk() -> None:
    classes, aliases = sdk_tokens()
    assert "aws:s3/bucketV2:BucketV2" in classes and "aws:alb/listener:Listener" in classes
    for alias, canonical in CANONICAL_TYPES.items():
        assert canonical in classes, f"{canonical} is not a resource of pulumi-aws"
        assert alias in classes or alias in aliases, f"{alias} is neither a class nor an alias"
        assert canonical not in CANONICAL_TYPES, f"{canonical} is itself mapped (a chain)"
    for alias, declared_by in aliases.items():
        assert canonical_type(alias) == canonical_type(declared_by), (
            f"pulumi-aws declares {alias} an alias of {declared_by}: add it to CANONICAL_TYPES"
        )


V2 = {
    canonical: alias
    for alias, canonical in CANONICAL_TYPES.items()
    if alias.startswith("aws:s3/") and alias.endswith("V2")
}


def as_v2(resources: list) -> list:
    """The same resources declared with the older V2 tokens (the bucket too)."""
    return [
        res(V2.get(r.type, r.type), r.name, dict(r.props), ident=r.id, protect=r.protect)
        for r in resources
    ]


def test_a_resource_keeps_the_declared_type_and_is_checked_as_the_canonical_one() -> None:
    bucket = res("aws:s3/bucketV2:BucketV2", "raw", {"tags": TAGS})
    assert bucket.type == "aws:s3/bucket:Bucket"
    assert bucket.declared_type == "aws:s3/bucketV2:BucketV2"
    assert bucket.where() == "aws:s3/bucketV2:BucketV2 'raw'"
    plain = res("aws:s3/bucket:Bucket", "raw", {})
    assert plain.declared_type == "" and plain.where() == "aws:s3/bucket:Bucket 'raw'"


def test_a_compliant_v2_bucket_set_passes_every_s3_policy() -> None:
    resources = as_v2([*bucket_set("data"), *log_bucket()])
    assert {r.declared_type for r in resources} > {"aws:s3/bucketV2:BucketV2"}
    for name in S3_POLICIES:
        assert violations(name, resources) == [], name


def test_an_aliased_bucket_without_encryption_is_caught() -> None:
    sse = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    resources = as_v2([*bucket_set("data", skip=(sse,)), *log_bucket()])
    assert violations("s3-bucket-kms-encryption", resources) == [
        "bucket 'data' has no default encryption (BucketServerSideEncryptionConfiguration)"
    ]
    # a bare BucketV2 escapes none of them; the report names the type the program declared
    bare = res("aws:s3/bucketV2:BucketV2", "raw", {"tags": TAGS}, protect=False)
    report = evaluate([bare], {"environment": "dev"})
    found = {v.policy for v in report.violations}
    assert set(S3_POLICIES) - {"s3-bucket-tls-only"} <= found
    assert {v.type for v in report.violations} == {"aws:s3/bucketV2:BucketV2"}


def test_the_cli_engine_sees_the_canonical_type() -> None:
    # a resource policy: the ALB listener is an LB listener
    recorder, _ = validate_resource(
        "lb-listener-https-redirect",
        "aws:alb/listener:Listener",
        {"protocol": "HTTP", "port": 80, "defaultActions": [{"type": "forward"}]},
    )
    assert len(recorder.violations) == 1
    assert recorder.violations[0][0].startswith("aws:alb/listener:Listener 'r'")
    # a stack policy: a BucketV2 and its V2 versioning are joined like the canonical pair
    bucket = PolicyResource(
        "aws:s3/bucketV2:BucketV2",
        props({"tags": TAGS}),
        "urn:bucket",
        "data",
        opts(),
        None,
        None,
        [],
        {},
    )
    versioning = PolicyResource(
        "aws:s3/bucketVersioningV2:BucketVersioningV2",
        props({"bucket": "data-0a1b2c3", "versioningConfiguration": {"status": "Suspended"}}),
        "urn:versioning",
        "data-versioning",
        opts(),
        None,
        None,
        [],
        {"bucket": [bucket]},
    )
    assert stack_resource_of(bucket).type == "aws:s3/bucket:Bucket"
    recorder, _ = run_stack("s3-bucket-versioning", [bucket, versioning])
    assert recorder.violations == [
        ("bucket 'data': versioning status is 'Suspended', not 'Enabled'", "urn:bucket")
    ]


@pytest.mark.parametrize(
    ("declared", "canonical"),
    [
        ("aws:s3/bucketV2:BucketV2", "aws:s3/bucket:Bucket"),
        ("aws:alb/loadBalancer:LoadBalancer", "aws:lb/loadBalancer:LoadBalancer"),
        ("aws:elasticsearch/domain:Domain", "aws:opensearch/domain:Domain"),
        ("aws:s3/bucketLoggingV2:BucketLoggingV2", "aws:s3/bucketLogging:BucketLogging"),
        ("aws:lb/loadBalancer:LoadBalancer", "aws:lb/loadBalancer:LoadBalancer"),
    ],
)
def test_canonical_type(declared: str, canonical: str) -> None:
    assert canonical_type(declared) == canonical
    args = ResourceValidationArgs(declared, props({}), "urn:r", "r", opts(), None, None)
    assert resource_of(args).type == canonical
