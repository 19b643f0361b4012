from __future__ import annotations

import json
import math
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
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
    slice_values,
)
from ml.models import ModelSpecError, band_labels, load
from ml.sample_data import generate_customers
from ml.train import TrainingResult, train

CHURN = load("churn")


def test_metrics_of_perfect_and_known_predictions() -> None:
    y = np.array([0, 0, 1, 1])
    perfect = compute_metrics(y, np.array([0.1, 0.2, 0.8, 0.9]))
    assert perfect.roc_auc == 1.0
    assert perfect.pr_auc == 1.0
    assert perfect.brier == pytest.approx((0.01 + 0.04 + 0.04 + 0.01) / 4)
    assert perfect.positive_rate == 0.5


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metrics_are_scikit_learns(seed: int) -> None:
    from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

    rng = np.random.default_rng(seed)
    y = (rng.random(700) < 0.3).astype(np.int64)
    # rounded scores: many ties; exact 0 and 1 too, for the clipped log loss
    p = np.clip(np.round(rng.random(700) * 0.8 + 0.25 * y - 0.05, 1), 0.0, 1.0)
    m = compute_metrics(y, p)
    assert m.roc_auc == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert m.pr_auc == pytest.approx(average_precision_score(y, p), abs=1e-12)
    assert m.log_loss == pytest.approx(
        log_loss(y, np.clip(p, 1e-15, 1 - 1e-15), labels=[0, 1]), abs=1e-12
    )
    assert m.brier == pytest.approx(brier_score_loss(y, p), abs=1e-12)


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
    # within the tolerance it passes; without the approved slices only the floors hold slices
    ok = replace(_report(), slices=_sliced(500, monthly=0.74, yearly=0.80))
    assert check_gate(CHURN, ok, approved=_metrics(0.82, 0.43), approved_slices=approved).passed
    alone = check_gate(CHURN, candidate).checks
    assert not any("vs approved" in c.name for c in alone)
    assert {c.name for c in alone if "[" in c.name and "is_senior" not in c.name} == {
        "roc_auc floor [contract_type=monthly]",
        "roc_auc floor [contract_type=yearly]",
    }


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
    assert set(trained.evaluation.slices) == {
        "contract_type",
        "region",
        "payment_method",
        "tenure_months",
    }
    assert set(trained.evaluation.slices) == set(CHURN.spec.slice_columns)
    baselines = fit_baselines(CHURN, features.head(2_000), seed=0)
    one = baselines["one_feature"].named_steps["columns"].transformers[0][2]
    assert [CHURN.features.matrix_columns[j] for j in one] == [
        f"contract_type={v}" for v in CHURN.features.vocabularies["contract_type"]
    ]
    report = evaluate(CHURN, trained.estimator, features.head(500), slices=("region",))
    assert set(report.slices) == {"region"}
    with pytest.raises(ValueError, match="cannot slice on \\['monthly_charges'\\]"):
        evaluate(CHURN, trained.estimator, features.head(50), slices=("monthly_charges",))
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


# --- slices: floors, bands, and what is too small to judge -------------------------------------


def test_a_slice_below_the_floor_is_refused_however_good_the_overall_figure() -> None:
    candidate = replace(_report(), slices=_sliced(500, monthly=0.58, yearly=0.80))
    report = check_gate(CHURN, candidate)
    assert [c.name for c in report.failures] == ["roc_auc floor [contract_type=monthly]"]
    assert report.failures[0].detail == "slice ROC AUC 0.5800 on 500 rows; needs >= 0.6"
    assert check_gate(CHURN, candidate, config=GateConfig(min_slice_auc=0.55)).passed
    small = replace(_report(), slices=_sliced(150, monthly=0.30))
    [check] = [
        c for c in check_gate(CHURN, small).checks if "floor [contract_type=monthly]" in c.name
    ]
    assert check.passed and check.detail == "not judged: 150 rows (needs 200, both classes)"


