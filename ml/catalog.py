"""The Glue catalog side of the lake: table definitions from `ml.schema`, and what is cataloged.

`glue_table_input(dataset, location)` is the one Glue `TableInput` for a dataset (Parquet, Hive
partitioned by ``dt``); the sandbox and the tests create tables with it. `list_datasets` reads the
catalog back: each table's location, columns, partitions (registered in Glue or visible in the
lake) and row count when known — from the table's ``numRows``/``recordCount`` parameter, else from
the lake's partition manifests (the committed row counts, see `ml.lake`; unknown when the stream
delivered files whose rows nobody has counted yet). `register_partitions` adds the partitions a
lake write committed, for tables that Athena reads through registered partitions (tables with
partition projection do not need it; it does no harm there).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ml.lake import S3Client, list_partitions, partition_prefix, s3_client
from ml.lake_schema import lake_datasets
from ml.schema import PARTITION_KEY, Dataset

GlueClient = Any

PARQUET_INPUT_FORMAT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
PARQUET_OUTPUT_FORMAT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
ROW_COUNT_PARAMETERS = ("numRows", "recordCount")


class CatalogError(ValueError):
    """The catalog cannot be read or does not hold what was asked for."""


def glue_client(region: str | None = None, endpoint_url: str | None = None) -> GlueClient:
    import boto3

    return boto3.client("glue", region_name=region, endpoint_url=endpoint_url)


def dataset_location(bucket: str, dataset: Dataset) -> str:
    """`s3://bucket/<prefix>/`: the table location of a dataset in its zone bucket."""
    return f"s3://{bucket}/{dataset.prefix}/"


def _storage_descriptor(dataset: Dataset, location: str) -> dict[str, Any]:
    return {
        "Columns": [
            {"Name": c.name, "Type": c.type, "Comment": c.description} for c in dataset.columns
        ],
        "Location": location,
        "InputFormat": PARQUET_INPUT_FORMAT,
        "OutputFormat": PARQUET_OUTPUT_FORMAT,
        "Compressed": True,
        "SerdeInfo": {
            "SerializationLibrary": PARQUET_SERDE,
            "Parameters": {"serialization.format": "1"},
        },
        "StoredAsSubDirectories": False,
    }


def glue_table_input(
    dataset: Dataset, location: str, *, parameters: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The Glue `TableInput` (create_table / update_table) of `dataset` stored at `location`."""
    if not location.startswith("s3://"):
        raise CatalogError(f"table location must be an s3:// URI, got {location!r}")
    return {
        "Name": dataset.name,
        "Description": dataset.description,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {
            "classification": "parquet",
            "EXTERNAL": "TRUE",
            "parquet.compression": "SNAPPY",
            "zone": dataset.zone,
            **(parameters or {}),
        },
        "PartitionKeys": [{"Name": k, "Type": "string"} for k in dataset.partition_keys],
        "StorageDescriptor": _storage_descriptor(
            dataset, location if location.endswith("/") else location + "/"
        ),
    }


def glue_partition_input(dataset: Dataset, bucket: str, dt: str) -> dict[str, Any]:
    """The Glue `PartitionInput` of partition `dt=...` of `dataset` in `bucket`."""
    location = f"s3://{bucket}/{partition_prefix(dataset.prefix, dt)}"
    return {"Values": [dt], "StorageDescriptor": _storage_descriptor(dataset, location)}


def register_partitions(
    database: str,
    dataset: Dataset,
    bucket: str,
    dts: Iterable[str],
    *,
    glue: GlueClient | None = None,
    region: str | None = None,
    endpoint_url: str | None = None,
) -> int:
    """Add partitions to the dataset's table (existing ones are kept). Returns how many were new.

    Raises `CatalogError` when the table is not in the catalog.
    """
    client = glue if glue is not None else glue_client(region, endpoint_url)
    wanted = sorted(set(dts))
    created = 0
    for start in range(0, len(wanted), 100):  # BatchCreatePartition takes at most 100
        batch = wanted[start : start + 100]
        try:
            answer = client.batch_create_partition(
                DatabaseName=database,
                TableName=dataset.name,
                PartitionInputList=[glue_partition_input(dataset, bucket, d) for d in batch],
            )
        except client.exceptions.EntityNotFoundException as exc:
            raise CatalogError(
                f"table {database}.{dataset.name} is not in the Glue catalog: {exc}"
            ) from None
        errors = answer.get("Errors", [])
        real = [
            e
            for e in errors
            if e.get("ErrorDetail", {}).get("ErrorCode") != "AlreadyExistsException"
        ]
        if real:
            detail = real[0].get("ErrorDetail", {})
            raise CatalogError(
                f"could not register {len(real)} partition(s) of {database}.{dataset.name}: "
                f"{detail.get('ErrorCode')}: {detail.get('ErrorMessage')}"
            )
        created += len(batch) - len(errors)
    return created


