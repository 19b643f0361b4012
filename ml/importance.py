"""What each feature is worth, and what it costs.

`permutation_importance` measures the value of every feature of a model (`spec.feature_names`,
the columns of its feature table, not the one-hot matrix columns) on labelled held-out rows: the
drop in the model's primary metric (ROC AUC for a classifier, RMSE for a regressor: how much
worse it gets) when that feature's values are shuffled between the rows, repeated with seeded
permutations. Shuffling a feature-table column and re-encoding it is the same as shuffling the
rows of its block of matrix columns together (encoding is row by row), which is what is done:
one matrix, no re-encoding. A feature whose importance is within its own noise (at most
`max(tolerance, 2 x its spread over the repeats)`) adds nothing measurable and is `flagged`.

`feature_costs` says what each feature costs to serve: the raw inputs it is derived from (found
by shuffling one input at a time through the model's real derivation and seeing which features
change: every input is data to collect, validate and watch for drift), its width in the model
matrix, and, measured on schema-valid synthetic rows through the real code, the time per 1,000
rows to validate and derive all features (`build_features`) and to encode them
(`feature_matrix`). The derivation is one vectorised function for every feature, so its time is
measured once, not split between features by a made-up rule.

Both run inside every training (`ml.evaluate.evaluate`), so they are kept cheap: at most
`max_rows` held-out rows (a seeded sample) and a few repeats; on the sample data the shipped
classifier's adds about a tenth of a second.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ml.evaluate import labels

if TYPE_CHECKING:
    from ml.model import Model
    from ml.schema import Column

__all__ = [
    "FeatureCost",
    "FeatureValue",
    "ImportanceReport",
    "feature_costs",
    "permutation_importance",
]


@dataclass(frozen=True, slots=True)
class FeatureValue:
    """One feature's importance: the mean drop in the metric over the repeats (> 0: the model
    is worse without it) and the standard deviation of that drop."""

    importance: float
    spread: float
    flagged: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class FeatureCost:
    """What one feature costs to serve: the raw inputs it is derived from and the columns it
    takes in the model matrix."""

    inputs: tuple[str, ...]
    width: int

    def to_dict(self) -> dict[str, Any]:
        return {"inputs": list(self.inputs), "width": self.width}


@dataclass(frozen=True, slots=True)
class ImportanceReport:
    """Permutation importance of every feature on `rows` held-out rows, and feature costs.

    `metric` is the primary metric and `baseline` its value on the rows as they are; importance
    is in the metric's units (AUC points; RMSE in the label's units). `tolerance`: the smallest
    importance that counts (in the same units). `derive_us_per_1k`/`encode_us_per_1k`: measured
    microseconds per 1,000 rows for all features together; None when `costs` could not be
    measured (`cost_error` says why)."""

    metric: str
    baseline: float
    rows: int
    repeats: int
    seed: int
    tolerance: float
    features: dict[str, FeatureValue]
    costs: dict[str, FeatureCost] = field(default_factory=dict)
    derive_us_per_1k: float | None = None
    encode_us_per_1k: float | None = None
    cost_error: str | None = None

    @property
    def flagged(self) -> tuple[str, ...]:
        """The features that add nothing measurable, in the model's feature order."""
        return tuple(name for name, value in self.features.items() if value.flagged)

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "baseline": self.baseline,
            "rows": self.rows,
            "repeats": self.repeats,
            "seed": self.seed,
            "tolerance": self.tolerance,
            "features": {k: v.to_dict() for k, v in self.features.items()},
            "flagged": list(self.flagged),
            "costs": {k: c.to_dict() for k, c in self.costs.items()},
            "derive_us_per_1k": self.derive_us_per_1k,
            "encode_us_per_1k": self.encode_us_per_1k,
            "cost_error": self.cost_error,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ImportanceReport:
        try:
            return cls(
                metric=str(data["metric"]),
                baseline=float(data["baseline"]),
                rows=int(data["rows"]),
                repeats=int(data["repeats"]),
                seed=int(data["seed"]),
                tolerance=float(data["tolerance"]),
                features={
                    str(k): FeatureValue(
                        importance=float(v["importance"]),
                        spread=float(v["spread"]),
                        flagged=bool(v["flagged"]),
                    )
                    for k, v in data["features"].items()
                },
                costs={
                    str(k): FeatureCost(inputs=tuple(c["inputs"]), width=int(c["width"]))
                    for k, c in data.get("costs", {}).items()
                },
                derive_us_per_1k=data.get("derive_us_per_1k"),
                encode_us_per_1k=data.get("encode_us_per_1k"),
                cost_error=data.get("cost_error"),
            )
        except KeyError as err:
            raise ValueError(f"importance report is missing {err.args[0]!r}") from None


