"""`ml.workflow`: train → evaluate → gate → package and register, as the CLI, the SageMaker entry
point and the sandbox run them."""

from __future__ import annotations

import json
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pandas as pd
import pytest
from moto import mock_aws

from ml import registry
from ml.evaluate import Metrics
from ml.models import load
from ml.workflow import (
    MAX_REJECTED_SHARE,
    ArtifactUris,
    InputError,
    RejectedRowsError,
    gate_candidate,
    load_model,
    package_candidate,
    pulumi_release,
    read_metrics,
    read_raw_customers,
    read_reports,
    register,
    register_trained,
    train_candidate,
    train_candidate_from_raw,
)

CHURN = load("churn")
Hyperparameters = CHURN.hyperparameters
PERFECT = Metrics(
    n=1, positive_rate=0.3, roc_auc=0.99, pr_auc=0.99, log_loss=0.01, brier=0.01, ece=0.0
)


def test_a_passing_candidate_is_written_and_packaged(trained: Any, tmp_path: Path) -> None:
    candidate = package_candidate(
        gate_candidate(trained, model_dir=tmp_path / "model"), package=tmp_path / "model.tar.gz"
    )
    assert candidate.passed and candidate.package == tmp_path / "model.tar.gz"
    names = {p.name for p in (tmp_path / "model").iterdir()}
    assert names == {
        "model.joblib",
        "metrics.json",
        "baseline.json",
        "lineage.json",
        "gate.json",
        "staleness.json",
    }
    with tarfile.open(candidate.package) as tar:
        assert {"model.joblib", "gate.json", "code/inference.py"} <= set(tar.getnames())
        assert "staleness.json" in tar.getnames()  # how it goes stale travels with it
    assert list(candidate.artifacts()) == ["model", "metrics", "baseline", "gate"]
    assert json.loads((tmp_path / "model" / "gate.json").read_text())["passed"] is True


def test_without_a_tarball_the_directory_is_the_package(trained: Any, tmp_path: Path) -> None:
    candidate = package_candidate(gate_candidate(trained, model_dir=tmp_path))
    assert candidate.package == tmp_path
    assert (tmp_path / "code" / "inference.py").is_file()
    with pytest.raises(ValueError, match="refused, or not packaged"):
        candidate.artifacts()


def test_a_refused_candidate_leaves_only_its_reasons(trained: Any, tmp_path: Path) -> None:
    candidate = gate_candidate(trained, model_dir=tmp_path, approved=PERFECT)
    assert not candidate.passed and candidate.package is None
    assert "roc_auc vs approved" in candidate.gate.summary()
    assert {p.name for p in tmp_path.iterdir()} == {"gate.json", "metrics.json"}
    with pytest.raises(ValueError, match="the gate refused the model"):
        package_candidate(candidate, package=tmp_path / "model.tar.gz")
    assert not (tmp_path / "model.tar.gz").exists()


def test_train_candidate_runs_the_stages_in_one_call(
    features: pd.DataFrame, tmp_path: Path
) -> None:
    refused = train_candidate(
        CHURN, features, Hyperparameters(seed=3), model_dir=tmp_path / "a", approved=PERFECT
    )
    assert not refused.passed and refused.package is None
    passed = train_candidate(
        CHURN,
        features,
        Hyperparameters(seed=3),
        model_dir=tmp_path / "b",
        package=tmp_path / "b" / "model.tar.gz",
        data_uri="s3://features/",
    )
    assert passed.passed and passed.package == tmp_path / "b" / "model.tar.gz"
    assert passed.training.lineage["data"]["uri"] == "s3://features/"


def test_raw_rows_the_schema_refuses_are_dropped_and_counted(
    raw: pd.DataFrame, tmp_path: Path
) -> None:
    bad = raw.copy()
    bad.loc[bad.index[0], "region"] = "mars"
    candidate = train_candidate_from_raw(CHURN, bad, model_dir=tmp_path)
    assert candidate.rejected is not None
    assert (candidate.rejected.n_rows, candidate.rejected.n_rejected) == (len(raw), 1)


