"""ml.quality: online figures per version and slice, the shortfall against offline, CloudWatch
datapoints, quality rows in the lake and the registry's online metadata."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import numpy as np
import pandas as pd
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from ml import quality
from ml.contracts import QUALITY_NAMESPACE
from ml.labels import join_labels
from ml.models import load
from ml.quality import (
    Figures,
    QualityError,
    VersionQuality,
    online_quality,
    shortfall,
)
from ml.sample_data import generate_customers, simulate_outcomes, true_churn_probability
from tests.ml.test_labels import prediction_rows

CHURN = load("churn")
SPEND = load("spend")
OBSERVED = datetime(2025, 3, 1, tzinfo=UTC)
GROUP_ARN = "arn:aws:sagemaker:us-east-1:123456789012:model-package-group/churn-models"


def joined_rows(n: int, seed: int, versions: dict[str, float]) -> pd.DataFrame:
    """Churn predictions of `n` snapshots per version with their simulated outcomes; a version's
    value is how much of its score is noise (0: the true probability, 1: pure noise)."""
    frames = []
    for i, (version, noise) in enumerate(versions.items()):
        raw = generate_customers(n, seed=seed + i, id_offset=i * n)
        truth = true_churn_probability(raw)
        rng = np.random.default_rng(seed + i)
        scores = np.clip((1 - noise) * truth + noise * rng.random(n), 0, 1)
        rows = prediction_rows(CHURN, raw, scores, version)
        outcomes = simulate_outcomes(rows, seed=seed + i, observed_at=OBSERVED)
        frames.append(join_labels(CHURN, rows, outcomes))
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def joined() -> pd.DataFrame:
    return joined_rows(3_000, seed=20, versions={"churn-models/1": 0.0, "churn-models/2": 0.9})


# --- the figures ---------------------------------------------------------------------------------


def test_the_figures_are_the_offline_evaluations_own() -> None:
    from sklearn.metrics import roc_auc_score

    from ml.evaluate import compute_metrics

    rng = np.random.default_rng(1)
    y = (rng.random(2_000) < 0.3).astype(int)
    scores = np.round(np.clip(0.3 * y + rng.random(2_000) * 0.7, 0, 1), 2)  # many ties
    figures = quality.classification_figures(y, scores)
    offline = compute_metrics(y, scores)
    assert figures["roc_auc"] == pytest.approx(roc_auc_score(y, scores), abs=1e-12)
    assert figures["roc_auc"] == pytest.approx(offline.roc_auc, abs=1e-12)
    assert figures["log_loss"] == pytest.approx(offline.log_loss, abs=1e-12)
    assert figures["ece"] == pytest.approx(offline.ece, abs=1e-12)
    assert figures["mean_score"] == pytest.approx(scores.mean())
    assert figures["observed_rate"] == pytest.approx(y.mean())
    assert quality.roc_auc(np.ones(5), np.linspace(0, 1, 5)) is None  # one class: undefined
    assert quality.roc_auc(np.array([0, 1]), np.array([0.9, 0.1])) == 0.0


def test_online_quality_per_version_and_slice(joined: pd.DataFrame) -> None:
    online = online_quality(CHURN, joined)
    assert sorted(online.versions) == ["churn-models/1", "churn-models/2"]
    good, noisy = online.versions["churn-models/1"], online.versions["churn-models/2"]
    assert good.overall.n + noisy.overall.n == online.n == len(joined)
    assert set(good.overall.metrics) == set(CHURN.spec.online_metrics)
    good_auc, noisy_auc = good.overall.metrics["roc_auc"], noisy.overall.metrics["roc_auc"]
    assert good_auc is not None and noisy_auc is not None
    assert good_auc > 0.75 and noisy_auc < good_auc - 0.1  # the noisy version is found out
    # the oracle is calibrated: mean score ~ observed rate, small calibration error
    assert good.overall.metrics["ece"] is not None and good.overall.metrics["ece"] < 0.05
    assert set(good.slices) == set(CHURN.spec.slice_columns)  # tenure bands too, as offline
    contract = good.slices["contract_type"]
    assert set(contract) == {"month-to-month", "one-year", "two-year"}
    version_rows = joined.loc[joined["model_version"] == "churn-models/1"]
    assert sum(f.n for f in contract.values()) == len(version_rows)
    month = version_rows.loc[version_rows["contract_type"] == "month-to-month"]
    assert contract["month-to-month"].metrics["observed_rate"] == pytest.approx(
        month["churned"].mean()
    )
    # a slice value with fewer rows than the minimum is reported with its count, not figures
    tiny = online_quality(CHURN, joined.head(40), min_slice_rows=30)
    small = [f for values in tiny.latest.slices.values() for f in values.values() if f.n < 30]
    assert small and all(all(v is None for v in f.metrics.values()) for f in small)
    assert tiny.latest.overall.metrics["log_loss"] is not None


def test_regression_quality() -> None:
    raw = generate_customers(500, seed=30)
    outcomes = simulate_outcomes(prediction_rows(SPEND, raw), seed=3, observed_at=OBSERVED)
    truth = outcomes["next_month_spend"].to_numpy()
    rows = prediction_rows(SPEND, raw, truth + 2.0, "spend-models/3")  # always 2 over
    joined = join_labels(SPEND, rows, outcomes)
    figures = online_quality(SPEND, joined).versions["spend-models/3"].overall.metrics
    assert figures == {
        "rmse": pytest.approx(2.0),
        "mae": pytest.approx(2.0),
        "bias": pytest.approx(2.0),
    }


def test_online_quality_refuses_bad_rows(joined: pd.DataFrame) -> None:
    with pytest.raises(QualityError, match=r"lack column\(s\) \['churned'\]"):
        online_quality(CHURN, joined.drop(columns="churned"))
    with pytest.raises(QualityError, match="name the window"):
        online_quality(CHURN, joined.iloc[:0])
    start, end = datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 1, 8, tzinfo=UTC)
    empty = online_quality(CHURN, joined.iloc[:0], window_start=start, window_end=end)
    assert (empty.n, empty.latest, empty.window_end) == (0, None, end)


def test_shortfall_is_signed_so_that_positive_is_worse() -> None:
    online = VersionQuality(
        "v/1",
        Figures(100, {"roc_auc": 0.80, "log_loss": 0.5}),
        {},
        datetime(2025, 1, 1, tzinfo=UTC),
        datetime(2025, 1, 2, tzinfo=UTC),
    )
    assert shortfall(CHURN, online, {"roc_auc": 0.85}) == pytest.approx(0.05)
    assert shortfall(CHURN, online, {"roc_auc": 0.78}) == pytest.approx(-0.02)
    assert math.isnan(shortfall(CHURN, online, {}))  # nothing registered to compare with
    undefined = Figures(10, {"roc_auc": None})
    assert math.isnan(shortfall(CHURN, undefined, {"roc_auc": 0.85}))
    assert shortfall(SPEND, Figures(100, {"rmse": 12.0}), {"rmse": 10.0}) == pytest.approx(0.2)
    assert shortfall(SPEND, Figures(100, {"rmse": 9.0}), {"rmse": 10.0}) == pytest.approx(-0.1)


# --- where the figures go ------------------------------------------------------------------------


@pytest.fixture
def aws() -> Iterator[dict[str, Any]]:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="predictions")
        yield {
            "s3": s3,
            "cloudwatch": boto3.client("cloudwatch", region_name="us-east-1"),
            "sagemaker": boto3.client("sagemaker", region_name="us-east-1"),
        }


def test_metrics_per_version_for_charts_and_per_endpoint_for_alarms(
    aws: dict[str, Any], joined: pd.DataFrame
) -> None:
    online = online_quality(CHURN, joined)
    when = datetime.now(UTC).replace(microsecond=0)
    data = quality.metric_data(
        online, endpoint_name="churn-ep", when=when, shortfalls={"churn-models/2": 0.2}
    )
    sent = quality.put_metrics(aws["cloudwatch"], data)
    assert sent == len(data)
    cw = aws["cloudwatch"]

    def dims(name: str) -> list[tuple[tuple[str, str], ...]]:
        listed = cw.list_metrics(Namespace=QUALITY_NAMESPACE, MetricName=name)["Metrics"]
        return sorted(
            tuple(sorted((d["Name"], d["Value"]) for d in m["Dimensions"])) for m in listed
        )

    endpoint = ("EndpointName", "churn-ep")
    per_version = [(endpoint, ("ModelVersion", v)) for v in ("churn-models/1", "churn-models/2")]
    assert dims("roc_auc") == per_version
    assert dims("LabeledRows") == sorted([(endpoint,), *per_version])
    # the alarm's series: the worst version judged on enough rows (here the only one with a figure)
    assert dims("QualityShortfall") == sorted([(endpoint,), per_version[1]])
    alarm_rows = [
        d["Value"] for d in data if d["MetricName"] == "LabeledRows" and len(d["Dimensions"]) == 1
    ]
    assert alarm_rows == [float(len(joined))]
    assert {d["Timestamp"] for d in data} == {when}


def test_the_alarm_sees_the_worst_version_judged_on_enough_rows(joined: pd.DataFrame) -> None:
    """After a rollback the version serving again is as much in question as the one rolled back:
    the alarm's series is the worst shortfall of any version with enough labelled rows, not the
    latest version's; a version seen on a handful of rows does not count."""
    online = online_quality(CHURN, joined)
    counts = {v: q.overall.n for v, q in online.versions.items()}
    assert min(counts.values()) >= quality.ALARM_MIN_ROWS  # both versions count here
    assert online.latest is not None and online.latest.model_version == "churn-models/2"
    when = datetime(2025, 1, 31, tzinfo=UTC)

    def alarm_series(shortfalls: dict[str, float], data: Any = None) -> list[float]:
        data = data or quality.metric_data(
            online, endpoint_name="ep", when=when, shortfalls=shortfalls
        )
        return [
            d["Value"]
            for d in data
            if d["MetricName"] == "QualityShortfall" and len(d["Dimensions"]) == 1
        ]

    # the earlier version fell short, the latest did not: the alarm sees the earlier one
    assert alarm_series({"churn-models/1": 0.2, "churn-models/2": -0.1}) == [0.2]
    assert alarm_series({"churn-models/1": -0.3, "churn-models/2": 0.01}) == [0.01]
    # a version judged on too few rows is left out of the alarm (kept in its own series)
    few = online_quality(CHURN, joined[joined["model_version"] == "churn-models/1"].head(20))
    data = quality.metric_data(
        few, endpoint_name="ep", when=when, shortfalls={"churn-models/1": 0.9}
    )
    assert alarm_series({}, data) == []
    assert [d["Value"] for d in data if d["MetricName"] == "QualityShortfall"] == [0.9]