def test_every_slice_value_is_measured_or_reported_as_too_small(
    trained: Any, features: Any
) -> None:
    rows = features[features["region"] == "north"].head(150)
    report = evaluate(CHURN, trained.estimator, rows, importance=False)
    # regions absent from the rows are reported with zero rows, not dropped
    assert report.unjudged["region"] == {"south": 0, "east": 0, "west": 0}
    for column, (values, per_row) in slice_values(CHURN, rows).items():
        measured, small = report.slices[column], report.unjudged.get(column, {})
        assert set(measured) | set(small) == set(values)
        assert not set(measured) & set(small)
        assert sum(m.n for m in measured.values()) + sum(small.values()) == len(rows)
        assert all(n == int((per_row == v).sum()) and n < 30 for v, n in small.items())
    gate = check_gate(CHURN, report)
    for column, small in report.unjudged.items():
        for value, n in small.items():
            [check] = [c for c in gate.checks if c.name == f"roc_auc floor [{column}={value}]"]
            assert check.passed
            assert check.detail == f"not judged: {n} rows in the evaluation, too few to measure"


def test_tenure_is_sliced_in_the_bands_the_spec_declares(trained: Any, features: Any) -> None:
    assert CHURN.spec.slice_bands == {"tenure_months": (6.0, 12.0, 24.0, 48.0)}
    assert band_labels((6.0, 12.0, 24.0, 48.0)) == ("<6", "[6,12)", "[12,24)", "[24,48)", ">=48")
    edges = pd.DataFrame({"tenure_months": [0.0, 5.9, 6.0, 11.99, 12.0, 47.0, 48.0, 300.0]})
    [(values, rows)] = slice_values(CHURN, edges, ("tenure_months",)).values()
    assert values == ("<6", "[6,12)", "[12,24)", "[24,48)", ">=48")
    assert rows.tolist() == ["<6", "<6", "[6,12)", "[6,12)", "[12,24)", "[24,48)", ">=48", ">=48"]
    report = evaluate(CHURN, trained.estimator, features, importance=False)
    tenure = features["tenure_months"].to_numpy()
    y = labels(CHURN, features)
    scores = CHURN.predict(trained.estimator, CHURN.features.feature_matrix(features))
    for label, mask in {
        "<6": tenure < 6,
        "[6,12)": (tenure >= 6) & (tenure < 12),
        "[12,24)": (tenure >= 12) & (tenure < 24),
        "[24,48)": (tenure >= 24) & (tenure < 48),
        ">=48": tenure >= 48,
    }.items():
        assert report.slices["tenure_months"][label] == compute_metrics(y[mask], scores[mask])


@pytest.mark.parametrize(
    ("bands", "message"),
    [
        ({"contract_type": (1.0,)}, "slice band 'contract_type' is not a numeric feature"),
        ({"nope": (1.0,)}, "slice band 'nope' is not a numeric feature"),
        ({"tenure_months": ()}, r"edges \(\) must be finite numbers in increasing order"),
        ({"tenure_months": (12.0, 6.0)}, "must be finite numbers in increasing order"),
        ({"tenure_months": (6.0, math.inf)}, "must be finite numbers in increasing order"),
    ],
)
def test_bad_slice_bands_are_refused(bands: dict[str, tuple[float, ...]], message: str) -> None:
    with pytest.raises(ModelSpecError, match=message):
        replace(CHURN.spec, slice_bands=bands)


def test_the_gate_takes_the_approved_report_and_enforce_gate_holds_its_slices() -> None:
    candidate = replace(_report(), slices=_sliced(500, monthly=0.70))
    approved = replace(_report(), slices=_sliced(400, monthly=0.76))
    refused = check_gate(CHURN, candidate, approved=approved)
    assert {c.name for c in refused.failures} == {"roc_auc vs approved [contract_type=monthly]"}
    assert "roc_auc vs approved" in {c.name for c in refused.checks}  # the overall one too
    with pytest.raises(GateFailed, match=r"roc_auc vs approved \[contract_type=monthly\]"):
        enforce_gate(CHURN, candidate, approved=approved.overall, approved_slices=approved.slices)
    assert enforce_gate(CHURN, candidate, approved=approved.overall).passed


