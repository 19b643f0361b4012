"""The churn model's runtime: its feature derivation, estimator, search space and gate.

`MODEL` binds the declaration (`spec.SPEC`) to the code that fits and scores it; generic code
reaches it through `ml.models.load("churn")`. This module ships inside the model artifact
(`code/ml/models/churn/model.py`): numpy and the standard library at import time, scikit-learn
only inside `make_pipeline`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ml.model import GateConfig, Model
from ml.model import Hyperparameters as BaseHyperparameters
from ml.models.churn.spec import SPEC
from ml.schema import MISSING_CATEGORY

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

# The features table's index of a missing payment method (its vocabulary ends with "unknown").
_PAYMENT_UNKNOWN = float(
    (SPEC.features.column("payment_method").allowed or ()).index(MISSING_CATEGORY)
)


def derive(cols: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Features from input columns.

    Numeric inputs are float64 arrays with NaN for missing; categorical inputs are float64 arrays
    of vocabulary indices with NaN for missing; `is_senior` is 0.0/1.0. Returns float64 arrays
    keyed by feature name (categorical features as vocabulary indices), none containing NaN.
    """
    tenure = cols["tenure_months"]
    monthly = cols["monthly_charges"]
    total = cols["total_charges"]
    usage = cols["data_usage_gb"]
    total_missing = np.isnan(total)
    usage_missing = np.isnan(usage)
    avg_spend = np.where(total_missing, monthly, total / np.maximum(tenure, 1.0))
    payment = cols["payment_method"]
    return {
        "tenure_months": tenure,
        "monthly_charges": monthly,
        "avg_monthly_spend": avg_spend,
        "charge_trend": monthly / np.maximum(avg_spend, 1.0),
        "support_tickets": cols["support_tickets"],
        "log_data_usage_gb": np.log1p(np.where(usage_missing, 0.0, usage)),
        "data_usage_missing": usage_missing.astype(np.float64),
        "total_charges_missing": total_missing.astype(np.float64),
        "is_new_customer": (tenure < 6.0).astype(np.float64),
        "is_senior": cols["is_senior"],
        "contract_type": cols["contract_type"],
        "payment_method": np.where(np.isnan(payment), _PAYMENT_UNKNOWN, payment),
        "region": cols["region"],
    }


Estimator = Literal["logistic_regression", "hist_gradient_boosting"]


@dataclass(frozen=True, slots=True)
class Hyperparameters(BaseHyperparameters):
    """Training knobs (`validation_fraction` and `seed` come from the base)."""

    estimator: Estimator = "logistic_regression"
    c: float = 1.0  # inverse regularization strength (logistic regression)
    max_iter: int = 500
    learning_rate: float = 0.1  # hist gradient boosting
    max_leaf_nodes: int = 31  # hist gradient boosting

    def problems(self) -> list[str]:
        problems = BaseHyperparameters.problems(self)
        if self.estimator not in ("logistic_regression", "hist_gradient_boosting"):
            problems.append(
                f"estimator={self.estimator!r}: use logistic_regression or hist_gradient_boosting"
            )
        if self.c <= 0:
            problems.append(f"c={self.c}: must be > 0")
        if self.max_iter < 1:
            problems.append(f"max_iter={self.max_iter}: must be >= 1")
        if not 0 < self.learning_rate <= 1:
            problems.append(f"learning_rate={self.learning_rate}: must be in (0, 1]")
        if self.max_leaf_nodes < 2:
            problems.append(f"max_leaf_nodes={self.max_leaf_nodes}: must be >= 2")
        return problems


def make_pipeline(hp: Hyperparameters | None = None) -> Pipeline:
    """The unfitted model: a column transformer over the feature matrix, then the estimator."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    hp = hp or Hyperparameters()
    features = MODEL.features
    numeric = [features.matrix_columns.index(n) for n in features.numeric_features]
    indicators = [j for j in range(len(features.matrix_columns)) if j not in numeric]
    if hp.estimator == "hist_gradient_boosting":
        columns = ColumnTransformer(
            [("numeric", "passthrough", numeric), ("indicators", "passthrough", indicators)]
        )
        estimator: Any = HistGradientBoostingClassifier(
            learning_rate=hp.learning_rate,
            max_iter=hp.max_iter,
            max_leaf_nodes=hp.max_leaf_nodes,
            random_state=hp.seed,
        )
    else:
        columns = ColumnTransformer(
            [("numeric", StandardScaler(), numeric), ("indicators", "passthrough", indicators)]
        )
        estimator = LogisticRegression(C=hp.c, max_iter=hp.max_iter, random_state=hp.seed)
    return Pipeline([("columns", columns), ("model", estimator)])


MODEL = Model(
    spec=SPEC,
    derive=derive,
    hyperparameters=Hyperparameters,
    make_estimator=make_pipeline,
    search_space={"c": (0.1, 1.0, 10.0)},
    gate=GateConfig(),
)
