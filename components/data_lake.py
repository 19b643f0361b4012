"""The data lake: one customer-managed KMS key, the zone buckets, the Glue catalog and Athena.

Zones (one bucket each, all SSE-KMS with the lake key and an S3 bucket key):

- ``raw``: data as collected (batch uploads, the Firehose stream); ages to Standard-IA, then
  Glacier; optional Object Lock (governance mode) so nobody quietly rewrites history.
- ``curated``, ``features``: validated data and model inputs.
- ``models``: model artifacts (``model.tar.gz``).
- ``predictions``: captured endpoint traffic (SageMaker data capture).
- ``results``: Athena query results. A dedicated bucket rather than a prefix of ``curated``, so that
  people who may run queries need write access to query results only, never to a data zone, and so
  that results can expire on their own schedule.

A ``logs`` bucket receives the S3 server access logs of every zone bucket (a prefix per zone).

Every dataset the stack names (``datasets``: the shared raw and curated ones,
``ml.schema.SHARED_DATASETS``, and each hosted model's own features and predictions tables) is
cataloged as a Glue table of its zone bucket, columns taken from the schema, Hive partitioned by
``dt`` with partition projection so that new days are queryable without a crawler.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from components.iam import Statement, document, prefix_arn, with_principal
from components.limits import kms_deletion_window_problems
from components.problems import raw_tiering_problems
from components.s3 import (
    bucket_controls,
    deny_insecure_transport,
    housekeeping_rule,
)
from ml.schema import PARTITION_KEY, SHARED_DATASETS, Dataset

# Zone buckets, in a fixed order; `logs` is the access-log bucket (not a zone: SSE-S3, see below).
ZONES: tuple[str, ...] = ("raw", "curated", "features", "models", "predictions", "results")
LOG_BUCKET = "logs"
BUCKETS: tuple[str, ...] = (*ZONES, LOG_BUCKET)

# Athena writes query results here, inside the `results` bucket.
RESULTS_PREFIX = "query-results"
# Incomplete multipart uploads are aborted after this many days.
# Partition projection: the first day Athena enumerates (`dt` runs from here to today).
PROJECTION_START = "2020-01-01"

PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
PARQUET_INPUT_FORMAT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
PARQUET_OUTPUT_FORMAT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"

# Key administration, for the account root (and through it IAM). Deliberately without any
# cryptographic use and without kms:CreateGrant (granted only for AWS resources, below).
KEY_ADMIN_ACTIONS: tuple[str, ...] = (
    "kms:CancelKeyDeletion",
    "kms:CreateAlias",
    "kms:DeleteAlias",
    "kms:DescribeKey",
    "kms:DisableKey",
    "kms:DisableKeyRotation",
    "kms:EnableKey",
    "kms:EnableKeyRotation",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListGrants",
    "kms:ListKeyRotations",
    "kms:ListResourceTags",
    "kms:PutKeyPolicy",
    "kms:RetireGrant",
    "kms:RevokeGrant",
    "kms:RotateKeyOnDemand",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:UpdateAlias",
    "kms:UpdateKeyDescription",
)
# Envelope encryption as S3, Firehose, SageMaker and CloudWatch Logs perform it.
KEY_USE_ACTIONS: tuple[str, ...] = (
    "kms:Decrypt",
    "kms:DescribeKey",
    "kms:Encrypt",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
)
# Services principals of this account may use the key through (kms:ViaService prefixes);
# ECR encrypts the platform image repository with it.
KEY_VIA_SERVICES: tuple[str, ...] = ("s3", "firehose", "sagemaker", "ecr")
# Services that hold the key through grants on resources they manage (stream SSE, volumes).
KEY_GRANT_SERVICES: tuple[str, ...] = ("firehose", "sagemaker", "ecr")

# In a key policy the only resource is the key itself, and it is spelled `*`.
KEY_POLICY_WILDCARD = "a key policy names its own key as star"

_GLUE_NAME = re.compile(r"^[a-z0-9_]{1,255}$")


@dataclass(frozen=True, slots=True)
class DataLakeArgs:
    # Glue database name: lowercase letters, digits, `_` (unique per account and region).
    database_name: str
    # The datasets cataloged as tables (one each, named and keyed by the dataset's name).
    datasets: Sequence[Dataset] = SHARED_DATASETS
    kms_deletion_window_days: int = 30
    force_destroy: bool = False
    raw_ia_days: int = 30
    raw_archive_days: int = 90
    noncurrent_version_days: int = 90
    raw_object_lock: bool = False
    # Default retention (governance mode) of new raw objects when raw_object_lock is on.
    raw_object_lock_days: int = 365
    athena_bytes_scanned_cutoff: int = 10 * 1024**3
    # Athena query results expire after this many days.
    results_expiration_days: int = 30
    tags: Mapping[str, str] = field(default_factory=dict)
    # Prod: buckets and key are protected and retained on delete.
    protect: bool = False

    def __post_init__(self) -> None:
        problems: list[str] = []
        if not _GLUE_NAME.fullmatch(self.database_name):
            problems.append(
                f"database_name {self.database_name!r}: use lowercase letters, digits "
                "and '_' (Athena needs no quoting then), at most 255 characters"
            )
        problems += kms_deletion_window_problems(self.kms_deletion_window_days)
        if self.raw_ia_days < 30:
            problems.append(
                f"raw_ia_days {self.raw_ia_days}: S3 moves objects to Standard-IA "
                "after 30 days at the earliest"
            )
        problems += raw_tiering_problems(self.raw_ia_days, self.raw_archive_days)
        if self.noncurrent_version_days < 1:
            problems.append(f"noncurrent_version_days {self.noncurrent_version_days}: must be >= 1")
        if self.raw_object_lock_days < 1:
            problems.append(f"raw_object_lock_days {self.raw_object_lock_days}: must be >= 1")
        if self.athena_bytes_scanned_cutoff < 10_000_000:
            problems.append(
                f"athena_bytes_scanned_cutoff {self.athena_bytes_scanned_cutoff}: "
                "Athena accepts 10000000 bytes (10 MB) at least"
            )
        if self.results_expiration_days < 1:
            problems.append(f"results_expiration_days {self.results_expiration_days}: must be >= 1")
        if self.protect and self.force_destroy:
            problems.append(
                "force_destroy with protect: protected lake buckets are never force-destroyed"
            )
        problems += _dataset_problems(self.datasets)
        if problems:
            raise ValueError("invalid DataLakeArgs: " + "; ".join(problems))


class DataLake(pulumi.ComponentResource):
    """The lake key, zone and log buckets, the Glue database and tables, the Athena workgroup."""

    key_arn: pulumi.Output[str]
    key_id: pulumi.Output[str]
    buckets: dict[str, aws.s3.Bucket]
    bucket_names: dict[str, pulumi.Output[str]]
    bucket_arns: dict[str, pulumi.Output[str]]
    database_name: pulumi.Output[str]
    table_names: dict[str, pulumi.Output[str]]
    workgroup_name: pulumi.Output[str]
    results_location: pulumi.Output[str]

    def __init__(
        self, name: str, args: DataLakeArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlplatform:lake:DataLake", name, None, opts)
        self._name = name
        self._args = args
        self._versioning: dict[str, aws.s3.BucketVersioning] = {}
        self._public_access: dict[str, aws.s3.BucketPublicAccessBlock] = {}
        child = pulumi.ResourceOptions(parent=self)
        # Stateful resources (key, buckets, catalog): never deleted with the stack in prod.
        stateful = pulumi.ResourceOptions(
            parent=self, protect=args.protect, retain_on_delete=args.protect
        )
        tags = dict(args.tags)

        identity = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self))
        region = aws.get_region_output(opts=pulumi.InvokeOutputOptions(parent=self))
        partition = aws.get_partition_output(opts=pulumi.InvokeOutputOptions(parent=self))
        self._account = identity.account_id
        self._region = region.region
        self._partition = partition.partition
        self._dns_suffix = partition.dns_suffix

        key = aws.kms.Key(
            f"{name}-key",
            description=f"{name}: data lake buckets, query results, ingestion, logs, SageMaker",
            enable_key_rotation=True,
            deletion_window_in_days=args.kms_deletion_window_days,
            policy=self._key_policy(),
            tags=tags,
            opts=stateful,
        )
        aws.kms.Alias(
            f"{name}-key-alias",
            name_prefix=f"alias/{name}-",
            target_key_id=key.key_id,
            opts=child,
        )
        self.key_arn = key.arn
        self.key_id = key.key_id

        # The log bucket first: every zone bucket logs into it.
        logs = aws.s3.Bucket(
            f"{name}-{LOG_BUCKET}",
            force_destroy=args.force_destroy,
            tags={**tags, "zone": LOG_BUCKET},
            opts=stateful,
        )
        self.buckets = {}
        for zone in ZONES:
            self.buckets[zone] = self._zone_bucket(zone, key, logs, stateful, child, tags)
        self.buckets[LOG_BUCKET] = logs
        self._harden_log_bucket(logs, child)

        self.bucket_names = {zone: b.bucket for zone, b in self.buckets.items()}
        self.bucket_arns = {zone: b.arn for zone, b in self.buckets.items()}

        # --- catalog and query ---------------------------------------------------------------
        database = aws.glue.CatalogDatabase(
            f"{name}-db",
            name=args.database_name,
            description=f"{name}: the data lake datasets (ml.schema)",
            tags=tags,
            opts=stateful,
        )
        self.database_name = database.name
        self.table_names = {}
        for dataset in args.datasets:
            table = self._table(dataset, database, stateful)
            self.table_names[dataset.name] = table.name

        results = self.buckets["results"]
        self.results_location = pulumi.Output.concat("s3://", results.bucket, f"/{RESULTS_PREFIX}/")
        workgroup = aws.athena.Workgroup(
            f"{name}-athena",
            description=f"{name}: queries over the lake catalog",
            force_destroy=args.force_destroy,
            configuration=aws.athena.WorkgroupConfigurationArgs(
                enforce_workgroup_configuration=True,
                publish_cloudwatch_metrics_enabled=True,
                bytes_scanned_cutoff_per_query=args.athena_bytes_scanned_cutoff,
                result_configuration=aws.athena.WorkgroupConfigurationResultConfigurationArgs(
                    output_location=self.results_location,
                    encryption_configuration=aws.athena.WorkgroupConfigurationResultConfigurationEncryptionConfigurationArgs(
                        encryption_option="SSE_KMS",
                        kms_key_arn=key.arn,
                    ),
                ),
            ),
            tags=tags,
            opts=child,
        )
        self.workgroup_name = workgroup.name

        self.register_outputs(
            {
                "key_arn": self.key_arn,
                "key_id": self.key_id,
                "bucket_names": self.bucket_names,
                "bucket_arns": self.bucket_arns,
                "database_name": self.database_name,
                "table_names": self.table_names,
                "workgroup_name": self.workgroup_name,
                "results_location": self.results_location,
            }
        )

    # --- key -----------------------------------------------------------------------------------

    def _service_host(self, service: str) -> pulumi.Output[str]:
        return pulumi.Output.concat(service, ".", self._region, ".", self._dns_suffix)

    def _key_policy(self) -> pulumi.Output[str]:
        root = pulumi.Output.concat("arn:", self._partition, ":iam::", self._account, ":root")
        log_groups = pulumi.Output.concat(
            "arn:", self._partition, ":logs:", self._region, ":", self._account, ":log-group:*"
        )
        statements = [
            # AWS requires the account to keep administering the key (else it is unmanageable);
            # the root principal delegates to IAM policies in this account.
            with_principal(
                Statement(
                    KEY_ADMIN_ACTIONS,
                    ["*"],
                    sid="KeyAdministration",
                    wildcard_reason=KEY_POLICY_WILDCARD,
                ),
                {"AWS": root},
            ),
            # Principals of this account (with IAM permission) may use the key only through the
            # lake's services: S3 (buckets, Athena results), Firehose, SageMaker.
            with_principal(
                Statement(
                    KEY_USE_ACTIONS,
                    ["*"],
                    sid="UseThroughLakeServices",
                    wildcard_reason=KEY_POLICY_WILDCARD,
                    conditions={
                        "StringEquals": {
                            "kms:CallerAccount": self._account,
                            "kms:ViaService": [self._service_host(s) for s in KEY_VIA_SERVICES],
                        }
                    },
                ),
                {"AWS": root},
            ),
            # Firehose (stream encryption) and SageMaker (volumes, jobs) hold the key via grants on
            # the AWS resources they manage, never for arbitrary grantees.
            with_principal(
                Statement(
                    ["kms:CreateGrant"],
                    ["*"],
                    sid="GrantsForAwsResources",
                    wildcard_reason=KEY_POLICY_WILDCARD,
                    conditions={
                        "StringEquals": {
                            "kms:CallerAccount": self._account,
                            "kms:ViaService": [self._service_host(s) for s in KEY_GRANT_SERVICES],
                        },
                        "Bool": {"kms:GrantIsForAWSResource": "true"},
                    },
                ),
                {"AWS": root},
            ),
            # CloudWatch Logs encrypts log groups of this account and region (monitoring, endpoint,
            # ingestion) with the key; the encryption context names the log group.
            with_principal(
                Statement(
                    KEY_USE_ACTIONS,
                    ["*"],
                    sid="CloudWatchLogsOfThisAccount",
                    wildcard_reason=KEY_POLICY_WILDCARD,
                    conditions={"ArnLike": {"kms:EncryptionContext:aws:logs:arn": log_groups}},
                ),
                {"Service": self._service_host("logs")},
            ),
        ]
        return document(statements)

    # --- buckets -------------------------------------------------------------------------------

    def _zone_bucket(
        self,
        zone: str,
        key: aws.kms.Key,
        logs: aws.s3.Bucket,
        stateful: pulumi.ResourceOptions,
        child: pulumi.ResourceOptions,
        tags: dict[str, str],
    ) -> aws.s3.Bucket:
        name, args = self._name, self._args
        lock = zone == "raw" and args.raw_object_lock
        bucket = aws.s3.Bucket(
            f"{name}-{zone}",
            force_destroy=args.force_destroy,
            object_lock_enabled=True if lock else None,
            tags={**tags, "zone": zone},
            opts=stateful,
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-{zone}-encryption",
            bucket=bucket.id,
            rules=[
                aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                        sse_algorithm="aws:kms",
                        kms_master_key_id=key.arn,
                    ),
                    bucket_key_enabled=True,
                )
            ],
            opts=child,
        )
        self._public_access[zone], self._versioning[zone] = bucket_controls(
            f"{self._name}-{zone}", bucket, child
        )
        aws.s3.BucketPolicy(
            f"{name}-{zone}-policy",
            bucket=bucket.id,
            policy=document(
                [deny_insecure_transport(bucket.arn), *_deny_unencrypted_puts(bucket.arn, key.arn)]
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self._public_access[zone]]),
        )
        aws.s3.BucketLogging(
            f"{name}-{zone}-logging",
            bucket=bucket.id,
            target_bucket=logs.bucket,
            target_prefix=f"{zone}/",
            target_object_key_format=aws.s3.BucketLoggingTargetObjectKeyFormatArgs(
                partitioned_prefix=aws.s3.BucketLoggingTargetObjectKeyFormatPartitionedPrefixArgs(
                    partition_date_source="EventTime",
                ),
            ),
            opts=child,
        )
        rules = [housekeeping_rule(self._args.noncurrent_version_days)]
        if zone == "raw":
            rules.append(
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="raw-tiering",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(),
                    transitions=[
                        aws.s3.BucketLifecycleConfigurationRuleTransitionArgs(
                            days=args.raw_ia_days, storage_class="STANDARD_IA"
                        ),
                        aws.s3.BucketLifecycleConfigurationRuleTransitionArgs(
                            days=args.raw_archive_days, storage_class="GLACIER"
                        ),
                    ],
                )
            )
        if zone == "results":
            rules.append(
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="expire-query-results",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(),
                    expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(
                        days=args.results_expiration_days
                    ),
                )
            )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-{zone}-lifecycle",
            bucket=bucket.id,
            rules=rules,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self._versioning[zone]]),
        )
        if lock:
            aws.s3.BucketObjectLockConfiguration(
                f"{name}-{zone}-object-lock",
                bucket=bucket.id,
                rule=aws.s3.BucketObjectLockConfigurationRuleArgs(
                    default_retention=aws.s3.BucketObjectLockConfigurationRuleDefaultRetentionArgs(
                        mode="GOVERNANCE",
                        days=args.raw_object_lock_days,
                    ),
                ),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self._versioning[zone]]),
            )
        return bucket

    def _harden_log_bucket(self, logs: aws.s3.Bucket, child: pulumi.ResourceOptions) -> None:
        name = self._name
        # S3 server access logging delivers only to targets encrypted with SSE-S3: SSE-KMS is not
        # supported on a server-access-log target bucket, hence AES256 here (and only here).
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-{LOG_BUCKET}-encryption",
            bucket=logs.id,
            rules=[
                aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                        sse_algorithm="AES256",
                    ),
                )
            ],
            opts=child,
        )
        self._public_access[LOG_BUCKET], self._versioning[LOG_BUCKET] = bucket_controls(
            f"{self._name}-{LOG_BUCKET}", logs, child
        )
        # With ACLs disabled, the logging service writes through the bucket policy: only under
        # each zone's prefix, only for this account's zone buckets.
        delivery = with_principal(
            Statement(
                ["s3:PutObject"],
                [prefix_arn(logs.arn, zone) for zone in ZONES],
                sid="S3ServerAccessLogDelivery",
                conditions={
                    "ArnLike": {"aws:SourceArn": [self.buckets[z].arn for z in ZONES]},
                    "StringEquals": {"aws:SourceAccount": self._account},
                },
            ),
            {"Service": "logging.s3.amazonaws.com"},
        )
        aws.s3.BucketPolicy(
            f"{name}-{LOG_BUCKET}-policy",
            bucket=logs.id,
            policy=document([deny_insecure_transport(logs.arn), delivery]),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self._public_access[LOG_BUCKET]]),
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-{LOG_BUCKET}-lifecycle",
            bucket=logs.id,
            rules=[housekeeping_rule(self._args.noncurrent_version_days)],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self._versioning[LOG_BUCKET]]),
        )

    # --- catalog -------------------------------------------------------------------------------

    def _table(
        self, dataset: Dataset, database: aws.glue.CatalogDatabase, opts: pulumi.ResourceOptions
    ) -> aws.glue.CatalogTable:
        bucket = self.buckets[dataset.zone]
        location = pulumi.Output.concat("s3://", bucket.bucket, f"/{dataset.prefix}/")
        template = pulumi.Output.concat(location, PARTITION_KEY, "=${", PARTITION_KEY, "}/")
        return aws.glue.CatalogTable(
            f"{self._name}-table-{dataset.name.replace('_', '-')}",
            name=dataset.name,
            database_name=database.name,
            description=dataset.description,
            table_type="EXTERNAL_TABLE",
            parameters={
                "EXTERNAL": "TRUE",
                "classification": "parquet",
                "parquet.compression": "SNAPPY",
                # Partition projection: `dt=YYYY-MM-DD` days are known without crawlers.
                "projection.enabled": "true",
                f"projection.{PARTITION_KEY}.type": "date",
                f"projection.{PARTITION_KEY}.format": "yyyy-MM-dd",
                f"projection.{PARTITION_KEY}.range": f"{PROJECTION_START},NOW",
                f"projection.{PARTITION_KEY}.interval": "1",
                f"projection.{PARTITION_KEY}.interval.unit": "DAYS",
                "storage.location.template": template,
            },
            partition_keys=[
                aws.glue.CatalogTablePartitionKeyArgs(
                    name=PARTITION_KEY, type="string", comment="Partition day, YYYY-MM-DD (UTC)"
                )
            ],
            storage_descriptor=aws.glue.CatalogTableStorageDescriptorArgs(
                location=location,
                input_format=PARQUET_INPUT_FORMAT,
                output_format=PARQUET_OUTPUT_FORMAT,
                ser_de_info=aws.glue.CatalogTableStorageDescriptorSerDeInfoArgs(
                    name="parquet",
                    serialization_library=PARQUET_SERDE,
                    parameters={"serialization.format": "1"},
                ),
                columns=[
                    aws.glue.CatalogTableStorageDescriptorColumnArgs(
                        name=c.name, type=c.type, comment=c.description[:255]
                    )
                    for c in dataset.columns
                ],
            ),
            opts=opts,
        )


def _dataset_problems(datasets: Sequence[Dataset]) -> list[str]:
    """The layout the catalog (and the Firehose prefix) relies on, checked before any resource."""
    problems = []
    names = [d.name for d in datasets]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        problems.append(f"datasets: {repeated} named twice (one table per name)")
    for dataset in datasets:
        if dataset.partition_keys != (PARTITION_KEY,):
            problems.append(
                f"dataset {dataset.name!r}: the lake catalogs datasets partitioned by "
                f"({PARTITION_KEY!r},) only, not {dataset.partition_keys}"
            )
        if dataset.zone not in ZONES:
            problems.append(
                f"dataset {dataset.name!r}: zone {dataset.zone!r} is not one of {ZONES}"
            )
    return problems


# --- bucket policy statements ----------------------------------------------------------------


def _deny_unencrypted_puts(
    bucket_arn: pulumi.Input[str], key_arn: pulumi.Input[str]
) -> list[dict[str, Any]]:
    """Every object ends up under the lake key.

    A put without encryption headers gets the bucket default (SSE-KMS, lake key). Refused: a put
    asking for anything but SSE-KMS (SSE-S3, DSSE), naming another key, or asking for SSE-KMS
    without naming a key (S3 would then use the AWS managed `aws/s3` key).
    """
    objects = [prefix_arn(bucket_arn, "")]
    everyone = "*"
    return [
        with_principal(
            Statement(
                ["s3:PutObject"],
                objects,
                effect="Deny",
                sid="DenyNonKmsEncryption",
                conditions={
                    "StringNotEqualsIfExists": {"s3:x-amz-server-side-encryption": "aws:kms"}
                },
            ),
            everyone,
        ),
        with_principal(
            Statement(
                ["s3:PutObject"],
                objects,
                effect="Deny",
                sid="DenyOtherKmsKeys",
                conditions={
                    "StringNotEqualsIfExists": {
                        "s3:x-amz-server-side-encryption-aws-kms-key-id": key_arn
                    }
                },
            ),
            everyone,
        ),
        with_principal(
            Statement(
                ["s3:PutObject"],
                objects,
                effect="Deny",
                sid="DenyKmsWithoutLakeKey",
                conditions={
                    "StringEquals": {"s3:x-amz-server-side-encryption": "aws:kms"},
                    "Null": {"s3:x-amz-server-side-encryption-aws-kms-key-id": "true"},
                },
            ),
            everyone,
        ),
    ]
