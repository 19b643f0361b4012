"""The spend model's XGBoost side: the device it trains on, its estimator, its stored booster.

Imports xgboost, so `model.py` imports this module only when it fits, saves or loads a model
(reading the model's features or spec never loads xgboost). The same code runs on a laptop, in
CI and on an EKS GPU node: `device()` decides once per process whether XGBoost can use a GPU.
"""

from __future__ import annotations

import json
import logging
import warnings
from functools import cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
import xgboost

log = logging.getLogger(__name__)

Device = Literal["cuda", "cpu"]


@cache
def device() -> Device:
    """The device to train on: "cuda" when this xgboost is built with CUDA and a GPU is
    visible, else "cpu".

    Probed once per process with a one-row fit on the GPU: without a visible GPU, a CUDA build
    warns and quietly trains on the CPU, so the device the probe's booster ended up on decides."""
    if not xgboost.build_info().get("USE_CUDA", False):
        log.info("xgboost %s is built without CUDA: training on cpu", xgboost.__version__)
        return "cpu"
    found, reason = cuda_probe()
    log.info("training on %s: %s", found, reason)
    return found


def cuda_probe() -> tuple[Device, str]:
    """Fit one row on device "cuda"; the device the booster trained on, and why."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "No visible GPU is found": checked below
            probe = xgboost.XGBRegressor(tree_method="hist", device="cuda", n_estimators=1)
            probe.fit(np.zeros((1, 1)), np.zeros(1))
    except xgboost.core.XGBoostError as exc:
        return "cpu", f"a fit on cuda failed ({str(exc).splitlines()[0]})"
    used = booster_device(probe.get_booster())
    if used != "cuda":
        return "cpu", "no GPU is visible to xgboost"
    return "cuda", "a GPU is visible to xgboost"


def booster_device(booster: xgboost.Booster) -> Device:
    """The device a booster is set to (after XGBoost's own fallback to the CPU)."""
    config = json.loads(booster.save_config())
    name = str(config["learner"]["generic_param"].get("device", "cpu"))
    return "cuda" if name.startswith("cuda") else "cpu"


class SpendRegressor(xgboost.XGBRegressor):
    """`XGBRegressor` whose predictions are floored at 0: a bill is never negative (the
    predictions table's `score` has minimum 0), and squared-error trees can dip below it."""

    def predict(
        self,
        X: Any,
        *,
        output_margin: bool = False,
        validate_features: bool = True,
        base_margin: Any | None = None,
        iteration_range: Any | None = None,
    ) -> np.ndarray:
        values = super().predict(
            X,
            output_margin=output_margin,
            validate_features=validate_features,
            base_margin=base_margin,
            iteration_range=iteration_range,
        )
        return np.maximum(np.asarray(values, dtype=np.float64), 0.0)


class SpendPredictor:
    """A stored booster, loaded to score: `predict(matrix)` as `SpendRegressor.predict` does,
    through `inplace_predict` (no DMatrix: a single record takes tens of microseconds)."""

    def __init__(self, booster: xgboost.Booster) -> None:
        self.booster = booster

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        values = self.booster.inplace_predict(matrix, validate_features=False)
        return np.maximum(np.asarray(values, dtype=np.float64), 0.0)

    def __repr__(self) -> str:
        return f"SpendPredictor({self.booster.num_boosted_rounds()} trees)"


def save_booster(estimator: SpendRegressor, path: Path) -> None:
    """XGBoost's own format (UBJSON by the `.ubj` suffix): what the SageMaker XGBoost
    container's xgboost loads, with no pickle of this package's classes."""
    estimator.get_booster().save_model(path)


def load_booster(path: Path) -> SpendPredictor:
    booster = xgboost.Booster()
    booster.load_model(path)
    # Scoring runs on the CPU wherever the model trained, one thread per process: requests come
    # one record at a time to several server workers, whose OpenMP pools would contend for the
    # cores (a batch of 200,000 rows still scores in under half a second).
    booster.set_param({"device": "cpu", "nthread": 1})
    return SpendPredictor(booster)
