from __future__ import annotations

import dataclasses
import io
import json
import warnings
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest

from ml.contracts import MODEL_ENV
from ml.evaluate import GateFailed
from ml.models import load
from ml.train import (
    ContainerPaths,
    NonConvergenceError,
    read_hyperparameters,
    read_search,
    run_training_job,
    split,
    train,
    write_outputs,
)

CHURN = load("churn")
Hyperparameters = CHURN.hyperparameters
feature_matrix = CHURN.features.feature_matrix


def test_training_beats_the_baselines(trained: Any) -> None:
    metrics = trained.metrics
    assert metrics.roc_auc > 0.75
    assert metrics.roc_auc > trained.evaluation.baselines["one_feature"].roc_auc + 0.02
    assert metrics.ece < 0.05
    assert set(trained.evaluation.slices) == {*CHURN.spec.slices, *CHURN.spec.slice_bands}


def test_same_data_and_seed_give_the_same_model(features: pd.DataFrame) -> None:
    hp = Hyperparameters(seed=4)
    a, b = train(CHURN, features, hp), train(CHURN, features, hp)
    X = feature_matrix(features)
    assert np.array_equal(a.estimator.predict_proba(X), b.estimator.predict_proba(X))
    assert _bytes(a.estimator) == _bytes(b.estimator)
    assert a.lineage["data"]["version"] == b.lineage["data"]["version"]


def _bytes(model: Any) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    return buffer.getvalue()


def test_training_does_not_modify_its_input(features: pd.DataFrame) -> None:
    before = features.copy()
    train(CHURN, features.head(2_000), Hyperparameters())
    pd.testing.assert_frame_equal(features, before)


def test_split_is_by_customer_and_stable(features: pd.DataFrame) -> None:
    train_a, valid_a = split(features, 0.2, seed=0)
    _, valid_b = split(features.iloc[::-1], 0.2, seed=0)
    assert set(valid_a["customer_id"]) == set(valid_b["customer_id"])
    assert not set(train_a["customer_id"]) & set(valid_a["customer_id"])
    assert 0.15 < len(valid_a) / len(features) < 0.25


def test_lineage_records_data_code_libraries_and_hyperparameters(trained: Any) -> None:
    lineage = trained.lineage
    assert lineage["data"]["version"].startswith("sha256:")
    assert lineage["data"]["rows_train"] + lineage["data"]["rows_validation"] == 4_000
    assert len(lineage["code"]["ml_sources_sha256"]) == 64
    assert {"python", "scikit-learn", "pandas", "numpy"} <= set(lineage["libraries"])
    assert lineage["hyperparameters"] == trained.hyperparameters.to_dict()
    assert lineage["model"] == "churn"
    assert lineage["data"]["dataset"] == "customer_features"
    assert lineage["features"] == list(CHURN.spec.feature_names)


def test_unlabelled_or_one_class_data_is_refused(features: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="has no 'churned' column"):
        train(CHURN, features.drop(columns=["churned"]))
    one_class = features.assign(churned=pd.array([0] * len(features), dtype="Int64"))
    with pytest.raises(ValueError, match="need at least 10 rows with both values of 'churned'"):
        train(CHURN, one_class)


# --- the SageMaker container contract --------------------------------------------------------


def _container(tmp_path: Path, features: pd.DataFrame, hps: dict[str, str]) -> dict[str, str]:
    channel = tmp_path / "input" / "data" / "train"
    for i, (dt, part) in enumerate(
        features.groupby(features["event_time"].dt.strftime("%Y-%m-%d"))
    ):
        if i >= 3:
            break
        (channel / f"dt={dt}").mkdir(parents=True)
        part.to_parquet(channel / f"dt={dt}" / "part-00000.parquet")
    rest = features[~features.index.isin(_first_days(features, 3))]
    (channel / "dt=rest").mkdir()
    rest.to_parquet(channel / "dt=rest" / "part-00000.parquet")
    config = tmp_path / "input" / "config"
    config.mkdir(parents=True)
    (config / "hyperparameters.json").write_text(json.dumps(hps))
    return {
        "SM_MODEL_DIR": str(tmp_path / "model"),
        "SM_OUTPUT_DIR": str(tmp_path / "output"),
        "SM_INPUT_DIR": str(tmp_path / "input"),
        "SM_CHANNEL_TRAIN": str(channel),
        MODEL_ENV: "churn",
    }


def _first_days(features: pd.DataFrame, n: int) -> pd.Index:
    days = features["event_time"].dt.strftime("%Y-%m-%d")
    return features.index[days.isin(sorted(set(days))[:n])]


def test_training_job_follows_the_container_contract(
    tmp_path: Path, features: pd.DataFrame
) -> None:
    env = _container(tmp_path, features, {"seed": "3", "sagemaker_program": "train.py"})
    paths = ContainerPaths.from_env(env)
    assert paths.config_dir == tmp_path / "input" / "config"
    assert read_hyperparameters(CHURN, paths.config_dir).seed == 3
    result = run_training_job(env)
    model_dir = tmp_path / "model"
    names = {p.name for p in model_dir.iterdir()}
    assert {"model.joblib", "metrics.json", "baseline.json", "lineage.json", "gate.json"} <= names
    assert (model_dir / "code" / "inference.py").is_file()
    assert json.loads((model_dir / "gate.json").read_text())["passed"] is True
    assert (
        json.loads((model_dir / "lineage.json").read_text())["data"]["uri"]
        == env["SM_CHANNEL_TRAIN"]
    )
    loaded = joblib.load(model_dir / "model.joblib")
    X = feature_matrix(features)
    assert np.array_equal(loaded.predict_proba(X), result.estimator.predict_proba(X))


