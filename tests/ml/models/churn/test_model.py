"""The churn model's package: its runtime (`MODEL`) and its scores, unchanged since it moved."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from ml.model import GateConfig, Model
from ml.models import load
from ml.models.churn.model import MODEL, Hyperparameters, make_pipeline
from ml.models.churn.spec import SPEC
from ml.sample_data import generate_customers
from ml.train import split, train

SCORES = Path(__file__).resolve().parents[2] / "data" / "churn_scores_55e3799.json"


def test_the_package_binds_its_spec_to_its_runtime() -> None:
    assert load("churn") is MODEL and isinstance(MODEL, Model)
    assert MODEL.spec is SPEC and MODEL.name == "churn"
    assert MODEL.hyperparameters is Hyperparameters and MODEL.make_estimator is make_pipeline
    assert MODEL.gate == GateConfig() and MODEL.artifact_file == "model.joblib"
    assert MODEL.search_space == {"c": (0.1, 1.0, 10.0)}
    for name, values in MODEL.search_space.items():
        for value in values:  # every candidate is a valid setting
            assert getattr(Hyperparameters.from_mapping({name: str(value)}), name) == value


def test_scores_are_those_of_the_code_before_models_were_packages() -> None:
    """Validation scores of a fixed training, recorded with the code of commit 55e3799
    (`tests/ml/data/README.md`): the move to `ml/models/churn` changed no number."""
    recorded = json.loads(SCORES.read_text())
    features = MODEL.features.build_features(generate_customers(3000, seed=7))
    result = train(MODEL, features)
    hp = Hyperparameters()
    _, validation = split(features, hp.validation_fraction, hp.seed)
    scores = MODEL.predict(result.estimator, MODEL.features.feature_matrix(validation))
    assert validation["customer_id"].astype(str).tolist() == recorded["customer_id"]
    assert len(recorded["score"]) > 500
    np.testing.assert_allclose(scores, recorded["score"], rtol=0, atol=1e-12)
    assert result.metrics.to_dict()["roc_auc"] == pytest.approx(recorded["roc_auc"], abs=1e-12)
    assert result.metrics.to_dict()["log_loss"] == pytest.approx(recorded["log_loss"], abs=1e-12)


def test_a_missing_payment_method_is_the_tables_unknown_value() -> None:
    cols = {name: np.array([np.nan if name == "payment_method" else 1.0]) for name in SPEC.inputs}
    derived = MODEL.derive(cols)
    vocabulary = SPEC.features.column("payment_method").allowed or ()
    assert vocabulary[int(derived["payment_method"][0])] == "unknown"
    assert set(derived) == set(SPEC.feature_names)


def test_factory_returns_an_unfitted_pipeline() -> None:
    for estimator in ("logistic_regression", "hist_gradient_boosting"):
        pipeline = make_pipeline(Hyperparameters(estimator=estimator))
        assert isinstance(pipeline, Pipeline)
        assert [name for name, _ in pipeline.steps] == ["columns", "model"]
        with pytest.raises(Exception, match="not fitted"):
            check_is_fitted(pipeline)


def test_hyperparameters_parse_sagemaker_strings() -> None:
    hp = Hyperparameters.from_mapping({"c": "0.5", "max_iter": "300", "seed": "7"})
    assert (hp.c, hp.max_iter, hp.seed) == (0.5, 300, 7)
    assert clone(make_pipeline(hp)).get_params()["model__C"] == 0.5


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"learning_rat": "0.1"}, "unknown hyperparameters \\['learning_rat'\\]"),
        ({"max_iter": "many"}, "max_iter='many' is not a valid int"),
        ({"c": "-1"}, "c=-1.0: must be > 0"),
        ({"estimator": "xgboost"}, "estimator='xgboost'"),
        ({"validation_fraction": "1.5"}, "validation_fraction=1.5: must be in"),
    ],
)
def test_bad_hyperparameters_are_explained(values: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Hyperparameters.from_mapping(values)
