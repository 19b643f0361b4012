"""Streaming ingestion: a Firehose delivery stream into the raw zone, as Parquet.

JSON records put on the stream are converted to Parquet through the dataset's Glue table (so the
columns are `ml.schema`'s) and land under ``<dataset>/dt=YYYY-MM-DD/`` of the raw bucket, the
partition layout of that table: delivered files are queryable at once. Records that fail
conversion land under ``errors/<dataset>/<error type>/dt=YYYY-MM-DD/``.

The stream is encrypted with the lake key (customer managed), so are the delivered objects and the
delivery log group. The delivery role may write only under those two prefixes, use the lake key only
through S3 for that bucket, read only the dataset's Glue table, and write only its own log stream.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components.iam import Statement, assume_role_policy, policy_document, prefix_arn
from components.limits import LOG_RETENTION_DAYS
from ml.schema import DATASETS, PARTITION_KEY

ERRORS_ROOT = "errors"
LOG_STREAM_NAME = "S3Delivery"


@dataclass(frozen=True, slots=True)
class IngestionArgs:
    raw_bucket_arn: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    glue_database_name: pulumi.Input[str]
    glue_table_name: pulumi.Input[str]
    # The raw dataset (a key of ml.schema.DATASETS) the stream delivers.
    dataset: str = "customers"
    buffer_seconds: int = 300
    buffer_mb: int = 128
    log_retention_days: int = 30
    tags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problems: list[str] = []
        known = DATASETS.get(self.dataset)
        if known is None:
            problems.append(
                f"dataset {self.dataset!r}: not in ml.schema.DATASETS "
                f"({', '.join(sorted(DATASETS))})"
            )
        elif known.zone != "raw":
            problems.append(
                f"dataset {self.dataset!r}: lives in the {known.zone} zone; the stream "
                "delivers into the raw zone only"
            )
        if not 60 <= self.buffer_seconds <= 900:
            problems.append(
                f"buffer_seconds {self.buffer_seconds}: Firehose accepts 60 to 900 "
                "with record format conversion"
            )
        if not 64 <= self.buffer_mb <= 128:
            problems.append(f"buffer_mb {self.buffer_mb}: Parquet conversion needs 64 to 128 MB")
        if self.log_retention_days not in LOG_RETENTION_DAYS:
            problems.append(
                f"log_retention_days {self.log_retention_days}: CloudWatch Logs "
                f"accepts {', '.join(map(str, LOG_RETENTION_DAYS))}"
            )
        if problems:
            raise ValueError("invalid IngestionArgs: " + "; ".join(problems))

    @property
    def raw_prefix(self) -> str:
        """Key prefix of the dataset in the raw bucket (no slashes around it)."""
        return DATASETS[self.dataset].prefix

    @property
    def error_root(self) -> str:
        """Key prefix the stream's failed records land under (no slashes around it)."""
        return f"{ERRORS_ROOT}/{self.dataset}"


