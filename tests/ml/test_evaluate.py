from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from ml.evaluate import (
    EvaluationReport,
    GateConfig,
    GateFailed,
    Metrics,
    check_gate,
    compute_metrics,
    enforce_gate,
    evaluate,
    expected_calibration_error,
    fit_baselines,
    labels,
)
from ml.models import load

CHURN = load("churn")


def test_metrics_of_perfect_and_known_predictions() -> None:
    y = np.array([0, 0, 1, 1])
    perfect = compute_metrics(y, np.array([0.1, 0.2, 0.8, 0.9]))
    assert perfect.roc_auc == 1.0
    assert perfect.pr_auc == 1.0
    assert perfect.brier == pytest.approx((0.01 + 0.04 + 0.04 + 0.01) / 4)
    assert perfect.positive_rate == 0.5


def test_expected_calibration_error_by_hand() -> None:
    # Bin [0.2, 0.3): scores 0.2, 0.2, observed 1 of 2 -> gap 0.3; bin [0.9, 1]: 0.9 vs 1 -> 0.1.
    y = np.array([0, 1, 1])
    p = np.array([0.2, 0.2, 0.9])
    assert expected_calibration_error(y, p) == pytest.approx((2 * 0.3 + 1 * 0.1) / 3)


def test_one_class_gives_undefined_aucs() -> None:
    m = compute_metrics(np.array([1, 1]), np.array([0.4, 0.9]))
    assert m.roc_auc is None and m.pr_auc is None


