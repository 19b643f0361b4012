"""ML benchmarks of the churn model: batch feature throughput, handler latency, training time.

* `features_batch_rows_per_s`: raw frame -> feature table (`build_features`, validation included)
  on 1,000,000 rows; `features_matrix_rows_per_s`: feature table -> model matrix.
* `handler_p50_ms`, `handler_p99_ms`: one JSON record through input_fn -> predict_fn -> output_fn
  with a loaded model (after a warm-up).
* `train_1m_s`: `ml.train.train` on 1,000,000 rows (split, fit, baselines, evaluation, drift
  baseline, lineage).
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np

from mlplat.bench import latency_ms


def run(quick: bool) -> dict[str, float]:
    from ml.inference import handler
    from ml.models import load
    from ml.sample_data import generate_customers
    from ml.train import train, write_outputs

    churn = load("churn")
    feature_set = churn.features
    model_fn, input_fn, predict_fn, output_fn = handler("churn")
    n_rows = 20_000 if quick else 1_000_000
    raw = generate_customers(n_rows, seed=7)

    feature_set.build_features(raw.head(1000))  # warm-up: imports, first-call caches
    started = time.perf_counter()
    features = feature_set.build_features(raw)
    features_s = time.perf_counter() - started
    started = time.perf_counter()
    feature_set.feature_matrix(features)
    matrix_s = time.perf_counter() - started

    started = time.perf_counter()
    result = train(churn, features, churn.hyperparameters(seed=7))
    train_s = time.perf_counter() - started

    record = {k: _plain(v) for k, v in raw.iloc[0][list(feature_set.input_names)].items()}
    body = json.dumps(record)
    with tempfile.TemporaryDirectory(prefix="bench-model-") as model_dir:
        # Loaded as the container loads it: model_fn over the written model directory.
        write_outputs(result, Path(model_dir), with_code=False)
        model = model_fn(model_dir)

    def once() -> None:
        output_fn(predict_fn(input_fn(body, "application/json"), model), "application/json")

    p50, p99 = latency_ms(once, quick=quick)
    return {
        "features_batch_rows_per_s": n_rows / features_s,
        "features_matrix_rows_per_s": n_rows / matrix_s,
        "handler_p50_ms": p50,
        "handler_p99_ms": p99,
        "train_1m_s" if not quick else "train_quick_s": train_s,
    }


def _plain(value: object) -> object:
    if value is None or value is np.nan:
        return None
    if hasattr(value, "item"):
        return value.item()  # numpy scalars
    try:
        import pandas as pd

        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return value
