"""The scheduled job's parts after drift: online quality (labels joined once the horizon has
passed, per version, to CloudWatch, the lake and the registry), skew and model age, and the
monitor page, each run only when configured and said so in the summary."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pandas as pd
import pytest
from moto import mock_aws

from ml.capture import capture_record, write_capture_file
from ml.contracts import QUALITY_NAMESPACE
from ml.drift import DriftError
from ml.drift.job import DriftJobConfig, main, page_key, run_drift_job
from ml.labels import write_outcomes
from ml.models import load
from ml.package import build_model_tarball
from ml.prediction_logs import write_prediction_logs
from ml.quality import read_quality_history
from ml.sample_data import generate_customers, simulate_outcomes
from ml.serve import load_handler
from tests.ml.conftest import records
from tests.ml.test_labels import prediction_rows
from tests.ml.test_skew import skewed_copy

CHURN = load("churn")
UNTIL = datetime(2025, 3, 1, 12, tzinfo=UTC)
SINCE = UNTIL - timedelta(hours=1)
GROUP = "churn-models"
KMS = "arn:aws:kms:us-east-1:123456789012:key/lake"


@pytest.fixture
def aws(model_dir: Path, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """The model's buckets, its served artifact and baseline, a registered approved version."""
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        for bucket in ("predictions", "models", "raw"):
            s3.create_bucket(Bucket=bucket)
        tarball = build_model_tarball(CHURN, model_dir, tmp_path / "model.tar.gz")
        s3.put_object(Bucket="models", Key="churn/serving/model.tar.gz", Body=tarball.read_bytes())
        s3.put_object(
            Bucket="models",
            Key="churn/serving/baseline.json",
            Body=(model_dir / "baseline.json").read_bytes(),
        )
        sm = boto3.client("sagemaker", region_name="us-east-1")
        group_arn = sm.create_model_package_group(ModelPackageGroupName=GROUP)[
            "ModelPackageGroupArn"
        ]
        arn = sm.create_model_package(
            ModelPackageGroupName=GROUP,
            ModelApprovalStatus="Approved",
            InferenceSpecification={
                "Containers": [{"Image": "img", "ModelDataUrl": "s3://models/m.tar.gz"}],
                "SupportedContentTypes": ["application/json"],
                "SupportedResponseMIMETypes": ["application/json"],
            },
            CustomerMetadataProperties={"metric.roc_auc": "0.99", "metric.log_loss": "0.3"},
        )["ModelPackageArn"]
        yield {
            "s3": s3,
            "cloudwatch": boto3.client("cloudwatch", region_name="us-east-1"),
            "sagemaker": sm,
            "group_arn": group_arn,
            "arn": arn,
        }


def config(**extra: Any) -> DriftJobConfig:
    return DriftJobConfig(
        model="churn",
        predictions_bucket="predictions",
        models_bucket="models",
        baseline_key="churn/serving/baseline.json",
        endpoint_name="churn-ep",
        threshold=0.2,
        kms_key_arn=KMS,
        **extra,
    )


def everything(aws: dict[str, Any], **extra: Any) -> DriftJobConfig:
    settings: dict[str, Any] = {
        "model_key": "churn/serving/model.tar.gz",
        "labels_bucket": "raw",
        "model_package_group_arn": aws["group_arn"],
    }
    return config(**{**settings, **extra})


def answer(directory: Path, raw: pd.DataFrame, arn: str, monkeypatch: Any) -> list[str]:
    """The JSON answers the artifact in `directory` gives for each record of `raw`, served as the
    registered version `arn` (the container's environment)."""
    monkeypatch.setenv("MLPLAT_MODEL_VERSION", arn)
    handler = load_handler(directory)
    monkeypatch.delenv("MLPLAT_MODEL_VERSION")
    out = []
    for record in records(raw):
        matrix = handler.input_fn(json.dumps(record), "application/json")
        body, _ = handler.output_fn(handler.predict_fn(matrix, handler.model), "application/json")
        out.append(body)
    return out


def capture_window(s3: Any, raw: pd.DataFrame, answers: list[str]) -> None:
    lines = [
        capture_record(
            json.dumps({**rec, "customer_id": cid}),
            body,
            inference_time=SINCE + timedelta(minutes=5, seconds=i),
        )
        for i, (rec, cid, body) in enumerate(
            zip(records(raw), raw["customer_id"], answers, strict=True)
        )
    ]
    write_capture_file(s3, "predictions", lines, endpoint="churn-ep", variant="primary", when=SINCE)