def _spoiled(raw: pd.DataFrame, regions: int, tenures: int) -> pd.DataFrame:
    """`raw` with `regions` rows in an unknown region and `tenures` with a negative tenure."""
    bad = raw.copy()
    bad.loc[bad.index[:regions], "region"] = "mars"
    bad.loc[bad.index[regions : regions + tenures], "tenure_months"] = -1
    return bad


def test_training_refuses_raw_data_whose_rejected_share_is_above_the_threshold(
    raw: pd.DataFrame, tmp_path: Path
) -> None:
    bad = _spoiled(raw, 150, 90)  # 240 of 4,000 rows: 6% > 5% (the default)
    with pytest.raises(RejectedRowsError) as err:
        train_candidate_from_raw(CHURN, bad, model_dir=tmp_path / "a")
    message = str(err.value)
    assert message.startswith("rejected 240 of 4000 raw rows (6.00%), above the threshold of 5.00%")
    assert "region: not one of ['north', 'south', 'east', 'west'] (150)" in message
    assert "tenure_months: out of range [0, 600] (90)" in message
    assert message.index("region:") < message.index("tenure_months:")  # most frequent first
    assert (err.value.report.n_rejected, err.value.threshold) == (240, MAX_REJECTED_SHARE)
    assert not (tmp_path / "a").exists()  # nothing trained, nothing written
    # the threshold is the caller's: 10% lets the same data through, its bad rows dropped
    passed = train_candidate_from_raw(CHURN, bad, model_dir=tmp_path / "b", max_rejected_share=0.1)
    assert passed.rejected is not None and passed.rejected.n_rejected == 240
    assert (
        passed.training.lineage["data"]["rows_train"]
        + passed.training.lineage["data"]["rows_validation"]
        == len(raw) - 240
    )


def test_a_rejected_share_at_the_threshold_is_dropped_and_reported(
    raw: pd.DataFrame, tmp_path: Path
) -> None:
    bad = _spoiled(raw, 200, 0)  # exactly 5%
    candidate = train_candidate_from_raw(CHURN, bad, model_dir=tmp_path)
    assert candidate.rejected is not None and candidate.rejected.n_rejected == 200
    assert candidate.rejected.reasons == {
        "region: not one of ['north', 'south', 'east', 'west']": 200
    }
    with pytest.raises(RejectedRowsError, match=r"\(5\.00%\), above the threshold of 4\.99%"):
        train_candidate_from_raw(CHURN, bad, model_dir=tmp_path, max_rejected_share=0.0499)
    with pytest.raises(ValueError, match=r"max_rejected_share 1\.5 must be between 0 and 1"):
        train_candidate_from_raw(CHURN, raw, model_dir=tmp_path, max_rejected_share=1.5)


@pytest.fixture
def sm() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("sagemaker", region_name="us-east-1")


def uris_of(prefix: str) -> ArtifactUris:
    return ArtifactUris(
        model=f"{prefix}/model.tar.gz",
        baseline=f"{prefix}/baseline.json",
        gate=f"{prefix}/gate.json",
    )


def test_register_attaches_the_reports(sm: Any, trained: Any) -> None:
    uris = ArtifactUris(
        model="s3://m/v1/model.tar.gz",
        metrics="s3://m/v1/metrics.json",
        baseline="s3://m/v1/baseline.json",
        gate="s3://m/v1/gate.json",
    )
    version = register(
        "churn",
        uris,
        metrics=trained.metrics.to_dict(),
        lineage=trained.lineage,
        create_group=True,
        client=sm,
    )
    assert (version.version, version.status) == (1, "PendingManualApproval")
    assert version.image_uri == registry.sklearn_image_uri("us-east-1")
    raw = sm.describe_model_package(ModelPackageName=version.arn)
    quality = raw["ModelMetrics"]
    assert quality["ModelQuality"]["Statistics"]["S3Uri"] == uris.metrics
    assert quality["ModelQuality"]["Constraints"]["S3Uri"] == uris.gate
    assert quality["ModelDataQuality"]["Statistics"]["S3Uri"] == uris.baseline


def test_register_without_a_group_is_explained(sm: Any) -> None:
    with pytest.raises(registry.RegistryError, match="cannot register a version in 'ghost'"):
        register("ghost", uris_of("s3://m"), metrics={}, client=sm)


