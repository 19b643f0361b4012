"""A model's runtime: its declaration (`ModelSpec`) bound to the code that fits and scores it.

Every model package's `model.py` defines `MODEL = Model(...)`; `ml.models.load(name)` returns it.
Generic code (train, evaluate, package, inference, capture, drift, pipeline steps) takes a `Model`
and reads everything model-specific from it:

* `derive`: the feature derivation, one vectorised function the batch, online and drift paths all
  run (through `features`, an `ml.features.FeatureSet`);
* `hyperparameters`: a frozen dataclass of the model's knobs with defaults, `from_mapping` (parses
  SageMaker's all-strings hyperparameters) and `to_dict`; `search_space` lists candidate values;
* `make_estimator(hp)`: the unfitted estimator (`fit(X, y)`, then `predict_proba` for
  classification or `predict` for regression, over the feature matrix);
* `gate`: the gate thresholds that fit the task (`GateConfig` for a classifier,
  `RegressionGateConfig` for a regressor, both here);
* `save`/`load`/`artifact_file`: how the fitted estimator is stored in the model directory.

This module ships inside the model artifact (`code/ml/model.py`): numpy and the standard library
only at import time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ml.contracts import MODEL_ENV, MODEL_FILE
from ml.models import ModelSpec, load, names

if TYPE_CHECKING:
    from typing import Self  # Python 3.11; the serving containers may run 3.10

    from ml.features import FeatureSet

Derive = Callable[[Mapping[str, np.ndarray]], dict[str, np.ndarray]]


def joblib_save(estimator: Any, model_dir: Path) -> None:
    import joblib

    joblib.dump(estimator, model_dir / MODEL_FILE)


def joblib_load(model_dir: Path) -> Any:
    import joblib

    path = model_dir / MODEL_FILE
    if not path.exists():
        raise FileNotFoundError(f"no {MODEL_FILE} in {model_dir}: is this a model artifact?")
    return joblib.load(path)


def _no_info(estimator: Any) -> dict[str, Any]:
    return {}


@dataclass(frozen=True, slots=True)
class GateConfig:
    """Thresholds of a classifier's promotion gate (`ml.evaluate.check_gate`).

    Declared here, not in `ml.evaluate`, because a model package's `model.py` builds one at import
    and ships in the artifact's `code/`, which carries this module but not the evaluation code.
    """

    # ROC AUC must beat every baseline's by at least this much.
    min_auc_lift: float = 0.02
    # Log loss must be below every baseline's.
    require_log_loss_below_baselines: bool = True
    # Against the approved model: how much worse each metric may be.
    max_auc_regression: float = 0.005
    max_pr_auc_regression: float = 0.01
    max_log_loss_regression: float = 0.005
    # Calibration: an absolute ceiling on expected calibration error.
    max_ece: float = 0.05
    # Per slice, against the approved model's same slice: how much ROC AUC may drop, and the
    # rows both sides need before a slice is judged (smaller slices are reported, not judged).
    max_slice_auc_regression: float = 0.03
    min_slice_rows: int = 200
    # Per slice, on its own: the ROC AUC every judged slice must reach, however good the overall
    # figure (a slice ranked barely better than chance is refused). The shipped models' slices
    # score 0.65-0.86 on the sample data; a slice whose labels are noise scores about 0.5.
    min_slice_auc: float = 0.6
    # Per sensitive attribute (`ModelSpec.sensitive`, `ml.groups`): the largest gap allowed
    # between its groups, each with at least `min_group_rows` rows (below that the estimates'
    # own noise, +-0.03 to 0.07, is the size of the bounds): in calibration (mean score minus
    # observed rate), and in false-positive and false-negative rate at the decision threshold.
    min_group_rows: int = 200
    max_group_calibration_gap: float = 0.1
    max_group_fpr_gap: float = 0.1
    max_group_fnr_gap: float = 0.2

    def __post_init__(self) -> None:
        problems = _outside(
            self,
            (
                "min_slice_auc",
                "max_group_calibration_gap",
                "max_group_fpr_gap",
                "max_group_fnr_gap",
            ),
            lambda v: 0.0 <= v <= 1.0,
            "must be between 0 and 1",
        )
        problems += _outside(
            self, ("min_slice_rows", "min_group_rows"), lambda v: v >= 1, "must be at least 1"
        )
        if problems:
            raise ValueError("classification gate: " + "; ".join(problems))


@dataclass(frozen=True, slots=True)
class RegressionGateConfig:
    """Thresholds of a regression model's promotion gate (relative, so they hold at any scale)."""

    # RMSE must be at most (1 - this) x every baseline's RMSE.
    min_rmse_improvement: float = 0.05
    # MAE must be below every baseline's.
    require_mae_below_baselines: bool = True
    # Against the version that serves: how much RMSE and MAE may rise, as a fraction of its own.
    max_rmse_regression: float = 0.02
    max_mae_regression: float = 0.02
    # Per slice, against the serving version's same slice: how much RMSE may rise (a fraction),
    # and the rows both sides need before a slice is judged (smaller slices are reported only).
    max_slice_rmse_regression: float = 0.05
    min_slice_rows: int = 200
    # Per slice, on its own: a judged slice's RMSE may be at most this multiple of the overall
    # RMSE (the shipped regressor's slices stay within 1.35x on the sample data; a slice whose
    # labels are noise is at about 1.7x).
    max_slice_rmse_ratio: float = 1.5
    # Per sensitive attribute (`ModelSpec.sensitive`, `ml.groups`), between its groups of at
    # least `min_group_rows` rows: the largest gap in RMSE and in bias (mean error), each as a
    # fraction of the overall RMSE.
    min_group_rows: int = 200
    max_group_rmse_gap: float = 0.25
    max_group_bias_gap: float = 0.25

    def __post_init__(self) -> None:
        problems = _outside(
            self,
            (
                "min_rmse_improvement",
                "max_rmse_regression",
                "max_mae_regression",
                "max_slice_rmse_regression",
            ),
            lambda v: 0.0 <= v < 1.0,
            "must be between 0 and 1",
        )
        problems += _outside(
            self, ("min_slice_rows", "min_group_rows"), lambda v: v >= 1, "must be at least 1"
        )
        if self.max_slice_rmse_ratio < 1.0:
            problems.append(
                f"max_slice_rmse_ratio {self.max_slice_rmse_ratio} must be at least 1 (a slice "
                "cannot be held below the overall RMSE)"
            )
        problems += _outside(
            self, ("max_group_rmse_gap", "max_group_bias_gap"), lambda v: v > 0, "must be positive"
        )
        if problems:
            raise ValueError("regression gate: " + "; ".join(problems))


