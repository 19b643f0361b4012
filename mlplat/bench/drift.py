"""Drift benchmark: PSI/JS/KS of 1,000,000 rows x 20 features (and the scores) against a baseline.

`drift_1m_x20_s` is the wall time of `ml.drift.compute_drift` over 16 numeric and 4 categorical
columns plus the score column, best of three; the baseline is built with `ml.baseline`'s own
binning (10 quantile bins, 101 quantiles) from a different sample.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

N_NUMERIC = 16
N_CATEGORICAL = 4
CATEGORIES = ("a", "b", "c", "d", "e")


def _frame(n: int, rng: np.random.Generator, shift: float) -> tuple[pd.DataFrame, np.ndarray]:
    data: dict[str, Any] = {
        f"num_{i}": rng.normal(loc=shift * (i % 3), scale=1.0 + i / 10, size=n)
        for i in range(N_NUMERIC)
    }
    for i in range(N_CATEGORICAL):
        codes = rng.integers(0, len(CATEGORIES), size=n)
        data[f"cat_{i}"] = pd.array(np.asarray(CATEGORIES)[codes], dtype="string[pyarrow]")
    return pd.DataFrame(data), rng.beta(2, 5, size=n)


def _baseline(frame: pd.DataFrame, scores: np.ndarray) -> dict[str, Any]:
    from ml.baseline import SCORE_EDGES, _categorical, _numeric, _quantile_edges
    from ml.contracts import BASELINE_FORMAT as FORMAT

    features: dict[str, Any] = {}
    for name in frame.columns:
        if name.startswith("cat_"):
            features[name] = _categorical(frame[name])
        else:
            values = frame[name].to_numpy(dtype=np.float64)
            features[name] = _numeric(values, _quantile_edges(values, 10))
    return {
        "format": FORMAT,
        "n_rows": len(frame),
        "features": features,
        "score": _numeric(scores, np.array(SCORE_EDGES)),
    }


def run(quick: bool) -> dict[str, float]:
    from datetime import UTC, datetime

    from ml.drift import Baseline, compute_drift

    n = 100_000 if quick else 1_000_000
    rng = np.random.default_rng(7)
    baseline = Baseline.from_dict(_baseline(*_frame(200_000, rng, 0.0)))
    frame, scores = _frame(n, rng, 0.1)
    now = datetime.now(UTC)
    best = float("inf")
    for _ in range(1 if quick else 3):
        start = time.perf_counter()
        compute_drift(
            baseline,
            frame,
            scores,
            threshold=0.2,
            endpoint_name="bench",
            window_start=now,
            window_end=now,
        )
        best = min(best, time.perf_counter() - start)
    return {"drift_1m_x20_s": best}


if __name__ == "__main__":
    print(run(quick=False))