class Ingestion(pulumi.ComponentResource):
    """A Firehose delivery stream (direct put) into the raw zone, converting JSON to Parquet."""

    stream_name: pulumi.Output[str]
    stream_arn: pulumi.Output[str]
    raw_prefix: str
    error_prefix: str
    log_group_name: pulumi.Output[str]
    role_arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: IngestionArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlplatform:ingestion:Ingestion", name, None, opts)
        self.role_names: list[pulumi.Output[str]] = []  # every role made here (audited)
        self._name = name
        self._tags = dict(args.tags)
        invoke = pulumi.InvokeOutputOptions(parent=self)
        self._account = aws.get_caller_identity_output(opts=invoke).account_id
        self._region = aws.get_region_output(opts=invoke).region
        self._partition_info = aws.get_partition_output(opts=invoke)

        # Same layout as the Glue table's partitions (`dt=YYYY-MM-DD`, Firehose arrival time, UTC).
        self.raw_prefix = args.raw_prefix
        self.error_prefix = (
            f"{args.error_root}/!{{firehose:error-output-type}}/"
            f"{PARTITION_KEY}=!{{timestamp:yyyy-MM-dd}}/"
        )
        log_group, log_stream = self._delivery_logs(args)
        role, policy = self._delivery_role(args, log_group, log_stream)
        stream = self._stream(args, log_group, log_stream, role, policy)

        self.stream_name = stream.name
        self.stream_arn = stream.arn
        self.log_group_name = log_group.name
        self.role_arn = role.arn
        self.register_outputs(
            {
                "stream_name": self.stream_name,
                "stream_arn": self.stream_arn,
                "raw_prefix": self.raw_prefix,
                "error_prefix": self.error_prefix,
                "log_group_name": self.log_group_name,
            }
        )

    # --- builders -------------------------------------------------------------------------------

    def _delivery_logs(
        self, args: IngestionArgs
    ) -> tuple[aws.cloudwatch.LogGroup, aws.cloudwatch.LogStream]:
        child = pulumi.ResourceOptions(parent=self)
        log_group = aws.cloudwatch.LogGroup(
            f"{self._name}-logs",
            retention_in_days=args.log_retention_days,
            kms_key_id=args.kms_key_arn,
            tags=self._tags,
            opts=child,
        )
        log_stream = aws.cloudwatch.LogStream(
            f"{self._name}-log-stream",
            log_group_name=log_group.name,
            name=LOG_STREAM_NAME,
            opts=child,
        )
        return log_group, log_stream

    def _delivery_role(
        self,
        args: IngestionArgs,
        log_group: aws.cloudwatch.LogGroup,
        log_stream: aws.cloudwatch.LogStream,
    ) -> tuple[aws.iam.Role, aws.iam.RolePolicy]:
        """Write the two prefixes, use the lake key through S3, read the table, log."""
        name, child = self._name, pulumi.ResourceOptions(parent=self)
        account, region = self._account, self._region
        role = aws.iam.Role(
            f"{name}-role",
            description=f"{name}: Firehose delivery into the raw zone",
            assume_role_policy=assume_role_policy("firehose.amazonaws.com", source_account=account),
            tags=self._tags,
            opts=child,
        )
        self.role_names.append(role.name)
        arn_prefix = pulumi.Output.concat("arn:", self._partition_info.partition, ":")
        glue_base = pulumi.Output.concat(arn_prefix, "glue:", region, ":", account, ":")
        log_stream_arn = pulumi.Output.concat(
            arn_prefix,
            "logs:",
            region,
            ":",
            account,
            ":log-group:",
            log_group.name,
            ":log-stream:",
            log_stream.name,
        )
        object_arns = [
            prefix_arn(args.raw_bucket_arn, args.raw_prefix),
            prefix_arn(args.raw_bucket_arn, args.error_root),
        ]
        s3_host = pulumi.Output.concat("s3.", region, ".", self._partition_info.dns_suffix)
        policy = aws.iam.RolePolicy(
            f"{name}-role-policy",
            role=role.id,
            policy=policy_document(
                [
                    Statement(
                        ["s3:AbortMultipartUpload", "s3:PutObject"],
                        object_arns,
                        sid="WriteOwnPrefixes",
                    ),
                    # Bucket-level calls Firehose makes while uploading (no listing of keys).
                    Statement(
                        ["s3:GetBucketLocation", "s3:ListBucketMultipartUploads"],
                        [args.raw_bucket_arn],
                        sid="RawBucketUploads",
                    ),
                    Statement(
                        ["kms:Decrypt", "kms:GenerateDataKey"],
                        [args.kms_key_arn],
                        sid="LakeKeyThroughS3",
                        conditions={
                            "StringEquals": {"kms:ViaService": s3_host},
                            # The bucket ARN while S3 bucket keys are on, the object ARN otherwise.
                            "StringLike": {
                                "kms:EncryptionContext:aws:s3:arn": [
                                    args.raw_bucket_arn,
                                    *object_arns,
                                ]
                            },
                        },
                    ),
                    Statement(
                        ["glue:GetTable", "glue:GetTableVersion", "glue:GetTableVersions"],
                        [
                            pulumi.Output.concat(glue_base, "catalog"),
                            pulumi.Output.concat(glue_base, "database/", args.glue_database_name),
                            pulumi.Output.concat(
                                glue_base,
                                "table/",
                                args.glue_database_name,
                                "/",
                                args.glue_table_name,
                            ),
                        ],
                        sid="ReadOwnTableSchema",
                    ),
                    Statement(["logs:PutLogEvents"], [log_stream_arn], sid="WriteOwnLogStream"),
                ]
            ),
            opts=child,
        )
        return role, policy

    def _stream(
        self,
        args: IngestionArgs,
        log_group: aws.cloudwatch.LogGroup,
        log_stream: aws.cloudwatch.LogStream,
        role: aws.iam.Role,
        policy: aws.iam.RolePolicy,
    ) -> aws.kinesis.FirehoseDeliveryStream:
        delivery_prefix = f"{args.raw_prefix}/{PARTITION_KEY}=!{{timestamp:yyyy-MM-dd}}/"
        return aws.kinesis.FirehoseDeliveryStream(
            f"{self._name}-stream",
            destination="extended_s3",
            server_side_encryption=aws.kinesis.FirehoseDeliveryStreamServerSideEncryptionArgs(
                enabled=True,
                key_type="CUSTOMER_MANAGED_CMK",
                key_arn=args.kms_key_arn,
            ),
            extended_s3_configuration=aws.kinesis.FirehoseDeliveryStreamExtendedS3ConfigurationArgs(
                bucket_arn=args.raw_bucket_arn,
                role_arn=role.arn,
                prefix=delivery_prefix,
                error_output_prefix=self.error_prefix,
                buffering_interval=args.buffer_seconds,
                buffering_size=args.buffer_mb,
                # Parquet compresses itself (below); Firehose requires UNCOMPRESSED with conversion.
                compression_format="UNCOMPRESSED",
                kms_key_arn=args.kms_key_arn,
                cloudwatch_logging_options=aws.kinesis.FirehoseDeliveryStreamExtendedS3ConfigurationCloudwatchLoggingOptionsArgs(
                    enabled=True,
                    log_group_name=log_group.name,
                    log_stream_name=log_stream.name,
                ),
                data_format_conversion_configuration=_parquet_conversion(
                    args.glue_database_name, args.glue_table_name, role.arn, self._region
                ),
            ),
            tags=self._tags,
            # IAM is eventually consistent: the role's policy exists before Firehose assumes it.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]),
        )


