"""Evaluation and the promotion gate, for any model (`ml.model.Model`).

`compute_metrics` scores a classifier's predictions (ROC AUC, PR AUC, log loss, Brier score,
expected calibration error); `evaluate` scores a model overall, on every value of its slices
(`ModelSpec.slice_columns`: categorical features, and numeric features in bands) and next to the
simple baselines `fit_baselines` trains (class prior, one-feature logistic regression). A slice
value with too few rows to measure is listed in `EvaluationReport.unjudged`, never dropped. The
report also holds the group metrics of every sensitive attribute (`ml.groups`, with the recorded
decision about it) and what each feature is worth and costs (`ml.importance`).

`check_gate` decides whether a candidate may be registered: it must beat every baseline, must not
regress against the currently approved model beyond a tolerance, every judged slice must reach
the gate's floor and must not regress against the approved model's same slice, and the gaps
between the groups of each sensitive attribute must stay within bounds (`model.gate`). Anything
too small to judge is a passing check that says "not judged" and why. `enforce_gate` raises
`GateFailed`, whose `report` says which check failed and by how much.

Each of them dispatches on `model.spec.task`: a regression model's metrics, baselines and gate
rules are `ml.regression`'s (imported when a regression model needs them).
`EvaluationReport.from_dict` tells the two kinds of metrics apart by their keys (`rmse`:
regression).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np
import pandas as pd

from ml.model import GateConfig, Model

if TYPE_CHECKING:
    from ml.groups import GroupReport
    from ml.importance import ImportanceReport
    from ml.regression import RegressionMetrics

__all__ = [
    "EvaluationReport",
    "GateCheck",
    "GateConfig",
    "GateFailed",
    "GateReport",
    "Metrics",
    "check_gate",
    "compute_metrics",
    "enforce_gate",
    "evaluate",
    "fit_baselines",
    "labels",
    "slice_values",
]


@dataclass(frozen=True, slots=True)
class Metrics:
    """Classification quality of predicted probabilities. AUCs are None when only one class is
    present."""

    n: int
    positive_rate: float
    roc_auc: float | None
    pr_auc: float | None
    log_loss: float
    brier: float
    ece: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Metrics:
        try:
            return cls(**{f: data[f] for f in cls.__dataclass_fields__})
        except KeyError as err:
            raise ValueError(f"metrics are missing {err.args[0]!r}: {dict(data)}") from None


def compute_metrics(y_true: np.ndarray, scores: np.ndarray, *, n_bins: int = 10) -> Metrics:
    """Metrics of predicted probabilities `scores` against 0/1 labels `y_true`.

    The figures are scikit-learn's (`roc_auc_score`, `average_precision_score`, `log_loss` of
    scores clipped to [1e-15, 1 - 1e-15], `brier_score_loss`; a test holds them equal), computed
    here with numpy from one sort: evaluation scores every slice value and group, and
    scikit-learn's input checks cost ten times the arithmetic."""
    y = np.asarray(y_true, dtype=np.int64)
    p = np.asarray(scores, dtype=np.float64)
    if y.shape != p.shape or y.ndim != 1:
        raise ValueError(f"labels {y.shape} and scores {p.shape} must be 1-D of the same length")
    if len(y) == 0:
        raise ValueError("cannot compute metrics on zero rows")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0 or 1")
    if np.isnan(p).any() or (p < 0).any() or (p > 1).any():
        raise ValueError("scores must be probabilities in [0, 1] without NaN")
    both = 0 < y.sum() < len(y)
    auc, average_precision = _ranking(y, p) if both else (None, None)
    clipped = np.clip(p, 1e-15, 1 - 1e-15)
    return Metrics(
        n=len(y),
        positive_rate=float(y.mean()),
        roc_auc=auc,
        pr_auc=average_precision,
        log_loss=float(-np.mean(np.where(y == 1, np.log(clipped), np.log1p(-clipped)))),
        brier=float(np.mean((p - y) ** 2)),
        ece=expected_calibration_error(y, p, n_bins=n_bins),
    )