def labelled_history(aws: dict[str, Any], model_dir: Path, version: str) -> pd.DataFrame:
    """Prediction logs of the month before the label horizon, scored by the served model, and the
    outcomes that came back for them."""
    raw = generate_customers(3_000, seed=50, as_of=UNTIL - timedelta(days=30))
    estimator = CHURN.load(model_dir)
    scores = CHURN.predict(
        estimator, CHURN.features.feature_matrix(CHURN.features.build_features(raw))
    )
    rows = prediction_rows(CHURN, raw, scores, version)
    write_prediction_logs(CHURN, aws["s3"], "predictions", rows, kms_key_arn=KMS)
    outcomes = simulate_outcomes(rows, seed=5, observed_at=UNTIL - timedelta(days=1))
    write_outcomes(aws["s3"], "raw", outcomes, KMS)
    return rows


def test_the_job_measures_quality_skew_and_age_and_writes_the_page(
    aws: dict[str, Any], model_dir: Path, raw: pd.DataFrame, monkeypatch: Any
) -> None:
    rows = labelled_history(aws, model_dir, f"{GROUP}/1")
    window = raw.head(200)
    capture_window(aws["s3"], window, answer(model_dir, window, aws["arn"], monkeypatch))

    result = run_drift_job(
        everything(aws),
        since=SINCE,
        until=UNTIL,
        s3=aws["s3"],
        cloudwatch=aws["cloudwatch"],
        sagemaker=aws["sagemaker"],
    )
    assert {name: part.status for name, part in result.parts.items()} == {
        "quality": "ran",
        "skew": "ran",
        "age": "ran",
        "page": "ran",
    }
    assert result.failed == ()
    assert result.model_version == f"{GROUP}/1"  # the version the endpoint answered with
    # quality: the predictions of [until - 37 days, until - 30 days) that found their outcome
    assert result.quality is not None
    online = result.quality.online
    start, end = UNTIL - timedelta(days=37), UNTIL - timedelta(days=30)
    times = rows["inference_time"]
    assert online.n == int(((times >= start) & (times < end)).sum()) > 500
    figures = online.versions[f"{GROUP}/1"].overall.metrics
    assert figures["roc_auc"] is not None and figures["roc_auc"] > 0.7
    assert result.quality.shortfalls[f"{GROUP}/1"] == pytest.approx(0.99 - figures["roc_auc"])
    assert result.quality.breached == (f"{GROUP}/1",)  # 0.99 offline: short by more than 0.05
    props = aws["sagemaker"].describe_model_package(ModelPackageName=aws["arn"])[
        "CustomerMetadataProperties"
    ]
    assert float(props["online.roc_auc"]) == pytest.approx(figures["roc_auc"])
    assert props["metric.roc_auc"] == "0.99" and props["online.rows"] == str(online.n)
    # skew: the faithful handler; age: from the served artifact's lineage
    assert result.skew is not None and (result.skew.n, result.skew.n_differ) == (200, 0)
    created = datetime.fromisoformat(
        json.loads((model_dir / "lineage.json").read_text())["created_at"]
    )
    assert result.age_days == pytest.approx((UNTIL - created).total_seconds() / 86400)
    # metrics: the alarms' series (EndpointName only) and the per-version charts
    cw = aws["cloudwatch"]
    for name in ("QualityShortfall", "LabeledRows", "SkewShare", "ModelAgeDays"):
        listed = cw.list_metrics(Namespace=QUALITY_NAMESPACE, MetricName=name)["Metrics"]
        assert [{"Name": "EndpointName", "Value": "churn-ep"}] in [m["Dimensions"] for m in listed]
    assert result.quality_metrics_sent > 4
    # the lake: the quality rows, read back as the page's history
    history = read_quality_history(
        aws["s3"], "predictions", endpoint_name="churn-ep", since=start, until=end
    )
    assert [(h["model_version"], h["n"]) for h in history] == [(f"{GROUP}/1", online.n)]
    assert history[0]["offline"]["roc_auc"] == 0.99
    # the page, at the drift report's .html key, beside its JSON
    assert result.report is not None and result.page_key == result.report_keys[1]
    page = aws["s3"].get_object(Bucket="predictions", Key=result.page_key)
    html = page["Body"].read().decode()
    assert page["ContentType"].startswith("text/html") and page["ServerSideEncryption"] == "aws:kms"
    assert html.startswith("<!doctype html>") and f"{GROUP}/1" in html and "<svg" in html
    assert "<script" not in html
    report = json.loads(
        aws["s3"].get_object(Bucket="predictions", Key=result.report_keys[0])["Body"].read()
    )
    assert report["n_rows"] == 200