def _parquet_conversion(
    database: pulumi.Input[str],
    table: pulumi.Input[str],
    role_arn: pulumi.Input[str],
    region: pulumi.Input[str],
) -> aws.kinesis.FirehoseDeliveryStreamExtendedS3ConfigurationDataFormatConversionConfigurationArgs:
    k = aws.kinesis
    return k.FirehoseDeliveryStreamExtendedS3ConfigurationDataFormatConversionConfigurationArgs(
        enabled=True,
        input_format_configuration=k.FirehoseDeliveryStreamExtendedS3ConfigurationDataFormatConversionConfigurationInputFormatConfigurationArgs(
            deserializer=k.FirehoseDeliveryStreamExtendedS3ConfigurationDataFormatConversionConfigurationInputFormatConfigurationDeserializerArgs(
                open_x_json_ser_de=k.FirehoseDeliveryStreamExtendedS3ConfigurationDataFormatConversionConfigurationInputFormatConfigurationDeserializerOpenXJsonSerDeArgs(),
            ),
        ),
        output_format_configuration=k.FirehoseDeliveryStreamExtendedS3ConfigurationDataFormatConversionConfigurationOutputFormatConfigurationArgs(
            serializer=k.FirehoseDeliveryStreamExtendedS3ConfigurationDataFormatConversionConfigurationOutputFormatConfigurationSerializerArgs(
                parquet_ser_de=k.FirehoseDeliveryStreamExtendedS3ConfigurationDataFormatConversionConfigurationOutputFormatConfigurationSerializerParquetSerDeArgs(
                    compression="SNAPPY",
                ),
            ),
        ),
        schema_configuration=k.FirehoseDeliveryStreamExtendedS3ConfigurationDataFormatConversionConfigurationSchemaConfigurationArgs(
            database_name=database,
            table_name=table,
            role_arn=role_arn,
            region=region,
            version_id="LATEST",
        ),
    )