def _ranking(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """ROC AUC (the trapezoids under the ROC curve) and average precision (precision at each
    distinct score, weighted by the recall it adds) of labels holding both classes; tied scores
    form one threshold, as in scikit-learn."""
    order = np.argsort(-p, kind="mergesort")
    ranked, truth = p[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(ranked)), len(ranked) - 1]  # each threshold's last row
    tps = np.cumsum(truth)[last].astype(np.float64)
    fps = (last + 1) - tps
    tpr = np.r_[0.0, tps / tps[-1]]
    fpr = np.r_[0.0, fps / fps[-1]]
    auc = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2.0))
    average_precision = float(np.sum(np.diff(tpr) * (tps / (tps + fps))))
    return auc, average_precision


def expected_calibration_error(
    y_true: np.ndarray, scores: np.ndarray, *, n_bins: int = 10
) -> float:
    """Mean |observed rate - mean score| over equal-width score bins, weighted by bin size."""
    y = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(scores, dtype=np.float64)
    bins = np.minimum((p * n_bins).astype(np.int64), n_bins - 1)
    counts = np.bincount(bins, minlength=n_bins)
    observed = np.bincount(bins, weights=y, minlength=n_bins)
    predicted = np.bincount(bins, weights=p, minlength=n_bins)
    used = counts > 0
    gap = np.abs(observed[used] - predicted[used]) / counts[used]
    return float((gap * counts[used]).sum() / len(p))


# A classifier's metrics or a regressor's (`ml.regression.RegressionMetrics`).
AnyMetrics: TypeAlias = "Metrics | RegressionMetrics"


def metrics_from_dict(data: Mapping[str, Any]) -> AnyMetrics:
    """Metrics read back from JSON: a regressor's when they hold `rmse`, else a classifier's."""
    if "rmse" in data:
        from ml.regression import RegressionMetrics

        return RegressionMetrics.from_dict(data)
    return Metrics.from_dict(data)


@dataclass(frozen=True, slots=True)
class EvaluationReport:
    """A model's metrics: overall, per slice value, and those of the baselines on the same rows.

    `unjudged`: the slice values with too few rows to measure (column -> value -> rows);
    `groups`: the group metrics of each sensitive attribute, with the decision about it
    (`ml.groups.GroupReport`); `importance`: each feature's value and cost
    (`ml.importance.ImportanceReport`), None when not measured. Reports written before these
    sections existed load with them empty."""

    overall: AnyMetrics
    slices: dict[str, dict[str, AnyMetrics]] = field(default_factory=dict)
    baselines: dict[str, AnyMetrics] = field(default_factory=dict)
    unjudged: dict[str, dict[str, int]] = field(default_factory=dict)
    groups: dict[str, GroupReport] = field(default_factory=dict)
    importance: ImportanceReport | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "overall": self.overall.to_dict(),
            "slices": {
                col: {v: m.to_dict() for v, m in values.items()}
                for col, values in self.slices.items()
            },
            "baselines": {name: m.to_dict() for name, m in self.baselines.items()},
            "unjudged": {col: dict(values) for col, values in self.unjudged.items()},
            "groups": {col: g.to_dict() for col, g in self.groups.items()},
            "importance": None if self.importance is None else self.importance.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EvaluationReport:
        from ml.groups import GroupReport
        from ml.importance import ImportanceReport

        if "overall" not in data:
            raise ValueError("an evaluation report needs an 'overall' section")
        importance = data.get("importance")
        return cls(
            overall=metrics_from_dict(data["overall"]),
            slices={
                col: {v: metrics_from_dict(m) for v, m in values.items()}
                for col, values in data.get("slices", {}).items()
            },
            baselines={n: metrics_from_dict(m) for n, m in data.get("baselines", {}).items()},
            unjudged={
                str(col): {str(v): int(n) for v, n in values.items()}
                for col, values in data.get("unjudged", {}).items()
            },
            groups={str(c): GroupReport.from_dict(g) for c, g in data.get("groups", {}).items()},
            importance=None if importance is None else ImportanceReport.from_dict(importance),
        )


