"""The sandbox's Firehose delivery: moto's raw batches finished the way the stream says."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from moto import mock_aws

from ml.stream import send_records
from mlplat.sandbox.firehose import (
    FirehoseEmulationError,
    convert,
    deliver,
    delivery_prefix,
    expand_prefix,
    glue_schema,
)

WHEN = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)
COLUMNS = [
    {"Name": "customer_id", "Type": "string"},
    {"Name": "event_time", "Type": "timestamp"},
    {"Name": "tenure_months", "Type": "bigint"},
    {"Name": "monthly_charges", "Type": "double"},
    {"Name": "is_senior", "Type": "boolean"},
]


def _stream(aws: dict[str, Any], name: str, conversion: bool = True, prefix: str = "") -> None:
    destination: dict[str, Any] = {
        "RoleARN": "arn:aws:iam::123456789012:role/delivery",
        "BucketARN": "arn:aws:s3:::raw",
        "Prefix": prefix,
        "ErrorOutputPrefix": "errors/",
        "EncryptionConfiguration": {"KMSEncryptionConfig": {"AWSKMSKeyARN": aws["key"]}},
    }
    if conversion:
        destination["DataFormatConversionConfiguration"] = {
            "Enabled": True,
            "SchemaConfiguration": {
                "DatabaseName": "lake",
                "TableName": "customers",
                "RoleARN": "arn:aws:iam::123456789012:role/delivery",
                "Region": "us-east-1",
            },
            "InputFormatConfiguration": {"Deserializer": {"OpenXJsonSerDe": {}}},
            "OutputFormatConfiguration": {"Serializer": {"ParquetSerDe": {}}},
        }
    aws["firehose"].create_delivery_stream(
        DeliveryStreamName=name, ExtendedS3DestinationConfiguration=destination
    )


@pytest.fixture
def aws() -> Iterator[dict[str, Any]]:
    with mock_aws():
        clients = {
            name: boto3.client(name, region_name="us-east-1")
            for name in ("s3", "firehose", "glue", "cloudwatch", "kms")
        }
        clients["s3"].create_bucket(Bucket="raw")
        clients["glue"].create_database(DatabaseInput={"Name": "lake"})
        clients["glue"].create_table(
            DatabaseName="lake",
            TableInput={
                "Name": "customers",
                "StorageDescriptor": {"Columns": COLUMNS},
                "PartitionKeys": [{"Name": "dt", "Type": "string"}],
            },
        )
        clients["key"] = clients["kms"].create_key()["KeyMetadata"]["Arn"]
        _stream(clients, "ingest", prefix="customers/dt=!{timestamp:yyyy-MM-dd}/")
        yield clients


def _keys(s3: Any) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket="raw").get("Contents", []))


def test_a_batch_becomes_one_parquet_object_where_firehose_puts_it(aws):
    records = [
        {
            "customer_id": "c-1",
            "event_time": "2025-03-04T05:00:00.250Z",
            "Tenure_Months": 7,  # the OpenX SerDe matches keys case-insensitively
            "monthly_charges": 61.5,
            "is_senior": False,
            "unknown": "ignored",
        },
        {"customer_id": "c-2", "event_time": "2025-03-04T05:01:00Z", "is_senior": True},
    ]
    assert send_records(records, "ingest", firehose=aws["firehose"]).ok
    [raw] = _keys(aws["s3"])
    assert raw.startswith("customers/dt=!{timestamp:yyyy-MM-dd}/")  # moto: as received

    [delivery] = deliver(
        aws["s3"], aws["firehose"], aws["glue"], aws["cloudwatch"], "ingest", now=WHEN
    )
    assert delivery.source_key == raw and delivery.records == 2
    assert delivery.key.startswith("customers/dt=2025-03-04/ingest-1-2025-03-04-05-06-07-")
    assert delivery.key.endswith(".parquet")
    assert _keys(aws["s3"]) == [delivery.key]
    obj = aws["s3"].get_object(Bucket="raw", Key=delivery.key)
    assert (obj["ServerSideEncryption"], obj["SSEKMSKeyId"]) == ("aws:kms", aws["key"])
    table = pq.read_table(io.BytesIO(obj["Body"].read()))
    assert table.schema == glue_schema(aws["glue"], "lake", "customers")
    assert table.to_pylist() == [
        {
            "customer_id": "c-1",
            "event_time": datetime(2025, 3, 4, 5, 0, 0, 250_000, tzinfo=UTC),
            "tenure_months": 7,
            "monthly_charges": 61.5,
            "is_senior": False,
        },
        {
            "customer_id": "c-2",
            "event_time": datetime(2025, 3, 4, 5, 1, tzinfo=UTC),
            "tenure_months": None,
            "monthly_charges": None,
            "is_senior": True,
        },
    ]
    stats = aws["cloudwatch"].get_metric_statistics(
        Namespace="AWS/Firehose",
        MetricName="DeliveryToS3.Records",
        Dimensions=[{"Name": "DeliveryStreamName", "Value": "ingest"}],
        StartTime=datetime(2025, 3, 4, tzinfo=UTC),
        EndTime=datetime(2025, 3, 5, tzinfo=UTC),
        Period=3600,
        Statistics=["Sum"],
    )["Datapoints"]
    assert [p["Sum"] for p in stats] == [2.0]
    # delivered objects are not delivered again
    assert deliver(aws["s3"], aws["firehose"], aws["glue"], aws["cloudwatch"], "ingest") == []


def test_only_the_named_streams_objects_are_delivered(aws):
    _stream(aws, "other", prefix="customers/dt=!{timestamp:yyyy-MM-dd}/")
    send_records([{"customer_id": "x", "is_senior": True}], "other", firehose=aws["firehose"])
    assert deliver(aws["s3"], aws["firehose"], aws["glue"], aws["cloudwatch"], "ingest") == []
    assert len(_keys(aws["s3"])) == 1


def test_prefixes_expand_like_firehose():
    assert expand_prefix("a/dt=!{timestamp:yyyy-MM-dd}/h=!{timestamp:HH}/", WHEN) == (
        "a/dt=2025-03-04/h=05/"
    )
    assert delivery_prefix("plain", WHEN) == "plain/2025/03/04/05/"  # Firehose's default layout
    assert delivery_prefix("", WHEN) == "2025/03/04/05/"
    with pytest.raises(FirehoseEmulationError, match="only yyyy, MM, dd, HH, mm and ss"):
        expand_prefix("a/!{timestamp:EEE}/", WHEN)
    with pytest.raises(FirehoseEmulationError, match="no dynamic partitioning keys"):
        expand_prefix("a/!{partitionKeyFromQuery:region}/", WHEN)


def test_a_record_the_table_cannot_hold_names_the_column():
    schema = pa.schema([pa.field("tenure_months", pa.int64())])
    with pytest.raises(FirehoseEmulationError, match="column 'tenure_months' cannot be converted"):
        convert(b'{"tenure_months": "seven"}\n', schema)


def test_streams_and_tables_the_sandbox_does_not_emulate_are_refused(aws):
    _stream(aws, "no-conversion", conversion=False)
    with pytest.raises(FirehoseEmulationError, match="no record format conversion"):
        deliver(aws["s3"], aws["firehose"], aws["glue"], aws["cloudwatch"], "no-conversion")
    aws["glue"].create_table(
        DatabaseName="lake",
        TableInput={
            "Name": "nested",
            "StorageDescriptor": {"Columns": [{"Name": "tags", "Type": "array<string>"}]},
        },
    )
    with pytest.raises(FirehoseEmulationError, match="type 'array<string>' is not converted"):
        glue_schema(aws["glue"], "lake", "nested")
