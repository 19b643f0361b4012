"""ml.importance: a pure-noise feature is flagged and a strong one is not; shuffling a feature's
block of matrix columns is shuffling its feature-table column; costs name each feature's inputs."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import pytest

import ml.models
from ml.evaluate import labels
from ml.importance import (
    ImportanceReport,
    feature_costs,
    permutation_importance,
    rank_auc,
    synthetic_inputs,
)
from ml.model import GateConfig, Model
from ml.models import load
from ml.sample_data import generate_customers
from ml.schema import CUSTOMERS_RAW, Column
from ml.train import train

CHURN = load("churn")


def test_rank_auc_is_scikit_learns_roc_auc() -> None:
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(3)
    y = (rng.random(500) < 0.3).astype(np.int64)
    scores = np.round(rng.random(500) + 0.3 * y, 1)  # rounded: many ties
    assert rank_auc(y, scores) == pytest.approx(roc_auc_score(y, scores), abs=1e-12)


# --- a model with a pure-noise feature ---------------------------------------------------------

NOISE = Column("noise", "double", "Pure noise: independent of everything", nullable=False)


def _noisy_model() -> Model:
    """The churn model with one more input and feature, `noise`, drawn independently of the
    label: a feature that adds nothing."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    spec = CHURN.spec
    raw = replace(CUSTOMERS_RAW, name="noisy_customers", columns=(*CUSTOMERS_RAW.columns, NOISE))
    table = replace(spec.features, name="noisy_features", columns=(*spec.features.columns, NOISE))
    noisy = replace(spec, name="noisy", raw=raw, inputs=(*spec.inputs, "noise"), features=table)

    def derive(cols: Any) -> dict[str, np.ndarray]:
        return {**CHURN.derive(cols), "noise": cols["noise"]}

    def make_estimator(hp: Any) -> Pipeline:
        return Pipeline([("scale", StandardScaler()), ("model", LogisticRegression(max_iter=500))])

    return Model(
        spec=noisy,
        derive=derive,
        hyperparameters=CHURN.hyperparameters,
        make_estimator=make_estimator,
        search_space={},
        gate=GateConfig(),
    )


@pytest.fixture(scope="module")
def noisy() -> tuple[Model, Any, pd.DataFrame]:
    """The noisy model trained on sample data, and the validation rows it was evaluated on."""
    from ml.train import split

    model = _noisy_model()
    raw = generate_customers(6_000, seed=21)
    raw["noise"] = np.random.default_rng(5).normal(0.0, 1.0, len(raw))
    table = model.features.build_features(raw)
    result = train(model, table)
    hp = result.hyperparameters
    _, validation = split(table, hp.validation_fraction, hp.seed)
    return model, result, validation


def test_a_pure_noise_feature_is_flagged_and_a_strong_one_is_not(
    noisy: tuple[Model, Any, pd.DataFrame],
) -> None:
    model, result, validation = noisy
    report = result.evaluation.importance
    assert report is not None and report.metric == "roc_auc"
    assert set(report.features) == set(model.spec.feature_names)  # feature-table columns
    assert "noise" in report.flagged
    strong = report.features["contract_type"]
    assert not strong.flagged and strong.importance > 0.05
    assert strong.importance > 10 * max(strong.spread, report.tolerance)
    # all the validation rows (fewer than 2,000), scored as they are
    assert report.rows == len(validation)
    scores = model.predict(result.estimator, model.features.feature_matrix(validation))
    assert report.baseline == pytest.approx(rank_auc(labels(model, validation), scores))
    # the cost of the noise: one more input to collect, one matrix column
    assert report.costs["noise"].inputs == ("noise",) and report.costs["noise"].width == 1


# --- what is shuffled ---------------------------------------------------------------------------


def test_shuffling_a_block_of_matrix_columns_is_shuffling_the_feature_column(
    trained: Any, features: pd.DataFrame
) -> None:
    """A reference that shuffles each feature-table column and re-encodes the table, with the
    same permutations, gives the same importances."""
    rows = features.head(800)
    report = permutation_importance(CHURN, trained.estimator, rows, repeats=2, seed=9, costs=False)
    y = labels(CHURN, rows)
    base = rank_auc(y, CHURN.predict(trained.estimator, CHURN.features.feature_matrix(rows)))
    rng = np.random.default_rng(9)
    for name in CHURN.spec.feature_names:
        drops = []
        for _ in range(2):
            shuffled = rows.copy()
            order = rng.permutation(len(rows))
            shuffled[name] = rows[name].iloc[order].to_numpy()
            matrix = CHURN.features.feature_matrix(shuffled)
            drops.append(base - rank_auc(y, CHURN.predict(trained.estimator, matrix)))
        assert report.features[name].importance == pytest.approx(np.mean(drops), abs=1e-12), name
    assert report.rows == 800 and report.repeats == 2 and report.seed == 9


