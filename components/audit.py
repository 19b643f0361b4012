"""Audit: a multi-region CloudTrail trail with log file validation, its own key and bucket.

* The trail encrypts log files with a dedicated audit key (rotation on). Its policy lets CloudTrail
  generate data keys only for this trail (`aws:SourceArn`) and with the CloudTrail encryption
  context of this account's trails, and lets this account's principals (with IAM permission) decrypt
  log files. A dedicated key keeps the audit trail readable by auditors without the lake key.
* The trail bucket is hardened like the lake's buckets: SSE-KMS with the audit key and an S3 bucket
  key, versioning, public access block, ownership enforced (ACLs disabled), a TLS-only policy, a
  lifecycle rule, server access logs into a companion access-log bucket (SSE-S3: server access
  logging cannot deliver to SSE-KMS targets). CloudTrail's `s3:GetBucketAcl` and `s3:PutObject`
  grants are scoped with `aws:SourceArn` to this trail (and PutObject to `AWSLogs/<account>/`).
* The trail name is fixed (`trail_name`) because the bucket and key policies must name the trail's
  ARN before the trail exists (CloudTrail checks the bucket policy when the trail is created).
* Event selectors are advanced selectors: all management events, and with `data_events` the S3
  object-level events (`AWS::S3::Object`) of the lake buckets only (`resources.ARN` StartsWith
  each bucket's ARN + `/`), never of the trail's own bucket (that would log its own deliveries).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components.data_lake import KEY_ADMIN_ACTIONS, KEY_POLICY_WILDCARD
from components.iam import Statement, prefix_arn
from components.limits import kms_deletion_window_problems
from components.on_call import document, with_principal
from components.s3 import bucket_controls, deny_insecure_transport, housekeeping_rule

CLOUDTRAIL = {"Service": "cloudtrail.amazonaws.com"}


@dataclass(frozen=True, slots=True)
class AuditTrailArgs:
    # Physical trail name (unique per account and region): the policies name its ARN up front.
    trail_name: str
    # ARNs of the buckets whose object-level (data) events are recorded.
    lake_bucket_arns: Sequence[pulumi.Input[str]] = ()
    data_events: bool = False
    kms_deletion_window_days: int = 30
    noncurrent_version_days: int = 90
    # Days the access-log bucket keeps the trail bucket's server access logs.
    access_log_days: int = 365
    force_destroy: bool = False
    tags: Mapping[str, str] = field(default_factory=dict)
    protect: bool = False

    def __post_init__(self) -> None:
        problems: list[str] = []
        name = self.trail_name
        if not (
            3 <= len(name) <= 128
            and name.replace("-", "").replace("_", "").replace(".", "").isalnum()
            and name[0].isalnum()
            and name[-1].isalnum()
        ):
            problems.append(
                f"trail_name {name!r}: 3-128 letters, digits, '.', '_' or '-', starting and "
                "ending with a letter or digit"
            )
        if self.data_events and not self.lake_bucket_arns:
            problems.append("data_events is on but lake_bucket_arns is empty")
        problems += kms_deletion_window_problems(self.kms_deletion_window_days)
        if self.noncurrent_version_days < 1 or self.access_log_days < 1:
            problems.append("noncurrent_version_days and access_log_days must be >= 1")
        if self.protect and self.force_destroy:
            problems.append("force_destroy cannot be on for a protected (prod) trail bucket")
        if problems:
            raise ValueError("AuditTrailArgs: " + "; ".join(problems))


class AuditTrail(pulumi.ComponentResource):
    """The trail, its key, its bucket and the bucket's access-log bucket."""

    trail_arn: pulumi.Output[str]
    bucket_name: pulumi.Output[str]
    key_arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: AuditTrailArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlplatform:audit:AuditTrail", name, None, opts)
        self._name = name
        self._args = args
        self._tags = dict(args.tags)
        self._account = aws.get_caller_identity_output().account_id
        self._region = aws.get_region_output().region
        self._partition_info = aws.get_partition_output()
        partition = self._partition_info.partition
        self._trail_arn = pulumi.Output.concat(
            "arn:",
            partition,
            ":cloudtrail:",
            self._region,
            ":",
            self._account,
            ":trail/",
            args.trail_name,
        )
        key = self._key()
        stateful = pulumi.ResourceOptions(
            parent=self, protect=args.protect, retain_on_delete=args.protect
        )
        access_logs = aws.s3.Bucket(
            f"{name}-access-logs", force_destroy=args.force_destroy, tags=self._tags, opts=stateful
        )
        trail_bucket = aws.s3.Bucket(
            f"{name}-bucket", force_destroy=args.force_destroy, tags=self._tags, opts=stateful
        )
        self._access_log_bucket(access_logs, trail_bucket)
        bucket_policy = self._trail_bucket(trail_bucket, access_logs, key)
        trail = self._trail(trail_bucket, key, bucket_policy)

        self.trail_arn = trail.arn
        self.bucket_name = trail_bucket.bucket
        self.key_arn = key.arn
        self.register_outputs(
            {"trail_arn": self.trail_arn, "bucket_name": self.bucket_name, "key_arn": self.key_arn}
        )

    # --- builders -------------------------------------------------------------------------------

    def _key(self) -> aws.kms.Key:
        """The audit key (rotation on) and its alias."""
        name, args = self._name, self._args
        key = aws.kms.Key(
            f"{name}-key",
            description="ml-platform audit trail (CloudTrail log files)",
            enable_key_rotation=True,
            deletion_window_in_days=args.kms_deletion_window_days,
            policy=self._key_policy(),
            tags=self._tags,
            opts=pulumi.ResourceOptions(
                parent=self, protect=args.protect, retain_on_delete=args.protect
            ),
        )
        aws.kms.Alias(
            f"{name}-key-alias",
            name_prefix="alias/mlplatform-audit-",
            target_key_id=key.key_id,
            opts=pulumi.ResourceOptions(parent=self),
        )
        return key

    def _key_policy(self) -> pulumi.Output[str]:
        """CloudTrail encrypts this trail's files; this account's principals read them."""
        account, region = self._account, self._region
        root = pulumi.Output.concat(
            "arn:", self._partition_info.partition, ":iam::", account, ":root"
        )
        trails_of_account = pulumi.Output.concat(
            "arn:", self._partition_info.partition, ":cloudtrail:*:", account, ":trail/*"
        )
        return document(
            [
                with_principal(
                    Statement(
                        KEY_ADMIN_ACTIONS,
                        ["*"],
                        sid="KeyAdministration",
                        wildcard_reason=KEY_POLICY_WILDCARD,
                    ),
                    {"AWS": root},
                ),
                with_principal(
                    Statement(
                        ["kms:GenerateDataKey"],
                        ["*"],
                        sid="CloudTrailEncryptsThisTrail",
                        wildcard_reason=KEY_POLICY_WILDCARD,
                        conditions={
                            "StringEquals": {"aws:SourceArn": self._trail_arn},
                            "StringLike": {
                                "kms:EncryptionContext:aws:cloudtrail:arn": trails_of_account
                            },
                        },
                    ),
                    CLOUDTRAIL,
                ),
                with_principal(
                    Statement(
                        ["kms:DescribeKey"],
                        ["*"],
                        sid="CloudTrailDescribesKey",
                        wildcard_reason=KEY_POLICY_WILDCARD,
                        conditions={"StringEquals": {"aws:SourceArn": self._trail_arn}},
                    ),
                    CLOUDTRAIL,
                ),
                # Auditors of this account (with IAM permission) read the log files.
                with_principal(
                    Statement(
                        ["kms:Decrypt", "kms:ReEncryptFrom"],
                        ["*"],
                        sid="AccountReadsLogFiles",
                        wildcard_reason=KEY_POLICY_WILDCARD,
                        conditions={
                            "StringEquals": {"kms:CallerAccount": account},
                            "StringLike": {
                                "kms:EncryptionContext:aws:cloudtrail:arn": trails_of_account
                            },
                        },
                    ),
                    {"AWS": root},
                ),
                # S3 uses the key for the bucket's default encryption (bucket key).
                with_principal(
                    Statement(
                        ["kms:Decrypt", "kms:GenerateDataKey"],
                        ["*"],
                        sid="ThroughS3",
                        wildcard_reason=KEY_POLICY_WILDCARD,
                        conditions={
                            "StringEquals": {
                                "kms:CallerAccount": account,
                                "kms:ViaService": pulumi.Output.concat(
                                    "s3.", region, ".", self._partition_info.dns_suffix
                                ),
                            }
                        },
                    ),
                    {"AWS": root},
                ),
            ]
        )

    def _access_log_bucket(self, access_logs: aws.s3.Bucket, trail_bucket: aws.s3.Bucket) -> None:
        """SSE-S3 (the only encryption log delivery supports); only the trail bucket's logs."""
        name, child = self._name, pulumi.ResourceOptions(parent=self)
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-access-logs-encryption",
            bucket=access_logs.id,
            rules=[
                aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                        sse_algorithm="AES256"
                    ),
                )
            ],
            opts=child,
        )
        logs_block, logs_versioning = bucket_controls(f"{name}-access-logs", access_logs, child)
        aws.s3.BucketPolicy(
            f"{name}-access-logs-policy",
            bucket=access_logs.id,
            policy=document(
                [
                    deny_insecure_transport(access_logs.arn),
                    with_principal(
                        Statement(
                            ["s3:PutObject"],
                            [prefix_arn(access_logs.arn, "trail")],
                            sid="S3ServerAccessLogDelivery",
                            conditions={
                                "ArnLike": {"aws:SourceArn": trail_bucket.arn},
                                "StringEquals": {"aws:SourceAccount": self._account},
                            },
                        ),
                        {"Service": "logging.s3.amazonaws.com"},
                    ),
                ]
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[logs_block]),
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-access-logs-lifecycle",
            bucket=access_logs.id,
            rules=[
                housekeeping_rule(self._args.noncurrent_version_days, self._args.access_log_days)
            ],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[logs_versioning]),
        )

    def _trail_bucket(
        self, trail_bucket: aws.s3.Bucket, access_logs: aws.s3.Bucket, key: aws.kms.Key
    ) -> aws.s3.BucketPolicy:
        """SSE-KMS with the audit key, logged, and written by CloudTrail for this trail only."""
        name, child = self._name, pulumi.ResourceOptions(parent=self)
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-bucket-encryption",
            bucket=trail_bucket.id,
            rules=[
                aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                        sse_algorithm="aws:kms", kms_master_key_id=key.arn
                    ),
                    bucket_key_enabled=True,
                )
            ],
            opts=child,
        )
        block, versioning = bucket_controls(f"{name}-bucket", trail_bucket, child)
        aws.s3.BucketLogging(
            f"{name}-bucket-logging",
            bucket=trail_bucket.id,
            target_bucket=access_logs.bucket,
            target_prefix="trail/",
            opts=child,
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-bucket-lifecycle",
            bucket=trail_bucket.id,
            rules=[housekeeping_rule(self._args.noncurrent_version_days)],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[versioning]),
        )
        return aws.s3.BucketPolicy(
            f"{name}-bucket-policy",
            bucket=trail_bucket.id,
            policy=document(
                [
                    deny_insecure_transport(trail_bucket.arn),
                    with_principal(
                        Statement(
                            ["s3:GetBucketAcl"],
                            [trail_bucket.arn],
                            sid="CloudTrailAclCheck",
                            conditions={"StringEquals": {"aws:SourceArn": self._trail_arn}},
                        ),
                        CLOUDTRAIL,
                    ),
                    with_principal(
                        Statement(
                            ["s3:PutObject"],
                            [
                                pulumi.Output.concat(
                                    trail_bucket.arn, "/AWSLogs/", self._account, "/*"
                                )
                            ],
                            sid="CloudTrailWrite",
                            conditions={
                                "StringEquals": {
                                    "aws:SourceArn": self._trail_arn,
                                    "s3:x-amz-acl": "bucket-owner-full-control",
                                }
                            },
                        ),
                        CLOUDTRAIL,
                    ),
                ]
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[block]),
        )

    def _trail(
        self, trail_bucket: aws.s3.Bucket, key: aws.kms.Key, bucket_policy: aws.s3.BucketPolicy
    ) -> aws.cloudtrail.Trail:
        """Management events always; object-level events of the lake buckets on request."""
        args = self._args
        selectors = [
            aws.cloudtrail.TrailAdvancedEventSelectorArgs(
                name="Management events",
                field_selectors=[
                    aws.cloudtrail.TrailAdvancedEventSelectorFieldSelectorArgs(
                        field="eventCategory", equals=["Management"]
                    )
                ],
            )
        ]
        if args.data_events:
            selectors.append(
                aws.cloudtrail.TrailAdvancedEventSelectorArgs(
                    name="Lake object events",
                    field_selectors=[
                        aws.cloudtrail.TrailAdvancedEventSelectorFieldSelectorArgs(
                            field="eventCategory", equals=["Data"]
                        ),
                        aws.cloudtrail.TrailAdvancedEventSelectorFieldSelectorArgs(
                            field="resources.type", equals=["AWS::S3::Object"]
                        ),
                        aws.cloudtrail.TrailAdvancedEventSelectorFieldSelectorArgs(
                            field="resources.ARN",
                            starts_withs=[
                                pulumi.Output.concat(arn, "/") for arn in args.lake_bucket_arns
                            ],
                        ),
                    ],
                )
            )
        return aws.cloudtrail.Trail(
            f"{self._name}-trail",
            name=args.trail_name,
            s3_bucket_name=trail_bucket.bucket,
            kms_key_id=key.arn,
            enable_log_file_validation=True,
            include_global_service_events=True,
            is_multi_region_trail=True,
            enable_logging=True,
            advanced_event_selectors=selectors,
            tags=self._tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[bucket_policy, key]),
        )
