"""Hyperparameter search inside training: the model's declared space, cross-validated by customer.

`search(model, features, hp)` scores candidate settings of `model.search_space` (the declared grid)
by k-fold cross-validation on the training rows and returns a `SearchResult`: every trial's fold
scores and mean, and the chosen hyperparameters (`hp` with the best point of the space). Training
(`ml.train.train(..., search=True)`) then fits the chosen setting on all its training rows and
writes the result into `lineage.json` under `"search"`; the held-out validation rows the gate
judges are never seen by the search.

* Folds are by customer, as `ml.train.split` is: a hash of `customer_id` keyed by the seed puts
  every snapshot of a customer in the same fold, whatever the row order (a seeded permutation
  when there is no `customer_id`).
* The score is a proper one, lower is better: log loss for a classifier (it rewards ranking and
  calibration, the two things the gate checks), RMSE for a regressor.
* Bounded: the grid's points are the candidates, `hp`'s own point first; a grid larger than
  `SearchConfig.max_candidates` is cut to `hp`'s point and a seeded sample of the others. With
  `folds` folds that is at most `max_candidates * folds` fits.
* Reproducible: the same rows, `hp` (its seed) and config give the same trials and choice (ties
  go to the earlier candidate, so to `hp`'s own point first).
* A candidate that does not converge (`ml.train.NonConvergenceError`) is recorded with why and
  left out; the search fails only when no candidate trains.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ml.evaluate import labels
from ml.model import Model
from ml.train import NonConvergenceError, fit_estimator

# What each task's search minimises (`score`).
SEARCH_METRICS: dict[str, str] = {"binary_classification": "log_loss", "regression": "rmse"}


class SearchError(ValueError):
    """A search that cannot run or chose nothing, and why."""


@dataclass(frozen=True, slots=True)
class SearchConfig:
    """How much searching training does: folds per candidate and candidates at most."""

    folds: int = 3
    max_candidates: int = 6

    def __post_init__(self) -> None:
        problems = []
        if not 2 <= self.folds <= 10:
            problems.append(f"folds={self.folds}: must be in [2, 10]")
        if not 1 <= self.max_candidates <= 50:
            problems.append(f"max_candidates={self.max_candidates}: must be in [1, 50]")
        if problems:
            raise SearchError("search: " + "; ".join(problems))


@dataclass(frozen=True, slots=True)
class Trial:
    """One candidate point of the space and how it scored in each fold (lower is better)."""

    point: dict[str, Any]
    fold_scores: tuple[float, ...] = ()
    failure: str | None = None  # why it was left out (it did not converge)

    @property
    def cv_score(self) -> float | None:
        if self.failure is not None or not self.fold_scores:
            return None
        return float(np.mean(self.fold_scores))

    def to_dict(self) -> dict[str, Any]:
        return {
            "hyperparameters": dict(self.point),
            "cv_score": self.cv_score,
            "fold_scores": list(self.fold_scores),
            "failure": self.failure,
        }


@dataclass(frozen=True, slots=True)
class SearchResult:
    """The space, every trial, and the hyperparameters chosen (`chosen`: a full setting)."""

    metric: str
    space: dict[str, tuple[Any, ...]]
    config: SearchConfig
    seed: int
    grid_size: int
    trials: tuple[Trial, ...]
    best: int  # index into `trials`
    chosen: Any  # an instance of the model's hyperparameters
    rows: int
    seconds: float

    @property
    def best_trial(self) -> Trial:
        return self.trials[self.best]

    def to_dict(self) -> dict[str, Any]:
        """What `lineage.json` records under "search"."""
        return {
            "metric": self.metric,
            "greater_is_better": False,
            "space": {name: list(values) for name, values in self.space.items()},
            "grid_size": self.grid_size,
            "folds": self.config.folds,
            "max_candidates": self.config.max_candidates,
            "seed": self.seed,
            "rows": self.rows,
            "trials": [t.to_dict() for t in self.trials],
            "chosen": dict(self.best_trial.point),
            "seconds": round(self.seconds, 3),
        }


def candidates(
    space: Mapping[str, tuple[Any, ...]], hp: Any, *, max_candidates: int, seed: int
) -> tuple[list[dict[str, Any]], int]:
    """The points to try, `hp`'s own point first, and the size of the whole grid."""
    names = list(space)
    own = {name: getattr(hp, name) for name in names}
    grid = [dict(zip(names, values, strict=True)) for values in itertools.product(*space.values())]
    others = [point for point in grid if point != own]
    if len(others) + 1 > max_candidates:
        rng = np.random.default_rng(seed)
        keep = sorted(rng.choice(len(others), size=max_candidates - 1, replace=False).tolist())
        others = [others[i] for i in keep]
    return [own, *others], len(grid)


