"""Builders for policy tests: resources as the policies see them, and compliant S3 sets."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from policies.core import Context, Finding, Resource, normalize
from policies.rules import BY_NAME

TAGS = {"owner": "ml-team", "environment": "dev", "cost-center": "ml-1234"}
PROD_TAGS = {**TAGS, "environment": "prod"}
ACCOUNT = "123456789012"
KEY_ARN = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def urn(type_: str, name: str) -> str:
    return f"urn:pulumi:test::ml-platform::{type_}::{name}"


def res(
    type_: str,
    name: str,
    props: Mapping[str, Any] | None = None,
    *,
    ident: Any = None,
    protect: bool | None = False,
    deps: Mapping[str, tuple[str, ...]] | None = None,
) -> Resource:
    return Resource(
        type=type_,
        name=name,
        urn=urn(type_, name),
        props=normalize(dict(props or {})),
        id=ident if ident is not None else f"{name}-0a1b2c3",
        protect=protect,
        deps=dict(deps or {}),
    )


def run(policy: str, resources: Sequence[Resource], **config: Any) -> list[Finding]:
    return BY_NAME[policy].run(resources, Context.from_config(config))


def violations(policy: str, resources: Sequence[Resource], **config: Any) -> list[str]:
    return [f.message for f in run(policy, resources, **config) if not f.skipped]


def skipped(policy: str, resources: Sequence[Resource], **config: Any) -> list[str]:
    return [f.message for f in run(policy, resources, **config) if f.skipped]


# A policy's case: compliant resources, violating resources (exactly one violation), and a
# fragment of that violation's message. `test_rules.CASES` holds the first policies' cases; any
# other test module of this folder may define `POLICY_CASES` (policy name -> Case), and
# `test_rules.test_every_policy_has_a_case` gathers them all.
Case = tuple[Callable[[], list[Resource]], Callable[[], list[Resource]], str]


def check_case(name: str, case: Case) -> None:
    good, bad, fragment = case
    assert violations(name, good()) == []
    assert skipped(name, good()) == []
    found = violations(name, bad())
    assert len(found) == 1, found
    assert fragment in found[0]


def doc(*statements: Mapping[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


BUCKET = "aws:s3/bucket:Bucket"
SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
PAB = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
POLICY = "aws:s3/bucketPolicy:BucketPolicy"
LOGGING = "aws:s3/bucketLogging:BucketLogging"
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"


def tls_policy(bucket: str) -> str:
    arn = f"arn:aws:s3:::{bucket}"
    return doc(
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [arn, f"{arn}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
    )


def bucket_set(
    name: str,
    *,
    log_target: str | None = "logs",
    algorithm: str = "aws:kms",
    skip: tuple[str, ...] = (),
    tags: Mapping[str, str] = TAGS,
) -> list[Resource]:
    """A bucket and its compliant sub-resources (minus the `skip` types)."""
    bid = f"{name}-0a1b2c3"
    sse_default: dict[str, Any] = {"sseAlgorithm": algorithm}
    if algorithm.startswith("aws:kms"):
        sse_default["kmsMasterKeyId"] = KEY_ARN
    parts = [
        res(BUCKET, name, {"tags": dict(tags)}, ident=bid),
        res(
            SSE,
            f"{name}-sse",
            {
                "bucket": bid,
                "rules": [
                    {"applyServerSideEncryptionByDefault": sse_default, "bucketKeyEnabled": True}
                ],
            },
        ),
        res(
            PAB,
            f"{name}-pab",
            {
                "bucket": bid,
                "blockPublicAcls": True,
                "blockPublicPolicy": True,
                "ignorePublicAcls": True,
                "restrictPublicBuckets": True,
            },
        ),
        res(
            VERSIONING,
            f"{name}-versioning",
            {"bucket": bid, "versioningConfiguration": {"status": "Enabled"}},
        ),
        res(POLICY, f"{name}-policy", {"bucket": bid, "policy": tls_policy(bid)}),
        res(
            LIFECYCLE,
            f"{name}-lifecycle",
            {
                "bucket": bid,
                "rules": [
                    {
                        "id": "noncurrent",
                        "status": "Enabled",
                        "noncurrentVersionExpiration": {"noncurrentDays": 90},
                    }
                ],
            },
        ),
    ]
    if log_target is not None:
        parts.append(
            res(
                LOGGING,
                f"{name}-logging",
                {
                    "bucket": bid,
                    "targetBucket": f"{log_target}-0a1b2c3",
                    "targetPrefix": f"{name}/",
                },
            )
        )
    return [p for p in parts if p.type not in skip]


def log_bucket(name: str = "logs") -> list[Resource]:
    """The access-log bucket: SSE-S3, no logging of its own."""
    return bucket_set(name, log_target=None, algorithm="AES256")
