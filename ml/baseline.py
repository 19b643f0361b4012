"""Training baseline statistics: what drift monitoring compares production traffic against.

`compute_baseline(model, features, scores)` summarizes the training feature table and the model's
scores on it as a JSON-ready dict (`baseline.json` beside the model):

```
{"format": "mlplat-baseline/1", "n_rows": N,
 "features": {
   "<numeric>": {"kind": "numeric", "edges": [e1, ..., ek], "counts": [c0, ..., ck],
                 "proportions": [...], "missing": 0.0, "mean", "std", "min", "max",
                 "quantiles": {"q": [0.0, 0.01, ..., 1.0], "values": [...]}},
   "<categorical>": {"kind": "categorical", "counts": {"value": n}, "proportions": {...},
                     "missing": 0.0}},
 "score": {same as a numeric feature: a classifier's with fixed edges 0.05, 0.10, ..., 0.95, a
           regressor's with quantile edges}}
```

`edges` are the interior cut points (JSON has no infinities): bin 0 holds x <= e1, bin i holds
e(i) < x <= e(i+1), the last bin holds x > ek. `bin_counts` applies exactly that binning to new
data, so PSI is `psi(baseline["proportions"], proportions of bin_counts(new, baseline["edges"]))`.
The 101 quantiles give the baseline's empirical CDF for a Kolmogorov-Smirnov statistic
(`ks_statistic`). Categorical values never seen in training count in the new data's `__other__`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ml.contracts import BASELINE_FORMAT as FORMAT
from ml.contracts import OTHER_CATEGORY as OTHER
from ml.model import Model

QUANTILES: tuple[float, ...] = tuple(i / 100 for i in range(101))
SCORE_EDGES: tuple[float, ...] = tuple(round(i / 20, 2) for i in range(1, 20))


def compute_baseline(
    model: Model, features: pd.DataFrame, scores: np.ndarray, *, n_bins: int = 10
) -> dict[str, Any]:
    """Per-feature histograms and category frequencies of `model`'s features, and the score
    distribution."""
    if len(features) != len(scores):
        raise ValueError(f"{len(features)} feature rows but {len(scores)} scores")
    if len(features) == 0:
        raise ValueError("cannot compute a baseline from zero rows")
    out: dict[str, Any] = {}
    for feature in model.features.features:
        series = features[feature.name]
        if feature.kind == "categorical":
            out[feature.name] = _categorical(series)
        else:
            values = series.to_numpy(dtype=np.float64, na_value=np.nan)
            out[feature.name] = _numeric(values, _quantile_edges(values, n_bins))
    score_values = np.asarray(scores, dtype=np.float64)
    if model.spec.task == "binary_classification":
        score_edges = np.array(SCORE_EDGES)
    else:
        score_edges = _quantile_edges(score_values, n_bins)
    return {
        "format": FORMAT,
        "n_rows": len(features),
        "features": out,
        "score": _numeric(score_values, score_edges),
    }


def bin_counts(values: np.ndarray, edges: Sequence[float]) -> np.ndarray:
    """Counts of non-missing `values` in the len(edges) + 1 bins the interior `edges` define."""
    x = np.asarray(values, dtype=np.float64)
    x = x[~np.isnan(x)]
    idx = np.searchsorted(np.asarray(edges, dtype=np.float64), x, side="left")
    counts: np.ndarray = np.bincount(idx, minlength=len(edges) + 1)
    return counts


def category_proportions(values: pd.Series, known: Sequence[str]) -> dict[str, float]:
    """Share of each known category in `values`, plus `__other__` for anything else (nulls out)."""
    present = values.dropna().astype("string")
    n = max(len(present), 1)
    counts = present.value_counts()
    shares = {k: float(counts.get(k, 0)) / n for k in known}
    shares[OTHER] = float(len(present) - sum(int(counts.get(k, 0)) for k in known)) / n
    return shares


def psi(expected: Sequence[float], actual: Sequence[float], *, eps: float = 1e-4) -> float:
    """Population stability index between two proportion vectors over the same bins."""
    e = np.clip(np.asarray(expected, dtype=np.float64), eps, None)
    a = np.clip(np.asarray(actual, dtype=np.float64), eps, None)
    if e.shape != a.shape:
        raise ValueError(f"bins differ: {e.shape} expected vs {a.shape} actual")
    return float(np.sum((a - e) * np.log(a / e)))


def ks_statistic(baseline_entry: Mapping[str, Any], values: np.ndarray) -> float:
    """Two-sample KS statistic between a baseline numeric entry (its quantiles) and new values."""
    q = np.asarray(baseline_entry["quantiles"]["q"], dtype=np.float64)
    ref = np.asarray(baseline_entry["quantiles"]["values"], dtype=np.float64)
    x = np.sort(np.asarray(values, dtype=np.float64)[~np.isnan(values)])
    if len(x) == 0:
        raise ValueError("no non-missing values to compare")
    grid = np.unique(np.concatenate([ref, x]))
    cdf_ref = np.interp(grid, ref, q, left=0.0, right=1.0)
    cdf_new = np.searchsorted(x, grid, side="right") / len(x)
    return float(np.max(np.abs(cdf_ref - cdf_new)))


def _quantile_edges(values: np.ndarray, n_bins: int) -> np.ndarray:
    present = values[~np.isnan(values)]
    if len(present) == 0:
        return np.array([], dtype=np.float64)
    inner = np.quantile(present, np.linspace(0, 1, n_bins + 1)[1:-1])
    edges: np.ndarray = np.unique(inner)
    return edges


def _numeric(values: np.ndarray, edges: np.ndarray) -> dict[str, Any]:
    missing = np.isnan(values)
    present = values[~missing]
    counts = bin_counts(present, edges.tolist())
    n = max(len(present), 1)
    has = len(present) > 0
    return {
        "kind": "numeric",
        "edges": [float(e) for e in edges],
        "counts": [int(c) for c in counts],
        "proportions": [float(c) / n for c in counts],
        "missing": float(missing.mean()),
        "mean": float(present.mean()) if has else None,
        "std": float(present.std()) if has else None,
        "min": float(present.min()) if has else None,
        "max": float(present.max()) if has else None,
        "quantiles": {
            "q": list(QUANTILES),
            "values": [float(v) for v in np.quantile(present, QUANTILES)] if has else [],
        },
    }


def _categorical(series: pd.Series) -> dict[str, Any]:
    missing = series.isna()
    counts = series[~missing].astype("string").value_counts(sort=False)
    n = max(int((~missing).sum()), 1)
    ordered = sorted((str(k), int(v)) for k, v in counts.items())
    return {
        "kind": "categorical",
        "counts": dict(ordered),
        "proportions": {k: v / n for k, v in ordered},
        "missing": float(missing.mean()),
    }
