"""Prediction logs: capture records flattened to a model's prediction rows, put in the lake."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pandas as pd
import pytest
from moto import mock_aws

from ml.capture import CaptureRecord, capture_record, parse_capture_line
from ml.models import load
from ml.models.churn.spec import PREDICTIONS
from ml.prediction_logs import (
    between,
    day_window,
    flatten,
    input_columns,
    valid_rows,
    write_prediction_logs,
)

CHURN = load("churn")
INPUT_COLUMNS = input_columns(CHURN)

WHEN = datetime(2025, 1, 1, 23, 30, tzinfo=UTC)
RECORD = {
    "tenure_months": 12,
    "monthly_charges": 70.5,
    "total_charges": None,
    "contract_type": "month-to-month",
    "payment_method": None,
    "support_tickets": 2,
    "data_usage_gb": 10.0,
    "region": "north",
    "is_senior": False,
}


def event(
    request: str,
    response: str,
    *,
    content_type: str = "application/json",
    accept: str = "application/json",
    base64_encode: bool = False,
    when: datetime = WHEN,
    inference_id: str | None = None,
    event_id: str = "e-1",
) -> CaptureRecord:
    line = capture_record(
        request,
        response,
        request_content_type=content_type,
        response_content_type=accept,
        base64_encode=base64_encode,
        event_id=event_id,
        inference_time=when,
        inference_id=inference_id,
    )
    return parse_capture_line(json.dumps(line))


def test_columns_and_dtypes_are_exactly_the_predictions_schema() -> None:
    frame, report = flatten(
        CHURN,
        [
            event(
                json.dumps({"instances": [{**RECORD, "customer_id": "c-1"}, RECORD]}),
                '{"predictions": [{"score": 0.25}, {"score": 0.75}], "model_version": "3"}',
            )
        ],
        endpoint_name="churn-ep",
        variant_name="primary",
    )
    assert list(frame.columns) == list(PREDICTIONS.column_names)
    assert {c: str(t) for c, t in frame.dtypes.items()} == {
        c.name: c.pandas_dtype for c in PREDICTIONS.columns
    }
    assert (report.n_events, report.n_rows, dict(report.skipped)) == (1, 2, {})
    assert frame["event_id"].tolist() == ["e-1#0", "e-1#1"]
    assert frame["customer_id"].tolist() == ["c-1", "e-1#1"]  # no id, no inferenceId: unique
    assert frame["score"].tolist() == [0.25, 0.75]
    assert frame["model_version"].tolist() == ["3", "3"]
    assert frame["endpoint_name"].tolist() == ["churn-ep"] * 2
    assert frame["inference_time"].tolist() == [pd.Timestamp(WHEN)] * 2
    assert frame["total_charges"].isna().all() and frame["payment_method"].isna().all()
    assert set(INPUT_COLUMNS) == set(PREDICTIONS.column_names) - {
        "event_id",
        "inference_time",
        "endpoint_name",
        "variant_name",
        "model_version",
        "score",
    }


def test_csv_and_base64_events_flatten_alike() -> None:
    csv_row = "12,70.5,,month-to-month,,2,10.0,north,false"
    csv_event = event(
        csv_row, "0.5\n", content_type="text/csv", accept="text/csv", inference_id="cust-7"
    )
    b64_event = event(
        json.dumps(RECORD), '{"predictions": [{"score": 0.5}]}', base64_encode=True, event_id="e-2"
    )
    frame, _ = flatten(
        CHURN,
        [csv_event, b64_event],
        endpoint_name="e",
        variant_name="primary",
        model_version="fallback",
    )
    inputs = frame[list(INPUT_COLUMNS)].drop(columns=["customer_id"])
    assert inputs.iloc[0].equals(inputs.iloc[1])
    assert frame["customer_id"].tolist() == ["cust-7", "e-2#0"]  # the caller's inferenceId
    assert frame["model_version"].tolist() == ["fallback", "fallback"]


def test_unreadable_events_are_skipped_and_counted() -> None:
    frame, report = flatten(
        CHURN,
        [
            event(json.dumps([RECORD, RECORD]), '{"predictions": [{"score": 0.5}]}'),
            event("not json", "[0.1]"),
            event(json.dumps(RECORD), "[0.4]", event_id="ok"),
        ],
        endpoint_name="e",
        variant_name="primary",
    )
    assert frame["event_id"].tolist() == ["ok"]
    assert report.n_events == 3
    assert report.skipped["number of scores differs from number of records"] == 1
    assert sum(v for k, v in report.skipped.items() if k.startswith("unreadable payload")) == 1


def test_rows_the_schema_refuses_are_dropped_and_counted() -> None:
    bad = {**RECORD, "region": "atlantis"}
    frame, _ = flatten(
        CHURN,
        [
            event(json.dumps(RECORD), "[0.4]", event_id="a"),
            event(json.dumps(bad), "[0.4]", event_id="b"),
            event(json.dumps(RECORD), "[1.5]", event_id="c"),
        ],
        endpoint_name="e",
        variant_name="primary",
    )
    valid, reasons = valid_rows(CHURN, frame)
    assert valid["event_id"].tolist() == ["a"]
    assert reasons == {
        "invalid region: not one of ['north', 'south', 'east', 'west']": 1,
        "invalid score: not in [0, 1]": 1,
    }


def test_windows() -> None:
    since = datetime(2025, 1, 2, 5, tzinfo=UTC)
    assert day_window(since, since + timedelta(hours=1)) == (
        datetime(2025, 1, 2, tzinfo=UTC),
        since + timedelta(hours=1),
    )
    frame, _ = flatten(
        CHURN,
        [
            event(json.dumps(RECORD), "[0.4]", when=WHEN + timedelta(minutes=m), event_id=f"e{m}")
            for m in (0, 20, 40)
        ],
        endpoint_name="e",
        variant_name="primary",
    )
    assert between(frame, WHEN + timedelta(minutes=10), WHEN + timedelta(minutes=40))[
        "event_id"
    ].tolist() == ["e20"]


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="predictions")
        yield client


def test_logs_are_committed_partitioned_by_day_and_read_back(s3: Any) -> None:
    from ml.lake import read_dataset

    events = [
        event(
            json.dumps({**RECORD, "customer_id": f"c{m}"}),
            "[0.4]",
            when=WHEN + timedelta(minutes=m),
            event_id=f"e{m}",
        )
        for m in (0, 45)
    ]
    frame, _ = flatten(CHURN, events, endpoint_name="e", variant_name="primary")
    keys = write_prediction_logs(CHURN, s3, "predictions", frame)
    assert keys == (
        "predictions/dt=2025-01-01/_manifest.json",
        "predictions/dt=2025-01-02/_manifest.json",
    )
    back = read_dataset(PREDICTIONS, "predictions", s3=s3)
    assert sorted(back["customer_id"]) == ["c0", "c45"]
    assert write_prediction_logs(CHURN, s3, "predictions", frame.iloc[:0]) == ()


def test_the_version_is_never_null() -> None:
    from ml.prediction_logs import UNKNOWN_VERSION

    csv_event = event(
        "12,70.5,,month-to-month,,2,10.0,north,false",
        "0.5\n",
        content_type="text/csv",
        accept="text/csv",
    )
    json_event = event(
        json.dumps(RECORD),
        '{"predictions": [{"score": 0.5}], "model_version": "churn-models/2"}',
        event_id="e-2",
    )
    frame, _ = flatten(CHURN, [csv_event, json_event], endpoint_name="e", variant_name="primary")
    # a CSV answer holds scores only: its row says so rather than staying null
    assert frame["model_version"].tolist() == [UNKNOWN_VERSION, "churn-models/2"]
    assert frame["model_version"].notna().all()