def test_quality_rows_accumulate_in_the_lake_and_read_back_as_history(
    aws: dict[str, Any], joined: pd.DataFrame
) -> None:
    s3 = aws["s3"]
    end = datetime(2025, 1, 31, 10, tzinfo=UTC)
    offline = {"churn-models/1": {"roc_auc": 0.9, "log_loss": 0.4}}
    for hour in range(3):  # three runs on the same day; the last one repeated
        online = online_quality(
            CHURN,
            joined,
            window_start=end - timedelta(days=7, hours=hour),
            window_end=end + timedelta(hours=hour),
        )
        rows = quality.quality_rows(
            online, endpoint_name="churn-ep", computed_at=end, offline=offline
        )
        keys = quality.write_quality_rows(
            s3, "predictions", rows, endpoint_name="churn-ep", kms_key_arn="arn:k"
        )
    quality.write_quality_rows(s3, "predictions", rows, endpoint_name="churn-ep", kms_key_arn="k")
    assert keys == ("quality-reports/churn-ep/dt=2025-01-31/_manifest.json",)
    assert s3.head_object(Bucket="predictions", Key=keys[0])["ServerSideEncryption"] == "aws:kms"
    history = quality.read_quality_history(
        s3,
        "predictions",
        endpoint_name="churn-ep",
        since=end - timedelta(days=1),
        until=end + timedelta(hours=5),
    )
    assert [(h["window_end"][11:16], h["model_version"]) for h in history] == [
        ("10:00", "churn-models/1"),
        ("10:00", "churn-models/2"),
        ("11:00", "churn-models/1"),
        ("11:00", "churn-models/2"),
        ("12:00", "churn-models/1"),
        ("12:00", "churn-models/2"),
    ]
    first = history[0]
    version = online.versions["churn-models/1"].overall
    assert first["n"] == version.n
    assert first["metrics"] == pytest.approx(version.metrics)
    assert first["offline"] == {"roc_auc": 0.9, "log_loss": 0.4}
    assert history[1]["offline"] == {}
    # overall rows carry the shortfall, per metric, > 0 worse
    frame = rows.loc[(rows["slice"] == "overall") & (rows["model_version"] == "churn-models/1")]
    auc = frame.loc[frame["metric"] == "roc_auc"].iloc[0]
    assert auc["shortfall"] == pytest.approx(0.9 - auc["online"])
    slices = rows.loc[rows["slice"] == "region"]
    assert slices["offline"].isna().all() and set(slices["slice_value"]) == {
        "north",
        "south",
        "east",
        "west",
    }


