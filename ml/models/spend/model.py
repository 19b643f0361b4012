"""The spend model's runtime: next-month spend by gradient-boosted trees (XGBoost, `hist`).

* `derive`: the `spend_features` columns from the model's inputs (one function for the batch,
  online and drift paths);
* `SpendHyperparameters`: the knobs, seeded and deterministic by default (no row or column
  subsampling), and `SEARCH_SPACE`, a small grid over tree depth, learning rate and leaf weight;
* the estimator trains on a GPU when one is visible (`estimator.device()`), on the CPU otherwise,
  by the same code; the booster is stored in XGBoost's own format (`model.ubj`).

xgboost is imported only to fit, save or load (`ml.models.spend.estimator`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ml.model import Hyperparameters, Model, RegressionGateConfig
from ml.models.spend.spec import SPEC
from ml.schema import MISSING_CATEGORY

ARTIFACT_FILE = "model.ubj"
# Data a plan includes each month: usage above it is billed as overage.
PLAN_GB = 30.0
# A missing payment method is the feature's 'unknown' value (input and feature share the rest).
_PAYMENT_VOCABULARY = SPEC.features.column("payment_method").allowed or ()
_UNKNOWN_PAYMENT = float(_PAYMENT_VOCABULARY.index(MISSING_CATEGORY))


def derive(inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The model's features from its inputs (float64 arrays, NaN for missing; categorical
    inputs as indices into the input column's vocabulary).

    Missing data usage counts as 0 GB (no overage) and is flagged in `data_usage_missing`; a
    missing payment method becomes 'unknown'. Contract type and region are required inputs, and
    their vocabularies are the features' own."""
    usage = inputs["data_usage_gb"]
    usage_missing = np.isnan(usage)
    metered = np.where(usage_missing, 0.0, usage)
    payment = inputs["payment_method"]
    return {
        "tenure_months": inputs["tenure_months"],
        "monthly_charges": inputs["monthly_charges"],
        "support_tickets": inputs["support_tickets"],
        "data_usage_gb": metered,
        "overage_gb": np.maximum(metered - PLAN_GB, 0.0),
        "data_usage_missing": usage_missing.astype(np.float64),
        "contract_type": inputs["contract_type"],
        "payment_method": np.where(np.isnan(payment), _UNKNOWN_PAYMENT, payment),
        "region": inputs["region"],
    }


@dataclass(frozen=True, slots=True)
class SpendHyperparameters(Hyperparameters):
    """Training knobs (`validation_fraction` and `seed` come from the base)."""

    # Shallow, slow trees: on the sample data depth 3-4 with learning rate 0.05 scores the best
    # held-out RMSE of the search space, and 200 of them keep one record's prediction cheap.
    n_estimators: int = 200
    max_depth: int = 4
    learning_rate: float = 0.05
    min_child_weight: float = 10.0
    # 1.0: every tree sees every row, so a seed gives the same model on any run.
    subsample: float = 1.0
    reg_lambda: float = 1.0
    max_bin: int = 256
    n_jobs: int = 0  # threads; 0: every core

    def problems(self) -> list[str]:
        problems = Hyperparameters.problems(self)
        if self.n_estimators < 1:
            problems.append(f"n_estimators={self.n_estimators}: must be >= 1")
        if not 1 <= self.max_depth <= 16:
            problems.append(f"max_depth={self.max_depth}: must be in [1, 16]")
        if not 0 < self.learning_rate <= 1:
            problems.append(f"learning_rate={self.learning_rate}: must be in (0, 1]")
        if self.min_child_weight < 0:
            problems.append(f"min_child_weight={self.min_child_weight}: must be >= 0")
        if not 0 < self.subsample <= 1:
            problems.append(f"subsample={self.subsample}: must be in (0, 1]")
        if self.reg_lambda < 0:
            problems.append(f"reg_lambda={self.reg_lambda}: must be >= 0")
        if not 2 <= self.max_bin <= 1024:
            problems.append(f"max_bin={self.max_bin}: must be in [2, 1024]")
        if self.n_jobs < 0:
            problems.append(f"n_jobs={self.n_jobs}: must be >= 0 (0: every core)")
        return problems


SEARCH_SPACE: dict[str, tuple[Any, ...]] = {
    "max_depth": (3, 4, 6),
    "learning_rate": (0.05, 0.1),
    "min_child_weight": (1.0, 10.0),
}


def make_estimator(hp: SpendHyperparameters | None = None) -> Any:
    """The unfitted regressor: XGBoost `hist` on this process's device (`estimator.device()`)."""
    from ml.models.spend.estimator import SpendRegressor, device

    hp = hp or SpendHyperparameters()
    return SpendRegressor(
        objective="reg:squarederror",
        tree_method="hist",
        device=device(),
        n_estimators=hp.n_estimators,
        max_depth=hp.max_depth,
        learning_rate=hp.learning_rate,
        min_child_weight=hp.min_child_weight,
        subsample=hp.subsample,
        reg_lambda=hp.reg_lambda,
        max_bin=hp.max_bin,
        n_jobs=hp.n_jobs or None,
        random_state=hp.seed,
    )


def save(estimator: Any, model_dir: Path) -> None:
    from ml.models.spend.estimator import save_booster

    save_booster(estimator, model_dir / ARTIFACT_FILE)


def load(model_dir: Path) -> Any:
    """The stored booster, ready to `predict(matrix)`."""
    from ml.models.spend.estimator import load_booster

    path = Path(model_dir) / ARTIFACT_FILE
    if not path.exists():
        raise FileNotFoundError(
            f"no {ARTIFACT_FILE} in {model_dir}: is this a spend model artifact?"
        )
    return load_booster(path)


def training_info(estimator: Any) -> dict[str, Any]:
    """The device the booster trained on and the xgboost version (for the lineage)."""
    import xgboost

    from ml.models.spend.estimator import booster_device

    return {"device": booster_device(estimator.get_booster()), "xgboost": xgboost.__version__}


MODEL = Model(
    spec=SPEC,
    derive=derive,
    hyperparameters=SpendHyperparameters,
    make_estimator=make_estimator,
    search_space=SEARCH_SPACE,
    gate=RegressionGateConfig(),
    artifact_file=ARTIFACT_FILE,
    save=save,
    load=load,
    training_info=training_info,
)
