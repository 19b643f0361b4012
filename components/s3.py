"""The S3 controls every bucket of the platform carries, in one place.

Versioning, the four public-access blocks, no ACLs (bucket owner enforced), a TLS-only policy
statement and the housekeeping lifecycle rule. The lake's zone buckets, its log bucket and the
audit trail's buckets all use these, so a control is changed once for every bucket.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws

from components.iam import prefix_arn

# Incomplete multipart uploads are aborted after this many days.
ABORT_MULTIPART_DAYS = 7


def bucket_controls(
    prefix: str, bucket: aws.s3.Bucket, opts: pulumi.ResourceOptions
) -> tuple[aws.s3.BucketPublicAccessBlock, aws.s3.BucketVersioning]:
    """Versioning, the four public-access blocks and ownership enforced, named `{prefix}-…`."""
    versioning = aws.s3.BucketVersioning(
        f"{prefix}-versioning",
        bucket=bucket.id,
        versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(
            status="Enabled"
        ),
        opts=opts,
    )
    block = aws.s3.BucketPublicAccessBlock(
        f"{prefix}-public-access",
        bucket=bucket.id,
        block_public_acls=True,
        block_public_policy=True,
        ignore_public_acls=True,
        restrict_public_buckets=True,
        opts=opts,
    )
    aws.s3.BucketOwnershipControls(
        f"{prefix}-ownership",
        bucket=bucket.id,
        rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
        opts=opts,
    )
    return block, versioning


def deny_insecure_transport(bucket_arn: pulumi.Input[str]) -> dict[str, Any]:
    """Refuse every request without TLS (what AWS Security Hub S3.5 checks for).

    A Deny, so `s3:*` narrows nothing anyone may do. `components.iam.Statement` refuses wildcard
    actions because it builds grants; this statement is written out for that reason.
    """
    return {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [bucket_arn, prefix_arn(bucket_arn, "")],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def housekeeping_rule(
    noncurrent_days: int, expire_days: int | None = None
) -> aws.s3.BucketLifecycleConfigurationRuleArgs:
    """Expire noncurrent versions, abort stale multipart uploads, optionally expire objects."""
    return aws.s3.BucketLifecycleConfigurationRuleArgs(
        id="housekeeping",
        status="Enabled",
        filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(),
        expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=expire_days)
        if expire_days is not None
        else None,
        abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
            days_after_initiation=ABORT_MULTIPART_DAYS
        ),
        noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
            noncurrent_days=noncurrent_days
        ),
    )