def test_a_skewed_handler_fires_the_skew_share(
    aws: dict[str, Any], model_dir: Path, raw: pd.DataFrame, monkeypatch: Any, tmp_path: Path
) -> None:
    window = raw.head(300)
    skewed = skewed_copy(model_dir, tmp_path / "skewed")
    capture_window(aws["s3"], window, answer(skewed, window, aws["arn"], monkeypatch))
    result = run_drift_job(
        config(model_key="churn/serving/model.tar.gz"),
        since=SINCE,
        until=UNTIL,
        s3=aws["s3"],
        cloudwatch=aws["cloudwatch"],
    )
    tenure = window["tenure_months"].to_numpy()
    assert result.skew is not None
    assert result.skew.n_differ == int(((tenure >= 6) & (tenure < 12)).sum())
    assert result.skew.share > 0.05
    stats = aws["cloudwatch"].get_metric_statistics(
        Namespace=QUALITY_NAMESPACE,
        MetricName="SkewShare",
        Dimensions=[{"Name": "EndpointName", "Value": "churn-ep"}],
        StartTime=UNTIL - timedelta(hours=1),
        EndTime=UNTIL + timedelta(hours=1),
        Period=3600,
        Statistics=["Maximum"],
    )["Datapoints"]
    assert [d["Maximum"] for d in stats] == [pytest.approx(result.skew.share)]
    assert result.parts["quality"].status == "skipped"


def test_the_jobs_log_holds_no_customer_of_the_skewed_rows(
    aws: dict[str, Any],
    model_dir: Path,
    raw: pd.DataFrame,
    monkeypatch: Any,
    tmp_path: Path,
    capsys: Any,
) -> None:
    """The summary goes to the job's log (CloudWatch Logs), which a deletion request cannot
    reach: it counts the skewed rows and names none of them."""
    window = raw.head(300)
    skewed = skewed_copy(model_dir, tmp_path / "skewed")
    capture_window(aws["s3"], window, answer(skewed, window, aws["arn"], monkeypatch))
    env = config(model_key="churn/serving/model.tar.gz").to_env()
    assert main(env, now=UNTIL + timedelta(minutes=3)) == 0
    out = capsys.readouterr().out
    summary = json.loads(out)
    assert summary["skew"]["n_differ"] > 0 and "worst" not in summary["skew"]
    assert not [c for c in window["customer_id"].astype(str) if c in out]


def test_unconfigured_parts_are_skipped_and_said_so(
    aws: dict[str, Any], model_dir: Path, raw: pd.DataFrame, monkeypatch: Any, capsys: Any
) -> None:
    window = raw.head(50)
    capture_window(aws["s3"], window, answer(model_dir, window, aws["arn"], monkeypatch))
    assert main(config().to_env(), now=UNTIL + timedelta(minutes=3)) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["parts"] == {
        "quality": {"status": "skipped", "detail": "not configured (MLPLAT_DRIFT_LABELS_BUCKET)"},
        "skew": {"status": "skipped", "detail": "not configured (MLPLAT_DRIFT_MODEL_KEY)"},
        "age": {"status": "skipped", "detail": "not configured (MLPLAT_DRIFT_MODEL_KEY)"},
        "page": {
            "status": "ran",
            "detail": f"s3://predictions/{summary['report'][1]}",
        },
    }
    assert summary["rows"] == 50 and summary["model_version"] == f"{GROUP}/1"
    assert summary["quality"] is None and summary["skew"] is None and summary["age_days"] is None
    assert summary["page"] == summary["report"][1]  # the page replaces the report's HTML
    html = aws["s3"].get_object(Bucket="predictions", Key=summary["page"])["Body"].read()
    assert b"not measured" in html


def test_a_failing_part_does_not_stop_the_others_and_fails_the_run(
    aws: dict[str, Any], model_dir: Path, capsys: Any
) -> None:
    labelled_history(aws, model_dir, f"{GROUP}/1")
    env = everything(aws, model_key="churn/missing/model.tar.gz").to_env()
    assert main(env, now=UNTIL) == 1
    summary = json.loads(capsys.readouterr().out)
    assert summary["parts"]["quality"]["status"] == "ran"
    assert summary["parts"]["skew"]["status"] == "failed"
    assert (
        "no served model at s3://models/churn/missing/model.tar.gz"
        in (summary["parts"]["age"]["detail"])
    )
    assert summary["quality"]["labeled_rows"] > 0 and summary["events"] == 0
    # no traffic in the window, but quality ran: the page is written at the window's key
    assert summary["page"] == page_key("churn-ep", UNTIL)
    assert summary["report"] == []