def test_review_picks_a_version_and_explains_a_missing_one(sm: Any) -> None:
    registry.ensure_group("churn", client=sm)
    with pytest.raises(registry.RegistryError, match="has no versions: register one first"):
        registry.review("churn", client=sm)
    for n in (1, 2):
        register("churn", uris_of(f"s3://m/{n}"), metrics={}, client=sm)
    assert registry.review("churn", client=sm).version == 2
    rejected = registry.review("churn", version=1, reject=True, client=sm)
    assert (rejected.version, rejected.status) == (1, "Rejected")
    with pytest.raises(registry.RegistryError, match=r"has no version 7; versions: \[1, 2\]"):
        registry.review("churn", version=7, client=sm)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("absent.parquet", None, "no such file or directory"),
        ("table.xlsx", b"x", "expected a .parquet file, a directory of parquet files or a .csv"),
        ("table.csv", b"support_tickets\nlots\n", "columns do not match the customers schema"),
    ],
)
def test_bad_raw_data_names_its_path(
    tmp_path: Path, name: str, content: bytes | None, message: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError, match=message) as err:
        read_raw_customers(path)
    assert str(err.value).startswith(str(path))


def test_bad_metrics_and_models_name_their_path(tmp_path: Path, model_dir: Path) -> None:
    (tmp_path / "metrics.json").write_text("{}")
    with pytest.raises(InputError, match=r"not a metrics\.json written by training"):
        read_metrics(tmp_path / "metrics.json")
    with pytest.raises(InputError, match="no such file"):
        load_model(CHURN, tmp_path / "absent.tar.gz")
    empty = tmp_path / "empty.tar.gz"
    with tarfile.open(empty, "w:gz"):
        pass
    with pytest.raises(InputError, match=r"the archive has no model\.joblib at its root"):
        load_model(CHURN, empty)
    assert hasattr(load_model(CHURN, model_dir), "predict_proba")
    assert hasattr(load_model(CHURN, model_dir / "model.joblib"), "predict_proba")


# --- a trained model's reports, registered beside it ---------------------------------------------


