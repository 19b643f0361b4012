"""The composition root: `build(settings)` wires the components into the platform.

It returns the platform outputs (exactly the fields of `ml.outputs.PlatformOutputs`) as Pulumi
inputs; `__main__` exports them. No config is read here: everything arrives through `settings`.
Component logical names ("lake", "ingest", ...) are API: renaming one replaces its resources.
"""

from __future__ import annotations

import re
from typing import Any

import pulumi
import pulumi_aws as aws

from components.data_lake import DataLake, DataLakeArgs
from components.ingestion import Ingestion, IngestionArgs
from ml.schema import CUSTOMERS_RAW
from stacks.settings import Settings


def database_name(settings: Settings) -> str:
    return re.sub(r"[^a-z0-9_]", "_", f"ml_platform_{settings.stack}".lower())


def build(settings: Settings) -> dict[str, Any]:
    identity = aws.get_caller_identity_output()
    lake = DataLake(
        "lake",
        DataLakeArgs(
            database_name=database_name(settings),
            kms_deletion_window_days=settings.kms_deletion_window_days,
            force_destroy=settings.force_destroy,
            raw_ia_days=settings.raw_ia_days,
            raw_archive_days=settings.raw_archive_days,
            noncurrent_version_days=settings.noncurrent_version_days,
            raw_object_lock=settings.raw_object_lock,
            athena_bytes_scanned_cutoff=settings.athena_bytes_scanned_cutoff,
            tags=settings.tags,
            protect=settings.is_prod,
        ),
    )
    ingestion = Ingestion(
        "ingest",
        IngestionArgs(
            raw_bucket_arn=lake.bucket_arns["raw"],
            kms_key_arn=lake.key_arn,
            glue_database_name=lake.database_name,
            glue_table_name=lake.table_names[CUSTOMERS_RAW.name],
            dataset=CUSTOMERS_RAW.name,
            buffer_seconds=settings.firehose_buffer_seconds,
            buffer_mb=settings.firehose_buffer_mb,
            log_retention_days=settings.log_retention_days,
            tags=settings.tags,
        ),
    )

    outputs: dict[str, Any] = {
        "stack": settings.stack,
        "environment": settings.environment,
        "region": settings.region,
        "account_id": identity.account_id,
        "tags": settings.tags,
        "lake_kms_key_arn": lake.key_arn,
        "raw_bucket": lake.bucket_names["raw"],
        "curated_bucket": lake.bucket_names["curated"],
        "features_bucket": lake.bucket_names["features"],
        "models_bucket": lake.bucket_names["models"],
        "predictions_bucket": lake.bucket_names["predictions"],
        "glue_database": lake.database_name,
        "athena_workgroup": lake.workgroup_name,
        "ingest_stream_name": ingestion.stream_name,
    }
    return outputs


def export(outputs: dict[str, Any]) -> None:
    for key, value in outputs.items():
        pulumi.export(key, value)
