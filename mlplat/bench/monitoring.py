"""Monitoring benchmarks: what the scheduled per-model job adds to drift (`ml.drift.job`).

* `online_quality_5k_s`: join 5,000 churn predictions with their outcomes (`ml.labels.join_labels`)
  and measure online quality per version and slice (`ml.quality.online_quality`), best of three.
* `skew_1k_s`: re-score 1,000 captured rows through the training path and compare with the
  served scores (`ml.skew.measure_skew`), best of three.

Both run on the sample data's generating process (`ml.sample_data`), after a warm-up run (imports).
`quick` halves the rows.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd


def _best_of_three(once: Callable[[], object]) -> float:
    once()  # warm-up: imports, caches
    best = math.inf
    for _ in range(3):
        started = time.perf_counter()
        once()
        best = min(best, time.perf_counter() - started)
    return best


def _prediction_rows(model: Any, raw: pd.DataFrame, scores: np.ndarray) -> pd.DataFrame:
    """Prediction-log rows of `model` for raw snapshots scored at their `event_time`."""
    table = model.spec.predictions
    data: dict[str, Any] = {
        "event_id": [f"e-{i}" for i in range(len(raw))],
        "inference_time": raw["event_time"],
        "endpoint_name": "bench",
        "variant_name": "primary",
        "model_version": "churn-models/1",
        "score": scores,
    }
    for column in table.column_names:
        if column not in data:
            data[column] = raw[column]
    frame = pd.DataFrame(data)[list(table.column_names)]
    return frame.astype({c.name: c.pandas_dtype for c in table.columns})


def run(quick: bool) -> dict[str, float]:
    from ml.labels import join_labels
    from ml.models import load
    from ml.quality import online_quality
    from ml.sample_data import generate_customers, simulate_outcomes, true_churn_probability
    from ml.skew import measure_skew
    from ml.train import train

    churn = load("churn")
    n = 2_500 if quick else 5_000
    raw = generate_customers(n, seed=40)
    rows = _prediction_rows(churn, raw, true_churn_probability(raw))
    outcomes = simulate_outcomes(rows, seed=1, observed_at=datetime(2031, 1, 1, tzinfo=UTC))
    quality_s = _best_of_three(lambda: online_quality(churn, join_labels(churn, rows, outcomes)))

    training = generate_customers(5_000, seed=7)
    fitted = train(churn, churn.features.build_features(training)).estimator
    served = churn.predict(
        fitted, churn.features.feature_matrix(churn.features.build_features(raw))
    )
    captured = _prediction_rows(churn, raw, np.asarray(served, dtype=np.float64))
    sample = n // 5
    skew_s = _best_of_three(lambda: measure_skew(churn, fitted, captured, sample=sample))
    return {"online_quality_5k_s": quality_s, "skew_1k_s": skew_s}
