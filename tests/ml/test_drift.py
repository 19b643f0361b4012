"""Drift against the training baseline: statistics, the threshold, the report, the metrics."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import numpy as np
import pandas as pd
import pytest
from moto import mock_aws

import ml.baseline as training_baseline
from ml.capture import capture_record, write_capture_file
from ml.drift import (
    BASELINE_FORMAT,
    DRIFT_NAMESPACE,
    ENDPOINT_DIMENSION,
    FEATURE_DIMENSION,
    FEATURE_PSI_METRIC,
    OTHER,
    PREDICTION_PSI_METRIC,
    SCORED_ROWS_METRIC,
    Baseline,
    DriftError,
    compute_drift,
    metric_data,
    psi,
    put_metrics,
    write_report,
)
from ml.drift.job import DriftJobConfig, main, run_drift_job
from ml.models import load
from ml.sample_data import generate_customers, true_churn_probability

CHURN = load("churn")
FEATURE_NAMES = CHURN.spec.feature_names
build_features = CHURN.features.build_features

T0 = datetime(2025, 1, 1, 12, tzinfo=UTC)
T1 = T0 + timedelta(hours=1)
THRESHOLD = 0.2


def sample(n: int, seed: int, drift: float = 0.0) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    raw = generate_customers(n, seed=seed, drift=drift)
    return raw, build_features(raw), true_churn_probability(raw)


@pytest.fixture(scope="module")
def baseline_dict() -> dict[str, Any]:
    _, features, scores = sample(20_000, seed=1)
    return training_baseline.compute_baseline(CHURN, features, scores)


@pytest.fixture(scope="module")
def baseline(baseline_dict: dict[str, Any]) -> Baseline:
    return Baseline.from_dict(baseline_dict)


def drift_of(baseline: Baseline, features: pd.DataFrame, scores: np.ndarray) -> Any:
    return compute_drift(
        baseline,
        features,
        scores,
        threshold=THRESHOLD,
        endpoint_name="churn-ep",
        window_start=T0,
        window_end=T1,
    )


# --- the baseline format -----------------------------------------------------------------------


def test_reads_the_training_baseline_format(baseline: Baseline) -> None:
    assert BASELINE_FORMAT == training_baseline.FORMAT
    assert OTHER == training_baseline.OTHER
    assert tuple(baseline.features) == FEATURE_NAMES
    assert baseline.n_rows == 20_000
    contract = baseline.features["contract_type"]
    assert contract.kind == "categorical"
    assert contract.categories == ("month-to-month", "one-year", "two-year")
    assert contract.proportions[-1] == 0.0  # __other__ never seen in training
    monthly = baseline.features["monthly_charges"]
    assert monthly.kind == "numeric"
    assert len(monthly.proportions) == len(monthly.edges) + 1
    assert len(monthly.quantile_values) == 101
    assert list(baseline.score.edges) == list(training_baseline.SCORE_EDGES)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: {**d, "format": "other/2"}, "baseline format is 'other/2'"),
        (lambda d: {**d, "features": {}}, "baseline has no features"),
        (lambda d: {**d, "score": None}, "no score distribution"),
        (lambda d: {**d, "features": {"x": {"kind": "text"}}}, "features.x.kind is 'text'"),
        (
            lambda d: {
                **d,
                "features": {"x": {"kind": "numeric", "edges": [1, 2], "proportions": [1.0]}},
            },
            "2 edges need 3 proportions, got 1",
        ),
        (
            lambda d: {
                **d,
                "features": {
                    "x": {"kind": "numeric", "edges": [2, 1], "proportions": [0.5, 0.25, 0.25]}
                },
            },
            "not strictly increasing",
        ),
        (
            lambda d: {**d, "features": {"x": {"kind": "categorical", "proportions": ["a"]}}},
            "expected an object of numbers",
        ),
    ],
)
def test_bad_baselines_are_refused(
    baseline_dict: dict[str, Any], change: Any, message: str
) -> None:
    with pytest.raises(DriftError, match=message):
        Baseline.from_dict(change(baseline_dict))
    with pytest.raises(DriftError, match="not JSON"):
        Baseline.from_json("{")


# --- the statistics ----------------------------------------------------------------------------


def test_binning_and_psi_match_the_training_code(
    baseline: Baseline, baseline_dict: dict[str, Any]
) -> None:
    _, features, scores = sample(5_000, seed=2, drift=0.5)
    report = drift_of(baseline, features, scores)
    for name in ("monthly_charges", "tenure_months", "log_data_usage_gb"):
        entry = baseline_dict["features"][name]
        counts = training_baseline.bin_counts(features[name].to_numpy(), entry["edges"])
        result = report.feature(name)
        assert result.actual == pytest.approx(tuple(counts / counts.sum()))
        assert result.psi == pytest.approx(
            training_baseline.psi(entry["proportions"], counts / counts.sum())
        )
        # KS on a grid of ~1,100 points is the training code's KS to well within 0.01
        assert result.ks == pytest.approx(
            training_baseline.ks_statistic(entry, features[name].to_numpy()), abs=0.01
        )
    contract = report.feature("contract_type")
    shares = training_baseline.category_proportions(
        features["contract_type"], ("month-to-month", "one-year", "two-year")
    )
    assert contract.actual == pytest.approx(tuple(shares.values()))
    assert contract.ks is None


def test_psi_of_identical_distributions_is_zero_and_grows_with_shift() -> None:
    even = np.full(10, 0.1)
    assert psi(even, even) == 0.0
    shifted = np.array([0.05] * 5 + [0.15] * 5)
    assert 0 < psi(even, shifted) < psi(even, np.array([0.01] * 5 + [0.19] * 5))
    with pytest.raises(DriftError, match="bins differ"):
        psi(even, np.full(5, 0.2))


def test_unseen_categories_count_as_other(baseline: Baseline) -> None:
    _, features, scores = sample(1_000, seed=3)
    features = features.copy()
    features["region"] = pd.array(["atlantis"] * 500 + ["north"] * 500, dtype="string")
    result = drift_of(baseline, features, scores).feature("region")
    assert result.bins[-1] == OTHER
    assert result.actual[-1] == 0.5
    assert result.drifted


# --- the threshold --------------------------------------------------------------------------------


def test_a_seeded_shifted_sample_crosses_the_threshold(baseline: Baseline) -> None:
    _, features, scores = sample(20_000, seed=7, drift=1.5)
    report = drift_of(baseline, features, scores)
    # sample_data's default drift columns, as the features see them
    assert {"monthly_charges", "contract_type", "support_tickets"} <= set(report.drifted_features)
    assert report.feature("monthly_charges").psi > THRESHOLD
    assert report.feature("region").drifted is False  # not shifted
    assert report.n_rows == 20_000


def test_an_unshifted_sample_does_not(baseline: Baseline) -> None:
    _, features, scores = sample(20_000, seed=8)
    report = drift_of(baseline, features, scores)
    assert report.drifted_features == ()
    assert not report.prediction_drifted
    assert max(f.psi for f in report.features) < 0.05


def test_bad_inputs_are_refused(baseline: Baseline) -> None:
    _, features, scores = sample(100, seed=4)
    with pytest.raises(DriftError, match="missing from the data: charge_trend"):
        drift_of(baseline, features.drop(columns=["charge_trend"]), scores)
    with pytest.raises(DriftError, match=r"differ in length: \[99, 100\]"):
        drift_of(baseline, features, scores[:-1])
    with pytest.raises(DriftError, match="no rows"):
        drift_of(baseline, features.iloc[:0], scores[:0])
    with pytest.raises(DriftError, match="threshold must be a positive number"):
        compute_drift(
            baseline,
            features,
            scores,
            threshold=0,
            endpoint_name="e",
            window_start=T0,
            window_end=T1,
        )
    bad = features.copy()
    bad["monthly_charges"] = np.nan
    with pytest.raises(DriftError, match="'monthly_charges' has no non-missing values"):
        drift_of(baseline, bad, scores)


# --- report and metrics --------------------------------------------------------------------------


def test_report_json_and_self_contained_html(baseline: Baseline) -> None:
    _, features, scores = sample(5_000, seed=9, drift=1.5)
    report = drift_of(baseline, features, scores)
    data = json.loads(report.to_json())
    assert data["drifted_features"] == list(report.drifted_features)
    assert [f["name"] for f in data["features"]] == list(FEATURE_NAMES)
    assert data["threshold"] == THRESHOLD
    page = report.to_html()
    assert page.count("<svg") == len(report.drifted_features) + int(report.prediction_drifted)
    assert "<script" not in page and "<link" not in page and "src=" not in page
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    assert "monthly_charges (PSI" in page


@pytest.fixture
def aws() -> Iterator[dict[str, Any]]:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        for bucket in ("predictions", "models"):
            s3.create_bucket(Bucket=bucket)
        yield {"s3": s3, "cloudwatch": boto3.client("cloudwatch", region_name="us-east-1")}


def test_metrics_reach_cloudwatch_with_the_alarm_dimensions(
    aws: dict[str, Any], baseline: Baseline
) -> None:
    _, features, scores = sample(2_000, seed=5, drift=1.5)
    end = datetime.now(UTC).replace(microsecond=0)
    report = compute_drift(
        baseline,
        features,
        scores,
        threshold=THRESHOLD,
        endpoint_name="churn-ep",
        window_start=end - timedelta(hours=1),
        window_end=end,
    )
    sent = put_metrics(aws["cloudwatch"], metric_data(report))
    assert sent == len(FEATURE_NAMES) + 2
    cw = aws["cloudwatch"]
    listed = cw.list_metrics(Namespace="MLPlatform/Drift", MetricName="FeaturePSI")["Metrics"]
    assert sorted(
        tuple(sorted((d["Name"], d["Value"]) for d in m["Dimensions"])) for m in listed
    ) == sorted((("EndpointName", "churn-ep"), ("Feature", f)) for f in FEATURE_NAMES)
    stats = cw.get_metric_statistics(
        Namespace=DRIFT_NAMESPACE,
        MetricName=FEATURE_PSI_METRIC,
        Dimensions=[
            {"Name": ENDPOINT_DIMENSION, "Value": "churn-ep"},
            {"Name": FEATURE_DIMENSION, "Value": "monthly_charges"},
        ],
        StartTime=end - timedelta(hours=2),
        EndTime=end + timedelta(hours=1),
        Period=3600,
        Statistics=["Maximum"],
    )["Datapoints"]
    assert [d["Maximum"] for d in stats] == [pytest.approx(report.feature("monthly_charges").psi)]
    prediction = cw.list_metrics(Namespace=DRIFT_NAMESPACE, MetricName=PREDICTION_PSI_METRIC)[
        "Metrics"
    ]
    assert [m["Dimensions"] for m in prediction] == [
        [{"Name": "EndpointName", "Value": "churn-ep"}]
    ]


def test_report_is_written_to_the_predictions_bucket(
    aws: dict[str, Any], baseline: Baseline
) -> None:
    _, features, scores = sample(1_000, seed=6)
    report = drift_of(baseline, features, scores)
    json_key, html_key = write_report(aws["s3"], "predictions", report)
    assert json_key == "drift-reports/churn-ep/dt=2025-01-01/drift-20250101T130000Z.json"
    assert html_key.endswith(".html")
    head = aws["s3"].head_object(Bucket="predictions", Key=html_key)
    assert head["ContentType"].startswith("text/html")
    assert head["ServerSideEncryption"] == "aws:kms"


# --- the job -------------------------------------------------------------------------------------


def _write_capture(s3: Any, raw: pd.DataFrame, scores: np.ndarray, when: datetime) -> None:
    from tests.ml.conftest import records

    lines = [
        capture_record(
            json.dumps({**rec, "customer_id": cid}),
            json.dumps({"predictions": [{"score": float(score)}]}),
            inference_time=when + timedelta(seconds=i),
        )
        for i, (rec, cid, score) in enumerate(
            zip(records(raw), raw["customer_id"], scores, strict=True)
        )
    ]
    write_capture_file(s3, "predictions", lines, endpoint="churn-ep", variant="primary", when=when)


def test_the_job_logs_predictions_reports_and_puts_metrics(
    aws: dict[str, Any], baseline_dict: dict[str, Any]
) -> None:
    from ml.lake import read_dataset
    from ml.models.churn.spec import PREDICTIONS

    s3 = aws["s3"]
    s3.put_object(
        Bucket="models", Key="churn/current/baseline.json", Body=json.dumps(baseline_dict).encode()
    )
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(hours=1)
    raw, _, scores = sample(300, seed=12, drift=2.0)
    _write_capture(s3, raw, scores, start + timedelta(minutes=5))
    earlier, _, earlier_scores = sample(50, seed=13)
    _write_capture(s3, earlier, earlier_scores, start - timedelta(hours=2))  # outside the window

    config = DriftJobConfig(
        model="churn",
        predictions_bucket="predictions",
        models_bucket="models",
        baseline_key="churn/current/baseline.json",
        endpoint_name="churn-ep",
        threshold=THRESHOLD,
    )
    result = run_drift_job(config, since=start, until=end, s3=s3, cloudwatch=aws["cloudwatch"])
    assert result.report is not None
    assert result.n_events == 300 and result.n_rows == 300
    assert "monthly_charges" in result.report.drifted_features
    assert result.metrics_sent == len(FEATURE_NAMES) + 2
    assert result.report_keys[0].startswith("drift-reports/churn-ep/dt=")
    logged = read_dataset(PREDICTIONS, "predictions", s3=s3)
    # the earlier rows of the day are re-logged with the window's: each partition stays whole
    in_day = 300 + (50 if (start - timedelta(hours=2)).date() == start.date() else 0)
    assert len(logged) == in_day
    assert set(raw["customer_id"]) <= set(logged["customer_id"])
    rows = aws["cloudwatch"].list_metrics(Namespace=DRIFT_NAMESPACE, MetricName=SCORED_ROWS_METRIC)[
        "Metrics"
    ]
    assert len(rows) == 1


def test_the_job_without_traffic_reports_zero_rows(
    aws: dict[str, Any], baseline_dict: dict[str, Any]
) -> None:
    aws["s3"].put_object(Bucket="models", Key="b.json", Body=json.dumps(baseline_dict).encode())
    config = DriftJobConfig(
        model="churn",
        predictions_bucket="predictions",
        models_bucket="models",
        baseline_key="b.json",
        endpoint_name="churn-ep",
        threshold=0.2,
    )
    result = run_drift_job(config, since=T0, until=T1, s3=aws["s3"], cloudwatch=aws["cloudwatch"])
    assert result.report is None and result.metrics_sent == 1 and result.report_keys == ()
    psi_metrics = aws["cloudwatch"].list_metrics(
        Namespace=DRIFT_NAMESPACE, MetricName=FEATURE_PSI_METRIC
    )["Metrics"]
    assert psi_metrics == []


def test_the_job_names_a_missing_baseline(aws: dict[str, Any]) -> None:
    config = DriftJobConfig(
        model="churn",
        predictions_bucket="predictions",
        models_bucket="models",
        baseline_key="nope.json",
        endpoint_name="e",
        threshold=0.2,
    )
    with pytest.raises(DriftError, match=r"no baseline at s3://models/nope\.json"):
        run_drift_job(config, since=T0, until=T1, s3=aws["s3"], cloudwatch=aws["cloudwatch"])


def test_the_job_names_an_unknown_model(aws: dict[str, Any]) -> None:
    config = DriftJobConfig(
        model="fraud",
        predictions_bucket="predictions",
        models_bucket="models",
        baseline_key="b.json",
        endpoint_name="e",
        threshold=0.2,
    )
    with pytest.raises(DriftError, match="drift job configuration: no model 'fraud'"):
        run_drift_job(config, since=T0, until=T1, s3=aws["s3"], cloudwatch=aws["cloudwatch"])


def test_job_config_from_the_environment() -> None:
    config = DriftJobConfig(
        model="churn",
        predictions_bucket="p",
        models_bucket="m",
        baseline_key="k",
        endpoint_name="e",
        threshold=0.3,
        window_hours=6,
        kms_key_arn="arn:k",
    )
    assert DriftJobConfig.from_env(config.to_env()) == config
    with pytest.raises(DriftError, match="lacks MLPLAT_MODEL, MLPLAT_DRIFT_PREDICTIONS_BUCKET"):
        DriftJobConfig.from_env({})
    assert config.to_env()["MLPLAT_MODEL"] == "churn"  # the variable every model-bound job reads
    with pytest.raises(DriftError, match="threshold must be > 0"):
        DriftJobConfig.from_env({**config.to_env(), "MLPLAT_DRIFT_THRESHOLD": "-1"})
    with pytest.raises(DriftError, match="could not convert"):
        DriftJobConfig.from_env({**config.to_env(), "MLPLAT_DRIFT_THRESHOLD": "high"})


def test_main_runs_the_last_window(
    aws: dict[str, Any], baseline_dict: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    aws["s3"].put_object(Bucket="models", Key="b.json", Body=json.dumps(baseline_dict).encode())
    env = DriftJobConfig(
        model="churn",
        predictions_bucket="predictions",
        models_bucket="models",
        baseline_key="b.json",
        endpoint_name="churn-ep",
        threshold=0.2,
    ).to_env()
    assert main(env, now=T1 + timedelta(minutes=7)) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["events"] == 0 and summary["metrics"] == 1


def test_baseline_inside_the_model_artifact(
    aws: dict[str, Any], baseline_dict: dict[str, Any]
) -> None:
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        body = json.dumps(baseline_dict).encode()
        info = tarfile.TarInfo("baseline.json")
        info.size = len(body)
        tar.addfile(info, io.BytesIO(body))
    aws["s3"].put_object(Bucket="models", Key="m/model.tar.gz", Body=buffer.getvalue())
    aws["s3"].put_object(Bucket="models", Key="m/bad.tar.gz", Body=b"not a tarball")
    loaded = Baseline.from_s3(aws["s3"], "models", "m/model.tar.gz")
    assert tuple(loaded.features) == FEATURE_NAMES
    with pytest.raises(DriftError, match="is not a gzipped tar archive"):
        Baseline.from_s3(aws["s3"], "models", "m/bad.tar.gz")


# --- the command line ----------------------------------------------------------------------------


def _cli() -> Any:
    import typer

    from mlplat.cli.commands.monitor import register

    app = typer.Typer()
    register(app)
    return app


def _outputs_file(tmp_path: Any, **extra: Any) -> Any:
    from ml.outputs import OUTPUT_KEYS
    from tests.ml.conftest import model_outputs

    data: dict[str, Any] = {key: f"x-{key}" for key in OUTPUT_KEYS}
    data.update(
        region="us-east-1",
        tags={},
        predictions_bucket="predictions",
        models_bucket="models",
        lake_kms_key_arn="",
        models={"churn": model_outputs(**extra).to_json()},
    )
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(data))
    return path


def test_monitor_drift_command(
    aws: dict[str, Any], baseline_dict: dict[str, Any], tmp_path: Any
) -> None:
    from typer.testing import CliRunner

    aws["s3"].put_object(
        Bucket="models", Key="churn/current/baseline.json", Body=json.dumps(baseline_dict).encode()
    )
    end = datetime.now(UTC).replace(microsecond=0)
    raw, _, scores = sample(200, seed=21, drift=2.0)
    _write_capture(aws["s3"], raw, scores, end - timedelta(minutes=30))
    report_path = tmp_path / "report.json"
    result = CliRunner().invoke(
        _cli(),
        [
            "monitor",
            "drift",
            "--outputs",
            str(_outputs_file(tmp_path, endpoint_name="churn-ep")),
            "--since",
            "2h",
            "--json",
            str(report_path),
            "--drift-only",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["rows"] == 200 and "monthly_charges" in summary["drifted_features"]
    assert json.loads(report_path.read_text())["endpoint_name"] == "churn-ep"
    assert {k: v.split(":")[0] for k, v in summary["parts"].items()} == {
        "quality": "skipped",
        "skew": "skipped",
        "age": "skipped",
        "page": "ran",
    }


def test_monitor_drift_runs_quality_skew_and_age_as_the_scheduled_job(
    aws: dict[str, Any], baseline_dict: dict[str, Any], model_dir: Any, tmp_path: Any
) -> None:
    """Without --drift-only the command measures what the scheduled job does, configured from
    the outputs: the raw bucket's outcomes, the served artifact, the model's registry group; a
    part that cannot run (no served artifact) fails the command (exit 1) and says why."""
    from typer.testing import CliRunner

    from ml.models import load
    from ml.package import build_model_tarball

    s3 = aws["s3"]
    s3.create_bucket(Bucket="raw")
    s3.put_object(
        Bucket="models", Key="churn/current/baseline.json", Body=json.dumps(baseline_dict).encode()
    )
    end = datetime.now(UTC).replace(microsecond=0)
    raw, _, scores = sample(200, seed=21, drift=2.0)
    _write_capture(s3, raw, scores, end - timedelta(minutes=30))
    outputs = _outputs_file(tmp_path, endpoint_name="churn-ep")
    data = json.loads(outputs.read_text())
    data.update(raw_bucket="raw", account_id="123456789012")
    outputs.write_text(json.dumps(data))
    args = ["monitor", "drift", "--outputs", str(outputs), "--since", "2h"]
    missing = CliRunner().invoke(_cli(), args)
    assert missing.exit_code == 1, missing.output
    parts = json.loads(missing.stdout)["parts"]
    assert parts["skew"].startswith("failed: the served model could not be read")
    assert parts["quality"].startswith("ran")  # no label has come back yet: 0 rows
    tarball = build_model_tarball(load("churn"), model_dir, tmp_path / "model.tar.gz")
    s3.put_object(Bucket="models", Key="churn/served.tar.gz", Body=tarball.read_bytes())
    served = CliRunner().invoke(_cli(), [*args, "--model-key", "churn/served.tar.gz"])
    assert served.exit_code == 0, served.output
    summary = json.loads(served.stdout)
    assert {k: v.split(":")[0] for k, v in summary["parts"].items()} == {
        "quality": "ran",
        "skew": "ran",
        "age": "ran",
        "page": "ran",
    }
    assert summary["skew"]["n"] == 200 and summary["age_days"] is not None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "pass exactly one of --outputs FILE or --stack NAME"),
        (["--since", "yesterday"], "neither an ISO 8601 time nor a duration"),
        (["--since", "2030-01-01T00:00Z", "--until", "2029-01-01T00:00Z"], "is not before"),
        (["--threshold", "0"], "threshold must be > 0"),
    ],
)
def test_monitor_drift_usage_errors(tmp_path: Any, args: list[str], message: str) -> None:
    from typer.testing import CliRunner

    outputs = (
        [] if not args else ["--outputs", str(_outputs_file(tmp_path, endpoint_name="churn-ep"))]
    )
    result = CliRunner().invoke(_cli(), ["monitor", "drift", *outputs, *args])
    assert result.exit_code == 2
    assert message in result.stderr


def test_monitor_drift_needs_an_endpoint(tmp_path: Any) -> None:
    from typer.testing import CliRunner

    result = CliRunner().invoke(
        _cli(), ["monitor", "drift", "--outputs", str(_outputs_file(tmp_path, endpoint_name=None))]
    )
    assert result.exit_code == 2
    assert "pass --endpoint NAME" in result.stderr


def test_monitor_drift_of_a_model_the_stack_does_not_host(tmp_path: Any) -> None:
    from typer.testing import CliRunner

    outputs = str(_outputs_file(tmp_path, endpoint_name="churn-ep"))
    result = CliRunner().invoke(
        _cli(), ["monitor", "drift", "--model", "spend", "--outputs", outputs]
    )
    assert result.exit_code == 2
    assert "--model 'spend': stack 'x-stack' hosts no such model; its models: churn" in (
        result.stderr
    )


def test_a_large_window_in_threads_gives_the_same_report_as_column_after_column(
    baseline: Baseline, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ml.drift

    _, features, scores = sample(60_000, seed=5, drift=1.0)
    monkeypatch.setattr(ml.drift.os, "cpu_count", lambda: 2)
    assert len(scores) >= ml.drift.PARALLEL_MIN_ROWS
    threaded = drift_of(baseline, features, scores)
    monkeypatch.setattr(ml.drift, "PARALLEL_MIN_ROWS", 10**9)
    serial = drift_of(baseline, features, scores)
    assert threaded.to_dict() == serial.to_dict()
    assert threaded.drifted_features  # the comparison covers drifted columns too