def test_the_report_round_trips_every_section_and_old_reports_still_load(trained: Any) -> None:
    data = json.loads(json.dumps(trained.evaluation.to_dict(), allow_nan=False))
    assert set(data) == {"overall", "slices", "baselines", "unjudged", "groups", "importance"}
    assert trained.evaluation.groups and trained.evaluation.importance is not None
    assert EvaluationReport.from_dict(data) == trained.evaluation
    old = EvaluationReport.from_dict({k: data[k] for k in ("overall", "slices", "baselines")})
    assert (old.unjudged, old.groups, old.importance) == ({}, {}, None)
    assert old.slices == trained.evaluation.slices
    [check] = [c for c in check_gate(CHURN, old).checks if c.name == "groups measured [is_senior]"]
    assert check.passed and check.detail == (
        "not judged: the evaluation holds no group metrics for it"
    )


# --- the recipe for a candidate only the slice gate refuses -------------------------------------


def shuffle_labels(raw: pd.DataFrame, label: str, column: str, value: str, *, seed: int) -> Any:
    """`raw` with the `label` values shuffled among the rows whose `column` is `value`: that
    slice's outcomes become noise, its share of positives and every other row stay as they are."""
    out = raw.copy()
    where = (out[column].astype("string") == value).to_numpy(dtype=bool, na_value=False)
    rows = out.index[where]
    out.loc[rows, label] = np.random.default_rng(seed).permutation(out.loc[rows, label].to_numpy())
    return out


@pytest.fixture(scope="module")
def two_year_noise() -> tuple[TrainingResult, TrainingResult]:
    """Churn trained on the sandbox's data (30,000 rows, seed 7), and on the same data with the
    labels shuffled among two-year contracts."""
    raw = generate_customers(30_000, seed=7)
    noisy = shuffle_labels(raw, CHURN.spec.label, "contract_type", "two-year", seed=0)
    assert (noisy[CHURN.spec.label] != raw[CHURN.spec.label]).any()
    return (
        train(CHURN, CHURN.features.build_features(raw)),
        train(CHURN, CHURN.features.build_features(noisy)),
    )


def test_labels_shuffled_inside_one_slice_are_refused_by_the_slice_gate_alone(
    two_year_noise: tuple[TrainingResult, TrainingResult],
) -> None:
    clean, noisy = two_year_noise
    gate = check_gate(CHURN, noisy.evaluation, approved=clean.evaluation)
    failed = {c.name for c in gate.failures}
    assert {
        "roc_auc floor [contract_type=two-year]",
        "roc_auc vs approved [contract_type=two-year]",
    } <= failed
    assert all(name.startswith(("roc_auc floor [", "roc_auc vs approved [")) for name in failed)
    # the overall gate passes: baselines, calibration, and the serving version's overall figures
    overall = {c.name: c.passed for c in gate.checks if "[" not in c.name}
    assert {"roc_auc beats one_feature", "calibration", "roc_auc vs approved"} <= set(overall)
    assert all(overall.values())
    # the clean model passes the very same gate
    assert check_gate(CHURN, clean.evaluation, approved=clean.evaluation).passed


def test_a_classification_gate_config_out_of_range_names_every_problem() -> None:

    with pytest.raises(ValueError) as refused:
        GateConfig(min_slice_auc=1.2, max_group_fnr_gap=-0.1, min_group_rows=0)
    message = str(refused.value)
    assert message.startswith("classification gate: ")
    assert "min_slice_auc 1.2 must be between 0 and 1" in message
    assert "max_group_fnr_gap -0.1 must be between 0 and 1" in message
    assert "min_group_rows 0 must be at least 1" in message
    assert GateConfig().min_slice_auc == 0.6  # the defaults are valid