def fit_baselines(model: Model, features: pd.DataFrame, *, seed: int = 0) -> dict[str, Any]:
    """The simple models a candidate must beat, fitted on a labelled feature table.

    A classifier's: `prior` always predicts the training rate of the positive class;
    `one_feature` is a logistic regression on the matrix columns of the spec's
    `one_feature_baseline` (a categorical feature's indicators). A regressor's:
    `ml.regression.fit_regression_baselines`.
    """
    if model.spec.task == "regression":
        from ml.regression import fit_regression_baselines

        return fit_regression_baselines(model, features, seed=seed)
    from sklearn.compose import ColumnTransformer
    from sklearn.dummy import DummyClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    X = model.features.feature_matrix(features)
    y = labels(model, features)
    name = model.spec.one_feature_baseline
    columns = [
        j
        for j, column in enumerate(model.features.matrix_columns)
        if column == name or column.startswith(f"{name}=")
    ]
    one_feature = Pipeline(
        [
            ("columns", ColumnTransformer([("indicators", "passthrough", columns)])),
            ("model", LogisticRegression(random_state=seed)),
        ]
    )
    return {
        "prior": DummyClassifier(strategy="prior").fit(X, y),
        "one_feature": one_feature.fit(X, y),
    }


def slice_values(
    model: Model, features: pd.DataFrame, slices: tuple[str, ...] | None = None
) -> dict[str, tuple[tuple[str, ...], np.ndarray]]:
    """Each slice's values (every value it can take: a categorical feature's vocabulary, a band
    feature's band labels, and any other value present) and each row's value, for the rows of a
    feature table. `slices`: default the spec's `slice_columns`."""
    from ml.models import band_labels

    slices = model.spec.slice_columns if slices is None else slices
    categorical = model.features.categorical_features
    bands = model.spec.slice_bands
    unknown = [s for s in slices if s not in categorical and s not in bands]
    if unknown:
        raise ValueError(
            f"cannot slice on {unknown}: slices must be among the categorical features "
            f"{list(categorical)} or the banded features {list(bands)}"
        )
    out: dict[str, tuple[tuple[str, ...], np.ndarray]] = {}
    for column in slices:
        if column in bands:
            edges = bands[column]
            names = band_labels(edges)
            numbers = features[column].to_numpy(dtype=np.float64, na_value=np.nan)
            index = np.searchsorted(np.asarray(edges, dtype=np.float64), numbers, side="right")
            rows = np.array(names, dtype=object)[index]
            rows[np.isnan(numbers)] = "missing"
            declared: tuple[str, ...] = names
        else:
            rows = features[column].astype("string").to_numpy(dtype=object, na_value="missing")
            declared = model.features.vocabularies[column]
        seen = sorted(set(rows.tolist()) - set(declared))
        out[column] = ((*declared, *seen), rows)
    return out


def evaluate(
    model: Model,
    estimator: Any,
    features: pd.DataFrame,
    *,
    baselines: Mapping[str, Any] | None = None,
    slices: tuple[str, ...] | None = None,
    min_slice_rows: int = 30,
    importance: bool = True,
) -> EvaluationReport:
    """Score `estimator` (fitted by `model.make_estimator`, or anything `model.predict` can
    score) on a labelled feature table: overall; per value of each slice (default: the spec's
    `slice_columns`) with at least `min_slice_rows` rows, the others listed in `unjudged` with
    their rows (zero for a value absent from the table); the `baselines` on the same rows; the
    group metrics of each sensitive attribute (`ml.groups`); and, with `importance`, each
    feature's permutation importance and cost (`ml.importance`: a seeded sample of the rows; it
    calls `model.predict` on permuted copies of the matrix, so `estimator` must score any matrix,
    not only these rows)."""
    from ml.groups import group_reports

    sliced = slice_values(model, features, slices)
    if model.spec.task == "regression":
        from ml.regression import compute_regression_metrics

        metric: Any = compute_regression_metrics
    else:
        metric = compute_metrics
    X = model.features.feature_matrix(features)
    y = labels(model, features)
    scores = model.predict(estimator, X)
    by_slice: dict[str, dict[str, AnyMetrics]] = {}
    unjudged: dict[str, dict[str, int]] = {}
    for column, (values, rows) in sliced.items():
        by_slice[column] = {}
        for value in values:
            mask = rows == value
            n = int(mask.sum())
            if n >= min_slice_rows:
                by_slice[column][value] = metric(y[mask], scores[mask])
            else:
                unjudged.setdefault(column, {})[value] = n
    overall = metric(y, scores)
    return EvaluationReport(
        overall=overall,
        slices=by_slice,
        baselines={name: metric(y, model.predict(b, X)) for name, b in (baselines or {}).items()},
        unjudged=unjudged,
        groups=group_reports(model, features, y, scores),
        importance=_importance(model, estimator, features, overall) if importance else None,
    )


