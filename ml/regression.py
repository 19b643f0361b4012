"""Regression metrics, baselines and gate checks (models whose `spec.task` is "regression").

`compute_regression_metrics` scores predicted values (RMSE, MAE, bias, R²);
`fit_regression_baselines` trains the simple models a candidate must beat (the training mean, the
training median, a linear regression on the spec's one feature); `regression_gate_checks` holds a
candidate's evaluation against those baselines, against the version that serves and, slice by
slice, against a ceiling relative to its own overall RMSE and against that version's slices.
`ml.evaluate` dispatches here (imported lazily) for a regression model: it owns
`EvaluationReport`, `GateCheck` and the report around these checks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ml.model import RegressionGateConfig

if TYPE_CHECKING:
    import pandas as pd

    from ml.evaluate import EvaluationReport, GateCheck
    from ml.model import Model


@dataclass(frozen=True, slots=True)
class RegressionMetrics:
    """Quality of predicted values. `bias` is mean(prediction - label): positive means the model
    over-predicts. `r2` is None when the labels do not vary (fewer than two distinct values)."""

    n: int
    mean_label: float
    rmse: float
    mae: float
    bias: float
    r2: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RegressionMetrics:
        try:
            return cls(**{f: data[f] for f in cls.__dataclass_fields__})
        except KeyError as err:
            raise ValueError(
                f"regression metrics are missing {err.args[0]!r}: {dict(data)}"
            ) from None


def compute_regression_metrics(y: np.ndarray, predictions: np.ndarray) -> RegressionMetrics:
    """Metrics of `predictions` against the true values `y` (both 1-D, same length, finite)."""
    truth = np.asarray(y, dtype=np.float64)
    predicted = np.asarray(predictions, dtype=np.float64)
    if truth.shape != predicted.shape or truth.ndim != 1:
        raise ValueError(
            f"labels {truth.shape} and predictions {predicted.shape} must be 1-D of the same length"
        )
    if len(truth) == 0:
        raise ValueError("cannot compute metrics on zero rows")
    if not np.isfinite(truth).all():
        raise ValueError("labels must be finite numbers (no NaN or infinity)")
    if not np.isfinite(predicted).all():
        raise ValueError("predictions must be finite numbers (no NaN or infinity)")
    error = predicted - truth
    sse = float(np.dot(error, error))
    mean_label = float(truth.mean())
    centred = truth - mean_label
    sst = float(np.dot(centred, centred))
    return RegressionMetrics(
        n=len(truth),
        mean_label=mean_label,
        rmse=float(np.sqrt(sse / len(truth))),
        mae=float(np.abs(error).mean()),
        bias=float(error.mean()),
        r2=1.0 - sse / sst if sst > 0.0 else None,
    )


def one_feature_columns(matrix_columns: tuple[str, ...], feature: str) -> list[int]:
    """The matrix columns of one feature: itself when numeric, its indicators when categorical."""
    found = [
        j
        for j, name in enumerate(matrix_columns)
        if name == feature or name.startswith(f"{feature}=")
    ]
    if not found:
        raise ValueError(f"feature {feature!r} is not in the model matrix {list(matrix_columns)}")
    return found


def fit_regression_baselines(
    model: Model, features: pd.DataFrame, *, seed: int = 0
) -> dict[str, Any]:
    """The simple models a candidate must beat, fitted on a labelled feature table.

    `mean` and `median`: always predict the training mean (the best constant for RMSE) or median
    (the best constant for MAE). `one_feature`: a linear regression on the matrix columns of
    `spec.one_feature_baseline`. Each has `predict(matrix)`.
    """
    from ml.evaluate import labels

    X = model.features.feature_matrix(features)
    y = labels(model, features)
    columns = one_feature_columns(model.features.matrix_columns, model.spec.one_feature_baseline)
    return fit_baselines_on_matrix(X, y, columns, seed=seed)


def fit_baselines_on_matrix(
    X: np.ndarray, y: np.ndarray, one_feature: list[int], *, seed: int = 0
) -> dict[str, Any]:
    """`fit_regression_baselines` on a model matrix, its labels and the one feature's columns.

    Every baseline here is deterministic; `seed` is taken for the same signature as the
    classification baselines."""
    from sklearn.compose import ColumnTransformer
    from sklearn.dummy import DummyRegressor
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import Pipeline

    linear = Pipeline(
        [
            ("columns", ColumnTransformer([("feature", "passthrough", one_feature)])),
            ("model", LinearRegression()),
        ]
    )
    return {
        "mean": DummyRegressor(strategy="mean").fit(X, y),
        "median": DummyRegressor(strategy="median").fit(X, y),
        "one_feature": linear.fit(X, y),
    }


# ---------------------------------------------------------------------------------------------
# The gate.
# ---------------------------------------------------------------------------------------------


def regression_gate_checks(
    candidate: EvaluationReport,
    *,
    approved: RegressionMetrics | None = None,
    config: RegressionGateConfig | None = None,
    approved_slices: Mapping[str, Mapping[str, RegressionMetrics]] | None = None,
) -> list[GateCheck]:
    """Every check of a regression candidate (never stopping at the first failure).

    The candidate must beat each baseline of its report on RMSE by `min_rmse_improvement` and on
    MAE; must not be worse than the `approved` (serving) version's RMSE and MAE beyond the
    relative tolerances; each slice value with at least `min_slice_rows` rows may have an RMSE
    of at most `max_slice_rmse_ratio` x the overall RMSE; and, with `approved_slices`, each
    slice both sides hold with at least `min_slice_rows` rows may not raise RMSE beyond
    `max_slice_rmse_regression`. A smaller slice, or one the evaluation could not measure
    (`candidate.unjudged`), is listed as not judged (a passing check that says so)."""
    from ml.evaluate import GateCheck

    config = config or RegressionGateConfig()
    cand = _regression_metrics(candidate.overall, "the candidate's overall metrics")
    checks: list[GateCheck] = []
    if not candidate.baselines:
        checks.append(
            GateCheck("baselines present", False, None, None, "no baseline metrics to compare to")
        )
    factor = 1.0 - config.min_rmse_improvement
    for name, metrics in candidate.baselines.items():
        base = _regression_metrics(metrics, f"baseline {name!r}")
        needed = factor * base.rmse
        checks.append(
            GateCheck(
                f"rmse beats {name}",
                cand.rmse <= needed,
                cand.rmse,
                base.rmse,
                f"candidate {cand.rmse:.4f} vs {name} {base.rmse:.4f}; needs <= {needed:.4f} "
                f"({config.min_rmse_improvement:.0%} better)",
            )
        )
        if config.require_mae_below_baselines:
            checks.append(
                GateCheck(
                    f"mae beats {name}",
                    cand.mae < base.mae,
                    cand.mae,
                    base.mae,
                    f"candidate {cand.mae:.4f} vs {name} {base.mae:.4f}; needs lower",
                )
            )
    if approved is not None:
        serving = _regression_metrics(approved, "the approved version's metrics")
        for metric, tolerance in (
            ("rmse", config.max_rmse_regression),
            ("mae", config.max_mae_regression),
        ):
            c, a = getattr(cand, metric), getattr(serving, metric)
            allowed = a * (1.0 + tolerance)
            checks.append(
                GateCheck(
                    f"{metric} vs approved",
                    c <= allowed,
                    c,
                    a,
                    f"candidate {c:.4f} vs approved {a:.4f}; may rise at most {tolerance:.0%} "
                    f"(to {allowed:.4f})",
                )
            )
    checks += _slice_ceiling_checks(candidate, cand, config)
    if approved_slices:
        checks += _slice_checks(candidate.slices, approved_slices, config)
    return checks


def _slice_ceiling_checks(
    candidate: EvaluationReport, overall: RegressionMetrics, config: RegressionGateConfig
) -> list[GateCheck]:
    """Each slice value on its own: a judged one's RMSE may be at most `max_slice_rmse_ratio` x
    the candidate's overall RMSE."""
    from ml.evaluate import GateCheck, slice_values_of, unmeasured

    checks: list[GateCheck] = []
    ratio, needed = config.max_slice_rmse_ratio, config.min_slice_rows
    allowed = ratio * overall.rmse
    for column, value, metrics, rows in slice_values_of(candidate):
        name = f"rmse ceiling [{column}={value}]"
        if metrics is None:
            checks.append(GateCheck(name, True, None, allowed, unmeasured(rows)))
            continue
        c = _regression_metrics(metrics, f"candidate slice {column}={value}")
        if c.n < needed:
            detail = f"not judged: {c.n} rows (needs {needed})"
            checks.append(GateCheck(name, True, c.rmse, allowed, detail))
            continue
        checks.append(
            GateCheck(
                name,
                c.rmse <= allowed,
                c.rmse,
                allowed,
                f"slice RMSE {c.rmse:.4f} on {c.n} rows vs overall {overall.rmse:.4f}; "
                f"may be at most {ratio:g}x (to {allowed:.4f})",
            )
        )
    return checks


