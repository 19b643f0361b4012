"""`python -m ml.pipeline`: each step end to end, on moto and a temporary root for /opt/ml."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from botocore.exceptions import EndpointConnectionError
from moto import mock_aws

from ml import lake
from ml.contracts import (
    CURATED_ROWS_METRIC,
    MODEL_ENV,
    PIPELINE_DIMENSION,
    PIPELINE_NAMESPACE,
    PROCESSING_MESSAGE_FILE,
    REJECTED_ROWS_METRIC,
    REJECTED_SHARE_METRIC,
    TRAINING_FAILURE_FILE,
    WORK_ITEM_FORMAT,
)
from ml.models import load
from ml.models.churn.spec import CUSTOMER_FEATURES
from ml.pipeline.__main__ import main
from ml.pipeline.common import StepError, WorkItem, read_work_items, write_work_items
from ml.pipeline.curate import drop_duplicates, run_curate
from ml.pipeline.features import run_features
from ml.pipeline.window import select_window
from ml.sample_data import generate_customers
from ml.schema import CUSTOMERS_CURATED, CUSTOMERS_RAW

CHURN = load("churn")
build_features = CHURN.features.build_features
validate_frame = CHURN.features.validate_frame

REGION = "us-east-1"
RAW, CURATED, FEATURES = "raw-zone", "curated-zone", "features-zone"
PIPELINE = "ml-platform-dev-churn"
AS_OF = datetime(2025, 3, 1, tzinfo=UTC)  # sample data: the 30 days before, 2025-01-30..02-28
KEY = ["customer_id", "event_time"]


@pytest.fixture
def aws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SimpleNamespace]:
    monkeypatch.setenv("SM_OUTPUT_DIR", str(tmp_path / "opt-ml-output"))
    monkeypatch.setenv(MODEL_ENV, "churn")  # what each step of churn's pipeline carries
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        for bucket in (RAW, CURATED, FEATURES):
            s3.create_bucket(Bucket=bucket)
        kms = boto3.client("kms", region_name=REGION).create_key()["KeyMetadata"]["Arn"]
        yield SimpleNamespace(
            s3=s3,
            kms=kms,
            cloudwatch=Recorder(boto3.client("cloudwatch", region_name=REGION)),
            root=tmp_path,
            message=tmp_path / "opt-ml-output",
        )


class Recorder:
    """A client that records the calls it passes on."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        def call(**kwargs: Any) -> Any:
            self.calls.append((name, kwargs))
            return getattr(self.real, name)(**kwargs)

        return call


def streamed(frame: pd.DataFrame) -> bytes:
    """Parquet as Firehose's conversion writes it: nullable fields, naive times, no checks."""
    loose = frame.assign(event_time=frame["event_time"].dt.tz_convert(None))
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(loose, preserve_index=False), sink)
    return sink.getvalue()


def window(aws: SimpleNamespace, *args: str, out: str = "window") -> Path:
    target = aws.root / out
    code = main(
        [
            "window",
            "--raw-bucket",
            RAW,
            "--dataset",
            CUSTOMERS_RAW.name,
            "--days",
            "30",
            "--as-of",
            "2025-03-01T09:30:00Z",
            *args,
            "--out",
            str(target),
        ]
    )
    assert code == 0
    return target


# --- window ---------------------------------------------------------------------------------