def test_training_job_without_a_train_channel_fails_clearly(tmp_path: Path) -> None:
    env = {
        "SM_INPUT_DIR": str(tmp_path / "in"),
        "SM_OUTPUT_DIR": str(tmp_path / "out"),
        MODEL_ENV: "churn",
    }
    with pytest.raises(ValueError, match="no 'train' channel"):
        run_training_job(env)
    assert "no 'train' channel" in (tmp_path / "out" / "failure").read_text()


@pytest.mark.parametrize(
    ("model", "message"), [(None, "MLPLAT_MODEL is not set"), ("fraud", "no model 'fraud'")]
)
def test_training_job_needs_the_name_of_a_model(
    tmp_path: Path, model: str | None, message: str
) -> None:
    env = {"SM_INPUT_DIR": str(tmp_path / "in"), "SM_OUTPUT_DIR": str(tmp_path / "out")}
    if model is not None:
        env[MODEL_ENV] = model
    with pytest.raises(ValueError, match=message):
        run_training_job(env)
    assert message in (tmp_path / "out" / "failure").read_text()


def test_training_job_stops_when_the_gate_fails(tmp_path: Path, features: pd.DataFrame) -> None:
    env = _container(tmp_path, features, {})
    approved = tmp_path / "approved"
    approved.mkdir()
    perfect = {
        "n": 1,
        "positive_rate": 0.3,
        "roc_auc": 0.99,
        "pr_auc": 0.99,
        "log_loss": 0.01,
        "brier": 0.01,
        "ece": 0.0,
    }
    (approved / "metrics.json").write_text(json.dumps({"overall": perfect}))
    env["SM_CHANNEL_APPROVED"] = str(approved)
    with pytest.raises(GateFailed, match="roc_auc vs approved"):
        run_training_job(env)
    assert "gate failed" in (tmp_path / "output" / "failure").read_text()
    assert not (tmp_path / "model" / "model.joblib").exists()


def test_bad_hyperparameters_file_is_explained(tmp_path: Path) -> None:
    (tmp_path / "hyperparameters.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"hyperparameters\.json is not valid JSON"):
        read_hyperparameters(CHURN, tmp_path)


# --- what training refuses: a fit that did not converge ------------------------------------------


def test_a_fit_that_does_not_converge_fails_training(features: pd.DataFrame) -> None:
    with pytest.raises(
        NonConvergenceError, match=r"'churn' did not converge \(lbfgs failed"
    ) as err:
        train(CHURN, features, Hyperparameters(max_iter=1))
    assert "max_iter=1" in str(err.value) and "raise the iteration limit" in str(err.value)
    # the same data with the default iteration limit converges and trains
    train(CHURN, features.head(1_500), Hyperparameters(max_iter=500))


def test_a_training_job_that_does_not_converge_says_why(
    tmp_path: Path, features: pd.DataFrame
) -> None:
    env = _container(tmp_path, features, {"max_iter": "2"})
    with pytest.raises(NonConvergenceError):
        run_training_job(env)
    failure = (tmp_path / "output" / "failure").read_text()
    assert "did not converge" in failure and "max_iter=2" in failure
    assert not (tmp_path / "model" / "model.joblib").exists()


class _Diverged:
    """An estimator whose fit 'succeeds' without a warning but predicts NaN (a diverged boost)."""

    def fit(self, X: np.ndarray, y: np.ndarray) -> _Diverged:
        warnings.warn("some other warning", UserWarning, stacklevel=2)
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return np.full((len(X), 2), np.nan)


def test_a_fit_whose_predictions_are_not_finite_fails_training(features: pd.DataFrame) -> None:
    diverging = dataclasses.replace(CHURN, make_estimator=lambda hp: _Diverged())
    # other warnings pass through untouched; only non-convergence is an error
    with (
        pytest.warns(UserWarning, match="some other warning"),
        pytest.raises(NonConvergenceError, match=r"diverged: \d+ of \d+ predictions"),
    ):
        train(diverging, features)


# --- the search, from the training job ----------------------------------------------------------


def test_search_is_read_from_the_hyperparameters_file(tmp_path: Path) -> None:
    assert read_search(tmp_path) is False  # no file
    for text, expected in (("true", True), ("False", False), (True, True)):
        (tmp_path / "hyperparameters.json").write_text(json.dumps({"search": text, "c": "0.5"}))
        assert read_search(tmp_path) is expected
        assert read_hyperparameters(CHURN, tmp_path).c == 0.5  # not a model hyperparameter
    (tmp_path / "hyperparameters.json").write_text(json.dumps({"search": "maybe"}))
    with pytest.raises(ValueError, match="hyperparameter search='maybe': use true or false"):
        read_search(tmp_path)


def test_a_training_job_searches_when_asked(tmp_path: Path, features: pd.DataFrame) -> None:
    env = _container(tmp_path, features, {"search": "true", "seed": "3"})
    result = run_training_job(env)
    lineage = json.loads((tmp_path / "model" / "lineage.json").read_text())
    assert result.search is not None
    assert lineage["search"]["space"] == {"c": [0.1, 1.0, 10.0]}
    assert [t["hyperparameters"] for t in lineage["search"]["trials"]] == [
        {"c": 1.0},
        {"c": 0.1},
        {"c": 10.0},
    ]
    assert lineage["hyperparameters"]["c"] == lineage["search"]["chosen"]["c"]


def test_the_model_directory_carries_the_models_staleness(trained: Any, tmp_path: Path) -> None:
    from ml.backtest import staleness_path

    write_outputs(trained, tmp_path)
    assert (tmp_path / "staleness.json").read_bytes() == staleness_path("churn").read_bytes()