@dataclass(frozen=True, slots=True)
class CatalogColumn:
    name: str
    type: str
    comment: str = ""


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    """One table of the lake's Glue database."""

    name: str
    location: str
    columns: tuple[CatalogColumn, ...]
    partition_keys: tuple[str, ...]
    partitions: tuple[str, ...]  # e.g. ("dt=2025-01-01", ...), sorted
    row_count: int | None
    row_count_source: str | None  # "numRows", "recordCount", "manifests" or None
    description: str = ""

    @property
    def known(self) -> bool:
        """The table is one of the datasets the platform ships (shared, or a model's)."""
        return self.name in lake_datasets()


def _split_location(location: str) -> tuple[str, str] | None:
    if not location.startswith("s3://"):
        return None
    bucket, _, prefix = location[len("s3://") :].partition("/")
    return (bucket, prefix.strip("/")) if bucket and prefix.strip("/") else None


def list_datasets(
    database: str,
    *,
    glue: GlueClient | None = None,
    s3: S3Client | None = None,
    inspect_lake: bool = True,
    region: str | None = None,
    endpoint_url: str | None = None,
) -> list[CatalogEntry]:
    """Every table of the Glue `database`, sorted by name.

    Partitions are those registered in Glue and, with `inspect_lake`, those visible in the lake
    under the table's S3 location (tables with partition projection register none). Row counts
    come from the table parameters when set; otherwise, with `inspect_lake`, from the committed
    partition manifests, when no partition holds streamed files (whose rows are not counted).
    """
    client = glue if glue is not None else glue_client(region, endpoint_url)
    tables: list[dict[str, Any]] = []
    try:
        for page in client.get_paginator("get_tables").paginate(DatabaseName=database):
            tables.extend(page.get("TableList", []))
    except client.exceptions.EntityNotFoundException:
        raise CatalogError(f"Glue database {database!r} does not exist") from None

    entries: list[CatalogEntry] = []
    reader: S3Client | None = s3
    for table in tables:
        name = str(table["Name"])
        descriptor = table.get("StorageDescriptor", {})
        location = str(descriptor.get("Location", ""))
        keys = tuple(str(k["Name"]) for k in table.get("PartitionKeys", []))
        partitions: set[str] = set()
        for page in client.get_paginator("get_partitions").paginate(
            DatabaseName=database, TableName=name
        ):
            partitions.update(
                "/".join(f"{k}={v}" for k, v in zip(keys, p["Values"], strict=False))
                for p in page.get("Partitions", [])
            )
        row_count, source = _row_count_parameter(table.get("Parameters", {}))
        where = _split_location(location)
        if inspect_lake and where is not None and keys == (PARTITION_KEY,):
            if reader is None:
                reader = s3_client(region, endpoint_url)
            visible = list_partitions(where[0], where[1], s3=reader)
            partitions.update(f"{PARTITION_KEY}={p.dt}" for p in visible)
            streamed = sum(len(p.streamed) for p in visible)
            if row_count is None and visible and not streamed:
                row_count, source = sum(p.rows for p in visible), "manifests"
        entries.append(
            CatalogEntry(
                name=name,
                location=location,
                columns=tuple(
                    CatalogColumn(str(c["Name"]), str(c["Type"]), str(c.get("Comment", "")))
                    for c in descriptor.get("Columns", [])
                ),
                partition_keys=keys,
                partitions=tuple(sorted(partitions)),
                row_count=row_count,
                row_count_source=source,
                description=str(table.get("Description", "")),
            )
        )
    return sorted(entries, key=lambda e: e.name)


def _row_count_parameter(parameters: Mapping[str, str]) -> tuple[int | None, str | None]:
    for key in ROW_COUNT_PARAMETERS:
        raw = parameters.get(key)
        if raw is None:
            continue
        try:
            value = int(float(raw))
        except ValueError:
            continue
        if value >= 0:
            return value, key
    return None, None
