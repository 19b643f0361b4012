"""ml.groups: group metrics by hand, the gate's bounds on their gaps, and the recorded decision
about each sensitive attribute (refused when missing, carried in metrics.json)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from ml.contracts import METRICS_FILE
from ml.evaluate import EvaluationReport, GateConfig, check_gate, evaluate, fit_baselines, labels
from ml.groups import (
    ClassificationGroup,
    GroupReport,
    classification_group,
    group_labels,
    group_reports,
    regression_group,
)
from ml.model import RegressionGateConfig
from ml.models import ModelSpecError, Sensitive, load
from ml.regression import RegressionMetrics

CHURN = load("churn")
SPEND = load("spend")

# --- metrics by hand ----------------------------------------------------------------------------


def test_a_classifiers_group_metrics_by_hand() -> None:
    y = np.array([0, 0, 0, 1, 1])
    scores = np.array([0.1, 0.6, 0.3, 0.7, 0.4])
    group = classification_group(y, scores, threshold=0.5)
    assert group.n == 5
    assert group.observed_rate == pytest.approx(0.4)
    assert group.mean_score == pytest.approx(0.42)
    assert group.calibration == pytest.approx(0.02)
    assert group.predicted_positive_rate == pytest.approx(0.4)  # 0.6 and 0.7
    assert group.fpr == pytest.approx(1 / 3)  # 0.6 among the three negatives
    assert group.fnr == pytest.approx(1 / 2)  # 0.4 among the two positives
    # the threshold is the spec's: at 0.35 the 0.4 positive is found, the 0.3 negative is not
    lower = classification_group(y, scores, threshold=0.35)
    assert lower.fpr == pytest.approx(1 / 3) and lower.fnr == 0.0
    only_negatives = classification_group(np.array([0, 0]), np.array([0.2, 0.9]), threshold=0.5)
    assert only_negatives.fnr is None and only_negatives.fpr == 0.5


def test_a_regressors_group_metrics_by_hand() -> None:
    group = regression_group(np.array([10.0, 20.0, 30.0]), np.array([12.0, 18.0, 36.0]))
    assert group.n == 3
    assert group.mean_label == 20.0
    assert group.mean_prediction == 22.0
    assert group.bias == pytest.approx(2.0)  # errors 2, -2, 6
    assert group.mae == pytest.approx(10 / 3)
    assert group.rmse == pytest.approx(np.sqrt((4 + 4 + 36) / 3))


def test_group_labels_of_booleans_numbers_strings_and_nulls() -> None:
    assert group_labels(pd.Series([True, False, None], dtype="boolean")).tolist() == [
        "true",
        "false",
        "missing",
    ]
    assert group_labels(pd.Series([1.0, 0.0, 0.5, np.nan])).tolist() == ["1", "0", "0.5", "missing"]
    assert group_labels(pd.Series(["a", None], dtype="string")).tolist() == ["a", "missing"]


def _c(n: int, calibration: float, fpr: float | None, fnr: float | None) -> ClassificationGroup:
    return ClassificationGroup(
        n=n,
        observed_rate=0.3,
        mean_score=0.3 + calibration,
        calibration=calibration,
        ece=abs(calibration),
        predicted_positive_rate=0.2,
        fpr=fpr,
        fnr=fnr,
    )


def test_gaps_are_taken_between_the_groups_large_enough_to_judge() -> None:
    report = GroupReport(
        "is_senior",
        "feature",
        "why",
        groups={
            "0": _c(900, 0.01, 0.08, 0.6),
            "1": _c(300, 0.05, 0.12, None),
            "2": _c(20, 0.5, 0.9, 0.0),
        },
        threshold=0.5,
        min_rows=200,
    )
    gaps = report.gaps()
    assert gaps["calibration"] == pytest.approx(0.04)
    assert gaps["fpr"] == pytest.approx(0.04)
    assert gaps["fnr"] is None  # defined in one judged group only
    assert report.unjudged == {"2": 20}
    assert report.gaps(10)["calibration"] == pytest.approx(0.49)  # the small group counts now
    data = json.loads(json.dumps(report.to_dict()))
    assert data["unjudged"] == {"2": 20} and data["gaps"]["fpr"] == pytest.approx(0.04)
    assert GroupReport.from_dict(data) == report
    with pytest.raises(ValueError, match="group report is missing 'reason'"):
        GroupReport.from_dict({"column": "x", "use": "feature"})


def test_every_sensitive_attribute_is_measured_on_the_evaluated_rows(
    trained: Any, features: pd.DataFrame
) -> None:
    y = labels(CHURN, features)
    scores = CHURN.predict(trained.estimator, CHURN.features.feature_matrix(features))
    [(column, report)] = group_reports(CHURN, features, y, scores, min_rows=50).items()
    senior = features["is_senior"].to_numpy() == 1.0
    assert column == "is_senior" and set(report.groups) == {"0", "1"}
    assert report.groups["1"] == classification_group(y[senior], scores[senior], threshold=0.5)
    assert report.groups["0"].n + report.groups["1"].n == len(features)
    assert (report.use, report.reason) == ("feature", CHURN.spec.sensitive[0].reason)
    assert report.min_rows == 50 and report.threshold == CHURN.spec.decision_threshold
    # the error rates are taken at the spec's decision threshold
    strict = replace(CHURN, spec=replace(CHURN.spec, decision_threshold=0.3))
    [at_03] = group_reports(strict, features, y, scores).values()
    assert at_03.threshold == 0.3
    assert at_03.groups["1"] == classification_group(y[senior], scores[senior], threshold=0.3)
    assert at_03.groups["1"].fnr != report.groups["1"].fnr
    with pytest.raises(ModelSpecError, match=r"decision_threshold 1\.5 must be between 0 and 1"):
        replace(CHURN.spec, decision_threshold=1.5)
    # rows without the column: said so, no invented groups
    [missing] = group_reports(CHURN, features.drop(columns="is_senior"), y, scores).values()
    assert missing.groups == {} and "have no 'is_senior' column" in str(missing.missing)


# --- the gate bounds the gaps -------------------------------------------------------------------


class Shifted:
    """The trained churn estimator, with `shift` added to the scores of seniors (the matrix's
    `is_senior` column): a model far worse calibrated for one group than for the other."""

    def __init__(self, estimator: Any, shift: float) -> None:
        self.estimator, self.shift = estimator, shift
        self.column = CHURN.features.matrix_columns.index("is_senior")

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        p = self.estimator.predict_proba(X)[:, 1]
        p = np.clip(np.where(X[:, self.column] == 1.0, p + self.shift, p), 0.0, 1.0)
        return np.column_stack([1.0 - p, p])


def test_a_classifier_with_a_big_gap_between_groups_is_refused(
    trained: Any, features: pd.DataFrame
) -> None:
    baselines = fit_baselines(CHURN, features, seed=0)
    fair = evaluate(CHURN, trained.estimator, features, baselines=baselines, importance=False)
    assert min(g.n for g in fair.groups["is_senior"].groups.values()) >= 200
    gaps = [c for c in check_gate(CHURN, fair).checks if c.name.endswith("gap [is_senior]")]
    assert {c.name for c in gaps} == {
        "calibration gap [is_senior]",
        "fpr gap [is_senior]",
        "fnr gap [is_senior]",
    }
    assert all(c.passed and c.candidate is not None for c in gaps)  # judged, and within bounds
    unfair = evaluate(
        CHURN, Shifted(trained.estimator, 0.3), features, baselines=baselines, importance=False
    )
    gate = check_gate(CHURN, unfair)
    assert {"calibration gap [is_senior]", "fpr gap [is_senior]"} <= {c.name for c in gate.failures}
    [calibration] = [c for c in gate.failures if c.name == "calibration gap [is_senior]"]
    assert calibration.candidate == pytest.approx(unfair.groups["is_senior"].gaps()["calibration"])
    assert calibration.candidate is not None and calibration.candidate > 0.2
    assert "allowed <= 0.1" in calibration.detail
    # the bound is the gate's: a lenient one lets it through
    lenient = GateConfig(
        max_group_calibration_gap=0.5, max_group_fpr_gap=0.9, max_group_fnr_gap=0.9
    )
    assert not any("gap" in c.name for c in check_gate(CHURN, unfair, config=lenient).failures)


def test_groups_too_small_to_judge_are_said_so() -> None:
    report = EvaluationReport(
        overall=RegressionMetrics(n=500, mean_label=60, rmse=20, mae=15, bias=0, r2=0.5),
        groups={
            "is_senior": GroupReport(
                "is_senior",
                "excluded",
                "why",
                groups={
                    "false": regression_group(np.array([1.0] * 400), np.array([1.0] * 400)),
                    "true": regression_group(np.array([1.0] * 100), np.array([90.0] * 100)),
                },
            )
        },
    )
    checks = {c.name: c for c in check_gate(SPEND, report).checks if "[is_senior]" in c.name}
    assert set(checks) == {"rmse gap [is_senior]", "bias gap [is_senior]"}
    assert all(
        c.passed and c.detail.startswith("not judged: fewer than two groups with 200 rows")
        for c in checks.values()
    )
    judged = check_gate(SPEND, report, config=RegressionGateConfig(min_group_rows=50))
    assert {"rmse gap [is_senior]", "bias gap [is_senior]"} <= {c.name for c in judged.failures}


def test_a_regressor_biased_against_one_group_is_refused(features: pd.DataFrame) -> None:
    from sklearn.linear_model import LinearRegression

    from ml.sample_data import generate_customers

    table = SPEND.features.build_features(generate_customers(3_000, seed=4))
    X = SPEND.features.feature_matrix(table)
    fitted = LinearRegression().fit(X, labels(SPEND, table))
    senior = table["is_senior"].to_numpy(dtype=bool)

    class Biased:
        def predict(self, matrix: np.ndarray) -> np.ndarray:
            out: np.ndarray = fitted.predict(matrix) + np.where(senior, 15.0, 0.0)
            return out

    baselines = fit_baselines(SPEND, table)
    fair = evaluate(SPEND, fitted, table, baselines=baselines, importance=False)
    biased = evaluate(SPEND, Biased(), table, baselines=baselines, importance=False)
    assert fair.groups["is_senior"].use == "excluded"  # measured, though not a feature
    assert set(fair.groups["is_senior"].groups) == {"false", "true"}
    assert not any("[is_senior]" in c.name for c in check_gate(SPEND, fair).failures)
    failures = {c.name: c for c in check_gate(SPEND, biased).failures}
    assert "bias gap [is_senior]" in failures
    bias = failures["bias gap [is_senior]"]
    gap = biased.groups["is_senior"].gaps()["bias"]
    assert isinstance(biased.overall, RegressionMetrics) and gap is not None
    assert bias.candidate == pytest.approx(gap / biased.overall.rmse)
    assert "x the overall RMSE" in bias.detail


# --- the decision about a sensitive attribute ---------------------------------------------------


def test_a_spec_that_reads_a_protected_column_without_a_recorded_decision_is_refused() -> None:
    with pytest.raises(
        ModelSpecError,
        match="raw column 'is_senior' describes a protected group and the model reads it",
    ):
        replace(CHURN.spec, sensitive=())
    with pytest.raises(ModelSpecError, match="is use='excluded' but the model reads it"):
        replace(CHURN.spec, sensitive=(Sensitive("is_senior", use="excluded", reason="no"),))
    with pytest.raises(ModelSpecError, match="needs a reason for its use='feature'"):
        replace(CHURN.spec, sensitive=(Sensitive("is_senior", use="feature", reason=" "),))
    # a model that does not read it must still say so
    with pytest.raises(ModelSpecError, match="does not say whether it may read it"):
        replace(SPEND.spec, sensitive=())
    with pytest.raises(ModelSpecError, match="is use='feature' but not an input feature"):
        replace(SPEND.spec, sensitive=(Sensitive("is_senior", use="feature", reason="r"),))


def test_metrics_json_carries_the_decision(trained: Any, model_dir: Path) -> None:
    data = json.loads((model_dir / METRICS_FILE).read_text())
    decision = CHURN.spec.sensitive[0]
    senior = data["groups"]["is_senior"]
    assert (senior["use"], senior["reason"]) == (decision.use, decision.reason)
    assert senior["threshold"] == 0.5 and set(senior["groups"]) == {"0", "1"}
    assert set(senior["gaps"]) >= {"calibration", "fpr", "fnr"}
    assert EvaluationReport.from_dict(data).groups == trained.evaluation.groups