def test_the_new_settings_round_trip_through_the_environment() -> None:
    full = DriftJobConfig(
        model="churn",
        predictions_bucket="p",
        models_bucket="m",
        baseline_key="k",
        endpoint_name="e",
        threshold=0.3,
        model_key="churn/serving/model.tar.gz",
        labels_bucket="raw",
        model_package_group_arn="arn:aws:sagemaker:us-east-1:123456789012:model-package-group/g",
        quality_margin=0.02,
        skew_tolerance=1e-4,
        skew_sample=250,
        quality_lookback_days=14,
    )
    env = full.to_env()
    assert env["MLPLAT_DRIFT_LABELS_BUCKET"] == "raw"
    assert env["MLPLAT_DRIFT_MODEL_PACKAGE_GROUP_ARN"].endswith(":model-package-group/g")
    assert env["MLPLAT_DRIFT_SKEW_SAMPLE"] == "250"
    assert DriftJobConfig.from_env(env) == full
    new = ("MODEL_KEY", "LABELS_BUCKET", "MODEL_PACKAGE_GROUP_ARN", "QUALITY_MARGIN", "SKEW_")
    older = {k: v for k, v in env.items() if not k.removeprefix("MLPLAT_DRIFT_").startswith(new)}
    older.pop("MLPLAT_DRIFT_QUALITY_LOOKBACK_DAYS")
    parsed = DriftJobConfig.from_env(older)  # the environment of a stack from before them
    assert (parsed.model_key, parsed.labels_bucket, parsed.model_package_group_arn) == (None,) * 3
    assert (parsed.quality_margin, parsed.skew_sample, parsed.quality_lookback_days) == (
        0.05,
        1000,
        7,
    )
    with pytest.raises(DriftError, match="MLPLAT_DRIFT_SKEW_SAMPLE='many' is not a valid int"):
        DriftJobConfig.from_env({**env, "MLPLAT_DRIFT_SKEW_SAMPLE": "many"})
    with pytest.raises(DriftError, match="model_package_group_arn 'g': expected arn:aws:sagemaker"):
        DriftJobConfig.from_env({**env, "MLPLAT_DRIFT_MODEL_PACKAGE_GROUP_ARN": "g"})
    with pytest.raises(DriftError, match=r"quality_lookback_days must be 1\.\.366, got 0"):
        DriftJobConfig.from_env({**env, "MLPLAT_DRIFT_QUALITY_LOOKBACK_DAYS": "0"})
    with pytest.raises(DriftError, match="quality_margin must be >= 0"):
        DriftJobConfig.from_env({**env, "MLPLAT_DRIFT_QUALITY_MARGIN": "-0.1"})


def test_quality_before_any_label_came_back_reports_zero_labelled_rows(
    aws: dict[str, Any],
) -> None:
    result = run_drift_job(
        config(labels_bucket="raw"),
        since=SINCE,
        until=UNTIL,
        s3=aws["s3"],
        cloudwatch=aws["cloudwatch"],
    )
    assert result.parts["quality"].status == "ran"
    assert result.quality is not None and result.quality.online.n == 0
    assert result.quality.row_keys == () and result.quality.registry_updated == ()
    listed = aws["cloudwatch"].list_metrics(Namespace=QUALITY_NAMESPACE)["Metrics"]
    assert [(m["MetricName"], m["Dimensions"]) for m in listed] == [
        ("LabeledRows", [{"Name": "EndpointName", "Value": "churn-ep"}])
    ]
    assert result.page_key == page_key("churn-ep", UNTIL)


def test_a_run_that_measured_nothing_writes_no_page(aws: dict[str, Any]) -> None:
    result = run_drift_job(
        config(), since=SINCE, until=UNTIL, s3=aws["s3"], cloudwatch=aws["cloudwatch"]
    )
    assert result.page_key is None and result.report is None
    assert result.parts["page"].status == "skipped"
    assert "Contents" not in aws["s3"].list_objects_v2(Bucket="predictions", Prefix="drift-reports")