def _importance(
    model: Model, estimator: Any, features: pd.DataFrame, overall: AnyMetrics
) -> ImportanceReport | None:
    """Permutation importance and costs; None when the metric is undefined on these rows (a
    classifier's rows of one class)."""
    from ml.importance import permutation_importance

    if isinstance(overall, Metrics) and overall.roc_auc is None:
        return None
    return permutation_importance(model, estimator, features)


def labels(model: Model, features: pd.DataFrame) -> np.ndarray:
    """The label column of a feature table (a classifier's 0/1 as int64, a regressor's values as
    float64); refuses a table without labels or with nulls."""
    label = model.spec.label
    if label not in features.columns:
        raise ValueError(f"the feature table has no {label!r} column: cannot train or evaluate")
    column = features[label]
    if column.isna().any():
        raise ValueError(f"{int(column.isna().sum())} rows have no {label!r} label")
    if model.spec.task == "regression":
        values: np.ndarray = column.to_numpy(dtype=np.float64)
        if not np.isfinite(values).all():
            raise ValueError(f"{label!r} must be finite numbers")
        return values
    y: np.ndarray = column.to_numpy(dtype=np.int64)
    if not np.isin(y, (0, 1)).all():
        raise ValueError(f"{label!r} must be 0 or 1")
    return y


# ---------------------------------------------------------------------------------------------
# The gate.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GateCheck:
    name: str
    passed: bool
    candidate: float | None
    reference: float | None
    detail: str


@dataclass(frozen=True, slots=True)
class GateReport:
    passed: bool
    checks: tuple[GateCheck, ...]

    @property
    def failures(self) -> tuple[GateCheck, ...]:
        return tuple(c for c in self.checks if not c.passed)

    def summary(self) -> str:
        if self.passed:
            return f"gate passed ({len(self.checks)} checks)"
        lines = [f"gate failed ({len(self.failures)} of {len(self.checks)} checks):"]
        lines += [f"  - {c.name}: {c.detail}" for c in self.failures]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "checks": [asdict(c) for c in self.checks]}


class GateFailed(RuntimeError):
    """The candidate did not pass the gate; `report` says which checks failed and why."""

    def __init__(self, report: GateReport) -> None:
        self.report = report
        super().__init__(report.summary())


