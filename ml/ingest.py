"""Batch ingestion: a validated frame committed to its dataset's zone bucket, then cataloged.

`ingest_frame` is what `mlplat data ingest` runs once it has read the file (`ml.lake.load_file`):
`ml.lake.write_dataset` commits every partition whole, then `ml.catalog.register_partitions` adds
the partitions to the dataset's Glue table. Once the data is committed a cataloging failure does
not undo it: the result says what failed (`Ingested.catalog_error`), so the caller can report both.

Partitions are the UTC days of the dataset's partition column (`partition_column`): the snapshots'
`event_time`, the outcomes' `observed_at` (`ml.labels`: a day's delivery of outcomes is its own
partition, so ingesting it replaces no other day's outcomes; the stream partitions by arrival too).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from ml.lake import WriteResult
    from ml.outputs import PlatformOutputs
    from ml.schema import Dataset


def partition_column(dataset: Dataset) -> str | None:
    """The column whose UTC day partitions `dataset`'s batch uploads: `observed_at` for the
    outcomes, None (the lake's default, the first required timestamp) for the others."""
    from ml.labels import PARTITION_COLUMN
    from ml.schema import CUSTOMER_OUTCOMES

    return PARTITION_COLUMN if dataset.name == CUSTOMER_OUTCOMES.name else None


class IngestError(RuntimeError):
    """Writing to the lake failed; nothing was left half-written."""


@dataclass(frozen=True, slots=True)
class Ingested:
    bucket: str
    written: WriteResult
    # new partitions registered in the Glue table; None when not cataloged
    cataloged: int | None = None
    catalog_error: str | None = None

    @property
    def days(self) -> list[str]:
        return [p.dt for p in self.written.partitions]


def ingest_frame(
    frame: pd.DataFrame,
    dataset: Dataset,
    platform: PlatformOutputs,
    *,
    dt: str | None = None,
    rows_per_file: int = 1_000_000,
    catalog: bool = True,
    endpoint_url: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Ingested:
    """Commit `frame` to `dataset`'s zone bucket (SSE-KMS with the lake key) and, with `catalog`,
    register its partitions in the platform's Glue database.

    Raises `ml.lake.LakeError` for a frame or option the lake refuses (nothing written) and
    `IngestError` when S3 fails during the write.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    from ml.catalog import CatalogError, register_partitions
    from ml.lake import write_dataset, zone_bucket

    bucket = zone_bucket(platform, dataset.zone)
    try:
        written = write_dataset(
            frame,
            dataset,
            bucket,
            kms_key_id=platform.lake_kms_key_arn,
            dt=dt,
            partition_column=None if dt is not None else partition_column(dataset),
            rows_per_file=rows_per_file,
            region=platform.region,
            endpoint_url=endpoint_url,
            progress=progress,
        )
    except (ClientError, BotoCoreError) as exc:
        raise IngestError(
            f"writing to s3://{bucket}/{dataset.prefix}/ failed: {exc}; no partition "
            "was left half-written"
        ) from None
    if not catalog:
        return Ingested(bucket, written)
    try:
        added = register_partitions(
            platform.glue_database,
            dataset,
            bucket,
            [p.dt for p in written.partitions],
            region=platform.region,
            endpoint_url=endpoint_url,
        )
    except (CatalogError, ClientError, BotoCoreError) as exc:
        return Ingested(bucket, written, catalog_error=str(exc))
    return Ingested(bucket, written, cataloged=added)
