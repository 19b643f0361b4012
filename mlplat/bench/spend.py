"""Spend model benchmarks (XGBoost): training throughput and handler latency.

* `spend_train_rows_per_s`: rows per second of fitting the spend model's default estimator
  (XGBoost `hist`, every core of this machine, on the CPU even where a GPU is visible, so the
  figure compares across machines) on the feature matrix of 200,000 sample rows; the best of
  three fits.
* `spend_handler_p50_ms`, `spend_handler_p99_ms`: one JSON record through the spend model's
  handler (`ml.inference.handler("spend")`: input_fn -> predict_fn -> output_fn) with the model
  loaded as the container loads it (`model_fn` over the saved model directory), after a warm-up.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np

from mlplat.bench import latency_ms


def run(quick: bool) -> dict[str, float]:
    from ml.evaluate import labels
    from ml.inference import handler
    from ml.models import load
    from ml.sample_data import generate_customers

    model = load("spend")
    n_rows = 20_000 if quick else 200_000
    raw = generate_customers(n_rows, seed=7)
    table = model.features.build_features(raw)
    X = model.features.feature_matrix(table)
    y = labels(model, table)

    train_s = float("inf")
    for _ in range(1 if quick else 3):  # the best of three: OpenMP threads on a busy machine vary
        estimator = model.make_estimator(model.hyperparameters(seed=7)).set_params(device="cpu")
        started = time.perf_counter()
        estimator.fit(X, y)
        train_s = min(train_s, time.perf_counter() - started)

    model_fn, input_fn, predict_fn, output_fn = handler("spend")
    record = {k: _plain(v) for k, v in raw.iloc[0][list(model.features.input_names)].items()}
    body = json.dumps(record)
    with tempfile.TemporaryDirectory(prefix="bench-spend-") as model_dir:
        model.save(estimator, Path(model_dir))
        loaded = model_fn(model_dir)

    def once() -> None:
        output_fn(predict_fn(input_fn(body, "application/json"), loaded), "application/json")

    p50, p99 = latency_ms(once, quick=quick)
    return {
        "spend_train_rows_per_s": n_rows / train_s,
        "spend_handler_p50_ms": p50,
        "spend_handler_p99_ms": p99,
    }


def _plain(value: object) -> object:
    """A JSON value of a frame cell: None for missing, Python scalars for numpy ones."""
    import pandas as pd

    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    if hasattr(value, "item"):
        return value.item()
    return value