def _slice_checks(
    candidate: Mapping[str, Mapping[str, Any]],
    approved: Mapping[str, Mapping[str, RegressionMetrics]],
    config: RegressionGateConfig,
) -> list[GateCheck]:
    from ml.evaluate import GateCheck

    checks: list[GateCheck] = []
    tolerance, floor = config.max_slice_rmse_regression, config.min_slice_rows
    for column in sorted(set(candidate) & set(approved)):
        for value in sorted(set(candidate[column]) & set(approved[column])):
            where = f"{column}={value}"
            c = _regression_metrics(candidate[column][value], f"candidate slice {where}")
            a = _regression_metrics(approved[column][value], f"approved slice {where}")
            name = f"rmse vs approved [{where}]"
            if c.n < floor or a.n < floor:
                detail = f"not judged: {c.n} candidate and {a.n} approved rows (needs {floor} each)"
                checks.append(GateCheck(name, True, c.rmse, a.rmse, detail))
                continue
            allowed = a.rmse * (1.0 + tolerance)
            checks.append(
                GateCheck(
                    name,
                    c.rmse <= allowed,
                    c.rmse,
                    a.rmse,
                    f"candidate {c.rmse:.4f} vs approved {a.rmse:.4f} on {c.n} rows; may rise "
                    f"at most {tolerance:.0%} (to {allowed:.4f})",
                )
            )
    return checks


def _regression_metrics(metrics: Any, what: str) -> RegressionMetrics:
    if not isinstance(metrics, RegressionMetrics):
        raise TypeError(
            f"{what} are {type(metrics).__name__}, not RegressionMetrics: is this report "
            "from a regression model?"
        )
    return metrics
