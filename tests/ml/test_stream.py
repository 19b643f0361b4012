"""ml.stream: batching within Firehose limits, retries of failed records only, delivery to S3."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

import boto3
import numpy as np
import pandas as pd
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from ml import lake, stream
from ml.lake import SchemaError
from ml.sample_data import generate_customers
from ml.schema import CUSTOMERS_RAW
from ml.stream import DeliveryResult, FailedRecord, StreamError


class StubFirehose:
    """put_record_batch answers scripted per call: a set of positions to fail, or an exception."""

    def __init__(self, script: Sequence[Mapping[int, str] | Exception] = ()) -> None:
        self.script = list(script)
        self.calls: list[list[bytes]] = []

    def put_record_batch(self, DeliveryStreamName: str, Records: list[dict[str, bytes]]) -> Any:
        assert DeliveryStreamName == "ingest"
        self.calls.append([r["Data"] for r in Records])
        step = self.script.pop(0) if self.script else {}
        if isinstance(step, Exception):
            raise step
        responses = [
            {"ErrorCode": step[i], "ErrorMessage": f"{step[i]} on {i}"}
            if i in step
            else {"RecordId": f"id-{i}"}
            for i in range(len(Records))
        ]
        return {"FailedPutCount": len(step), "Encrypted": True, "RequestResponses": responses}


def client_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": f"{code} message"}}, "PutRecordBatch")


def send(
    records: Sequence[Any], stub: StubFirehose, sleeps: list[float] | None = None, **kwargs: Any
) -> DeliveryResult:
    waits = sleeps if sleeps is not None else []
    return stream.send_records(records, "ingest", firehose=stub, sleep=waits.append, **kwargs)


def test_encode_record_is_a_json_line_with_iso_datetimes_and_nulls() -> None:
    line = stream.encode_record(
        {
            "t": datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
            "ts": pd.Timestamp("2025-01-02T03:04:05.123456Z"),
            "d": date(2025, 1, 2),
            "i": np.int64(7),
            "f": np.float64(1.5),
            "nan": math.nan,
            "na": pd.NA,
            "nat": pd.NaT,
            "b": np.bool_(True),
            "s": "é",
        }
    )
    assert line.endswith(b"\n")
    assert line.count(b"\n") == 1
    assert json.loads(line) == {
        "t": "2025-01-02T03:04:05+00:00",
        "ts": "2025-01-02T03:04:05.123456+00:00",
        "d": "2025-01-02",
        "i": 7,
        "f": 1.5,
        "nan": None,
        "na": None,
        "nat": None,
        "b": True,
        "s": "é",
    }


def test_encode_record_rejects_unencodable_values() -> None:
    with pytest.raises(TypeError, match="cannot encode object as JSON"):
        stream.encode_record({"x": object()})


def test_batches_respect_record_and_byte_limits() -> None:
    assert [len(b) for b in stream.batches([10] * 1201)] == [500, 500, 201]
    mib = 1024 * 1024
    # 4 MiB per call: five 1,000,000-byte records do not fit in one call
    sizes = [1_000_000] * 5
    assert list(stream.batches(sizes)) == [[0, 1, 2, 3], [4]]
    assert list(stream.batches([4 * mib, 1])) == [[0], [1]]
    assert list(stream.batches([])) == []


def test_all_records_delivered_in_few_calls() -> None:
    stub = StubFirehose()
    records = [{"n": i} for i in range(1234)]
    result = send(records, stub)
    assert result == DeliveryResult("ingest", delivered=1234, failed=(), calls=3, retried=0)
    assert result.ok
    assert [len(c) for c in stub.calls] == [500, 500, 234]
    assert [json.loads(d)["n"] for c in stub.calls for d in c] == list(range(1234))


def test_only_failed_records_are_retried_with_exponential_backoff() -> None:
    stub = StubFirehose(
        [
            {1: "ServiceUnavailableException", 3: "InternalFailure"},
            {0: "ServiceUnavailableException"},  # positions within the retried subset: record 1
            {},
        ]
    )
    sleeps: list[float] = []
    result = send([{"n": i} for i in range(5)], stub, sleeps, base_delay=0.5)
    assert result.delivered == 5
    assert result.failed == ()
    assert result.calls == 3
    assert result.retried == 2
    assert [[json.loads(d)["n"] for d in c] for c in stub.calls] == [[0, 1, 2, 3, 4], [1, 3], [1]]
    assert sleeps == [0.5, 1.0]


def test_undeliverable_records_are_reported_with_their_error_codes() -> None:
    always = {0: "ServiceUnavailableException"}
    # records 0 and 2 fail; then record 0 (first of the retried pair) keeps failing
    stub = StubFirehose([{0: "InternalFailure", 2: "ServiceUnavailableException"}] + [always] * 3)
    sleeps: list[float] = []
    records = [{"n": i} for i in range(4)]
    result = send(records, stub, sleeps, max_attempts=4, base_delay=1.0, max_delay=3.0)
    assert result.delivered == 3
    assert result.failed == (
        FailedRecord(
            0,
            stream.encode_record(records[0]),
            "ServiceUnavailableException",
            "ServiceUnavailableException on 0",
        ),
    )
    assert not result.ok
    assert result.error_counts == {"ServiceUnavailableException": 1}
    assert result.calls == 4
    assert [[json.loads(d)["n"] for d in c] for c in stub.calls] == [[0, 1, 2, 3], [0, 2], [0], [0]]
    assert sleeps == [1.0, 2.0, 3.0]  # capped at max_delay


def test_oversized_records_are_reported_not_sent() -> None:
    stub = StubFirehose()
    big = {"blob": "x" * stream.MAX_RECORD_BYTES}
    result = send([{"n": 0}, big, {"n": 2}], stub)
    assert result.delivered == 2
    assert [(f.index, f.error_code) for f in result.failed] == [(1, "RecordTooLarge")]
    assert "at most 1,024,000 per record" in result.failed[0].error_message
    assert all(len(d) < 100 for c in stub.calls for d in c)


def test_throttled_calls_are_retried_whole() -> None:
    stub = StubFirehose([client_error("ThrottlingException"), {}])
    sleeps: list[float] = []
    result = send([{"n": 1}, {"n": 2}], stub, sleeps, base_delay=0.25)
    assert result.delivered == 2
    assert result.calls == 2
    assert sleeps == [0.25]


def test_throttling_that_never_ends_reports_every_record() -> None:
    stub = StubFirehose([client_error("ServiceUnavailableException")] * 3)
    result = send([{"n": 1}, {"n": 2}], stub, max_attempts=3)
    assert result.delivered == 0
    assert [(f.index, f.error_code) for f in result.failed] == [
        (0, "ServiceUnavailableException"),
        (1, "ServiceUnavailableException"),
    ]


def test_unrecoverable_errors_raise_with_the_partial_result() -> None:
    stub = StubFirehose([{}, client_error("ResourceNotFoundException")])
    records = [{"n": i} for i in range(501)]
    with pytest.raises(StreamError, match="put_record_batch to 'ingest' failed") as info:
        send(records, stub)
    assert info.value.result.delivered == 500
    assert [(f.index, f.error_code) for f in info.value.result.failed] == [
        (500, "ResourceNotFoundException")
    ]


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="max_attempts must be >= 1, got 0"):
        send([{"n": 1}], StubFirehose(), max_attempts=0)


def test_frame_records_validates_against_the_schema() -> None:
    frame = generate_customers(3, seed=1)
    records = stream.frame_records(frame, CUSTOMERS_RAW)
    assert len(records) == 3
    assert json.loads(stream.encode_record(records[0]))["event_time"] == (
        frame["event_time"][0].isoformat()
    )
    with pytest.raises(SchemaError, match="missing column\\(s\\): region"):
        stream.frame_records(frame.drop(columns="region"), CUSTOMERS_RAW)


def test_moto_firehose_delivers_records_under_the_raw_prefix() -> None:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="raw-bucket")
        firehose = boto3.client("firehose", region_name="us-east-1")
        firehose.create_delivery_stream(
            DeliveryStreamName="ingest",
            DeliveryStreamType="DirectPut",
            ExtendedS3DestinationConfiguration={
                "RoleARN": "arn:aws:iam::123456789012:role/firehose",
                "BucketARN": "arn:aws:s3:::raw-bucket",
                # the ingestion component's layout; moto neither expands `!{...}` nor converts
                "Prefix": "customers/dt=!{timestamp:yyyy-MM-dd}/",
                "BufferingHints": {"SizeInMBs": 64, "IntervalInSeconds": 60},
            },
        )
        frame = generate_customers(1200, seed=2)
        result = stream.send_records(
            stream.frame_records(frame, CUSTOMERS_RAW), "ingest", region="us-east-1"
        )
        assert result == DeliveryResult("ingest", delivered=1200, failed=(), calls=3, retried=0)

        listed = s3.list_objects_v2(Bucket="raw-bucket")["Contents"]
        assert len(listed) == 3  # one object per batch in moto
        assert all(o["Key"].startswith("customers/dt=") for o in listed)
        # moto's unexpanded prefix is no `dt=YYYY-MM-DD` partition: lake readers are not misled
        assert lake.list_partitions("raw-bucket", "customers", s3=s3) == []
        lines = b"".join(
            s3.get_object(Bucket="raw-bucket", Key=o["Key"])["Body"].read() for o in listed
        ).splitlines()
        rows = sorted((json.loads(line) for line in lines), key=lambda r: r["customer_id"])
        assert len(rows) == 1200
        assert [r["customer_id"] for r in rows] == sorted(frame["customer_id"])
        assert set(rows[0]) == set(CUSTOMERS_RAW.column_names)
        first = frame.set_index("customer_id").loc[rows[0]["customer_id"]]
        assert rows[0]["event_time"] == first["event_time"].isoformat()