@pytest.fixture(scope="module")
def packaged(trained: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What `mlplat train --local --output DIR` leaves: the model directory and model.tar.gz."""
    out = tmp_path_factory.mktemp("trained")
    package_candidate(gate_candidate(trained, model_dir=out), package=out / "model.tar.gz")
    return out


def test_reports_are_read_from_the_model_directory_or_its_tarball(packaged: Path) -> None:
    from_dir = read_reports(packaged)
    assert read_reports(packaged / "model.tar.gz") == from_dir
    assert json.loads(from_dir.gate)["passed"] is True
    assert json.loads(from_dir.baseline)["format"] == "mlplat-baseline/1"
    assert from_dir.metrics == (packaged / "metrics.json").read_bytes()
    assert from_dir.overall["roc_auc"] > 0.5
    assert from_dir.lineage["data"]["rows_train"] > 0


def _copy_without(packaged: Path, target: Path, *missing: str) -> Path:
    target.mkdir()
    for name in ("metrics.json", "baseline.json", "gate.json", "lineage.json"):
        if name not in missing:
            (target / name).write_bytes((packaged / name).read_bytes())
    return target


@pytest.mark.parametrize(
    ("missing", "message"),
    [
        ("baseline.json", r"no baseline\.json \(the drift baseline\)"),
        ("gate.json", r"no gate\.json \(the evaluation gate's report\)"),
        ("metrics.json", r"no metrics\.json"),
    ],
)
def test_a_model_without_its_reports_is_refused(
    packaged: Path, tmp_path: Path, missing: str, message: str
) -> None:
    model = _copy_without(packaged, tmp_path / "model", missing)
    with pytest.raises(InputError, match=message) as err:
        read_reports(model)
    assert str(err.value).startswith(str(model))


def test_a_model_the_gate_refused_is_not_registered(trained: Any, tmp_path: Path) -> None:
    refused = gate_candidate(trained, model_dir=tmp_path, approved=PERFECT)
    assert not refused.passed
    with pytest.raises(
        InputError, match=r"gate\.json does not say passed \(failed: roc_auc vs approved"
    ):
        read_reports(tmp_path)


def test_a_tarball_without_reports_and_other_files_are_refused(
    packaged: Path, tmp_path: Path
) -> None:
    bare = tmp_path / "model.tar.gz"
    with tarfile.open(bare, "w:gz") as tar:
        tar.add(packaged / "model.joblib", arcname="model.joblib")
    with pytest.raises(InputError, match=r"no gate\.json"):
        read_reports(bare)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(InputError, match=r"expected a model directory .* or its model\.tar\.gz"):
        read_reports(text)
    with pytest.raises(InputError, match="no such file or directory"):
        read_reports(tmp_path / "absent")
    wrong = _copy_without(packaged, tmp_path / "wrong")
    (wrong / "baseline.json").write_text('{"format": "something-else"}')
    with pytest.raises(InputError, match="is not a mlplat-baseline/1 baseline"):
        read_reports(wrong)


@pytest.fixture
def aws() -> Iterator[tuple[Any, Any]]:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="models")
        yield boto3.client("sagemaker", region_name="us-east-1"), s3


KMS = "arn:aws:kms:us-east-1:123456789012:key/lake"


def test_register_trained_uploads_the_reports_beside_the_model(
    aws: tuple[Any, Any], packaged: Path
) -> None:
    sm, s3 = aws
    s3.put_object(Bucket="models", Key="churn/v7/model.tar.gz", Body=b"model")
    reports = read_reports(packaged)
    version = register_trained(
        "churn",
        reports,
        "s3://models/churn/v7/model.tar.gz",
        sagemaker=sm,
        s3=s3,
        kms_key_arn=KMS,
        create_group=True,
    )
    for name, body in (
        ("baseline.json", reports.baseline),
        ("gate.json", reports.gate),
        ("metrics.json", reports.metrics),
    ):
        uploaded = s3.get_object(Bucket="models", Key=f"churn/v7/{name}")
        assert uploaded["Body"].read() == body
        assert (uploaded["ServerSideEncryption"], uploaded["SSEKMSKeyId"]) == ("aws:kms", KMS)
    raw = sm.describe_model_package(ModelPackageName=version.arn)["ModelMetrics"]
    assert raw["ModelDataQuality"]["Statistics"]["S3Uri"] == "s3://models/churn/v7/baseline.json"
    assert raw["ModelQuality"]["Constraints"]["S3Uri"] == "s3://models/churn/v7/gate.json"
    assert raw["ModelQuality"]["Statistics"]["S3Uri"] == "s3://models/churn/v7/metrics.json"
    assert version.metrics["roc_auc"] == pytest.approx(reports.overall["roc_auc"])
    assert version.properties["data.rows_train"] == str(reports.lineage["data"]["rows_train"])


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("s3://models/churn/v8/model.tar.gz", "upload the model.tar.gz there first"),
        ("s3://models/", "must be the s3://bucket/key of the uploaded model.tar.gz"),
        ("/tmp/model.tar.gz", "must be the s3://bucket/key of the uploaded model.tar.gz"),
    ],
)
def test_register_trained_needs_the_uploaded_model(
    aws: tuple[Any, Any], packaged: Path, url: str, message: str
) -> None:
    sm, s3 = aws
    with pytest.raises(registry.RegistryError, match=message):
        register_trained(
            "churn", read_reports(packaged), url, sagemaker=sm, s3=s3, create_group=True
        )
    assert s3.list_objects_v2(Bucket="models").get("KeyCount", 0) == 0


def test_pulumi_release_applies_with_pulumi_and_names_the_stacks_baseline(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import ml.deploy
    from ml.deploy import BaselineTarget
    from tests.conftest import make_outputs

    calls: list[tuple[str, str, str | None, Path | None]] = []
    monkeypatch.setattr(
        ml.deploy,
        "pulumi_apply",
        lambda stack, arn, model=None, cwd=None: calls.append((stack, arn, model, cwd)),
    )
    platform = make_outputs(models_bucket="models-b", lake_kms_key_arn=KMS)
    release = pulumi_release(platform, "churn/current/baseline.json", model="churn", cwd=tmp_path)
    assert release.baseline == BaselineTarget("models-b", "churn/current/baseline.json", KMS)
    release.apply("prod", "arn")
    # the apply is `pulumi up` of the model's own setting, nothing more
    assert calls == [("prod", "arn", "churn", tmp_path)]
