"""What Firehose does with a record after `PutRecordBatch`, for the sandbox.

moto accepts `PutRecordBatch` and puts the batch into the destination bucket at once, but as
received: the JSON lines concatenated, under
`<Prefix>YYYY/MM/DD/HH/<stream>-<version>-<time>-<uuid>` with the prefix's `!{timestamp:...}`
expressions left as text, no record format conversion, no encryption setting and no CloudWatch
metrics. `deliver(...)` finishes each such object the way the
stream's configuration (read back from moto) says Firehose would:

* record format conversion: the JSON lines are parsed by the column names and Glue types of the
  table the stream's `DataFormatConversionConfiguration` names (read from the Glue catalog, as
  Firehose does; fields the table lacks are ignored, as the OpenX JSON SerDe does) and written as
  one Parquet object (Snappy);
* the key: the prefix with its `!{timestamp:<format>}` expressions expanded at the delivery time
  (UTC; a custom prefix replaces Firehose's default `YYYY/MM/DD/HH/`), then
  `<stream>-<version>-<yyyy-MM-dd-HH-mm-ss>-<uuid>.parquet`;
* encryption: SSE-KMS with the destination's `KMSEncryptionConfig` key;
* metrics: `AWS/Firehose` `IncomingRecords`, `DeliveryToS3.Records` and `DeliveryToS3.Success`
  for the stream (what the freshness alarm watches).

moto's raw object is deleted once the converted one is in place. A record the table's types
cannot hold fails the delivery (Firehose would send it to the error prefix; the sandbox stops).
"""

from __future__ import annotations

import io
import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

_EXPRESSION = re.compile(r"!\{timestamp:([^}]*)\}")
# Java DateTimeFormatter letters Firehose accepts in timestamp expressions -> strftime
_JAVA_TO_STRFTIME = (
    ("yyyy", "%Y"),
    ("MM", "%m"),
    ("dd", "%d"),
    ("HH", "%H"),
    ("mm", "%M"),
    ("ss", "%S"),
)
_GLUE_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "double": pa.float64(),
    "float": pa.float32(),
    "bigint": pa.int64(),
    "int": pa.int32(),
    "boolean": pa.bool_(),
    "timestamp": pa.timestamp("ms", tz="UTC"),
    "date": pa.date32(),
}


class FirehoseEmulationError(RuntimeError):
    """A delivery the sandbox cannot finish the way Firehose would (and why)."""


@dataclass(frozen=True, slots=True)
class Delivery:
    source_key: str  # what moto wrote
    key: str  # where Firehose would have put it
    records: int


def expand_prefix(prefix: str, when: datetime) -> str:
    """`prefix` with every `!{timestamp:<format>}` expanded at `when` (UTC)."""

    def expand(match: re.Match[str]) -> str:
        pattern = match.group(1)
        for java, strf in _JAVA_TO_STRFTIME:
            pattern = pattern.replace(java, strf)
        if re.search(r"[A-Za-z]", re.sub(r"%[YmdHMS]", "", pattern)):
            raise FirehoseEmulationError(
                f"timestamp expression {match.group(0)!r}: only yyyy, MM, dd, HH, mm and ss are "
                "expanded by the sandbox"
            )
        return when.astimezone(UTC).strftime(pattern)

    if "!{" in _EXPRESSION.sub("", prefix):
        raise FirehoseEmulationError(
            f"prefix {prefix!r}: only !{{timestamp:...}} expressions are expanded by the sandbox "
            "(no dynamic partitioning keys)"
        )
    return _EXPRESSION.sub(expand, prefix)


def delivery_prefix(prefix: str, when: datetime) -> str:
    """Where Firehose puts an object delivered at `when`: the expanded custom prefix, or (no
    expressions in it) the prefix followed by Firehose's default `YYYY/MM/DD/HH/`."""
    if _EXPRESSION.search(prefix):
        return expand_prefix(prefix, when)
    return moto_prefix(prefix) + when.astimezone(UTC).strftime("%Y/%m/%d/%H/")


def moto_prefix(prefix: str) -> str:
    """Where moto puts a stream's objects: the prefix as text, plus a slash if it lacks one."""
    return prefix if prefix == "" or prefix.endswith("/") else prefix + "/"


def glue_schema(glue: Any, database: str, table: str) -> pa.Schema:
    """The Arrow schema of a Glue table's (non-partition) columns."""
    columns = glue.get_table(DatabaseName=database, Name=table)["Table"]["StorageDescriptor"][
        "Columns"
    ]
    fields = []
    for column in columns:
        glue_type = str(column["Type"]).lower()
        if glue_type not in _GLUE_TYPES:
            raise FirehoseEmulationError(
                f"table {database}.{table} column {column['Name']!r}: type {glue_type!r} is not "
                f"converted by the sandbox ({', '.join(_GLUE_TYPES)})"
            )
        fields.append(pa.field(str(column["Name"]), _GLUE_TYPES[glue_type]))
    return pa.schema(fields)