def test_window_selects_exactly_the_partitions_of_the_window(aws: SimpleNamespace) -> None:
    lake.write_dataset(generate_customers(600, seed=1, as_of=AS_OF), CUSTOMERS_RAW, RAW, s3=aws.s3)
    # a partition only the stream wrote to, and one holding nothing committed
    only_streamed = generate_customers(5, seed=2, as_of=AS_OF, id_offset=9000)
    aws.s3.put_object(
        Bucket=RAW, Key="customers/dt=2025-03-02/ingest-1", Body=streamed(only_streamed)
    )
    aws.s3.put_object(
        Bucket=RAW,
        Key="customers/dt=2025-03-03/part-20250303T000000000000Z-0123abcd-00000.parquet",
        Body=b"uncommitted",
    )

    week = read_work_items(window(aws, "--end", "2025-02-20", "--days", "7"))
    assert [i.dt for i in week] == [f"2025-02-{d}" for d in range(14, 21)]
    committed = {p.dt: p.rows for p in lake.list_partitions(RAW, "customers", s3=aws.s3)}
    assert all(i.rows == committed[i.dt] for i in week)
    assert {(i.dataset, i.bucket, i.prefix, i.window_start, i.window_end) for i in week} == {
        ("customers", RAW, "customers", "2025-02-14", "2025-02-20")
    }
    first = json.loads((aws.root / "window" / "customers-dt=2025-02-14.json").read_text())
    assert first == {
        "format": WORK_ITEM_FORMAT,
        "dataset": "customers",
        "bucket": RAW,
        "prefix": "customers",
        "dt": "2025-02-14",
        "window": {"start": "2025-02-14", "end": "2025-02-20"},
        "rows": committed["2025-02-14"],
    }

    ranged = read_work_items(window(aws, "--start", "2025-02-27", "--end", "2025-03-03", out="r"))
    # the streamed-only partition counts (rows unknown); the uncommitted one does not
    assert [(i.dt, i.rows is None) for i in ranged] == [
        ("2025-02-27", False),
        ("2025-02-28", False),
        ("2025-03-02", True),
    ]


def test_window_defaults_to_days_up_to_the_day_the_execution_started() -> None:
    assert select_window("", "", "3", "2025-02-10T23:59:59.5Z") == select_window(
        "2025-02-08", "2025-02-10", "", ""
    )
    # a start time in another zone counts by its UTC date
    assert select_window("", "", "1", "2025-02-11T01:00:00+02:00").end.isoformat() == "2025-02-10"
    assert select_window("", "2025-02-10", "30", "").days == 30


@pytest.mark.parametrize(
    ("start", "end", "days", "as_of", "reason"),
    [
        ("", "2025-02-30", "3", "", r"--end '2025-02-30' is not a date YYYY-MM-DD"),
        ("", "", "three", "2025-02-01", r"--days 'three' is not a whole number of days"),
        ("", "", "0", "2025-02-01", r"--days 0: the window needs at least 1 day"),
        ("2025-02-05", "2025-02-01", "", "", r"empty window: --start 2025-02-05 is after"),
        ("", "", "3", "yesterday", r"--as-of 'yesterday' is not an ISO-8601 date or time"),
    ],
)
def test_window_refuses_bad_parameters(
    start: str, end: str, days: str, as_of: str, reason: str
) -> None:
    with pytest.raises(StepError, match=reason):
        select_window(start, end, days, as_of)