def check_gate(
    model: Model,
    candidate: EvaluationReport,
    *,
    approved: AnyMetrics | EvaluationReport | None = None,
    config: Any = None,
    approved_slices: Mapping[str, Mapping[str, AnyMetrics]] | None = None,
) -> GateReport:
    """Run every check (never stopping at the first failure) and report them all.

    The thresholds are `config`, default `model.gate`. `approved`: the metrics of the version
    the candidate would replace, or its whole evaluation report (whose slices then serve as
    `approved_slices` unless those are given). Every slice value of the candidate is held to the
    gate's floor (a classifier's `min_slice_auc`, a regressor's `max_slice_rmse_ratio` x its
    overall RMSE); with `approved_slices` (the approved model's per-slice metrics), each slice
    both reports hold is held to the approved one's as well. A slice with too few rows (on
    either side) is listed as not judged: a passing check that says so. The gaps between the
    groups of every sensitive attribute are bounded (`ml.groups.gap_checks`). A regression
    model's other checks are `ml.regression.regression_gate_checks`."""
    from ml.groups import gap_checks

    config = model.gate if config is None else config
    if isinstance(approved, EvaluationReport):
        if approved_slices is None:
            approved_slices = approved.slices
        approved = approved.overall
    if model.spec.task == "regression":
        from ml.regression import RegressionMetrics, regression_gate_checks

        def regression(metrics: AnyMetrics, what: str) -> RegressionMetrics:
            if not isinstance(metrics, RegressionMetrics):
                raise ValueError(f"{what} are a classifier's, not a regressor's: {metrics}")
            return metrics

        judged = regression_gate_checks(
            candidate,
            approved=None if approved is None else regression(approved, "approved metrics"),
            config=config,
            approved_slices=None
            if approved_slices is None
            else {
                column: {v: regression(m, "approved slice metrics") for v, m in values.items()}
                for column, values in approved_slices.items()
            },
        )
        judged += gap_checks(model, candidate, config)
        return GateReport(passed=all(c.passed for c in judged), checks=tuple(judged))
    cand = _classification(candidate.overall, "the candidate's metrics")
    checks: list[GateCheck] = []
    if cand.roc_auc is None:
        checks.append(
            GateCheck("roc_auc defined", False, None, None, "evaluation rows hold one class only")
        )
    if not candidate.baselines:
        checks.append(
            GateCheck("baselines present", False, None, None, "no baseline metrics to compare to")
        )
    for name, found in candidate.baselines.items():
        base = _classification(found, f"the metrics of baseline {name!r}")
        if cand.roc_auc is not None and base.roc_auc is not None:
            needed = base.roc_auc + config.min_auc_lift
            checks.append(
                GateCheck(
                    f"roc_auc beats {name}",
                    cand.roc_auc >= needed,
                    cand.roc_auc,
                    base.roc_auc,
                    f"candidate {cand.roc_auc:.4f} vs {name} {base.roc_auc:.4f}; "
                    f"needs >= {needed:.4f} (lift {config.min_auc_lift})",
                )
            )
        if config.require_log_loss_below_baselines:
            checks.append(
                GateCheck(
                    f"log_loss beats {name}",
                    cand.log_loss < base.log_loss,
                    cand.log_loss,
                    base.log_loss,
                    f"candidate {cand.log_loss:.4f} vs {name} {base.log_loss:.4f}; needs lower",
                )
            )
    checks.append(
        GateCheck(
            "calibration",
            cand.ece <= config.max_ece,
            cand.ece,
            config.max_ece,
            f"expected calibration error {cand.ece:.4f}; allowed <= {config.max_ece}",
        )
    )
    if approved is not None:
        checks += _regression_checks(cand, _classification(approved, "approved metrics"), config)
    checks += _slice_floor_checks(candidate, config)
    if approved_slices:
        checks += _slice_checks(candidate.slices, approved_slices, config)
    checks += gap_checks(model, candidate, config)
    return GateReport(passed=all(c.passed for c in checks), checks=tuple(checks))


def _classification(metrics: AnyMetrics, what: str) -> Metrics:
    if not isinstance(metrics, Metrics):
        raise ValueError(f"{what} are a regressor's, not a classifier's: {metrics.to_dict()}")
    return metrics


def slice_values_of(
    report: EvaluationReport,
) -> Iterator[tuple[str, str, AnyMetrics | None, int | None]]:
    """Every value of every slice of `report`, measured or not: (column, value, its metrics or
    None, the rows of an unmeasured one), sorted, so a gate rule on slices judges each or says
    why not (`unmeasured`)."""
    for column in sorted(set(report.slices) | set(report.unjudged)):
        measured, small = report.slices.get(column, {}), report.unjudged.get(column, {})
        for value in sorted(set(measured) | set(small)):
            yield column, value, measured.get(value), small.get(value)


def unmeasured(rows: int | None) -> str:
    """The detail of a slice rule on a value the evaluation held too few rows of to measure."""
    return f"not judged: {rows} rows in the evaluation, too few to measure"