def _register(sm: Any, status: str = "Approved") -> str:
    sm.create_model_package_group(ModelPackageGroupName="churn-models")
    return str(
        sm.create_model_package(
            ModelPackageGroupName="churn-models",
            ModelApprovalStatus=status,
            InferenceSpecification={
                "Containers": [{"Image": "img", "ModelDataUrl": "s3://models/m.tar.gz"}],
                "SupportedContentTypes": ["application/json"],
                "SupportedResponseMIMETypes": ["application/json"],
            },
            CustomerMetadataProperties={"metric.roc_auc": "0.91", "data.version": "abc"},
        )["ModelPackageArn"]
    )


def test_registry_metadata_holds_online_beside_offline(
    aws: dict[str, Any], joined: pd.DataFrame
) -> None:
    sm = aws["sagemaker"]
    arn = _register(sm)
    key = quality.version_key(arn)
    assert key == "churn-models/1"
    assert quality.package_arn(GROUP_ARN, key) == arn
    assert quality.package_arn(GROUP_ARN, "unregistered") is None
    assert quality.package_arn(GROUP_ARN, "other-group/1") is None
    online = online_quality(
        CHURN, joined, window_start=OBSERVED - timedelta(days=7), window_end=OBSERVED
    )
    written = quality.update_registry_metadata(sm, arn, online)
    described = sm.describe_model_package(ModelPackageName=arn)
    props = described["CustomerMetadataProperties"]
    assert props["metric.roc_auc"] == "0.91" and props["data.version"] == "abc"  # kept
    assert described["ModelApprovalStatus"] == "Approved"  # kept
    figures = online.versions[key].overall
    assert float(props["online.roc_auc"]) == pytest.approx(figures.metrics["roc_auc"])
    assert props["online.rows"] == str(figures.n)
    assert props["online.window_end"] == "2025-03-01T00:00:00Z"
    assert written == {k: v for k, v in props.items() if k.startswith("online.")}
    assert quality.offline_metrics(described) == {"roc_auc": 0.91}
    # a figure that became undefined is removed, not left stale
    one_class = joined.loc[(joined["model_version"] == key) & (joined["churned"] == 0)]
    quality.update_registry_metadata(sm, arn, online_quality(CHURN, one_class))
    after = sm.describe_model_package(ModelPackageName=arn)["CustomerMetadataProperties"]
    assert "online.roc_auc" not in after and "online.log_loss" in after
    with pytest.raises(QualityError, match="no labelled predictions of version churn-models/9"):
        quality.update_registry_metadata(sm, arn.replace("/1", "/9"), online)