def convert(body: bytes, schema: pa.Schema) -> pa.Table:
    """JSON lines -> a table of `schema` (OpenX JSON SerDe: unknown fields ignored, keys matched
    case-insensitively, missing fields null)."""
    records = [json.loads(line) for line in body.decode("utf-8").splitlines() if line.strip()]
    lowered = [{str(k).lower(): v for k, v in r.items()} for r in records]
    frame = pd.DataFrame({f.name: [r.get(f.name.lower()) for r in lowered] for f in schema})
    arrays = []
    for field in schema:
        values = frame[field.name]
        try:
            if pa.types.is_timestamp(field.type):
                utc = pd.to_datetime(values, utc=True, format="ISO8601").dt.tz_convert(None)
                array = pa.array(utc.to_numpy(), type=pa.timestamp("ns")).cast(field.type)
            else:
                array = pa.array(values, type=field.type, from_pandas=True)
            arrays.append(array)
        except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError) as exc:
            raise FirehoseEmulationError(
                f"column {field.name!r} cannot be converted to {field.type}: {exc}"
            ) from exc
    return pa.Table.from_arrays(arrays, schema=schema)


def deliver(
    s3: Any,
    firehose: Any,
    glue: Any,
    cloudwatch: Any,
    stream_name: str,
    *,
    now: datetime | None = None,
) -> list[Delivery]:
    """Finish every object moto delivered for `stream_name` the way Firehose would (see the
    module docstring); returns what was delivered where."""
    description = firehose.describe_delivery_stream(DeliveryStreamName=stream_name)[
        "DeliveryStreamDescription"
    ]
    destinations = description.get("Destinations", [])
    if not destinations or "ExtendedS3DestinationDescription" not in destinations[0]:
        raise FirehoseEmulationError(f"stream {stream_name}: only extended S3 is emulated")
    destination = destinations[0]["ExtendedS3DestinationDescription"]
    bucket = str(destination["BucketARN"]).split(":::", 1)[-1]
    prefix = str(destination.get("Prefix", ""))
    conversion = destination.get("DataFormatConversionConfiguration") or {}
    if not conversion.get("Enabled"):
        raise FirehoseEmulationError(
            f"stream {stream_name}: no record format conversion configured; the sandbox emulates "
            "only the Parquet delivery the platform uses"
        )
    serializer = conversion.get("OutputFormatConfiguration", {}).get("Serializer", {})
    if "ParquetSerDe" not in serializer:
        raise FirehoseEmulationError(f"stream {stream_name}: only Parquet output is emulated")
    schema_config = conversion["SchemaConfiguration"]
    schema = glue_schema(glue, schema_config["DatabaseName"], schema_config["TableName"])
    kms = destination.get("EncryptionConfiguration", {}).get("KMSEncryptionConfig", {})
    sse = (
        {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms["AWSKMSKeyARN"]}
        if kms.get("AWSKMSKeyARN")
        else {}
    )
    version = description.get("VersionId", "1")
    raw_prefix = moto_prefix(prefix)
    moto_object = re.compile(
        r"\d{4}/\d{2}/\d{2}/\d{2}/" + re.escape(stream_name) + r"-[^/]*(?<!\.parquet)$"
    )
    deliveries: list[Delivery] = []
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=raw_prefix):
        for obj in page.get("Contents", []):
            source = str(obj["Key"])
            if not moto_object.match(source.removeprefix(raw_prefix)):
                continue  # another stream's, or already delivered
            when = now or obj["LastModified"]
            table = convert(s3.get_object(Bucket=bucket, Key=source)["Body"].read(), schema)
            out = io.BytesIO()
            pq.write_table(table, out, compression="snappy")
            key = (
                delivery_prefix(prefix, when)
                + f"{stream_name}-{version}-{when.astimezone(UTC):%Y-%m-%d-%H-%M-%S}-"
                + f"{uuid.uuid4()}.parquet"
            )
            s3.put_object(Bucket=bucket, Key=key, Body=out.getvalue(), **sse)
            s3.delete_object(Bucket=bucket, Key=source)
            deliveries.append(Delivery(source, key, table.num_rows))
    if deliveries:
        records = float(sum(d.records for d in deliveries))
        dimensions = [{"Name": "DeliveryStreamName", "Value": stream_name}]
        stamp = now or datetime.now(UTC)
        cloudwatch.put_metric_data(
            Namespace="AWS/Firehose",
            MetricData=[
                {"MetricName": name, "Dimensions": dimensions, "Timestamp": stamp, **value}
                for name, value in (
                    ("IncomingRecords", {"Value": records, "Unit": "Count"}),
                    ("DeliveryToS3.Records", {"Value": records, "Unit": "Count"}),
                    ("DeliveryToS3.Success", {"Value": 1.0, "Unit": "None"}),
                )
            ],
        )
    return deliveries