def _matrix_blocks(model: Model) -> dict[str, list[int]]:
    """Each feature's columns in the model matrix (itself, or its indicators)."""
    from ml.regression import one_feature_columns

    columns = model.features.matrix_columns
    return {name: one_feature_columns(columns, name) for name in model.spec.feature_names}


def _quality(model: Model) -> tuple[str, Any]:
    """The primary metric's name and a function (labels, scores) -> how good (higher better)."""
    if model.spec.task == "regression":

        def negative_rmse(y: np.ndarray, p: np.ndarray) -> float:
            error = p - y
            return -float(np.sqrt(np.mean(error * error)))

        return "rmse", negative_rmse
    return "roc_auc", rank_auc


def rank_auc(y: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC of 0/1 labels (both present) by the rank-sum formula, ties sharing their ranks:
    scikit-learn's `roc_auc_score` to the last digit, without its input checks, which cost
    several times the scoring itself when repeated per feature and shuffle."""
    from scipy.stats import rankdata

    positive = np.asarray(y) == 1
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    ranks = rankdata(scores)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _sample(model: Model, features: pd.DataFrame, max_rows: int, seed: int) -> pd.DataFrame:
    """At most `max_rows` rows, seeded; a classifier's sample keeps each class's share (and at
    least one row of each), so that a rare class is never sampled away."""
    if len(features) <= max_rows:
        return features
    if model.spec.task == "regression":
        return features.sample(max_rows, random_state=seed)
    y = labels(model, features)
    positive, negative = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    n_positive = min(len(positive), max(1, round(max_rows * len(positive) / len(y))))
    n_negative = min(len(negative), max_rows - n_positive)
    rng = np.random.default_rng(seed)
    chosen = np.concatenate(
        [
            rng.choice(positive, n_positive, replace=False),
            rng.choice(negative, n_negative, replace=False),
        ]
    )
    return features.iloc[np.sort(chosen)]


def permutation_importance(
    model: Model,
    estimator: Any,
    features: pd.DataFrame,
    *,
    repeats: int = 3,
    max_rows: int = 2_000,
    seed: int = 0,
    tolerance: float = 0.002,
    costs: bool = True,
) -> ImportanceReport:
    """The permutation importance of every feature of `model` for `estimator` on a labelled
    feature table (at most `max_rows` rows, a seeded sample), `repeats` seeded shuffles each.

    `tolerance`: the least importance that counts, in AUC points for a classifier and as a
    fraction of the RMSE for a regressor. The shuffles' spread does not see the noise of the
    rows themselves: on 1,200 held-out rows a pure-noise feature of the shipped classifier
    reaches up to 0.0012 AUC points by chance, hence 0.002. With `costs`, `feature_costs` too.
    Raises `ValueError` when the rows cannot be scored (a classifier's rows hold one class)."""
    if repeats < 1 or max_rows < 2:
        raise ValueError(f"repeats {repeats} must be >= 1 and max_rows {max_rows} >= 2")
    rows = _sample(model, features, max_rows, seed)
    y = labels(model, rows)
    if model.spec.task != "regression" and len(set(y.tolist())) < 2:
        raise ValueError(f"the {len(y)} rows hold one class: ROC AUC is undefined")
    metric, quality = _quality(model)
    matrix = model.features.feature_matrix(rows)
    base = quality(y, model.predict(estimator, matrix))
    floor = tolerance if metric == "roc_auc" else tolerance * -base
    rng = np.random.default_rng(seed)
    work = matrix.copy(order="F")
    values: dict[str, FeatureValue] = {}
    for name, block in _matrix_blocks(model).items():
        drops = []
        for _ in range(repeats):
            order = rng.permutation(len(y))
            work[:, block] = matrix[np.ix_(order, np.asarray(block, dtype=np.int64))]
            drops.append(base - quality(y, model.predict(estimator, work)))
        work[:, block] = matrix[:, block]
        importance = float(np.mean(drops))
        spread = float(np.std(drops, ddof=1)) if repeats > 1 else 0.0
        values[name] = FeatureValue(
            importance=importance,
            spread=spread,
            flagged=importance <= max(floor, 2.0 * spread),
        )
    report = ImportanceReport(
        metric=metric,
        baseline=-base if metric == "rmse" else base,
        rows=len(y),
        repeats=repeats,
        seed=seed,
        tolerance=floor,
        features=values,
    )
    if not costs:
        return report
    try:
        found, derive, encode = feature_costs(model, seed=seed)
    except ValueError as exc:
        return replace(report, cost_error=str(exc))
    return replace(report, costs=found, derive_us_per_1k=derive, encode_us_per_1k=encode)


# ---------------------------------------------------------------------------------------------
# Costs.
# ---------------------------------------------------------------------------------------------


def synthetic_inputs(model: Model, rows: int, *, seed: int = 0) -> pd.DataFrame:
    """`rows` raw rows of `model`'s inputs that its schema accepts: numbers within each column's
    range (0-100 when unbounded), allowed values, booleans, and a tenth missing where a column
    may be null. For measuring the feature code, not for training."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {c.name: _synthetic(c, rows, rng) for c in model.features.inputs},
        index=pd.RangeIndex(rows),
    )


def _synthetic(column: Column, rows: int, rng: np.random.Generator) -> pd.Series:
    missing = rng.random(rows) < 0.1 if column.nullable else np.zeros(rows, dtype=bool)
    low = column.minimum if column.minimum is not None else 0.0
    high = column.maximum if column.maximum is not None else low + 100.0
    series: pd.Series
    if column.type == "string":
        vocabulary = np.array(column.allowed or tuple(f"v{i}" for i in range(5)), dtype=object)
        series = pd.Series(vocabulary[rng.integers(0, len(vocabulary), rows)], dtype="string")
    elif column.type == "boolean":
        series = pd.Series(rng.random(rows) < 0.5, dtype="boolean")
    elif column.type == "bigint":
        series = pd.Series(rng.integers(int(low), int(high) + 1, rows), dtype="Int64")
    elif column.type == "double":
        series = pd.Series(rng.uniform(low, high, rows), dtype="float64")
    else:
        raise ValueError(f"input {column.name!r} of type {column.type}: cannot synthesize it")
    return series.mask(missing)


def _per_1k(seconds: float, rows: int) -> float:
    return seconds / rows * 1_000 * 1e6


def _best_of(runs: int, call: Any) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - start)
    return best


def feature_costs(
    model: Model, *, rows: int = 1_000, seed: int = 0
) -> tuple[dict[str, FeatureCost], float, float]:
    """Each feature's inputs and matrix width, and the measured microseconds per 1,000 rows to
    validate and derive all features and to encode them (best of three), on `rows` synthetic
    rows (`synthetic_inputs`). Raises `ValueError` when the model's code refuses such rows.

    They depend on the model's code only, not on the data or the fit: measured once per model
    and process (a search that trains many candidates pays for it once)."""
    costs, derive, encode = _feature_costs(model, rows, seed)
    return dict(costs), derive, encode


@lru_cache(maxsize=16)
def _feature_costs(
    model: Model, rows: int, seed: int
) -> tuple[tuple[tuple[str, FeatureCost], ...], float, float]:
    raw = synthetic_inputs(model, rows, seed=seed)
    fs = model.features
    try:
        table = fs.build_features(raw)
    except ValueError as exc:
        raise ValueError(f"the feature code refuses schema-valid synthetic rows: {exc}") from None
    names = model.spec.feature_names
    rng = np.random.default_rng(seed)
    depends: dict[str, list[str]] = {name: [] for name in names}
    for column in fs.input_names:
        shuffled = raw.copy()
        shuffled[column] = raw[column].iloc[rng.permutation(rows)].set_axis(raw.index)
        changed = fs.build_features(shuffled)
        for name in names:
            if not changed[name].equals(table[name]):
                depends[name].append(column)
    blocks = _matrix_blocks(model)
    derive = _per_1k(_best_of(3, lambda: fs.build_features(raw)), rows)
    encode = _per_1k(_best_of(3, lambda: fs.feature_matrix(table)), rows)
    costs = tuple(
        (name, FeatureCost(inputs=tuple(depends[name]), width=len(blocks[name]))) for name in names
    )
    return costs, derive, encode
