"""ml.regression: metrics by hand, the gate on hand-made reports and on real models."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import pytest

from ml.evaluate import EvaluationReport, GateCheck, evaluate, labels
from ml.regression import (
    RegressionGateConfig,
    RegressionMetrics,
    compute_regression_metrics,
    fit_baselines_on_matrix,
    fit_regression_baselines,
    one_feature_columns,
    regression_gate_checks,
)

# --- metrics ----------------------------------------------------------------------------------


def test_metrics_by_hand() -> None:
    # errors 0, 1, -1, 2: SSE 6; labels' mean 2.5, SST 2.25 + 0.25 + 0.25 + 2.25 = 5.
    m = compute_regression_metrics(np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 3.0, 2.0, 6.0]))
    assert m.n == 4
    assert m.mean_label == 2.5
    assert m.rmse == pytest.approx(math.sqrt(6 / 4))
    assert m.mae == pytest.approx(1.0)
    assert m.bias == pytest.approx(0.5)
    assert m.r2 == pytest.approx(1 - 6 / 5)


def test_perfect_predictions_and_constant_labels() -> None:
    perfect = compute_regression_metrics(np.array([3.0, 5.0]), np.array([3.0, 5.0]))
    assert (perfect.rmse, perfect.mae, perfect.bias, perfect.r2) == (0.0, 0.0, 0.0, 1.0)
    flat = compute_regression_metrics(np.array([7.0, 7.0, 7.0]), np.array([6.0, 7.0, 8.0]))
    assert flat.r2 is None  # labels that do not vary leave R² undefined
    assert flat.rmse == pytest.approx(math.sqrt(2 / 3))
    assert flat.bias == 0.0


def test_metrics_match_scikit_learn() -> None:
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    rng = np.random.default_rng(0)
    y = rng.gamma(2.0, 30.0, 500)
    p = y + rng.normal(0, 10, 500)
    m = compute_regression_metrics(y, p)
    assert m.rmse == pytest.approx(math.sqrt(mean_squared_error(y, p)))
    assert m.mae == pytest.approx(mean_absolute_error(y, p))
    assert m.r2 == pytest.approx(r2_score(y, p))


@pytest.mark.parametrize(
    ("y", "p", "message"),
    [
        ([1.0, 2.0], [1.0], "1-D of the same length"),
        ([[1.0]], [[1.0]], "1-D of the same length"),
        ([], [], "zero rows"),
        ([1.0, math.nan], [1.0, 2.0], "labels must be finite"),
        ([1.0, 2.0], [1.0, math.inf], "predictions must be finite"),
    ],
)
def test_metrics_refuse_bad_input(y: list[Any], p: list[Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        compute_regression_metrics(np.array(y), np.array(p))


def test_metrics_round_trip_through_a_dict() -> None:
    m = compute_regression_metrics(np.array([1.0, 2.0, 4.0]), np.array([1.5, 2.0, 3.0]))
    assert RegressionMetrics.from_dict(m.to_dict()) == m
    assert set(m.to_dict()) == {"n", "mean_label", "rmse", "mae", "bias", "r2"}
    with pytest.raises(ValueError, match="missing 'rmse'"):
        RegressionMetrics.from_dict({k: v for k, v in m.to_dict().items() if k != "rmse"})


# --- baselines --------------------------------------------------------------------------------


def test_one_feature_columns_of_a_numeric_and_a_categorical_feature() -> None:
    columns = ("a", "b", "c=x", "c=y", "cc=z")
    assert one_feature_columns(columns, "b") == [1]
    assert one_feature_columns(columns, "c") == [2, 3]
    with pytest.raises(ValueError, match="feature 'd' is not in the model matrix"):
        one_feature_columns(columns, "d")


def test_baselines_predict_the_mean_the_median_and_a_line_in_one_feature() -> None:
    X = np.array([[1.0, 9.0], [2.0, 0.0], [3.0, 5.0], [10.0, 1.0]])
    y = np.array([2.0, 4.0, 6.0, 20.0])  # 2 x the first column
    baselines = fit_baselines_on_matrix(X, y, [0])
    assert set(baselines) == {"mean", "median", "one_feature"}
    assert baselines["mean"].predict(X).tolist() == [8.0] * 4
    assert baselines["median"].predict(X).tolist() == [5.0] * 4
    assert baselines["one_feature"].predict(np.array([[5.0, 100.0]])) == pytest.approx([10.0])


# --- the gate on hand-made reports ------------------------------------------------------------


def metrics(rmse: float, mae: float, n: int = 1_000) -> RegressionMetrics:
    return RegressionMetrics(n=n, mean_label=60.0, rmse=rmse, mae=mae, bias=0.0, r2=0.5)


BASELINES = {
    "mean": metrics(20.0, 15.0),
    "median": metrics(21.0, 14.0),
    "one_feature": metrics(12.0, 9.0),
}


def report(
    overall: Any,
    *,
    baselines: Mapping[str, RegressionMetrics] = BASELINES,
    slices: Mapping[str, Mapping[str, RegressionMetrics]] | None = None,
) -> EvaluationReport:
    return EvaluationReport(
        overall=overall,
        slices={column: dict(values) for column, values in (slices or {}).items()},
        baselines=dict(baselines),
    )


def failed(checks: list[GateCheck]) -> list[str]:
    return [c.name for c in checks if not c.passed]


def by_name(checks: list[GateCheck], name: str) -> GateCheck:
    (found,) = [c for c in checks if c.name == name]
    return found


def test_a_candidate_well_below_every_baseline_passes() -> None:
    checks = regression_gate_checks(report(metrics(10.0, 7.0)))
    assert failed(checks) == []
    assert {c.name for c in checks} == {
        f"{metric} beats {name}" for metric in ("rmse", "mae") for name in BASELINES
    }
    beats = by_name(checks, "rmse beats one_feature")
    assert (beats.candidate, beats.reference) == (10.0, 12.0)
    assert "needs <= 11.4000 (5% better)" in beats.detail


def test_rmse_must_beat_each_baseline_by_the_margin() -> None:
    # 11.5 is below the one-feature baseline's 12 but not 5% below (11.4).
    assert failed(regression_gate_checks(report(metrics(11.5, 7.0)))) == ["rmse beats one_feature"]
    assert failed(regression_gate_checks(report(metrics(11.39, 7.0)))) == []
    lenient = RegressionGateConfig(min_rmse_improvement=0.0)
    assert failed(regression_gate_checks(report(metrics(11.5, 7.0)), config=lenient)) == []


def test_mae_must_be_below_each_baseline_unless_configured_off() -> None:
    assert failed(regression_gate_checks(report(metrics(10.0, 9.0)))) == ["mae beats one_feature"]
    off = RegressionGateConfig(require_mae_below_baselines=False)
    checks = regression_gate_checks(report(metrics(10.0, 9.0)), config=off)
    assert failed(checks) == []
    assert not any(c.name.startswith("mae") for c in checks)


def test_no_baselines_fails() -> None:
    checks = regression_gate_checks(report(metrics(10.0, 7.0), baselines={}))
    assert failed(checks) == ["baselines present"]


def test_candidate_may_not_regress_against_the_approved_version() -> None:
    approved = metrics(10.0, 7.0)
    within = regression_gate_checks(report(metrics(10.19, 7.13)), approved=approved)
    assert failed(within) == []
    assert by_name(within, "rmse vs approved").reference == 10.0
    worse = regression_gate_checks(report(metrics(10.3, 7.2)), approved=approved)
    assert failed(worse) == ["rmse vs approved", "mae vs approved"]
    assert "may rise at most 2% (to 10.2000)" in by_name(worse, "rmse vs approved").detail


def test_slices_are_held_to_the_approved_versions_slices() -> None:
    approved_slices = {
        "region": {"north": metrics(10.0, 7.0), "south": metrics(10.0, 7.0)},
        "contract_type": {"two-year": metrics(8.0, 6.0, n=150)},
    }
    slices = {
        "region": {
            "north": metrics(10.4, 7.0),  # +4%: allowed
            "south": metrics(10.6, 7.0),  # +6%: refused
            "east": metrics(14.0, 10.0),  # the approved version has no such slice
        },
        "contract_type": {"two-year": metrics(30.0, 20.0, n=150)},  # too few rows to judge
    }
    checks = regression_gate_checks(
        report(metrics(10.0, 7.0), slices=slices), approved_slices=approved_slices
    )
    assert failed(checks) == ["rmse vs approved [region=south]"]
    names = {c.name for c in checks if c.name.startswith("rmse vs approved")}
    assert names == {
        "rmse vs approved [contract_type=two-year]",
        "rmse vs approved [region=north]",
        "rmse vs approved [region=south]",
    }
    small = by_name(checks, "rmse vs approved [contract_type=two-year]")
    assert small.passed
    assert small.detail == "not judged: 150 candidate and 150 approved rows (needs 200 each)"
    assert "may rise at most 5%" in by_name(checks, "rmse vs approved [region=south]").detail


def test_a_slice_far_above_the_overall_rmse_is_refused_on_its_own() -> None:
    slices = {
        "region": {"north": metrics(14.9, 9.0), "south": metrics(15.1, 9.0)},
        "contract_type": {"two-year": metrics(40.0, 30.0, n=150)},  # too few rows to judge
    }
    candidate = EvaluationReport(
        overall=metrics(10.0, 7.0),
        slices=slices,
        baselines=dict(BASELINES),
        unjudged={"region": {"west": 12}},
    )
    checks = regression_gate_checks(candidate)
    assert failed(checks) == ["rmse ceiling [region=south]"]
    assert by_name(checks, "rmse ceiling [region=south]").detail == (
        "slice RMSE 15.1000 on 1000 rows vs overall 10.0000; may be at most 1.5x (to 15.0000)"
    )
    small = by_name(checks, "rmse ceiling [contract_type=two-year]")
    assert small.passed and small.detail == "not judged: 150 rows (needs 200)"
    west = by_name(checks, "rmse ceiling [region=west]")
    assert (
        west.passed and west.detail == "not judged: 12 rows in the evaluation, too few to measure"
    )
    lenient = RegressionGateConfig(max_slice_rmse_ratio=1.6)
    assert failed(regression_gate_checks(candidate, config=lenient)) == []


def test_the_gate_refuses_classification_metrics() -> None:
    from ml.evaluate import Metrics

    churn = Metrics(
        n=10, positive_rate=0.5, roc_auc=0.8, pr_auc=0.7, log_loss=0.5, brier=0.2, ece=0
    )
    with pytest.raises(TypeError, match="are Metrics, not RegressionMetrics"):
        regression_gate_checks(report(churn))


def test_gate_config_refuses_impossible_thresholds() -> None:
    with pytest.raises(ValueError, match=r"min_rmse_improvement 1\.5 must be between 0 and 1"):
        RegressionGateConfig(min_rmse_improvement=1.5)
    with pytest.raises(ValueError, match="min_slice_rows 0 must be at least 1"):
        RegressionGateConfig(min_slice_rows=0)
    with pytest.raises(ValueError, match=r"max_slice_rmse_ratio 0\.9 must be at least 1"):
        RegressionGateConfig(max_slice_rmse_ratio=0.9)
    with pytest.raises(ValueError, match=r"max_group_bias_gap 0\.0 must be positive"):
        RegressionGateConfig(max_group_bias_gap=0.0)
    with pytest.raises(ValueError, match="min_group_rows 0 must be at least 1"):
        RegressionGateConfig(min_group_rows=0)


# --- the gate on real models ------------------------------------------------------------------


class Scorer:
    """Anything `model.predict` can score: a function of the feature matrix."""

    def __init__(self, predict: Callable[[np.ndarray], np.ndarray]) -> None:
        self.predict = predict


def evaluation(
    model: Any,
    predict: Callable[[np.ndarray], np.ndarray],
    features: pd.DataFrame,
    baselines: Mapping[str, Any],
) -> EvaluationReport:
    """Overall, per-slice and baseline metrics of `predict` on a labelled feature table
    (`ml.evaluate.evaluate`, which calls into ml.regression for a regression model). No
    permutation importance: some of these scorers are tied to the rows of `features`."""
    return evaluate(model, Scorer(predict), features, baselines=baselines, importance=False)


@pytest.fixture(scope="module")
def spend() -> dict[str, Any]:
    """The spend model fitted on sample data, its baselines and its held-out rows."""
    from ml.models import load
    from ml.sample_data import generate_customers

    model = load("spend")
    table = model.features.build_features(generate_customers(16_000, seed=5))
    train, test = table.iloc[:10_000], table.iloc[10_000:]
    X = model.features.feature_matrix(train)
    y = labels(model, train)
    hp = model.hyperparameters(seed=1, n_jobs=1)
    estimator = model.make_estimator(hp).fit(X, y)
    baselines = fit_regression_baselines(model, train, seed=1)
    return {
        "model": model,
        "estimator": estimator,
        "baselines": baselines,
        "train": train,
        "test": test,
        "report": evaluation(model, estimator.predict, test, baselines),
    }


def test_a_real_model_passes_the_gate(spend: dict[str, Any]) -> None:
    candidate = spend["report"]
    checks = regression_gate_checks(
        candidate,
        approved=candidate.overall,
        config=spend["model"].gate,
        approved_slices=candidate.slices,
    )
    assert failed(checks) == []
    values = sum(len(v) for v in candidate.slices.values())
    unjudged = sum(len(v) for v in candidate.unjudged.values())
    # baselines, approved overall, then per slice value a ceiling (the unmeasured ones too)
    # and a comparison with the approved version's same slice
    assert len(checks) == 6 + 2 + (values + unjudged) + values
    assert {c.name for c in checks if c.name.startswith("rmse ceiling [")} == {
        f"rmse ceiling [{column}={value}]"
        for column in (*candidate.slices, *candidate.unjudged)
        for value in (*candidate.slices.get(column, {}), *candidate.unjudged.get(column, {}))
    }
    assert set(candidate.slices) == set(spend["model"].spec.slice_columns)
    assert candidate.overall.r2 > 0.3


def test_a_constant_predictor_is_refused(spend: dict[str, Any]) -> None:
    mean = float(labels(spend["model"], spend["train"]).mean())
    constant = evaluation(
        spend["model"], lambda X: np.full(len(X), mean), spend["test"], spend["baselines"]
    )
    fails = failed(regression_gate_checks(constant))
    assert {"rmse beats mean", "rmse beats median", "rmse beats one_feature"} <= set(fails)


def test_a_model_no_better_than_one_feature_is_refused(spend: dict[str, Any]) -> None:
    one = spend["baselines"]["one_feature"]
    level = evaluation(spend["model"], one.predict, spend["test"], spend["baselines"])
    fails = failed(regression_gate_checks(level))
    assert "rmse beats one_feature" in fails
    assert "rmse beats mean" not in fails  # it is a real model: only the margin refuses it


def test_a_regression_against_the_approved_version_is_refused(spend: dict[str, Any]) -> None:
    model = spend["model"]
    X = model.features.feature_matrix(spend["train"])
    y = labels(model, spend["train"])
    weak = model.make_estimator(model.hyperparameters(n_estimators=4, max_depth=2, n_jobs=1)).fit(
        X, y
    )
    candidate = evaluation(model, weak.predict, spend["test"], spend["baselines"])
    checks = regression_gate_checks(candidate, approved=spend["report"].overall)
    assert {"rmse vs approved", "mae vs approved"} <= set(failed(checks))


def test_a_slice_regression_is_refused(spend: dict[str, Any]) -> None:
    model, estimator, test = spend["model"], spend["estimator"], spend["test"]
    west = (test["region"].astype(str) == "west").to_numpy()

    def worse_in_the_west(X: np.ndarray) -> np.ndarray:
        scores: np.ndarray = estimator.predict(X)
        # The rows of `test` in order: overstate every western bill by 15.
        return np.where(west, scores + 15.0, scores)

    candidate = evaluation(model, worse_in_the_west, test, spend["baselines"])
    approved = spend["report"]
    checks = regression_gate_checks(
        candidate, approved=approved.overall, approved_slices=approved.slices
    )
    # The other regions score as before; contract-type slices hold western rows too.
    assert [f for f in failed(checks) if "[region=" in f] == ["rmse vs approved [region=west]"]

    def far_worse_in_the_west(X: np.ndarray) -> np.ndarray:
        scores: np.ndarray = estimator.predict(X)
        return np.where(west, scores + 40.0, scores)

    # Far enough off, the slice is refused on its own: no serving version needed.
    alone = regression_gate_checks(
        evaluation(model, far_worse_in_the_west, test, spend["baselines"])
    )
    assert [f for f in failed(alone) if "[region=" in f] == ["rmse ceiling [region=west]"]


def test_baselines_of_a_real_table(spend: dict[str, Any]) -> None:
    baselines = spend["baselines"]
    X = spend["model"].features.feature_matrix(spend["train"])
    y = labels(spend["model"], spend["train"])
    assert baselines["mean"].predict(X[:1])[0] == pytest.approx(y.mean())
    assert baselines["median"].predict(X[:1])[0] == pytest.approx(np.median(y))
    # monthly_charges drives the bill: one line in it already explains much of it.
    line = compute_regression_metrics(y, baselines["one_feature"].predict(X))
    assert line.r2 is not None and line.r2 > 0.1