def _slice_floor_checks(candidate: EvaluationReport, config: GateConfig) -> list[GateCheck]:
    """Each slice value on its own: a judged one's ROC AUC must reach `config.min_slice_auc`."""
    checks: list[GateCheck] = []
    floor, needed = config.min_slice_auc, config.min_slice_rows
    for column, value, metrics, rows in slice_values_of(candidate):
        name = f"roc_auc floor [{column}={value}]"
        if metrics is None:
            checks.append(GateCheck(name, True, None, floor, unmeasured(rows)))
            continue
        c = _classification(metrics, "the candidate's slice metrics")
        if c.n < needed or c.roc_auc is None:
            detail = f"not judged: {c.n} rows (needs {needed}, both classes)"
            checks.append(GateCheck(name, True, c.roc_auc, floor, detail))
            continue
        checks.append(
            GateCheck(
                name,
                c.roc_auc >= floor,
                c.roc_auc,
                floor,
                f"slice ROC AUC {c.roc_auc:.4f} on {c.n} rows; needs >= {floor}",
            )
        )
    return checks


def _slice_checks(
    candidate: Mapping[str, Mapping[str, AnyMetrics]],
    approved: Mapping[str, Mapping[str, AnyMetrics]],
    config: GateConfig,
) -> list[GateCheck]:
    checks: list[GateCheck] = []
    tolerance, floor = config.max_slice_auc_regression, config.min_slice_rows
    for column in sorted(set(candidate) & set(approved)):
        for value in sorted(set(candidate[column]) & set(approved[column])):
            c = _classification(candidate[column][value], "the candidate's slice metrics")
            a = _classification(approved[column][value], "approved slice metrics")
            name = f"roc_auc vs approved [{column}={value}]"
            if c.n < floor or a.n < floor or c.roc_auc is None or a.roc_auc is None:
                detail = (
                    f"not judged: {c.n} candidate and {a.n} approved rows (needs {floor} each, "
                    "both classes)"
                )
                checks.append(GateCheck(name, True, c.roc_auc, a.roc_auc, detail))
                continue
            checks.append(
                GateCheck(
                    name,
                    c.roc_auc >= a.roc_auc - tolerance,
                    c.roc_auc,
                    a.roc_auc,
                    f"candidate {c.roc_auc:.4f} vs approved {a.roc_auc:.4f} on {c.n} rows; "
                    f"may drop at most {tolerance}",
                )
            )
    return checks


def _regression_checks(cand: Metrics, approved: Metrics, config: GateConfig) -> list[GateCheck]:
    checks: list[GateCheck] = []
    for metric, tolerance in (
        ("roc_auc", config.max_auc_regression),
        ("pr_auc", config.max_pr_auc_regression),
    ):
        c, a = getattr(cand, metric), getattr(approved, metric)
        if c is None or a is None:
            continue
        checks.append(
            GateCheck(
                f"{metric} vs approved",
                c >= a - tolerance,
                c,
                a,
                f"candidate {c:.4f} vs approved {a:.4f}; may drop at most {tolerance}",
            )
        )
    tolerance = config.max_log_loss_regression
    checks.append(
        GateCheck(
            "log_loss vs approved",
            cand.log_loss <= approved.log_loss + tolerance,
            cand.log_loss,
            approved.log_loss,
            f"candidate {cand.log_loss:.4f} vs approved {approved.log_loss:.4f}; "
            f"may rise at most {tolerance}",
        )
    )
    return checks


def enforce_gate(
    model: Model,
    candidate: EvaluationReport,
    *,
    approved: AnyMetrics | EvaluationReport | None = None,
    config: Any = None,
    approved_slices: Mapping[str, Mapping[str, AnyMetrics]] | None = None,
) -> GateReport:
    """`check_gate` (slices included), raising `GateFailed` when any check fails."""
    report = check_gate(
        model, candidate, approved=approved, config=config, approved_slices=approved_slices
    )
    if not report.passed:
        raise GateFailed(report)
    return report
