"""ml.lake under moto: round trips, partition filters, atomic commits, schema errors."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pandas as pd
import pytest
from botocore.exceptions import EndpointConnectionError
from moto import mock_aws

from ml import lake
from ml.lake import LakeError, SchemaError, UnknownDatasetError
from ml.lake_schema import lake_datasets
from ml.models import spec
from ml.models.churn.spec import PREDICTIONS
from ml.sample_data import generate_customers
from ml.schema import CUSTOMERS_RAW, DATASETS
from tests.conftest import make_outputs

BUCKET = "raw-bucket"
PART_KEY = re.compile(
    r"^customers/dt=(\d{4}-\d{2}-\d{2})/part-(\d{8}T\d{12}Z-[0-9a-f]{8})-(\d{5})\.parquet$"
)


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


@pytest.fixture
def kms_key() -> str:
    # inside the s3 fixture's mock: a real (moto) key ARN
    return str(boto3.client("kms", region_name="us-east-1").create_key()["KeyMetadata"]["Arn"])


def keys(s3: Any, prefix: str = "") -> list[str]:
    answer = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return sorted(o["Key"] for o in answer.get("Contents", []))


def by_day(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` in the order the lake returns it: partitions by date, rows in input order."""
    days = frame["event_time"].dt.strftime("%Y-%m-%d")
    return (
        frame.assign(_d=days)
        .sort_values("_d", kind="stable")
        .drop(columns="_d")
        .reset_index(drop=True)
    )