def test_an_empty_window_fails_with_one_line_on_stderr_and_in_the_message_file(
    aws: SimpleNamespace, capsys: pytest.CaptureFixture[str]
) -> None:
    lake.write_dataset(generate_customers(50, seed=3, as_of=AS_OF), CUSTOMERS_RAW, RAW, s3=aws.s3)
    code = main(
        [
            "window",
            "--raw-bucket",
            RAW,
            "--dataset",
            "customers",
            "--end",
            "2024-06-30",
            "--days",
            "7",
            "--as-of",
            "2025-03-01",
            "--out",
            str(aws.root / "w"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 1
    expected = (
        f"window failed: no partition of 'customers' in s3://{RAW}/customers/ between "
        "2024-06-24 and 2024-06-30 (7 days): nothing to train on"
    )
    assert err.splitlines() == [expected]
    assert (aws.message / PROCESSING_MESSAGE_FILE).read_text() == expected


def test_an_unknown_dataset_is_named_with_a_suggestion(
    aws: SimpleNamespace, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--days", "7", "--as-of", "2025-03-01", "--out", str(aws.root / "w")]
    assert main(["window", "--raw-bucket", RAW, "--dataset", "customer", *args]) == 1
    assert "--dataset: unknown dataset 'customer'; did you mean" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:
        main(["window", "--raw-bucket", RAW])
    assert usage.value.code == 2


# --- curate ---------------------------------------------------------------------------------


def _bad_rows() -> pd.DataFrame:
    bad = generate_customers(3, seed=4, as_of=AS_OF, id_offset=7000).astype(
        {"customer_id": "object", "tenure_months": "object", "region": "object"}
    )
    bad.loc[0, "customer_id"] = None  # a null in a required column
    bad.loc[1, "tenure_months"] = -3  # out of range
    bad.loc[2, "region"] = "mars"  # not an allowed value
    return bad.astype({"customer_id": "string", "tenure_months": "Int64", "region": "string"})


@pytest.fixture
def raw_days(aws: SimpleNamespace) -> dict[str, pd.DataFrame]:
    """Two raw partitions; the first also got, through the stream, 3 invalid rows and 5 later
    copies of batch snapshots (same customer_id and event_time, another bill)."""
    days = {}
    for i, day in enumerate(("2025-02-10", "2025-02-11")):
        batch = generate_customers(60, seed=10 + i, as_of=AS_OF, id_offset=1000 * i)
        lake.write_dataset(batch, CUSTOMERS_RAW, RAW, dt=day, s3=aws.s3)
        days[day] = batch
    copies = days["2025-02-10"].iloc[[3, 8, 13, 21, 34]].assign(monthly_charges=99.5)
    late = pd.concat([_bad_rows(), copies], ignore_index=True)
    aws.s3.put_object(Bucket=RAW, Key="customers/dt=2025-02-10/ingest-7", Body=streamed(late))
    return days


def curate(aws: SimpleNamespace, work: Path, **overrides: Any) -> Any:
    args: dict[str, Any] = {
        "work": work,
        "out": aws.root / "curated-work",
        "raw_bucket": RAW,
        "curated_bucket": CURATED,
        "kms_key_arn": aws.kms,
        "pipeline": PIPELINE,
        "max_rejected_share": 0.5,
        "s3": aws.s3,
        "cloudwatch": aws.cloudwatch,
    }
    return run_curate(CHURN, **{**args, **overrides})


def test_curate_drops_invalid_and_duplicate_rows_and_commits_each_partition(
    aws: SimpleNamespace, raw_days: dict[str, pd.DataFrame]
) -> None:
    work = window(aws, "--start", "2025-02-10", "--end", "2025-02-11")
    summary = curate(aws, work)

    figures = [(p.dt, p.raw_rows, p.rejected, p.duplicates, p.curated) for p in summary.partitions]
    assert figures == [("2025-02-10", 68, 3, 5, 60), ("2025-02-11", 60, 0, 0, 60)]
    assert set(summary.partitions[0].reasons) == {
        "customer_id: null in a required column",
        "tenure_months: out of range [0, 600]",
        "region: not one of ['north', 'south', 'east', 'west']",
    }
    for day in raw_days:
        raw = lake.read_dataset(CUSTOMERS_RAW, RAW, dt=day, s3=aws.s3, allow_nulls=True)
        valid, _ = validate_frame(raw, on_invalid="reject")
        valid = valid.dropna(subset=KEY)  # validate_frame checks model inputs; curate the rest
        expected = valid.drop_duplicates(subset=KEY, keep="last").reset_index(drop=True)
        back = lake.read_dataset(CUSTOMERS_CURATED, CURATED, dt=day, s3=aws.s3)
        pd.testing.assert_frame_equal(back, expected)
    # the copy read last (the streamed one) wins
    first = lake.read_dataset(CUSTOMERS_CURATED, CURATED, dt="2025-02-10", s3=aws.s3)
    assert (first["monthly_charges"] == 99.5).sum() == 5

    out = read_work_items(aws.root / "curated-work")
    assert [(i.dataset, i.bucket, i.prefix, i.dt, i.rows) for i in out] == [
        ("customers_curated", CURATED, "customers_curated", "2025-02-10", 60),
        ("customers_curated", CURATED, "customers_curated", "2025-02-11", 60),
    ]


def test_curate_commits_through_the_manifest_and_encrypts_everything(
    aws: SimpleNamespace, raw_days: dict[str, pd.DataFrame]
) -> None:
    curate(aws, window(aws, "--start", "2025-02-10", "--end", "2025-02-11"))
    partitions = lake.list_partitions(CURATED, "customers_curated", s3=aws.s3)
    assert [(p.dt, p.rows, len(p.files)) for p in partitions] == [
        ("2025-02-10", 60, 1),
        ("2025-02-11", 60, 1),
    ]
    listed = aws.s3.list_objects_v2(Bucket=CURATED)["Contents"]
    for obj in listed:
        head = aws.s3.head_object(Bucket=CURATED, Key=obj["Key"])
        assert (head["ServerSideEncryption"], head["SSEKMSKeyId"]) == ("aws:kms", aws.kms)

    # the rejected rows, beside the zone, named by the curated partition's write id
    write_id = partitions[0].write_id
    rejected = [o["Key"] for o in listed if o["Key"].startswith("rejected/")]
    assert rejected == [f"rejected/customers/dt=2025-02-10/part-{write_id}.parquet"]
    rows = pq.read_table(
        io.BytesIO(aws.s3.get_object(Bucket=CURATED, Key=rejected[0])["Body"].read())
    )
    assert rows.column_names == list(CUSTOMERS_RAW.column_names)
    frame = rows.to_pandas()
    assert frame["customer_id"].isna().sum() == 1
    assert sorted(frame["customer_id"].dropna()) == ["C000007001", "C000007002"]


def test_a_commit_that_fails_leaves_no_partition_visible(
    aws: SimpleNamespace, raw_days: dict[str, pd.DataFrame]
) -> None:
    work = window(aws, "--start", "2025-02-10", "--end", "2025-02-10")

    class ManifestFails:
        def __init__(self, real: Any) -> None:
            self.real = real

        def put_object(self, **kwargs: Any) -> Any:
            if kwargs["Key"].endswith("/_manifest.json") and kwargs["Bucket"] == CURATED:
                raise EndpointConnectionError(endpoint_url="https://s3.example")
            return self.real.put_object(**kwargs)

        def __getattr__(self, name: str) -> Any:
            return getattr(self.real, name)

    with pytest.raises(EndpointConnectionError):
        curate(aws, work, s3=ManifestFails(aws.s3))
    assert lake.list_partitions(CURATED, "customers_curated", s3=aws.s3) == []
    assert lake.read_dataset(CUSTOMERS_CURATED, CURATED, s3=aws.s3).empty
    assert not (aws.root / "curated-work").exists()


def test_curate_puts_the_rejected_metrics(
    aws: SimpleNamespace, raw_days: dict[str, pd.DataFrame]
) -> None:
    curate(aws, window(aws, "--start", "2025-02-10", "--end", "2025-02-11"))
    [(name, call)] = aws.cloudwatch.calls
    assert name == "put_metric_data"
    assert call["Namespace"] == PIPELINE_NAMESPACE
    assert {d["MetricName"]: (d["Value"], d["Unit"]) for d in call["MetricData"]} == {
        REJECTED_ROWS_METRIC: (3.0, "Count"),
        REJECTED_SHARE_METRIC: (3 / 128, "None"),
        CURATED_ROWS_METRIC: (120.0, "Count"),
    }
    assert all(
        d["Dimensions"] == [{"Name": PIPELINE_DIMENSION, "Value": PIPELINE}]
        for d in call["MetricData"]
    )
    listed = aws.cloudwatch.real.list_metrics(Namespace=PIPELINE_NAMESPACE)["Metrics"]
    assert len(listed) == 3


def test_curate_refuses_a_rejected_share_above_the_threshold_after_putting_the_metrics(
    aws: SimpleNamespace, raw_days: dict[str, pd.DataFrame], capsys: pytest.CaptureFixture[str]
) -> None:
    work = window(aws, "--start", "2025-02-10", "--end", "2025-02-11")
    with pytest.raises(StepError) as refused:
        curate(aws, work, max_rejected_share=0.02)
    assert str(refused.value).startswith(
        "rejected share 2.34% (3 of 128 raw rows) is above the threshold 2.00%; top reasons: "
    )
    assert "worst partition dt=2025-02-10 (4.41%)" in str(refused.value)
    assert [name for name, _ in aws.cloudwatch.calls] == ["put_metric_data"]

    code = main(
        [
            "curate",
            "--raw-bucket",
            RAW,
            "--curated-bucket",
            CURATED,
            "--kms-key-arn",
            aws.kms,
            "--region",
            REGION,
            "--pipeline",
            PIPELINE,
            "--max-rejected-share",
            "0.02",
            "--work",
            str(work),
            "--out",
            str(aws.root / "out"),
        ]
    )
    err = capsys.readouterr().err.splitlines()
    assert code == 1
    assert len(err) == 1 and err[0].startswith("curate failed: rejected share 2.34%")
    assert (aws.message / PROCESSING_MESSAGE_FILE).read_text() == err[0]


def test_curate_refuses_work_items_of_another_bucket(aws: SimpleNamespace) -> None:
    work = aws.root / "foreign"
    write_work_items(work, [WorkItem("customers", "elsewhere", "customers", "2025-02-10", "", "")])
    with pytest.raises(StepError, match="is in bucket 'elsewhere', but --raw-bucket is"):
        curate(aws, work)
    (work / "bad.json").write_text('{"format": "something/else"}')
    with pytest.raises(StepError, match=r"bad\.json: not a work item"):
        curate(aws, work)


def test_drop_duplicates_is_pandas_keep_last() -> None:
    rng = np.random.default_rng(0)
    frame = generate_customers(500, seed=5)
    frame = pd.concat([frame, frame.iloc[rng.integers(0, 500, 80)]]).sample(frac=1, random_state=1)
    frame = frame.assign(monthly_charges=np.arange(len(frame), dtype=float))
    expected = frame.drop_duplicates(subset=KEY, keep="last")
    pd.testing.assert_frame_equal(drop_duplicates(frame), expected)
    unique = generate_customers(50, seed=6)
    assert drop_duplicates(unique) is unique


# --- features -------------------------------------------------------------------------------


def test_features_are_build_features_of_the_curated_rows(
    aws: SimpleNamespace, raw_days: dict[str, pd.DataFrame]
) -> None:
    curate(aws, window(aws, "--start", "2025-02-10", "--end", "2025-02-11"))
    code = main(
        [
            "features",
            "--curated-bucket",
            CURATED,
            "--features-bucket",
            FEATURES,
            "--kms-key-arn",
            aws.kms,
            "--region",
            REGION,
            "--work",
            str(aws.root / "curated-work"),
            "--out",
            str(aws.root / "features-work"),
        ]
    )
    assert code == 0
    for day in raw_days:
        curated = lake.read_dataset(CUSTOMERS_CURATED, CURATED, dt=day, s3=aws.s3)
        back = lake.read_dataset(CUSTOMER_FEATURES, FEATURES, dt=day, s3=aws.s3)
        pd.testing.assert_frame_equal(back, build_features(curated))
    out = read_work_items(aws.root / "features-work")
    assert [(i.dataset, i.bucket, i.prefix, i.dt, i.rows) for i in out] == [
        ("customer_features", FEATURES, "customer_features", "2025-02-10", 60),
        ("customer_features", FEATURES, "customer_features", "2025-02-11", 60),
    ]
    head = aws.s3.head_object(Bucket=FEATURES, Key="customer_features/dt=2025-02-10/_manifest.json")
    assert head["SSEKMSKeyId"] == aws.kms


def test_features_of_a_missing_curated_partition_is_a_clear_error(aws: SimpleNamespace) -> None:
    work = aws.root / "w"
    write_work_items(
        work,
        [
            WorkItem(
                "customers_curated",
                CURATED,
                "customers_curated",
                "2025-02-12",
                "2025-02-12",
                "2025-02-12",
            )
        ],
    )
    with pytest.raises(
        StepError,
        match=r"curated partition s3://curated-zone/customers_curated/"
        r"dt=2025-02-12/ holds no rows",
    ):
        run_features(
            CHURN,
            work=work,
            out=aws.root / "o",
            curated_bucket=CURATED,
            features_bucket=FEATURES,
            kms_key_arn=None,
            s3=aws.s3,
        )


# --- train ----------------------------------------------------------------------------------


def mount(aws: SimpleNamespace, bucket: str, prefix: str) -> Path:
    """What a FastFile channel of s3://bucket/prefix/ shows: every object, prefix stripped."""
    root = aws.root / "input" / "data" / "features"
    for page in aws.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            path = root / obj["Key"][len(prefix) + 1 :]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(aws.s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
    return root


@pytest.fixture
def training_job(aws: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """The features zone (30 days), the work items of 8 of them, the training environment."""
    table = build_features(generate_customers(3000, seed=21, as_of=AS_OF))
    lake.write_dataset(table, CUSTOMER_FEATURES, FEATURES, s3=aws.s3)
    listed = [f"2025-02-{d:02d}" for d in range(10, 18)]
    # beside a listed partition: a streamed file (read) and an uncommitted lake file (not)
    extra = build_features(generate_customers(7, seed=22, as_of=AS_OF, id_offset=50_000))
    extra = extra.assign(event_time=pd.Timestamp("2025-02-12T08:00:00Z"))
    aws.s3.put_object(
        Bucket=FEATURES,
        Key="customer_features/dt=2025-02-12/export-1.parquet",
        Body=streamed(extra),
    )
    aws.s3.put_object(
        Bucket=FEATURES,
        Key="customer_features/dt=2025-02-12/part-20250101T000000000000Z-deadbeef-00000.parquet",
        Body=streamed(extra),
    )
    partitions = aws.root / "input" / "data" / "partitions"
    write_work_items(
        partitions,
        [
            WorkItem(
                CUSTOMER_FEATURES.name, FEATURES, "customer_features", d, listed[0], listed[-1]
            )
            for d in listed
        ],
    )
    config = aws.root / "input" / "config"
    config.mkdir(parents=True)
    (config / "hyperparameters.json").write_text(
        json.dumps({"estimator": "logistic_regression", "c": "0.5", "max_iter": "300", "seed": "0"})
    )
    env = {
        "SM_MODEL_DIR": str(aws.root / "model"),
        "SM_INPUT_DIR": str(aws.root / "input"),
        "SM_CHANNEL_PARTITIONS": str(partitions),
        "SM_CHANNEL_FEATURES": str(mount(aws, FEATURES, "customer_features")),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return SimpleNamespace(listed=listed, model=aws.root / "model", extra=extra)


def test_train_reads_exactly_the_listed_partitions_from_the_mounted_channel(
    aws: SimpleNamespace, training_job: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ml.pipeline.train as step

    seen: list[pd.DataFrame] = []
    real = step.train

    def train(model: Any, features: pd.DataFrame, *args: Any, **kwargs: Any) -> Any:
        assert model is CHURN
        seen.append(features)
        return real(model, features, *args, **kwargs)

    monkeypatch.setattr(step, "train", train)
    assert main(["train"]) == 0

    listed = training_job.listed
    expected = lake.read_dataset(
        CUSTOMER_FEATURES, FEATURES, start=listed[0], end=listed[-1], s3=aws.s3
    )
    [features] = seen
    pd.testing.assert_frame_equal(features, expected)
    assert features["customer_id"].isin(training_job.extra["customer_id"]).sum() == 7

    model = training_job.model
    assert {p.name for p in model.iterdir()} >= {
        "model.joblib",
        "metrics.json",
        "baseline.json",
        "lineage.json",
        "code",
    }
    assert (model / "code" / "inference.py").is_file()
    lineage = json.loads((model / "lineage.json").read_text())
    assert lineage["data"]["partitions"] == listed
    assert lineage["data"]["window"] == {"start": listed[0], "end": listed[-1]}
    assert lineage["data"]["uri"] == f"s3://{FEATURES}/customer_features/"
    assert lineage["data"]["rows_train"] + lineage["data"]["rows_validation"] == len(expected)
    assert lineage["hyperparameters"]["c"] == 0.5
    assert lineage["model"] == "churn"


def test_train_fails_naming_a_partition_the_mount_does_not_show(
    aws: SimpleNamespace,
    training_job: SimpleNamespace,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    partitions = aws.root / "input" / "data" / "partitions"
    write_work_items(
        partitions,
        [WorkItem(CUSTOMER_FEATURES.name, FEATURES, "customer_features", "2025-04-01", "", "")],
    )
    assert main(["train"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "train failed: the 'features' channel: partition dt=2025-04-01 of 'customer_features' "
        f"is not visible under {aws.root / 'input' / 'data' / 'features'}: no _manifest.json "
        "and no streamed file in dt=2025-04-01/"
    ]
    assert (aws.message / TRAINING_FAILURE_FILE).read_text() == err[0]
    monkeypatch.delenv("SM_CHANNEL_FEATURES")
    assert main(["train"]) == 1
    assert "no 'features' channel" in capsys.readouterr().err


def test_the_container_entry_point_runs_the_steps(tmp_path: Path) -> None:
    """`PIPELINE_ENTRYPOINT + (command,)`, as the definition's ContainerEntrypoint has it."""
    import subprocess
    import sys

    from ml.contracts import PIPELINE_ENTRYPOINT

    command = [sys.executable, *PIPELINE_ENTRYPOINT[1:], "window"]
    args = [
        "--raw-bucket",
        RAW,
        "--dataset",
        "customers_raw",
        "--days",
        "7",
        "--as-of",
        "2025-03-01T00:00:00Z",
    ]
    env = {"SM_OUTPUT_DIR": str(tmp_path / "output"), "PATH": ""}
    done = subprocess.run(
        [*command, *args, "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        check=False,
    )
    assert done.returncode == 1
    reason = done.stderr.strip().splitlines()
    assert reason == [
        "window failed: --dataset: unknown dataset 'customers_raw'; did you mean 'customers'? "
        "known datasets: customer_features, customer_outcomes, customers, customers_curated, "
        "predictions, spend_features, spend_predictions"
    ]
    assert (tmp_path / "output" / PROCESSING_MESSAGE_FILE).read_text() == reason[0]
    usage = subprocess.run(
        [*command],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert usage.returncode == 2
    assert "the following arguments are required: --raw-bucket" in usage.stderr


@pytest.mark.parametrize(
    ("model", "message"),
    [("", "MLPLAT_MODEL is not set: name the model this step runs for"), ("fraud", "no model")],
)
def test_a_step_names_its_model_in_the_environment(
    aws: SimpleNamespace,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    model: str,
    message: str,
) -> None:
    monkeypatch.setenv(MODEL_ENV, model)
    args = ["--curated-bucket", CURATED, "--features-bucket", FEATURES]
    work = ["--work", str(aws.root / "w"), "--out", str(aws.root / "o")]
    assert main(["features", *args, *work]) == 1
    assert message in capsys.readouterr().err