def _outside(
    config: object, names: tuple[str, ...], ok: Callable[[float], bool], rule: str
) -> list[str]:
    """`<name> <value> <rule>` for each of the `config`'s fields `names` whose value is not `ok`."""
    return [f"{n} {getattr(config, n)} {rule}" for n in names if not ok(getattr(config, n))]


@dataclass(frozen=True)
class Hyperparameters:
    """The base of every model's hyperparameters: a frozen dataclass whose fields all have
    defaults, parsed from SageMaker's all-strings `hyperparameters.json` by `from_mapping`.

    `validation_fraction` and `seed` are the knobs generic training reads; a model adds its own
    fields and checks them in `problems()` (every problem is reported at once)."""

    validation_fraction: float = 0.2
    seed: int = 0

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise ValueError("invalid hyperparameters: " + "; ".join(problems))

    def problems(self) -> list[str]:
        if not 0 < self.validation_fraction < 1:
            return [f"validation_fraction={self.validation_fraction}: must be in (0, 1)"]
        return []

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Self:
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - fields)
        if unknown:
            raise ValueError(f"unknown hyperparameters {unknown}; known: {sorted(fields)}")
        defaults = cls()
        parsed: dict[str, Any] = {}
        for name, raw in values.items():
            kind = type(getattr(defaults, name))
            try:
                if kind is int and isinstance(raw, str | float) and float(raw).is_integer():
                    parsed[name] = int(float(raw))
                else:
                    parsed[name] = kind(raw)
            except (TypeError, ValueError):
                raise ValueError(
                    f"hyperparameter {name}={raw!r} is not a valid {kind.__name__}"
                ) from None
        return cls(**parsed)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True, eq=False)
class Model:
    spec: ModelSpec
    derive: Derive
    hyperparameters: type[Any]
    make_estimator: Callable[[Any], Any]
    search_space: Mapping[str, tuple[Any, ...]]
    gate: Any
    artifact_file: str = MODEL_FILE
    save: Callable[[Any, Path], None] = joblib_save
    load: Callable[[Path], Any] = joblib_load
    # Extra lineage about how the estimator was fitted (e.g. the device that trained it).
    training_info: Callable[[Any], dict[str, Any]] = _no_info

    def __post_init__(self) -> None:
        if not (
            isinstance(self.hyperparameters, type)
            and issubclass(self.hyperparameters, Hyperparameters)
        ):
            raise TypeError(
                f"model {self.spec.name!r}: hyperparameters must be a dataclass subclassing "
                "ml.model.Hyperparameters"
            )
        defaults = self.hyperparameters()
        unknown = sorted(set(self.search_space) - set(defaults.to_dict()))
        if unknown:
            raise ValueError(
                f"model {self.spec.name!r}: search space names unknown hyperparameters {unknown}"
            )

    @property
    def name(self) -> str:
        return self.spec.name

    @cached_property
    def features(self) -> FeatureSet:
        from ml.features import FeatureSet

        return FeatureSet(self.spec, self.derive)

    def predict(self, estimator: Any, matrix: np.ndarray) -> np.ndarray:
        """Scores of the feature matrix's rows: P(positive class) for a classifier, the predicted
        value for a regressor (float64, one per row)."""
        if self.spec.task == "binary_classification":
            scores: np.ndarray = np.asarray(estimator.predict_proba(matrix)[:, 1], dtype=np.float64)
        else:
            scores = np.asarray(estimator.predict(matrix), dtype=np.float64).reshape(-1)
        return scores

    def __repr__(self) -> str:
        return f"Model({self.spec.name!r}, task={self.spec.task!r})"


def model_from_env(env: Mapping[str, str]) -> Model:
    """The model a container runs for (`MLPLAT_MODEL`, `ml.contracts.MODEL_ENV`: the pipeline
    steps, the training job); a `ValueError` naming the variable when it is unset or unknown."""
    name = env.get(MODEL_ENV, "").strip()
    if not name:
        raise ValueError(
            f"{MODEL_ENV} is not set: name the model this step runs for "
            f"({', '.join(names()) or 'no models'})"
        )
    return load(name)