def test_the_update_request_means_the_same_whether_the_service_merges_or_replaces(
    joined: pd.DataFrame,
) -> None:
    """The exact UpdateModelPackage request, validated against botocore's service model."""
    sm = boto3.client("sagemaker", region_name="us-east-1")
    arn = "arn:aws:sagemaker:us-east-1:123456789012:model-package/churn-models/2"
    online = online_quality(CHURN, joined, window_end=OBSERVED)
    package = {
        "ModelPackageName": "churn-models",
        "ModelPackageArn": arn,
        "CreationTime": OBSERVED,
        "ModelPackageStatus": "Completed",
        "ModelPackageStatusDetails": {"ValidationStatuses": [], "ImageScanStatuses": []},
        "ModelApprovalStatus": "Approved",
        "ApprovalDescription": "gate passed",
        "CustomerMetadataProperties": {"metric.roc_auc": "0.9", "online.stale": "1"},
    }
    expected = quality.registry_properties(online.versions["churn-models/2"], OBSERVED)
    with Stubber(sm) as stub:
        stub.add_response("describe_model_package", package, {"ModelPackageName": arn})
        stub.add_response(
            "update_model_package",
            {"ModelPackageArn": arn},
            {
                "ModelPackageArn": arn,
                "CustomerMetadataProperties": {"metric.roc_auc": "0.9", **expected},
                "CustomerMetadataPropertiesToRemove": ["online.stale"],
                "ModelApprovalStatus": "Approved",
                "ApprovalDescription": "gate passed",
            },
        )
        quality.update_registry_metadata(sm, arn, online)
        stub.assert_no_pending_responses()
    crowded = {**package, "CustomerMetadataProperties": {f"p{i}": "x" for i in range(45)}}
    with pytest.raises(QualityError, match="would hold 52 metadata properties"):
        quality.update_registry_metadata(sm, arn, online, package=crowded)