@pytest.mark.parametrize(
    ("y", "p", "message"),
    [
        ([0, 1], [0.5], "must be 1-D of the same length"),
        ([], [], "zero rows"),
        ([0, 2], [0.1, 0.2], "labels must be 0 or 1"),
        ([0, 1], [0.1, 1.5], "scores must be probabilities"),
        ([0, 1], [0.1, np.nan], "scores must be probabilities"),
    ],
)
def test_bad_metric_inputs(y: list[float], p: list[float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        compute_metrics(np.array(y), np.array(p))


def _metrics(auc: float, log_loss: float, ece: float = 0.01, pr: float = 0.6) -> Metrics:
    return Metrics(
        n=100, positive_rate=0.3, roc_auc=auc, pr_auc=pr, log_loss=log_loss, brier=0.15, ece=ece
    )


def _report(auc: float = 0.82, log_loss: float = 0.43, **kw: Any) -> EvaluationReport:
    return EvaluationReport(
        overall=_metrics(auc, log_loss, **kw),
        baselines={"prior": _metrics(0.5, 0.57, pr=0.3), "one_feature": _metrics(0.73, 0.50)},
    )


def test_gate_passes_a_good_candidate() -> None:
    report = enforce_gate(CHURN, _report(), approved=_metrics(0.821, 0.432))
    assert report.passed
    assert "gate passed" in report.summary()


def test_gate_fails_when_a_baseline_is_not_beaten() -> None:
    with pytest.raises(GateFailed) as err:
        enforce_gate(CHURN, _report(auc=0.74, log_loss=0.45))
    failed = {c.name for c in err.value.report.failures}
    assert failed == {"roc_auc beats one_feature"}
    assert "needs >= 0.7500" in str(err.value)


def test_gate_fails_on_regression_against_the_approved_model() -> None:
    report = check_gate(CHURN, _report(auc=0.80, log_loss=0.45), approved=_metrics(0.82, 0.43))
    assert not report.passed
    assert {c.name for c in report.failures} == {"roc_auc vs approved", "log_loss vs approved"}
    assert "may drop at most 0.005" in report.summary()


def test_gate_tolerance_is_configurable() -> None:
    config = GateConfig(max_auc_regression=0.05, max_log_loss_regression=0.05)
    assert check_gate(
        CHURN, _report(auc=0.80, log_loss=0.45), approved=_metrics(0.82, 0.43), config=config
    ).passed


def test_gate_fails_a_badly_calibrated_or_baseline_less_candidate() -> None:
    assert {c.name for c in check_gate(CHURN, _report(ece=0.2)).failures} == {"calibration"}
    bare = EvaluationReport(overall=_metrics(0.9, 0.3))
    assert {c.name for c in check_gate(CHURN, bare).failures} == {"baselines present"}


def test_report_roundtrips_through_a_dict(trained: Any) -> None:
    data = trained.evaluation.to_dict()
    assert EvaluationReport.from_dict(data) == trained.evaluation
    assert "month-to-month" in data["slices"]["contract_type"]
    with pytest.raises(ValueError, match="needs an 'overall' section"):
        EvaluationReport.from_dict({})
    with pytest.raises(ValueError, match="metrics are missing 'ece'"):
        Metrics.from_dict({k: v for k, v in data["overall"].items() if k != "ece"})


def _sliced(n: int, **aucs: float) -> dict[str, dict[str, Metrics]]:
    slices = {v: _metrics(a, 0.43) for v, a in aucs.items()}
    return {"contract_type": {v: replace(m, n=n) for v, m in slices.items()}}


def test_the_gate_holds_each_slice_to_the_approved_models_slice() -> None:
    candidate = replace(_report(), slices=_sliced(500, monthly=0.70, yearly=0.80))
    approved = _sliced(400, monthly=0.76, yearly=0.79)
    report = check_gate(CHURN, candidate, approved=_metrics(0.82, 0.43), approved_slices=approved)
    assert {c.name for c in report.failures} == {"roc_auc vs approved [contract_type=monthly]"}
    [failed] = report.failures
    assert failed.detail == (
        "candidate 0.7000 vs approved 0.7600 on 500 rows; may drop at most 0.03"
    )
    # within the tolerance it passes; without the approved slices there is no slice check
    ok = replace(_report(), slices=_sliced(500, monthly=0.74, yearly=0.80))
    assert check_gate(CHURN, ok, approved=_metrics(0.82, 0.43), approved_slices=approved).passed
    assert not any("[" in c.name for c in check_gate(CHURN, candidate).checks)


def test_a_slice_too_small_to_judge_is_reported_not_dropped() -> None:
    candidate = replace(_report(), slices=_sliced(50, monthly=0.50))
    report = check_gate(CHURN, candidate, approved_slices=_sliced(400, monthly=0.80))
    [check] = [c for c in report.checks if c.name == "roc_auc vs approved [contract_type=monthly]"]
    assert check.passed and check.detail.startswith("not judged: 50 candidate and 400 approved")
    config = GateConfig(min_slice_rows=10)
    strict = check_gate(CHURN, candidate, approved_slices=_sliced(400, monthly=0.80), config=config)
    assert not strict.passed


def test_evaluation_follows_the_models_spec(trained: Any, features: Any) -> None:
    """Slices, the label and the one-feature baseline come from the model's spec."""
    assert set(trained.evaluation.slices) == set(CHURN.spec.slices)
    baselines = fit_baselines(CHURN, features.head(2_000), seed=0)
    one = baselines["one_feature"].named_steps["columns"].transformers[0][2]
    assert [CHURN.features.matrix_columns[j] for j in one] == [
        f"contract_type={v}" for v in CHURN.features.vocabularies["contract_type"]
    ]
    report = evaluate(CHURN, trained.estimator, features.head(500), slices=("region",))
    assert set(report.slices) == {"region"}
    with pytest.raises(ValueError, match="cannot slice on \\['tenure_months'\\]"):
        evaluate(CHURN, trained.estimator, features.head(50), slices=("tenure_months",))
    assert labels(CHURN, features.head(5)).dtype == np.int64


def test_the_gate_of_a_classifier_refuses_regression_metrics() -> None:
    from ml.regression import RegressionMetrics

    spend = RegressionMetrics(n=10, mean_label=5.0, rmse=1.0, mae=1.0, bias=0.0, r2=0.5)
    with pytest.raises(ValueError, match="a regressor's, not a classifier's"):
        check_gate(CHURN, EvaluationReport(overall=spend))


def test_a_report_tells_the_kinds_of_metrics_apart_by_their_keys(trained: Any) -> None:
    from ml.regression import RegressionMetrics

    spend = RegressionMetrics(n=10, mean_label=5.0, rmse=1.0, mae=0.8, bias=0.1, r2=None)
    data = {"overall": spend.to_dict(), "baselines": {"mean": spend.to_dict()}}
    report = EvaluationReport.from_dict(data)
    assert report.overall == spend and report.baselines["mean"] == spend
    assert isinstance(EvaluationReport.from_dict(trained.evaluation.to_dict()).overall, Metrics)