class FlakyS3:
    """The real client, except that the n-th PutObject (and optionally every delete) fails."""

    def __init__(self, real: Any, fail_on_put: int, fail_deletes: bool = False) -> None:
        self.real = real
        self.fail_on_put = fail_on_put
        self.fail_deletes = fail_deletes
        self.puts: list[str] = []

    def put_object(self, **kwargs: Any) -> Any:
        self.puts.append(kwargs["Key"])
        if len(self.puts) == self.fail_on_put:
            raise EndpointConnectionError(endpoint_url="https://s3.example")
        return self.real.put_object(**kwargs)

    def delete_objects(self, **kwargs: Any) -> Any:
        if self.fail_deletes:
            raise EndpointConnectionError(endpoint_url="https://s3.example")
        return self.real.delete_objects(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


# --- round trip -----------------------------------------------------------------------------


def test_round_trip_preserves_rows_and_schema_dtypes(s3: Any) -> None:
    frame = generate_customers(400, seed=1)
    result = lake.write_dataset(frame, CUSTOMERS_RAW, BUCKET, rows_per_file=7, s3=s3)

    days = sorted(set(frame["event_time"].dt.strftime("%Y-%m-%d")))
    assert [p.dt for p in result.partitions] == days
    assert result.rows == 400
    assert result.dataset == "customers"
    back = lake.read_dataset(CUSTOMERS_RAW, BUCKET, s3=s3)
    assert {c: str(t) for c, t in back.dtypes.items()} == {
        c.name: c.pandas_dtype for c in CUSTOMERS_RAW.columns
    }
    pd.testing.assert_frame_equal(back, by_day(frame))


def test_layout_is_hive_partitioned_parquet_with_one_manifest_per_partition(s3: Any) -> None:
    frame = generate_customers(120, seed=2)
    result = lake.write_dataset(frame, CUSTOMERS_RAW, BUCKET, rows_per_file=5, s3=s3)

    objects = keys(s3)
    manifests = [k for k in objects if k.endswith("/_manifest.json")]
    parts = [k for k in objects if not k.endswith("/_manifest.json")]
    assert len(manifests) == len(result.partitions)
    assert len(parts) == result.files
    for key in parts:
        match = PART_KEY.match(key)
        assert match is not None, key
        assert match.group(2) == result.write_id
    for partition in result.partitions:
        body = s3.get_object(Bucket=BUCKET, Key=f"customers/dt={partition.dt}/_manifest.json")
        manifest = json.loads(body["Body"].read())
        assert manifest["format"] == lake.MANIFEST_FORMAT
        assert manifest["dataset"] == "customers"
        assert manifest["partition"] == {"dt": partition.dt}
        assert manifest["write_id"] == result.write_id
        assert [f["key"] for f in manifest["files"]] == [f.key for f in partition.files]
        assert manifest["rows"] == sum(f["rows"] for f in manifest["files"]) == partition.rows
        assert all(f["key"].startswith(f"customers/dt={partition.dt}/") for f in manifest["files"])


def test_partition_filters_and_column_selection(s3: Any) -> None:
    frame = generate_customers(300, seed=3)
    lake.write_dataset(frame, CUSTOMERS_RAW, BUCKET, s3=s3)
    days = sorted(set(frame["event_time"].dt.strftime("%Y-%m-%d")))
    expected = by_day(frame)
    expected_days = expected["event_time"].dt.strftime("%Y-%m-%d")

    one = lake.read_dataset(CUSTOMERS_RAW, BUCKET, dt=days[3], s3=s3)
    pd.testing.assert_frame_equal(one, expected[expected_days == days[3]].reset_index(drop=True))

    start, end = days[2], days[6]
    ranged = lake.read_dataset(
        CUSTOMERS_RAW,
        BUCKET,
        start=start,
        end=end,
        columns=["region", "tenure_months", "dt"],
        s3=s3,
    )
    mask = (expected_days >= start) & (expected_days <= end)
    assert list(ranged.columns) == ["region", "tenure_months", "dt"]
    assert [str(t) for t in ranged.dtypes] == ["string", "Int64", "string"]
    pd.testing.assert_frame_equal(
        ranged[["region", "tenure_months"]],
        expected.loc[mask, ["region", "tenure_months"]].reset_index(drop=True),
    )
    assert ranged["dt"].tolist() == expected_days[mask].tolist()

    assert len(lake.read_dataset(CUSTOMERS_RAW, BUCKET, start=days[-1], s3=s3)) == int(
        (expected_days == days[-1]).sum()
    )
    none = lake.read_dataset(
        CUSTOMERS_RAW, BUCKET, dt="1999-01-01", columns=["customer_id", "event_time"], s3=s3
    )
    assert none.empty
    assert [str(t) for t in none.dtypes] == ["string", "datetime64[ns, UTC]"]


def test_explicit_dt_puts_every_row_in_one_partition(s3: Any) -> None:
    frame = generate_customers(50, seed=4)
    result = lake.write_dataset(frame, CUSTOMERS_RAW, BUCKET, dt="2030-02-03", s3=s3)
    assert [p.dt for p in result.partitions] == ["2030-02-03"]
    assert [p.dt for p in lake.list_partitions(BUCKET, "customers", s3=s3)] == ["2030-02-03"]
    pd.testing.assert_frame_equal(lake.read_dataset(CUSTOMERS_RAW, BUCKET, s3=s3), frame)


def test_predictions_partition_by_their_own_timestamp(s3: Any) -> None:
    assert lake.default_partition_column(PREDICTIONS) == "inference_time"
    assert lake.default_partition_column(CUSTOMERS_RAW) == "event_time"


def test_puts_are_kms_encrypted_when_a_key_is_given(s3: Any, kms_key: str) -> None:
    recorder = FlakyS3(s3, fail_on_put=0)
    calls: list[dict[str, Any]] = []
    real_put = recorder.put_object

    def put(**kwargs: Any) -> Any:
        calls.append({k: v for k, v in kwargs.items() if k != "Body"})
        return real_put(**kwargs)

    recorder.put_object = put  # type: ignore[method-assign]
    result = lake.write_dataset(
        generate_customers(40, seed=5),
        CUSTOMERS_RAW,
        BUCKET,
        kms_key_id=kms_key,
        rows_per_file=10,
        s3=recorder,
    )
    assert len(calls) == result.files + len(result.partitions)
    for call in calls:
        assert call["ServerSideEncryption"] == "aws:kms"
        assert call["SSEKMSKeyId"] == kms_key
    head = s3.head_object(Bucket=BUCKET, Key=calls[0]["Key"])
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"] == kms_key


def test_no_encryption_arguments_without_a_key(s3: Any) -> None:
    assert lake._sse(None) == {}
    assert lake._sse("arn:aws:kms:us-east-1:123456789012:key/k") == {
        "ServerSideEncryption": "aws:kms",
        "SSEKMSKeyId": "arn:aws:kms:us-east-1:123456789012:key/k",
    }


# --- atomic commits -------------------------------------------------------------------------


def test_half_failed_write_leaves_nothing_visible_and_cleans_up(s3: Any) -> None:
    frame = generate_customers(200, seed=6)
    flaky = FlakyS3(s3, fail_on_put=4)
    with pytest.raises(EndpointConnectionError):
        lake.write_dataset(frame, CUSTOMERS_RAW, BUCKET, rows_per_file=20, s3=flaky)
    assert len(flaky.puts) == 4
    assert all(k.endswith(".parquet") for k in flaky.puts)
    assert lake.list_partitions(BUCKET, "customers", s3=s3) == []
    assert lake.read_dataset(CUSTOMERS_RAW, BUCKET, s3=s3).empty
    assert keys(s3) == []


def test_crashed_write_leaves_invisible_files_and_a_retry_publishes_whole(s3: Any) -> None:
    frame = generate_customers(200, seed=7)
    flaky = FlakyS3(s3, fail_on_put=6, fail_deletes=True)
    with pytest.raises(EndpointConnectionError):
        lake.write_dataset(frame, CUSTOMERS_RAW, BUCKET, rows_per_file=20, s3=flaky)
    orphans = keys(s3)
    assert len(orphans) == 5  # uploaded before the failure, cleanup impossible
    assert not any(k.endswith("_manifest.json") for k in orphans)
    assert lake.list_partitions(BUCKET, "customers", s3=s3) == []
    assert lake.read_dataset(CUSTOMERS_RAW, BUCKET, s3=s3).empty

    result = lake.write_dataset(frame, CUSTOMERS_RAW, BUCKET, rows_per_file=20, s3=s3)
    pd.testing.assert_frame_equal(lake.read_dataset(CUSTOMERS_RAW, BUCKET, s3=s3), by_day(frame))
    listed = {f.key for p in result.partitions for f in p.files}
    manifests = {f"customers/dt={p.dt}/_manifest.json" for p in result.partitions}
    assert set(keys(s3)) == listed | manifests  # the orphans of the failed attempt are gone


def test_failed_rewrite_keeps_the_old_version_and_a_retry_replaces_it_whole(s3: Any) -> None:
    old = generate_customers(60, seed=8)
    new = generate_customers(90, seed=9, id_offset=1000)
    first = lake.write_dataset(old, CUSTOMERS_RAW, BUCKET, dt="2025-01-01", rows_per_file=10, s3=s3)

    flaky = FlakyS3(s3, fail_on_put=5, fail_deletes=True)
    with pytest.raises(EndpointConnectionError):
        lake.write_dataset(new, CUSTOMERS_RAW, BUCKET, dt="2025-01-01", rows_per_file=10, s3=flaky)
    pd.testing.assert_frame_equal(lake.read_dataset(CUSTOMERS_RAW, BUCKET, s3=s3), old)

    second = lake.write_dataset(
        new, CUSTOMERS_RAW, BUCKET, dt="2025-01-01", rows_per_file=10, s3=s3
    )
    assert second.write_id != first.write_id
    pd.testing.assert_frame_equal(lake.read_dataset(CUSTOMERS_RAW, BUCKET, s3=s3), new)
    assert set(keys(s3)) == {f.key for f in second.partitions[0].files} | {
        "customers/dt=2025-01-01/_manifest.json"
    }


def test_failure_while_publishing_keeps_committed_partitions_whole(s3: Any) -> None:
    frame = generate_customers(100, seed=10)
    days = sorted(set(frame["event_time"].dt.strftime("%Y-%m-%d")))
    n_files = len(days)  # rows_per_file large: one file per partition
    flaky = FlakyS3(s3, fail_on_put=n_files + 2)  # the second manifest fails
    with pytest.raises(EndpointConnectionError):
        lake.write_dataset(frame, CUSTOMERS_RAW, BUCKET, s3=flaky)
    visible = lake.list_partitions(BUCKET, "customers", s3=s3)
    assert [p.dt for p in visible] == days[:1]
    first_day = by_day(frame)
    pd.testing.assert_frame_equal(
        lake.read_dataset(CUSTOMERS_RAW, BUCKET, s3=s3),
        first_day.loc[first_day["event_time"].dt.strftime("%Y-%m-%d") == days[0]].reset_index(
            drop=True
        ),
    )
    # files of partitions whose manifest was never sent are removed; the committed partition's
    # are kept, and so are those of the partition whose manifest put failed (it may have landed)
    assert {k.split("/")[1] for k in keys(s3)} == {f"dt={days[0]}", f"dt={days[1]}"}
    assert [k for k in keys(s3) if k.endswith("_manifest.json")] == [
        f"customers/dt={days[0]}/_manifest.json"
    ]


def test_reader_rereads_a_manifest_replaced_under_it(s3: Any) -> None:
    old = generate_customers(30, seed=11)
    new = generate_customers(45, seed=12, id_offset=500)
    lake.write_dataset(old, CUSTOMERS_RAW, BUCKET, dt="2025-03-01", s3=s3)

    class Racing:
        replaced = False

        def get_object(self, **kwargs: Any) -> Any:
            if kwargs["Key"].endswith(".parquet") and not Racing.replaced:
                Racing.replaced = True
                lake.write_dataset(new, CUSTOMERS_RAW, BUCKET, dt="2025-03-01", s3=s3)
            return s3.get_object(**kwargs)

        def __getattr__(self, name: str) -> Any:
            return getattr(s3, name)

    back = lake.read_dataset(CUSTOMERS_RAW, BUCKET, s3=Racing())
    assert Racing.replaced
    pd.testing.assert_frame_equal(back, new)


def test_uncommitted_partition_directory_is_ignored(s3: Any) -> None:
    orphan = f"customers/dt=2025-05-05/part-{lake.new_write_id()}-00000.parquet"
    assert lake.is_lake_file(orphan)
    s3.put_object(Bucket=BUCKET, Key=orphan, Body=b"junk")
    s3.put_object(Bucket=BUCKET, Key="customers/dt=2025-05-06/_SUCCESS", Body=b"")
    s3.put_object(Bucket=BUCKET, Key="customers/dt=2025-05-07/.hidden", Body=b"x")
    s3.put_object(Bucket=BUCKET, Key="customers/notapartition/_manifest.json", Body=b"{}")
    assert lake.list_partitions(BUCKET, "customers", s3=s3) == []
    assert lake.read_dataset(CUSTOMERS_RAW, BUCKET, s3=s3).empty


# --- bad input ------------------------------------------------------------------------------


def problems_of(frame: pd.DataFrame, s3: Any) -> str:
    with pytest.raises(SchemaError) as info:
        lake.write_dataset(frame, CUSTOMERS_RAW, BUCKET, s3=s3)
    assert keys(s3) == []  # nothing was written
    return str(info.value)


def test_missing_and_extra_columns_are_named(s3: Any) -> None:
    frame = (
        generate_customers(10)
        .drop(columns=["region", "churned"])
        .rename(columns={"tenure_months": "tenure_month"})
        .assign(extra=1)
    )
    message = problems_of(frame, s3)
    assert "missing column(s): tenure_months, region, churned" in message
    assert "unexpected column(s): tenure_month (did you mean 'tenure_months'?), extra" in message


def test_wrong_dtype_names_column_and_glue_type(s3: Any) -> None:
    frame = generate_customers(10)
    frame["tenure_months"] = frame["tenure_months"].astype(str).where(frame.index != 3, "abc")
    frame["monthly_charges"] = True
    frame["is_senior"] = 1.5
    frame["customer_id"] = range(10)
    message = problems_of(frame, s3)
    assert (
        "column 'tenure_months': expected bigint (Int64), got str with non-numeric values 'abc'"
        in message
    )
    assert "column 'monthly_charges': expected double (float64), got bool" in message
    assert "column 'is_senior': expected boolean (boolean), got float64" in message
    assert "column 'customer_id': expected string (string), got int64" in message


def test_value_problems_are_all_reported(s3: Any) -> None:
    frame = generate_customers(10)
    frame.loc[0, "customer_id"] = None
    frame.loc[1, "tenure_months"] = -2
    frame.loc[2, "monthly_charges"] = 20_000.0
    frame.loc[3, "region"] = "centre"
    frame["churned"] = frame["churned"].astype("float64")
    frame.loc[4, "churned"] = 0.5
    frame["event_time"] = frame["event_time"].astype(str).where(frame.index != 5, "not a time")
    with pytest.raises(SchemaError) as info:
        lake.conform_frame(frame, CUSTOMERS_RAW)
    error = info.value
    assert error.dataset == "customers"
    assert set(error.problems) == {
        "column 'customer_id': 1 null value(s), but the column is not nullable",
        "column 'tenure_months': 1 value(s) below the minimum 0 (e.g. -2)",
        "column 'monthly_charges': 1 value(s) above the maximum 10000 (e.g. 20000.0)",
        "column 'region': value(s) 'centre' not allowed; allowed: north, south, east, west",
        "column 'churned': expected bigint (Int64), got float64 with non-integer values 0.5",
        "column 'event_time': expected timestamp (datetime64[ns, UTC]) as ISO-8601 text, got "
        "unparsable values 'not a time'",
    }
    problems_of(frame, s3)


def test_empty_frame_is_rejected(s3: Any) -> None:
    assert "no rows: nothing to write" in problems_of(generate_customers(0), s3)


def test_conversions_from_text_and_compatible_dtypes() -> None:
    frame = generate_customers(5, seed=13)
    loose = frame.astype(object)
    loose["event_time"] = frame["event_time"].dt.strftime("%Y-%m-%dT%H:%M:%S+00:00")
    loose["tenure_months"] = frame["tenure_months"].astype("float64")
    loose["is_senior"] = frame["is_senior"].astype(object)
    loose["monthly_charges"] = frame["monthly_charges"].round().astype("int64")
    out = lake.conform_frame(loose, CUSTOMERS_RAW)
    assert [str(t) for t in out.dtypes] == [c.pandas_dtype for c in CUSTOMERS_RAW.columns]
    pd.testing.assert_series_equal(out["event_time"], frame["event_time"])
    assert out["tenure_months"].tolist() == frame["tenure_months"].tolist()

    naive = frame.assign(event_time=frame["event_time"].dt.tz_localize(None))
    pd.testing.assert_series_equal(
        lake.conform_frame(naive, CUSTOMERS_RAW)["event_time"], frame["event_time"]
    )
    assert lake.conform_frame(
        frame[list(reversed(frame.columns))], CUSTOMERS_RAW
    ).columns.tolist() == list(CUSTOMERS_RAW.column_names)


def test_unknown_dataset_suggests_a_known_one() -> None:
    with pytest.raises(UnknownDatasetError) as info:
        lake.get_dataset("custmers")
    assert str(info.value) == (
        "unknown dataset 'custmers'; did you mean 'customers'? known datasets: "
        + ", ".join(sorted(lake_datasets()))
    )
    assert lake.get_dataset("predictions") is PREDICTIONS
    assert lake.get_dataset("spend_features") is spec("spend").features


def test_the_lake_holds_the_shared_datasets_and_every_models_own() -> None:
    assert set(DATASETS) == {"customers", "customers_curated", "customer_outcomes"}
    assert set(lake_datasets()) == {
        *DATASETS,
        "customer_features",
        "predictions",
        "spend_features",
        "spend_predictions",
    }


def test_read_rejects_unknown_columns_and_bad_filters(s3: Any) -> None:
    with pytest.raises(SchemaError, match=r"unknown column\(s\) 'regoin' \(did you mean 'region'"):
        lake.read_dataset(CUSTOMERS_RAW, BUCKET, columns=["regoin"], s3=s3)
    with pytest.raises(LakeError, match="dt must be a date YYYY-MM-DD, got '2025-13-01'"):
        lake.read_dataset(CUSTOMERS_RAW, BUCKET, dt="2025-13-01", s3=s3)
    with pytest.raises(LakeError, match="empty date range: start 2025-02-01 is after end"):
        lake.read_dataset(CUSTOMERS_RAW, BUCKET, start="2025-02-01", end="2025-01-01", s3=s3)
    with pytest.raises(LakeError, match="either dt= or a start=/end= range"):
        lake.read_dataset(CUSTOMERS_RAW, BUCKET, dt="2025-01-01", end="2025-01-01", s3=s3)


def test_write_rejects_bad_partitioning(s3: Any) -> None:
    frame = generate_customers(5)
    with pytest.raises(LakeError, match="'region' is not a timestamp column of 'customers'"):
        lake.write_dataset(frame, CUSTOMERS_RAW, BUCKET, partition_column="region", s3=s3)
    with pytest.raises(LakeError, match="dt must be a date YYYY-MM-DD, got '20250101'"):
        lake.write_dataset(frame, CUSTOMERS_RAW, BUCKET, dt="20250101", s3=s3)
    with pytest.raises(LakeError, match="rows_per_file must be >= 1"):
        lake.write_dataset(frame, CUSTOMERS_RAW, BUCKET, rows_per_file=0, s3=s3)
    assert keys(s3) == []


# --- local files ----------------------------------------------------------------------------


def test_load_csv_and_parquet(tmp_path: Path) -> None:
    frame = generate_customers(25, seed=14)
    csv = tmp_path / "c.csv"
    frame.to_csv(csv, index=False)
    pd.testing.assert_frame_equal(lake.load_file(csv, CUSTOMERS_RAW), frame)
    parquet = tmp_path / "c.parquet"
    frame.to_parquet(parquet)
    pd.testing.assert_frame_equal(lake.load_file(parquet, CUSTOMERS_RAW), frame)


def test_load_bad_files(tmp_path: Path) -> None:
    empty = tmp_path / "e.csv"
    empty.write_text("")
    with pytest.raises(SchemaError, match=r"e\.csv is empty: no header and no rows"):
        lake.load_file(empty, CUSTOMERS_RAW)
    header = tmp_path / "h.csv"
    header.write_text(",".join(CUSTOMERS_RAW.column_names) + "\n")
    with pytest.raises(SchemaError, match="no rows: nothing to write"):
        lake.load_file(header, CUSTOMERS_RAW)
    with pytest.raises(LakeError, match=r"unsupported file type '\.json'; use \.csv or \.parquet"):
        lake.load_file(tmp_path / "x.json", CUSTOMERS_RAW)
    with pytest.raises(LakeError, match="no such file"):
        lake.load_file(tmp_path / "missing.csv", CUSTOMERS_RAW)
    wrong = tmp_path / "w.parquet"
    generate_customers(5).assign(support_tickets="many").to_parquet(wrong)
    with pytest.raises(SchemaError, match="column 'support_tickets': expected bigint"):
        lake.load_file(wrong, CUSTOMERS_RAW)


def test_zone_bucket_maps_every_dataset_zone() -> None:
    outputs = make_outputs(
        stack="dev",
        environment="dev",
        region="us-east-1",
        account_id="123456789012",
        tags={},
        lake_kms_key_arn="k",
        raw_bucket="r",
        curated_bucket="c",
        features_bucket="f",
        models_bucket="m",
        predictions_bucket="p",
        glue_database="db",
        athena_workgroup="wg",
        ingest_stream_name="s",
    )
    assert {d.name: lake.zone_bucket(outputs, d.zone) for d in lake_datasets().values()} == {
        "customers": "r",
        "customer_outcomes": "r",
        "customers_curated": "c",
        "predictions": "p",
        "customer_features": "f",
        "spend_predictions": "p",
        "spend_features": "f",
    }
    with pytest.raises(LakeError, match="unknown zone 'gold'"):
        lake.zone_bucket(outputs, "gold")


# --- files the stream delivered -------------------------------------------------------------


def firehose_parquet(frame: pd.DataFrame) -> bytes:
    """A Parquet object as Firehose's conversion writes it: nullable fields, naive ns times."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    loose = frame.assign(event_time=frame["event_time"].dt.tz_convert(None))
    table = pa.Table.from_pandas(loose, preserve_index=False)
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def test_streamed_objects_are_read_and_survive_a_batch_rewrite(s3: Any) -> None:
    batch = generate_customers(30, seed=15)
    streamed = generate_customers(10, seed=16, id_offset=900)
    rewritten = generate_customers(12, seed=17, id_offset=1900)
    stream_key = "customers/dt=2025-04-01/ingest-1-2025-04-01-10-00-00-abc"
    only_stream_key = "customers/dt=2025-04-02/ingest-1-2025-04-02-10-00-00-def"
    assert not lake.is_lake_file(stream_key)
    assert lake.is_stream_file(stream_key)
    lake.write_dataset(batch, CUSTOMERS_RAW, BUCKET, dt="2025-04-01", s3=s3)
    s3.put_object(Bucket=BUCKET, Key=stream_key, Body=firehose_parquet(streamed))
    s3.put_object(Bucket=BUCKET, Key=only_stream_key, Body=firehose_parquet(streamed.head(4)))

    partitions = lake.list_partitions(BUCKET, "customers", s3=s3)
    assert [(p.dt, len(p.files), [f.key for f in p.streamed]) for p in partitions] == [
        ("2025-04-01", 1, [stream_key]),
        ("2025-04-02", 0, [only_stream_key]),
    ]
    assert partitions[1].write_id is None
    assert (
        lake.list_partitions(BUCKET, "customers", s3=s3, include_streamed=False)[0].streamed == ()
    )

    back = lake.read_dataset(CUSTOMERS_RAW, BUCKET, dt="2025-04-01", s3=s3)
    pd.testing.assert_frame_equal(back, pd.concat([batch, streamed], ignore_index=True))
    assert [str(t) for t in back.dtypes] == [c.pandas_dtype for c in CUSTOMERS_RAW.columns]
    assert len(lake.read_dataset(CUSTOMERS_RAW, BUCKET, dt="2025-04-02", s3=s3)) == 4

    lake.write_dataset(rewritten, CUSTOMERS_RAW, BUCKET, dt="2025-04-01", s3=s3)
    pd.testing.assert_frame_equal(
        lake.read_dataset(CUSTOMERS_RAW, BUCKET, dt="2025-04-01", s3=s3),
        pd.concat([rewritten, streamed], ignore_index=True),
    )
    assert stream_key in keys(s3)


def test_a_streamed_object_that_is_not_parquet_is_a_clear_error(s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="customers/dt=2025-04-03/ingest-x", Body=b'{"a": 1}\n')
    with pytest.raises(
        LakeError,
        match=r"s3://raw-bucket/customers/dt=2025-04-03/ingest-x is not "
        "a Parquet file of the dataset",
    ):
        lake.read_dataset(CUSTOMERS_RAW, BUCKET, s3=s3)
