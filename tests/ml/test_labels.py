"""ml.labels: outcomes simulated from the generating process, written by observed day, read back,
joined as-of with the predictions; ingested by batch and stream like the customer snapshots."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pandas as pd
import pytest
from moto import mock_aws

from ml import lake, stream
from ml.labels import (
    LabelsError,
    join_labels,
    label_window,
    read_labels,
    write_outcomes,
)
from ml.models import load
from ml.sample_data import generate_customers, simulate_outcomes, true_churn_probability
from ml.schema import CUSTOMER_OUTCOMES

CHURN = load("churn")
SPEND = load("spend")
OBSERVED = datetime(2025, 2, 15, 6, 0, tzinfo=UTC)


def prediction_rows(
    model: Any, raw: pd.DataFrame, scores: np.ndarray | None = None, version: str = "g/1"
) -> pd.DataFrame:
    """Prediction-log rows of `model` for raw snapshots scored at their `event_time`."""
    table = model.spec.predictions
    data: dict[str, Any] = {
        "event_id": [f"e-{i}" for i in range(len(raw))],
        "inference_time": raw["event_time"],
        "endpoint_name": "ep",
        "variant_name": "primary",
        "model_version": version,
        "score": scores if scores is not None else np.full(len(raw), 0.5),
    }
    for column in table.column_names:
        if column not in data:
            data[column] = raw[column]
    frame = pd.DataFrame(data)[list(table.column_names)]
    return frame.astype({c.name: c.pandas_dtype for c in table.columns})


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="raw")
        yield client


# --- simulated outcomes --------------------------------------------------------------------------


def test_simulated_outcomes_follow_the_generating_process() -> None:
    raw = generate_customers(20_000, seed=3)
    outcomes = simulate_outcomes(prediction_rows(CHURN, raw), seed=1, observed_at=OBSERVED)
    assert list(outcomes.columns) == list(CUSTOMER_OUTCOMES.column_names)
    assert {c: str(t) for c, t in outcomes.dtypes.items()} == {
        c.name: c.pandas_dtype for c in CUSTOMER_OUTCOMES.columns
    }
    assert outcomes["customer_id"].tolist() == raw["customer_id"].tolist()
    assert (outcomes["event_time"] == raw["event_time"]).all()
    assert (outcomes["observed_at"] == pd.Timestamp(OBSERVED)).all()
    # churn drawn from the true probability of each snapshot: the rates agree, and the
    # customers the process finds riskier churn more often
    p = true_churn_probability(raw)
    churned = outcomes["churned"].to_numpy(dtype=float)
    assert abs(churned.mean() - p.mean()) < 0.01
    assert churned[p > 0.5].mean() > churned[p < 0.1].mean() + 0.4
    # spend: a churned customer pays at most 40 % of a month; the others about their plan
    spend, monthly = outcomes["next_month_spend"].to_numpy(), raw["monthly_charges"].to_numpy()
    assert (spend[churned == 1] <= 0.4 * monthly[churned == 1] + 0.01).all()
    stay = churned == 0
    assert 0.8 < np.median(spend[stay] / monthly[stay]) < 1.2


def test_simulation_is_seeded_and_serves_a_model_that_reads_fewer_inputs() -> None:
    raw = generate_customers(500, seed=4)
    rows = prediction_rows(CHURN, raw)
    once = simulate_outcomes(rows, seed=7, observed_at=OBSERVED)
    pd.testing.assert_frame_equal(once, simulate_outcomes(rows, seed=7, observed_at=OBSERVED))
    assert not once["churned"].equals(
        simulate_outcomes(rows, seed=8, observed_at=OBSERVED)["churned"]
    )
    # the spend model logs neither total_charges nor is_senior: the process draws them
    spend_rows = prediction_rows(SPEND, raw)
    assert "is_senior" not in spend_rows and "total_charges" not in spend_rows
    drawn = simulate_outcomes(spend_rows, seed=7, observed_at=OBSERVED)
    assert drawn["next_month_spend"].notna().all() and len(drawn) == 500


def test_simulation_refuses_what_it_cannot_do() -> None:
    rows = prediction_rows(CHURN, generate_customers(20, seed=5))
    with pytest.raises(LabelsError, match=r"observed_at .* is before the latest prediction"):
        simulate_outcomes(rows, seed=0, observed_at=datetime(2024, 1, 1, tzinfo=UTC))
    with pytest.raises(LabelsError, match=r"lack \['region'\]"):
        simulate_outcomes(rows.drop(columns="region"), seed=0, observed_at=OBSERVED)
    with pytest.raises(LabelsError, match="has no timezone"):
        simulate_outcomes(rows, seed=0, observed_at=datetime(2025, 3, 1))


# --- the as-of join ------------------------------------------------------------------------------


def _labels(rows: list[tuple[str, str, str, int | None]]) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "customer_id": [r[0] for r in rows],
            "event_time": pd.to_datetime([r[1] for r in rows], utc=True),
            "observed_at": pd.to_datetime([r[2] for r in rows], utc=True),
            "churned": pd.array([r[3] for r in rows], dtype="Int64"),
        }
    )
    return frame.astype({"customer_id": "string"})


def test_each_prediction_takes_the_nearest_outcome_of_its_customer_within_the_tolerance() -> None:
    raw = generate_customers(4, seed=6)
    raw["customer_id"] = pd.array(["a", "b", "c", "d"], dtype="string")
    raw["event_time"] = pd.to_datetime(
        [
            "2025-01-01T10:00:00Z",
            "2025-01-01T11:00:00Z",
            "2025-01-02T00:00:00Z",
            "2025-01-03T00:00:00Z",
        ],
        utc=True,
    )
    predictions = prediction_rows(CHURN, raw, np.array([0.1, 0.2, 0.3, 0.4]))
    labels = _labels(
        [
            ("a", "2025-01-01T10:00:05Z", "2025-02-01T00:00:00Z", 1),  # 5 s off: taken
            ("a", "2025-01-01T20:00:00Z", "2025-02-01T00:00:00Z", 0),  # 10 h off: not nearest
            ("b", "2025-01-03T12:00:00Z", "2025-02-01T00:00:00Z", 1),  # 49 h off: too far
            ("c", "2025-01-01T23:00:00Z", "2025-02-01T00:00:00Z", 0),  # 1 h before: taken
            ("x", "2025-01-03T00:00:00Z", "2025-02-01T00:00:00Z", 1),  # another customer
        ]
    )
    joined = join_labels(CHURN, predictions, labels)
    assert joined["customer_id"].tolist() == ["a", "c"]
    assert joined["churned"].tolist() == [1, 0]
    assert joined["score"].tolist() == [0.1, 0.3]
    assert {"model_version", "inference_time", "observed_at", "tenure_months"} <= set(joined)
    strict = join_labels(CHURN, predictions, labels, tolerance=timedelta(seconds=1))
    assert strict["customer_id"].tolist() == []
    with pytest.raises(LabelsError, match=r"the labels lack column\(s\) \['churned'\]"):
        join_labels(CHURN, predictions, labels.drop(columns="churned"))


# --- the lake ------------------------------------------------------------------------------------


def test_outcomes_are_partitioned_by_the_day_they_were_observed_and_accumulate(s3: Any) -> None:
    raw = generate_customers(300, seed=8, as_of=datetime(2025, 1, 15, tzinfo=UTC))
    churn_rows = prediction_rows(CHURN, raw.iloc[:200])
    first = simulate_outcomes(churn_rows, seed=1, observed_at=OBSERVED)
    written = write_outcomes(s3, "raw", first, "arn:aws:kms:us-east-1:123456789012:key/k")
    assert [p.dt for p in written.partitions] == ["2025-02-15"]  # observed, not the snapshot days
    key = lake.manifest_key(CUSTOMER_OUTCOMES.prefix, "2025-02-15")
    head = s3.head_object(Bucket="raw", Key=key)
    assert head["ServerSideEncryption"] == "aws:kms"
    # the same day, outcomes of the spend model's predictions (and 50 snapshots again, corrected)
    later = OBSERVED + timedelta(hours=3)
    second = simulate_outcomes(prediction_rows(SPEND, raw.iloc[150:]), seed=2, observed_at=later)
    write_outcomes(s3, "raw", second, None)
    back = lake.read_dataset(CUSTOMER_OUTCOMES, "raw", s3=s3)
    assert len(back) == 300  # 200 + 150 - the 50 delivered again
    assert sorted(back["customer_id"]) == sorted(raw["customer_id"])
    again = back.set_index("customer_id").loc[raw["customer_id"].iloc[150:200], "observed_at"]
    assert (again == pd.Timestamp(later)).all()


def test_read_labels_selects_the_observation_window_and_the_models_label(s3: Any) -> None:
    rows = _labels(
        [
            ("a", "2025-01-01T10:00:00Z", "2025-02-01T00:00:00Z", 1),
            ("a", "2025-01-01T10:00:00Z", "2025-02-03T00:00:00Z", 0),  # a correction: wins
            ("b", "2025-01-02T10:00:00Z", "2025-02-02T00:00:00Z", None),  # churn not known
            ("c", "2025-01-02T10:00:00Z", "2025-02-10T00:00:00Z", 1),  # observed too late
        ]
    )
    rows["next_month_spend"] = [10.0, 10.0, 55.5, np.nan]
    write_outcomes(s3, "raw", rows, None)
    since, until = datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 2, 5, tzinfo=UTC)
    churn = read_labels(CHURN, s3, "raw", since, until)
    assert churn.columns.tolist() == ["customer_id", "event_time", "observed_at", "churned"]
    assert churn["customer_id"].tolist() == ["a"] and churn["churned"].tolist() == [0]
    spend = read_labels(SPEND, s3, "raw", since, until)
    assert sorted(spend["customer_id"]) == ["a", "b"]
    with pytest.raises(LabelsError, match="empty window"):
        read_labels(CHURN, s3, "raw", until, since)


def test_the_label_window_is_the_horizon_back() -> None:
    assert CHURN.spec.label_horizon_days == 30  # churn within 30 days of the snapshot
    until = datetime(2025, 3, 1, tzinfo=UTC)
    start, end = label_window(CHURN, until, 7)
    assert end == until - timedelta(days=CHURN.spec.label_horizon_days)
    assert start == end - timedelta(days=7)
    with pytest.raises(LabelsError, match="lookback must be at least 1 day"):
        label_window(CHURN, until, 0)


def test_a_spec_refuses_a_negative_horizon() -> None:
    import dataclasses

    from ml.models import ModelSpecError

    with pytest.raises(ModelSpecError, match="label_horizon_days -1 must be a whole number"):
        dataclasses.replace(CHURN.spec, label_horizon_days=-1)


# --- ingestion: batch and stream, like the customers ---------------------------------------------


def test_mlplat_data_ingest_takes_outcomes_partitioned_by_observed_day(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from tests.ml.test_data_cli import APP, provision

    raw = generate_customers(40, seed=9, as_of=datetime(2025, 1, 10, tzinfo=UTC))
    outcomes = simulate_outcomes(prediction_rows(CHURN, raw), seed=3, observed_at=OBSERVED)
    outcomes.loc[20:, "observed_at"] = pd.Timestamp(OBSERVED + timedelta(days=1))
    csv = tmp_path / "outcomes.csv"
    outcomes.to_csv(csv, index=False)
    with mock_aws():
        path = tmp_path / "outputs.json"
        outputs = provision(path)
        result = CliRunner().invoke(
            APP,
            ["data", "ingest", str(csv), "--dataset", "customer_outcomes", "--outputs", str(path)],
        )
        assert result.exit_code == 0, result.output
        s3 = boto3.client("s3", region_name="us-east-1")
        partitions = lake.list_partitions(outputs.raw_bucket, CUSTOMER_OUTCOMES.prefix, s3=s3)
        assert [p.dt for p in partitions] == ["2025-02-15", "2025-02-16"]
        assert [p.rows for p in partitions] == [20, 20]
        back = read_labels(CHURN, s3, outputs.raw_bucket, OBSERVED, OBSERVED + timedelta(days=2))
        assert sorted(back["customer_id"]) == sorted(raw["customer_id"])


def test_outcomes_stream_as_json_lines_through_firehose() -> None:
    raw = generate_customers(30, seed=10)
    outcomes = simulate_outcomes(prediction_rows(CHURN, raw), seed=4, observed_at=OBSERVED)
    records = stream.frame_records(outcomes, CUSTOMER_OUTCOMES)
    line = json.loads(stream.encode_record(records[0]))
    assert set(line) == set(CUSTOMER_OUTCOMES.column_names)
    assert line["observed_at"] == OBSERVED.isoformat()
    assert line["event_time"] == outcomes["event_time"][0].isoformat()
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="raw")
        boto3.client("firehose", region_name="us-east-1").create_delivery_stream(
            DeliveryStreamName="outcomes",
            DeliveryStreamType="DirectPut",
            ExtendedS3DestinationConfiguration={
                "RoleARN": "arn:aws:iam::123456789012:role/firehose",
                "BucketARN": "arn:aws:s3:::raw",
                "Prefix": "customer_outcomes/dt=!{timestamp:yyyy-MM-dd}/",
                "BufferingHints": {"SizeInMBs": 64, "IntervalInSeconds": 60},
            },
        )
        result = stream.send_records(records, "outcomes", region="us-east-1")
        assert result.ok and result.delivered == 30
        listed = s3.list_objects_v2(Bucket="raw")["Contents"]
        assert all(o["Key"].startswith("customer_outcomes/dt=") for o in listed)
        lines = b"".join(
            s3.get_object(Bucket="raw", Key=o["Key"])["Body"].read() for o in listed
        ).splitlines()
        assert sorted(json.loads(x)["customer_id"] for x in lines) == sorted(raw["customer_id"])
    with pytest.raises(lake.SchemaError, match="missing column"):
        stream.frame_records(outcomes.drop(columns="observed_at"), CUSTOMER_OUTCOMES)


def test_outcomes_after_a_concept_drift_no_longer_fit_the_old_process() -> None:
    from ml.quality import roc_auc

    raw = generate_customers(20_000, seed=12)
    rows = prediction_rows(CHURN, raw)
    old = true_churn_probability(raw)  # what a model trained before the change would score
    same = simulate_outcomes(rows, seed=1, observed_at=OBSERVED)
    drifted = simulate_outcomes(rows, seed=1, observed_at=OBSERVED, concept_drift=2.0)
    fit, unfit = (roc_auc(o["churned"].to_numpy(), old) for o in (same, drifted))
    assert fit is not None and unfit is not None
    assert unfit < fit - 0.05