def fold_of(features: pd.DataFrame, folds: int, seed: int) -> np.ndarray:
    """The fold (0..folds-1) of each row: by a seeded hash of customer_id when present (a
    customer's rows share a fold), else by a seeded permutation."""
    if "customer_id" in features.columns:
        hashed = pd.util.hash_pandas_object(
            features["customer_id"], index=False, hash_key=f"folds{seed:011d}"
        )
        found: np.ndarray = (hashed.to_numpy() % np.uint64(folds)).astype(np.int64)
        return found
    rng = np.random.default_rng(seed)
    return np.asarray(rng.permutation(len(features)) % folds, dtype=np.int64)


def score(task: str, y: np.ndarray, predictions: np.ndarray) -> float:
    """The search metric of `task` (`SEARCH_METRICS`): lower is better."""
    if task == "regression":
        return float(np.sqrt(np.mean((predictions - y) ** 2)))
    p = np.clip(predictions, 1e-15, 1 - 1e-15)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def search(
    model: Model,
    features: pd.DataFrame,
    hp: Any = None,
    config: SearchConfig | None = None,
) -> SearchResult:
    """Cross-validate the candidates of `model.search_space` around `hp` on `features` (labelled
    training rows) and choose the best; see the module docstring."""
    started = time.perf_counter()
    hp = model.hyperparameters() if hp is None else hp
    config = config or SearchConfig()
    space = {name: tuple(values) for name, values in model.search_space.items()}
    if not space:
        raise SearchError(f"model {model.name!r} declares no search space (Model.search_space)")
    points, grid_size = candidates(space, hp, max_candidates=config.max_candidates, seed=hp.seed)
    X = model.features.feature_matrix(features)
    y = labels(model, features)
    fold = fold_of(features, config.folds, hp.seed)
    for i in range(config.folds):
        _check_fold(model, y, fold, i)
    trials = [_trial(model, hp, point, X, y, fold, config.folds) for point in points]
    scored = [(t.cv_score, i) for i, t in enumerate(trials) if t.cv_score is not None]
    if not scored:
        reasons = "; ".join(f"{t.point}: {t.failure}" for t in trials)
        raise SearchError(f"no candidate of {model.name!r}'s search space trained: {reasons}")
    best = min(scored)[1]  # the lowest score; a tie goes to the earlier candidate
    chosen = dataclasses.replace(hp, **trials[best].point)
    return SearchResult(
        metric=SEARCH_METRICS[model.spec.task],
        space=space,
        config=config,
        seed=hp.seed,
        grid_size=grid_size,
        trials=tuple(trials),
        best=best,
        chosen=chosen,
        rows=len(features),
        seconds=time.perf_counter() - started,
    )


def _check_fold(model: Model, y: np.ndarray, fold: np.ndarray, i: int) -> None:
    held = y[fold == i]
    if len(held) < 10 or (model.spec.task == "binary_classification" and held.min() == held.max()):
        raise SearchError(
            f"cross-validation fold {i} holds {len(held)} rows"
            + ("" if model.spec.task == "regression" else " of one class")
            + ": too few training rows to search; train without search or on more data"
        )


def _trial(
    model: Model,
    hp: Any,
    point: dict[str, Any],
    X: np.ndarray,
    y: np.ndarray,
    fold: np.ndarray,
    folds: int,
) -> Trial:
    setting = dataclasses.replace(hp, **point)
    scores: list[float] = []
    for i in range(folds):
        held = fold == i
        try:
            estimator = fit_estimator(model, setting, X[~held], y[~held])
        except NonConvergenceError as err:
            return Trial(point, tuple(scores), failure=str(err))
        value = score(model.spec.task, y[held], model.predict(estimator, X[held]))
        if not math.isfinite(value):
            return Trial(point, tuple(scores), failure=f"fold {i} scored {value}")
        scores.append(value)
    return Trial(point, tuple(scores))