class Counting:
    """An estimator that counts its calls and the rows it scores."""

    def __init__(self, estimator: Any) -> None:
        self.estimator, self.calls, self.rows = estimator, 0, 0

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        self.calls += 1
        self.rows = max(self.rows, len(X))
        out: np.ndarray = self.estimator.predict_proba(X)
        return out


def test_the_cost_inside_training_is_bounded_and_seeded(
    trained: Any, features: pd.DataFrame
) -> None:
    counting = Counting(trained.estimator)
    first = permutation_importance(CHURN, counting, features, max_rows=500, repeats=3, costs=False)
    # one scoring of the rows as they are, then one per feature and shuffle, on <= 500 rows
    assert counting.calls == 1 + 3 * len(CHURN.spec.feature_names)
    assert counting.rows == first.rows == 500
    again = permutation_importance(CHURN, trained.estimator, features, max_rows=500, costs=False)
    assert again == first
    other = permutation_importance(
        CHURN, trained.estimator, features, max_rows=500, seed=1, costs=False
    )
    assert other != first


def test_a_sample_keeps_a_rare_class(trained: Any, features: pd.DataFrame) -> None:
    y = labels(CHURN, features)
    rare = pd.concat([features[y == 0], features[y == 1].head(3)])
    report = permutation_importance(CHURN, trained.estimator, rare, max_rows=300, costs=False)
    assert report.rows == 300 and 0 < report.baseline <= 1


def test_a_regressors_importance_is_the_rise_in_rmse() -> None:
    from sklearn.linear_model import LinearRegression

    spend = load("spend")
    table = spend.features.build_features(generate_customers(3_000, seed=8))
    fitted = LinearRegression().fit(spend.features.feature_matrix(table), labels(spend, table))
    report = permutation_importance(spend, fitted, table, max_rows=1_000, costs=False)
    assert report.metric == "rmse" and report.rows == 1_000
    rows = table.sample(1_000, random_state=0)
    error = fitted.predict(spend.features.feature_matrix(rows)) - labels(spend, rows)
    assert report.baseline == pytest.approx(np.sqrt(np.mean(error**2)))
    assert report.tolerance == pytest.approx(0.002 * report.baseline)
    # the bill is mostly the plan's price: without it the error rises by several units
    assert report.features["monthly_charges"].importance > 5.0
    assert "monthly_charges" not in report.flagged


# --- costs --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ml.models.names())
def test_every_model_is_costed_on_rows_its_schema_accepts(name: str) -> None:
    model = load(name)
    raw = synthetic_inputs(model, 200, seed=2)
    model.features.validate_frame(raw)  # raises on any row the schema refuses
    costs, derive, encode = feature_costs(model, rows=200)
    assert set(costs) == set(model.spec.feature_names)
    assert derive > 0 and encode > 0
    for feature, cost in costs.items():
        assert cost.inputs and set(cost.inputs) <= set(model.spec.inputs), feature
        assert cost.width == sum(
            1 for c in model.features.matrix_columns if c == feature or c.startswith(f"{feature}=")
        )


def test_the_churn_features_depend_on_the_inputs_derive_reads() -> None:
    costs, _, _ = feature_costs(CHURN)
    assert costs["avg_monthly_spend"].inputs == (
        "tenure_months",
        "monthly_charges",
        "total_charges",
    )
    assert costs["is_new_customer"].inputs == ("tenure_months",)
    assert costs["log_data_usage_gb"].inputs == ("data_usage_gb",)
    assert costs["contract_type"].width == 3 and costs["payment_method"].width == 5


def test_the_report_round_trips_through_json(trained: Any) -> None:
    report = trained.evaluation.importance
    assert isinstance(report, ImportanceReport) and report.cost_error is None
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert data["flagged"] == list(report.flagged)
    assert ImportanceReport.from_dict(data) == report
    with pytest.raises(ValueError, match="importance report is missing 'metric'"):
        ImportanceReport.from_dict({k: v for k, v in data.items() if k != "metric"})
