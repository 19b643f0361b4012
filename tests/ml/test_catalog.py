"""ml.catalog under moto: Glue tables from ml.schema, listing, partitions, row counts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from ml import catalog, lake
from ml.catalog import CatalogColumn, CatalogError
from ml.lake_schema import lake_datasets
from ml.models.churn.spec import PREDICTIONS
from ml.sample_data import generate_customers
from ml.schema import CUSTOMERS_RAW

# Every table of the lake: the shared datasets and each model's own.
DATASETS = lake_datasets()

DATABASE = "lake_db"
BUCKETS = {"raw": "raw-b", "curated": "cur-b", "features": "feat-b", "predictions": "pred-b"}


@pytest.fixture
def aws() -> Iterator[tuple[Any, Any]]:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        glue = boto3.client("glue", region_name="us-east-1")
        for bucket in BUCKETS.values():
            s3.create_bucket(Bucket=bucket)
        glue.create_database(DatabaseInput={"Name": DATABASE})
        for dataset in DATASETS.values():
            location = catalog.dataset_location(BUCKETS[dataset.zone], dataset)
            glue.create_table(
                DatabaseName=DATABASE, TableInput=catalog.glue_table_input(dataset, location)
            )
        yield s3, glue


def test_glue_table_input_follows_the_schema() -> None:
    table = catalog.glue_table_input(PREDICTIONS, "s3://pred-b/predictions")
    assert table["Name"] == "predictions"
    assert table["TableType"] == "EXTERNAL_TABLE"
    assert table["Parameters"] == {
        "classification": "parquet",
        "EXTERNAL": "TRUE",
        "parquet.compression": "SNAPPY",
        "zone": "predictions",
    }
    assert table["PartitionKeys"] == [{"Name": "dt", "Type": "string"}]
    descriptor = table["StorageDescriptor"]
    assert descriptor["Location"] == "s3://pred-b/predictions/"
    assert [(c["Name"], c["Type"]) for c in descriptor["Columns"]] == [
        (c.name, c.type) for c in PREDICTIONS.columns
    ]
    assert descriptor["InputFormat"] == catalog.PARQUET_INPUT_FORMAT
    assert descriptor["OutputFormat"] == catalog.PARQUET_OUTPUT_FORMAT
    assert descriptor["SerdeInfo"]["SerializationLibrary"] == catalog.PARQUET_SERDE
    assert (
        catalog.glue_table_input(PREDICTIONS, "s3://b/p/", parameters={"numRows": "5"})[
            "Parameters"
        ]["numRows"]
        == "5"
    )


def test_glue_table_input_rejects_a_non_s3_location() -> None:
    with pytest.raises(CatalogError, match="must be an s3:// URI, got '/tmp/x'"):
        catalog.glue_table_input(CUSTOMERS_RAW, "/tmp/x")


def test_list_datasets_returns_the_shipped_datasets(aws: tuple[Any, Any]) -> None:
    s3, glue = aws
    entries = catalog.list_datasets(DATABASE, glue=glue, s3=s3)
    assert [e.name for e in entries] == sorted(DATASETS)
    for entry in entries:
        dataset = DATASETS[entry.name]
        assert entry.known
        assert entry.location == f"s3://{BUCKETS[dataset.zone]}/{dataset.prefix}/"
        assert entry.columns == tuple(
            CatalogColumn(c.name, c.type, c.description) for c in dataset.columns
        )
        assert entry.partition_keys == ("dt",)
        assert entry.partitions == ()
        assert entry.row_count is None
        assert entry.row_count_source is None
        assert entry.description == dataset.description


def catalog_only(glue: Any) -> dict[str, catalog.CatalogEntry]:
    return {e.name: e for e in catalog.list_datasets(DATABASE, glue=glue, inspect_lake=False)}


def test_written_partitions_are_registered_and_counted(aws: tuple[Any, Any]) -> None:
    s3, glue = aws
    frame = generate_customers(150, seed=3)
    result = lake.write_dataset(frame, CUSTOMERS_RAW, "raw-b", s3=s3)
    days = [p.dt for p in result.partitions]
    expected = tuple(f"dt={d}" for d in days)

    # before cataloging: partitions and rows known from the lake, nothing registered in Glue
    before = {e.name: e for e in catalog.list_datasets(DATABASE, glue=glue, s3=s3)}
    assert before["customers"].partitions == expected
    assert before["customers"].row_count == 150
    assert before["customers"].row_count_source == "manifests"
    assert before["customers_curated"].partitions == ()
    assert catalog_only(glue)["customers"].partitions == ()
    assert catalog_only(glue)["customers"].row_count is None

    added = catalog.register_partitions(DATABASE, CUSTOMERS_RAW, "raw-b", days, glue=glue)
    assert added == len(days)
    again = catalog.register_partitions(DATABASE, CUSTOMERS_RAW, "raw-b", days[:2], glue=glue)
    assert again == 0  # existing partitions are kept, not an error

    assert catalog_only(glue)["customers"].partitions == expected
    entry = {e.name: e for e in catalog.list_datasets(DATABASE, glue=glue, s3=s3)}["customers"]
    assert entry.partitions == expected
    assert entry.row_count == 150
    stored = glue.get_partition(
        DatabaseName=DATABASE, TableName="customers", PartitionValues=[days[0]]
    )["Partition"]
    assert stored["StorageDescriptor"]["Location"] == f"s3://raw-b/customers/dt={days[0]}/"
    assert stored["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"] == (
        catalog.PARQUET_SERDE
    )


def test_streamed_files_make_the_row_count_unknown(aws: tuple[Any, Any]) -> None:
    s3, glue = aws
    lake.write_dataset(
        generate_customers(20, seed=4), CUSTOMERS_RAW, "raw-b", dt="2025-01-01", s3=s3
    )
    s3.put_object(
        Bucket="raw-b", Key="customers/dt=2025-01-02/ingest-1-2025-01-02-00-00-00-x", Body=b"PAR1"
    )
    entry = {e.name: e for e in catalog.list_datasets(DATABASE, glue=glue, s3=s3)}["customers"]
    assert entry.partitions == ("dt=2025-01-01", "dt=2025-01-02")
    assert (entry.row_count, entry.row_count_source) == (None, None)


def test_row_count_parameter_wins_over_manifests(aws: tuple[Any, Any]) -> None:
    s3, glue = aws
    glue.create_table(
        DatabaseName=DATABASE,
        TableInput=catalog.glue_table_input(
            CUSTOMERS_RAW, "s3://raw-b/elsewhere/", parameters={"recordCount": "42"}
        )
        | {"Name": "customers_copy"},
    )
    glue.create_table(
        DatabaseName=DATABASE,
        TableInput=catalog.glue_table_input(
            CUSTOMERS_RAW, "s3://raw-b/unknown/", parameters={"numRows": "-1"}
        )
        | {"Name": "customers_unknown"},
    )
    entries = {e.name: e for e in catalog.list_datasets(DATABASE, glue=glue, s3=s3)}
    assert (entries["customers_copy"].row_count, entries["customers_copy"].row_count_source) == (
        42,
        "recordCount",
    )
    assert entries["customers_copy"].known is False
    assert entries["customers_unknown"].row_count is None


def test_missing_database_and_table_are_clear_errors(aws: tuple[Any, Any]) -> None:
    _, glue = aws
    with pytest.raises(CatalogError, match="Glue database 'nope' does not exist"):
        catalog.list_datasets("nope", glue=glue)
    glue.delete_table(DatabaseName=DATABASE, Name="customers")
    with pytest.raises(CatalogError, match=f"table {DATABASE}.customers is not in the Glue"):
        catalog.register_partitions(DATABASE, CUSTOMERS_RAW, "raw-b", ["2025-01-01"], glue=glue)
