"""Replication of the trail's log files to a log-archive bucket, usually in another account.

Logs kept only in the account they describe can be destroyed by whoever takes that account over;
a copy in a separate log-archive account cannot. S3 replication copies every new log file:

* A role S3 assumes (for this bucket only: `aws:SourceAccount` and `aws:SourceArn`) reads each new
  version (with its ACL, tags, retention and legal hold), decrypts it with the audit key through S3
  only, and writes the replica encrypted with the archive's key, owned by the archive account.
* Deletes (delete markers) are not replicated: the archive keeps what the account lost.
* The archive side is the archive account's to set up and is not made here: a versioned bucket
  (with Object Lock when this bucket has it) whose policy lets this role `s3:ReplicateObject`,
  `s3:ReplicateTags` and `s3:ObjectOwnerOverrideToBucketOwner`, and a key whose policy lets this
  role `kms:Encrypt` and `kms:GenerateDataKey` through S3. The README's security section shows both.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from components.iam import Statement, policy_document, prefix_arn
from components.problems import ARCHIVE_KEY


def replicate_to_archive(
    parent: pulumi.Resource,
    name: str,
    *,
    bucket: aws.s3.Bucket,
    versioning: aws.s3.BucketVersioning,
    key_arn: pulumi.Input[str],
    archive_bucket_arn: str,
    archive_kms_key_arn: str,
    account: pulumi.Input[str],
    tags: dict[str, str],
) -> aws.iam.Role:
    """The replication (and its role, returned: its permissions are watched like the others)."""
    child = pulumi.ResourceOptions(parent=parent)
    archive_key = ARCHIVE_KEY.fullmatch(archive_kms_key_arn)
    if archive_key is None:  # AuditTrailArgs checked it
        raise ValueError(f"archive key {archive_kms_key_arn!r} is not a KMS key ARN")
    # The archive account is the one its key lives in (an S3 ARN names no account).
    archive_region, archive_account = archive_key.groups()
    role = aws.iam.Role(
        name,
        description="S3 replication of the audit trail's log files to the log archive",
        assume_role_policy=pulumi.Output.json_dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "s3.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                        "Condition": {
                            "StringEquals": {"aws:SourceAccount": account},
                            "ArnEquals": {"aws:SourceArn": bucket.arn},
                        },
                    }
                ],
            }
        ),
        tags=tags,
        opts=child,
    )
    policy = aws.iam.RolePolicy(
        name,
        role=role.id,
        policy=policy_document(
            _replication_statements(
                bucket, key_arn, archive_bucket_arn, archive_kms_key_arn, archive_region
            )
        ),
        opts=child,
    )
    rule = aws.s3.BucketReplicationConfigRuleArgs
    aws.s3.BucketReplicationConfig(
        name,
        bucket=bucket.id,
        role=role.arn,
        rules=[
            rule(
                id="log-archive",
                status="Enabled",
                filter=aws.s3.BucketReplicationConfigRuleFilterArgs(prefix=""),
                delete_marker_replication=aws.s3.BucketReplicationConfigRuleDeleteMarkerReplicationArgs(
                    status="Disabled"
                ),
                source_selection_criteria=aws.s3.BucketReplicationConfigRuleSourceSelectionCriteriaArgs(
                    sse_kms_encrypted_objects=aws.s3.BucketReplicationConfigRuleSourceSelectionCriteriaSseKmsEncryptedObjectsArgs(
                        status="Enabled"
                    )
                ),
                destination=aws.s3.BucketReplicationConfigRuleDestinationArgs(
                    bucket=archive_bucket_arn,
                    account=archive_account,
                    access_control_translation=aws.s3.BucketReplicationConfigRuleDestinationAccessControlTranslationArgs(
                        owner="Destination"
                    ),
                    encryption_configuration=aws.s3.BucketReplicationConfigRuleDestinationEncryptionConfigurationArgs(
                        replica_kms_key_id=archive_kms_key_arn
                    ),
                ),
            )
        ],
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[versioning, policy]),
    )
    return role


def _replication_statements(
    bucket: aws.s3.Bucket,
    key_arn: pulumi.Input[str],
    archive_bucket_arn: str,
    archive_kms_key_arn: str,
    archive_region: str,
) -> list[Statement]:
    """Read this bucket's new versions, decrypt them through S3, write and encrypt the replicas."""
    partition = aws.get_partition_output()
    region = aws.get_region_output().region
    source_objects = prefix_arn(bucket.arn, "")
    archive_objects = f"{archive_bucket_arn}/*"
    return [
        Statement(
            ["s3:GetReplicationConfiguration", "s3:ListBucket"],
            [bucket.arn],
            sid="ReadReplicationConfiguration",
        ),
        Statement(
            [
                "s3:GetObjectVersionForReplication",
                "s3:GetObjectVersionAcl",
                "s3:GetObjectVersionTagging",
                "s3:GetObjectRetention",
                "s3:GetObjectLegalHold",
            ],
            [source_objects],
            sid="ReadLogFileVersions",
        ),
        Statement(
            [
                "s3:ReplicateObject",
                "s3:ReplicateTags",
                "s3:ObjectOwnerOverrideToBucketOwner",
            ],
            [archive_objects],
            sid="WriteReplicas",
        ),
        Statement(
            ["kms:Decrypt"],
            [key_arn],
            sid="DecryptLogFilesThroughS3",
            conditions={
                "StringEquals": {
                    "kms:ViaService": pulumi.Output.concat("s3.", region, ".", partition.dns_suffix)
                },
                "StringLike": {"kms:EncryptionContext:aws:s3:arn": source_objects},
            },
        ),
        Statement(
            ["kms:Encrypt", "kms:GenerateDataKey"],
            [archive_kms_key_arn],
            sid="EncryptReplicasThroughS3",
            conditions={
                "StringEquals": {
                    "kms:ViaService": pulumi.Output.concat(
                        "s3.", archive_region, ".", partition.dns_suffix
                    )
                },
                "StringLike": {"kms:EncryptionContext:aws:s3:arn": f"{archive_bucket_arn}/*"},
            },
        ),
    ]
