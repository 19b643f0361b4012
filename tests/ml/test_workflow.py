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
from ml.train import Hyperparameters
from ml.workflow import (
    ArtifactUris,
    InputError,
    gate_candidate,
    load_model,
    package_candidate,
    read_metrics,
    read_raw_customers,
    register,
    train_candidate,
    train_candidate_from_raw,
)

PERFECT = Metrics(
    n=1, positive_rate=0.3, roc_auc=0.99, pr_auc=0.99, log_loss=0.01, brier=0.01, ece=0.0
)


def test_a_passing_candidate_is_written_and_packaged(trained: Any, tmp_path: Path) -> None:
    candidate = package_candidate(
        gate_candidate(trained, model_dir=tmp_path / "model"), package=tmp_path / "model.tar.gz"
    )
    assert candidate.passed and candidate.package == tmp_path / "model.tar.gz"
    names = {p.name for p in (tmp_path / "model").iterdir()}
    assert names == {"model.joblib", "metrics.json", "baseline.json", "lineage.json", "gate.json"}
    with tarfile.open(candidate.package) as tar:
        assert {"model.joblib", "gate.json", "code/inference.py"} <= set(tar.getnames())
    assert list(candidate.artifacts()) == ["model", "metrics", "baseline"]
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
        features, Hyperparameters(seed=3), model_dir=tmp_path / "a", approved=PERFECT
    )
    assert not refused.passed and refused.package is None
    passed = train_candidate(
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
    candidate = train_candidate_from_raw(bad, model_dir=tmp_path)
    assert candidate.rejected is not None
    assert (candidate.rejected.n_rows, candidate.rejected.n_rejected) == (len(raw), 1)


@pytest.fixture
def sm() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("sagemaker", region_name="us-east-1")


def test_register_attaches_the_reports(sm: Any, trained: Any) -> None:
    uris = ArtifactUris(
        model="s3://m/v1/model.tar.gz",
        metrics="s3://m/v1/metrics.json",
        baseline="s3://m/v1/baseline.json",
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
    assert quality["ModelDataQuality"]["Statistics"]["S3Uri"] == uris.baseline


def test_register_without_a_group_is_explained(sm: Any) -> None:
    with pytest.raises(registry.RegistryError, match="cannot register a version in 'ghost'"):
        register("ghost", ArtifactUris(model="s3://m/model.tar.gz"), metrics={}, client=sm)


def test_review_picks_a_version_and_explains_a_missing_one(sm: Any) -> None:
    registry.ensure_group("churn", client=sm)
    with pytest.raises(registry.RegistryError, match="has no versions: register one first"):
        registry.review("churn", client=sm)
    for n in (1, 2):
        register("churn", ArtifactUris(model=f"s3://m/{n}/model.tar.gz"), metrics={}, client=sm)
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
        load_model(tmp_path / "absent.tar.gz")
    empty = tmp_path / "empty.tar.gz"
    with tarfile.open(empty, "w:gz"):
        pass
    with pytest.raises(InputError, match=r"the archive has no model\.joblib at its root"):
        load_model(empty)
    assert hasattr(load_model(model_dir), "predict_proba")
