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
* The trail also delivers to a CloudWatch Logs group encrypted with the audit key (`logs.<region>`
  may use it for that log group only), through a role CloudTrail assumes (its trust cannot carry
  source conditions: CloudTrail does not support them for this role). Metric filters there page
  on-call on the security events `components.audit_watch` lists.
* With `object_lock_days`, the trail bucket gets Object Lock (governance mode) with that default
  retention: log files cannot be deleted or overwritten from inside the account, except by a
  principal allowed `s3:BypassGovernanceRetention`. It is enabled through the bucket's Object Lock
  configuration, which S3 accepts on an existing versioned bucket, so turning it on does not replace
  a trail bucket that already holds logs.
* With `archive_bucket_arn` (and `archive_kms_key_arn`, the archive's key), every log file is also
  replicated to a log-archive bucket, usually in another account (`components.audit_archive`).
* Event selectors are advanced selectors: all management events, and with `data_events` the S3
  object-level events (`AWS::S3::Object`) of the lake buckets only (`resources.ARN` StartsWith
  each bucket's ARN + `/`), never of the trail's own bucket (that would log its own deliveries).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components.audit_archive import replicate_to_archive
from components.audit_watch import watch_trail
from components.data_lake import KEY_ADMIN_ACTIONS, KEY_POLICY_WILDCARD, KEY_USE_ACTIONS
from components.iam import Statement, assume_role_policy, document, prefix_arn, with_principal
from components.limits import LOG_RETENTION_DAYS, kms_deletion_window_problems
from components.problems import archive_problems
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
    # The trail's CloudWatch Logs group: how long it keeps events (the S3 copy is the archive).
    log_retention_days: int = 365
    # The on-call topic the security alarms notify (None: events reach the log group, nobody is
    # paged; a reusing program without on-call).
    alarm_topic_arn: pulumi.Input[str] | None = None
    # Names of the platform's buckets and roles whose control changes page (see audit_watch).
    watched_bucket_names: Sequence[pulumi.Input[str]] = ()
    watched_role_names: Sequence[pulumi.Input[str]] = ()
    # Object deletions in the lake zones within 5 minutes that page (with data_events only).
    bulk_delete_threshold: int = 100
    # Default Object Lock retention (governance mode) of log files; 0: no Object Lock.
    object_lock_days: int = 0
    # A log-archive bucket (ARN) and its KMS key (ARN) every log file is replicated to; both or
    # neither.
    archive_bucket_arn: str = ""
    archive_kms_key_arn: str = ""

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
        if self.log_retention_days not in LOG_RETENTION_DAYS:
            problems.append(
                f"log_retention_days {self.log_retention_days}: CloudWatch Logs accepts "
                f"{', '.join(map(str, LOG_RETENTION_DAYS))}"
            )
        if self.bulk_delete_threshold < 1:
            problems.append(f"bulk_delete_threshold {self.bulk_delete_threshold}: must be >= 1")
        if not 0 <= self.object_lock_days <= 36500:
            problems.append(f"object_lock_days {self.object_lock_days}: 0 (off) to 36500")
        problems += archive_problems(self.archive_bucket_arn, self.archive_kms_key_arn)
        if problems:
            raise ValueError("AuditTrailArgs: " + "; ".join(problems))


class AuditTrail(pulumi.ComponentResource):
    """The trail, its key, its bucket and the bucket's access-log bucket."""

    trail_arn: pulumi.Output[str]
    bucket_name: pulumi.Output[str]
    key_arn: pulumi.Output[str]
    log_group_name: pulumi.Output[str]

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
        # Fixed, like the trail's: the key policy names the log group before it exists.
        self._log_group_name = f"/mlplatform/audit/{args.trail_name}"
        self._log_group_arn = pulumi.Output.concat(
            "arn:",
            partition,
            ":logs:",
            self._region,
            ":",
            self._account,
            ":log-group:",
            self._log_group_name,
        )
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
        bucket_policy, versioning = self._trail_bucket(trail_bucket, access_logs, key)
        self.role_names: list[pulumi.Output[str]] = []  # every role made here (audited)
        if args.archive_bucket_arn:
            archive_role = replicate_to_archive(
                self,
                f"{name}-archive",
                bucket=trail_bucket,
                versioning=versioning,
                key_arn=key.arn,
                archive_bucket_arn=args.archive_bucket_arn,
                archive_kms_key_arn=args.archive_kms_key_arn,
                account=self._account,
                tags=self._tags,
            )
            self.role_names.append(archive_role.name)
        log_group, delivery_role = self._log_group(key)
        self.role_names.append(delivery_role.name)
        trail = self._trail(trail_bucket, key, bucket_policy, log_group, delivery_role)
        if args.alarm_topic_arn is not None:
            watch_trail(
                self,
                f"{name}-watch",
                trail_name=args.trail_name,
                log_group_name=log_group.name,
                topic_arn=args.alarm_topic_arn,
                bucket_names=[
                    *args.watched_bucket_names,
                    trail_bucket.bucket,
                    access_logs.bucket,
                ],
                role_names=[*args.watched_role_names, *self.role_names],
                lake_bucket_names=[
                    pulumi.Output.from_input(arn).apply(lambda a: a.split(":::", 1)[-1])
                    for arn in args.lake_bucket_arns
                ],
                bulk_delete_threshold=args.bulk_delete_threshold if args.data_events else None,
                tags=self._tags,
            )

        self.trail_arn = trail.arn
        self.bucket_name = trail_bucket.bucket
        self.key_arn = key.arn
        self.log_group_name = log_group.name
        self.register_outputs(
            {
                "trail_arn": self.trail_arn,
                "bucket_name": self.bucket_name,
                "key_arn": self.key_arn,
                "log_group_name": self.log_group_name,
            }
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
                # CloudWatch Logs encrypts the trail's log group, and only it.
                with_principal(
                    Statement(
                        KEY_USE_ACTIONS,
                        ["*"],
                        sid="CloudWatchLogsEncryptsTrailLogGroup",
                        wildcard_reason=KEY_POLICY_WILDCARD,
                        conditions={
                            "ArnEquals": {"kms:EncryptionContext:aws:logs:arn": self._log_group_arn}
                        },
                    ),
                    {
                        "Service": pulumi.Output.concat(
                            "logs.", region, ".", self._partition_info.dns_suffix
                        )
                    },
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
    ) -> tuple[aws.s3.BucketPolicy, aws.s3.BucketVersioning]:
        """SSE-KMS with the audit key, logged, locked on request, and written by CloudTrail for
        this trail only."""
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
        if self._args.object_lock_days:
            aws.s3.BucketObjectLockConfiguration(
                f"{name}-bucket-object-lock",
                bucket=trail_bucket.id,
                object_lock_enabled="Enabled",
                rule=aws.s3.BucketObjectLockConfigurationRuleArgs(
                    default_retention=aws.s3.BucketObjectLockConfigurationRuleDefaultRetentionArgs(
                        mode="GOVERNANCE", days=self._args.object_lock_days
                    ),
                ),
                opts=pulumi.ResourceOptions(
                    parent=self, depends_on=[versioning], protect=self._args.protect
                ),
            )
        policy = aws.s3.BucketPolicy(
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
        return policy, versioning

    def _log_group(self, key: aws.kms.Key) -> tuple[aws.cloudwatch.LogGroup, aws.iam.Role]:
        """The trail's log group (audit key) and the role CloudTrail delivers to it with."""
        name, args = self._name, self._args
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=self._log_group_name,
            kms_key_id=key.arn,
            retention_in_days=args.log_retention_days,
            tags=self._tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[key]),
        )
        # CloudTrail does not support aws:SourceArn / aws:SourceAccount on this role's trust
        # (AWS CloudTrail User Guide, "Role policy document for CloudTrail to use CloudWatch Logs").
        role = aws.iam.Role(
            f"{name}-delivery",
            description=f"CloudTrail {args.trail_name}: deliver events to its log group",
            assume_role_policy=assume_role_policy("cloudtrail.amazonaws.com"),
            tags=self._tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        # Streams are named <account>_CloudTrail_<region>, one per region of a multi-region trail.
        streams = pulumi.Output.concat(
            self._log_group_arn, ":log-stream:", self._account, "_CloudTrail_*"
        )
        self._delivery_policy = aws.iam.RolePolicy(
            f"{name}-delivery",
            role=role.id,
            policy=document(
                [
                    Statement(
                        ["logs:CreateLogStream", "logs:PutLogEvents"],
                        [streams],
                        sid="DeliverTrailEvents",
                    ).to_input()
                ]
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        return log_group, role

    def _trail(
        self,
        trail_bucket: aws.s3.Bucket,
        key: aws.kms.Key,
        bucket_policy: aws.s3.BucketPolicy,
        log_group: aws.cloudwatch.LogGroup,
        delivery_role: aws.iam.Role,
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
            # CloudTrail wants the log group's ARN with the streams wildcard.
            cloud_watch_logs_group_arn=pulumi.Output.concat(log_group.arn, ":*"),
            cloud_watch_logs_role_arn=delivery_role.arn,
            enable_log_file_validation=True,
            include_global_service_events=True,
            is_multi_region_trail=True,
            enable_logging=True,
            advanced_event_selectors=selectors,
            tags=self._tags,
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[bucket_policy, key, self._delivery_policy]
            ),
        )
