"""The model contract: every model the platform hosts is a package `ml/models/<name>/`.

A model package has two modules:

* `spec.py` — **pure** (standard library and `ml.schema` only): `SPEC`, a `ModelSpec` declaring
  what the model reads, predicts and is judged on. The stack, the components and the policies
  read it (they may not import numpy), so that each model gets its own registry group, pipeline,
  endpoint, alarms (one drift alarm per feature of *that* model), drift job and Glue tables.
* `model.py` — the runtime: `MODEL`, an `ml.model.Model` binding the spec to its feature
  derivation (one function for batch, online and drift), its estimator factory, hyperparameters
  and search space, and its gate. Generic code (lake I/O, train, evaluate, package, serve,
  capture, drift, registry, deploy, pipeline steps) takes a `Model` and never names a model.

`names()` lists the packages here, `spec(name)` reads a declaration without loading numpy, and
`load(name)` imports the runtime. The package `__init__.py` of a model must stay pure too
(`from ml.models.<name>.spec import SPEC` at most): importing `ml.models.<name>.spec` runs it.
"""

from __future__ import annotations

import importlib
import itertools
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from ml.schema import Column, Dataset

if TYPE_CHECKING:
    from ml.model import Model

Task = Literal["binary_classification", "regression"]
TASKS: tuple[Task, ...] = ("binary_classification", "regression")
# The SageMaker framework container that trains and serves the model (`ml.images` resolves it):
# the scikit-learn container or the XGBoost container, both in script mode with `code/`.
Framework = Literal["sklearn", "xgboost"]
FRAMEWORKS: tuple[Framework, ...] = ("sklearn", "xgboost")

# The overall metrics each task reports (`ml.evaluate.Metrics`, `ml.regression.RegressionMetrics`)
# that a registered version carries as `metric.<name>` metadata.
TASK_METRICS: dict[Task, tuple[str, ...]] = {
    "binary_classification": ("roc_auc", "pr_auc", "log_loss", "ece"),
    "regression": ("rmse", "mae", "bias", "r2"),
}
# What the scheduled job measures online once labels come back (`ml.quality`), per task: the
# names of its rows in the lake, of its per-version CloudWatch metrics (`QUALITY_NAMESPACE`,
# dimensions EndpointName and ModelVersion) and of the registry metadata `online.<name>`.
ONLINE_METRICS: dict[Task, tuple[str, ...]] = {
    "binary_classification": ("roc_auc", "log_loss", "ece", "mean_score", "observed_rate"),
    "regression": ("rmse", "mae", "bias"),
}

# Raw columns that describe a protected group (an age band, ...). A model whose raw dataset holds
# one must declare it in `ModelSpec.sensitive`, as a feature or excluded, with the reason: a model
# cannot use one, or leave it unmeasured, without a recorded decision.
PROTECTED_COLUMNS: frozenset[str] = frozenset({"is_senior"})

# A model name is used in resource names (endpoint, registry group, pipeline, roles, prefixes):
# lowercase letters, digits and hyphens are safe everywhere; Python packages cannot hold hyphens.
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9]{1,19}$")
# Columns of a features table that identify a row rather than feed the model.
KEY_COLUMNS: tuple[str, ...] = ("customer_id", "event_time")


class ModelSpecError(ValueError):
    """A model package that does not follow the contract (every problem, one line each)."""


@dataclass(frozen=True, slots=True)
class Sensitive:
    """An input that describes a protected group, and the recorded decision about it."""

    column: str
    # "feature": an input and a feature; "excluded": in the raw data (for group metrics) but
    # neither an input nor a feature (its features table may carry it beside the keys, so that
    # evaluation can measure the groups: `ModelSpec.feature_columns` leaves it out).
    use: Literal["feature", "excluded"]
    reason: str  # why: recorded in the model package's metadata and lineage


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """What a model reads, predicts and is judged on: data only, no numpy."""

    name: str
    task: Task
    description: str
    raw: Dataset  # the raw dataset it reads (a lake dataset in `ml.schema.DATASETS`)
    curated: Dataset  # its validated, de-duplicated copy
    inputs: tuple[str, ...]  # raw columns it reads, in the order a header-less CSV request lists
    label: str  # the raw column holding the outcome (`features` carries it too)
    features: Dataset  # its features-zone table: KEY_COLUMNS, the features, the label
    predictions: Dataset  # its flattened capture table in the predictions zone
    slices: tuple[str, ...]  # categorical features evaluation and the gate slice on
    one_feature_baseline: str  # the feature the one-feature baseline sees
    sensitive: tuple[Sensitive, ...] = ()
    framework: Framework = "sklearn"
    # Numeric features evaluation and the gate slice on as well, in bands: feature -> increasing
    # edges; (6, 12) gives the bands "<6", "[6,12)" and ">=12" (`band_labels`).
    slice_bands: dict[str, tuple[float, ...]] = field(default_factory=dict)
    # A classifier's decision threshold (a score at or above it is a positive decision): the
    # error rates of the group metrics (`ml.groups`) are taken there.
    decision_threshold: float = 0.5
    # The hyperparameters the model's pipeline exposes as parameters (name -> default, as
    # SageMaker passes them: strings); each becomes the pipeline parameter
    # `pipeline_parameter(name)` and reaches the Train step as that hyperparameter. The defaults
    # must be the runtime's (a contract test holds them equal).
    pipeline_hyperparameters: dict[str, str] = field(default_factory=dict)
    # Hyperparameters (same form) that give a deliberately weak model: the sandbox retrains with
    # them to show that the gate refuses a worse model.
    weak_hyperparameters: dict[str, str] = field(default_factory=dict)
    score_description: str = "the model's prediction"
    tags: dict[str, str] = field(default_factory=dict)
    # Days after a prediction until its outcome (`label`) is known: online quality joins
    # predictions with outcomes only once this has passed (`ml.quality`).
    label_horizon_days: int = 30

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise ModelSpecError(f"model {self.name!r}: " + "; ".join(problems))

    def problems(self) -> list[str]:
        out: list[str] = []
        if not NAME_PATTERN.match(self.name):
            out.append(
                f"name {self.name!r} must be 2-20 lowercase letters and digits, starting "
                "with a letter"
            )
        if self.task not in TASKS:
            out.append(f"task {self.task!r}: use one of {list(TASKS)}")
        for name in (*self.pipeline_hyperparameters, *self.weak_hyperparameters):
            if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
                out.append(f"hyperparameter {name!r}: use snake_case names")
        unexposed = sorted(set(self.weak_hyperparameters) - set(self.pipeline_hyperparameters))
        if unexposed:
            out.append(f"weak_hyperparameters {unexposed} are not pipeline_hyperparameters")
        if self.framework not in FRAMEWORKS:
            out.append(f"framework {self.framework!r}: use one of {list(FRAMEWORKS)}")
        raw = set(self.raw.column_names)
        out += [
            f"input {c!r} is not a column of {self.raw.name!r}" for c in self.inputs if c not in raw
        ]
        if self.label not in raw:
            out.append(f"label {self.label!r} is not a column of {self.raw.name!r}")
        if self.label in self.inputs:
            out.append(f"label {self.label!r} cannot be an input")
        table = set(self.features.column_names)
        out += [f"features table lacks key column {k!r}" for k in KEY_COLUMNS if k not in table]
        if self.label not in table:
            out.append(f"features table lacks the label {self.label!r}")
        categorical = {c.name for c in self.feature_columns if c.type == "string"}
        out += [
            f"slice {s!r} is not a categorical feature" for s in self.slices if s not in categorical
        ]
        if self.one_feature_baseline not in {c.name for c in self.feature_columns}:
            out.append(f"one_feature_baseline {self.one_feature_baseline!r} is not a feature")
        features = {c.name for c in self.feature_columns}
        for s in self.sensitive:
            if s.column not in raw:
                out.append(f"sensitive column {s.column!r} is not a column of {self.raw.name!r}")
            if s.use == "feature" and (s.column not in self.inputs or s.column not in features):
                out.append(
                    f"sensitive column {s.column!r} is use='feature' but not an input feature"
                )
            if s.use == "excluded" and (s.column in self.inputs or s.column in features):
                out.append(
                    f"sensitive column {s.column!r} is use='excluded' but the model reads it"
                )
        out += self._decision_problems(raw)
        out += self._band_problems()
        if (
            isinstance(self.label_horizon_days, bool)
            or not isinstance(self.label_horizon_days, int)
            or not 0 <= self.label_horizon_days <= 3660
        ):
            out.append(
                f"label_horizon_days {self.label_horizon_days!r} must be a whole number of "
                "days between 0 and 3660"
            )
        for c in self.feature_columns:
            if c.type == "string" and not c.allowed:
                out.append(f"categorical feature {c.name!r} needs a vocabulary (allowed=...)")
        return out

    def _decision_problems(self, raw: set[str]) -> list[str]:
        """A protected column of the raw data needs a recorded decision; a decision, a reason."""
        out: list[str] = []
        declared = [s.column for s in self.sensitive]
        out += [
            f"sensitive column {c!r} is declared twice"
            for c in sorted(set(declared))
            if declared.count(c) > 1
        ]
        for s in self.sensitive:
            if s.use not in ("feature", "excluded"):
                out.append(
                    f"sensitive column {s.column!r}: use {s.use!r} must be 'feature' or 'excluded'"
                )
            if not s.reason.strip():
                out.append(f"sensitive column {s.column!r} needs a reason for its use={s.use!r}")
        for column in sorted((PROTECTED_COLUMNS & raw) - set(declared)):
            how = "reads it" if column in self.inputs else "does not say whether it may read it"
            out.append(
                f"raw column {column!r} describes a protected group and the model {how}: declare "
                f"sensitive=(Sensitive({column!r}, use='feature' or 'excluded', reason=...),)"
            )
        if isinstance(self.decision_threshold, bool) or not (
            isinstance(self.decision_threshold, int | float) and 0.0 < self.decision_threshold < 1.0
        ):
            out.append(f"decision_threshold {self.decision_threshold!r} must be between 0 and 1")
        return out

    def _band_problems(self) -> list[str]:
        out: list[str] = []
        numeric = {c.name for c in self.feature_columns if c.type != "string"}
        for name, edges in self.slice_bands.items():
            if name not in numeric:
                out.append(f"slice band {name!r} is not a numeric feature ({sorted(numeric)})")
            numbers = [
                e
                for e in edges
                if isinstance(e, int | float) and not isinstance(e, bool) and math.isfinite(e)
            ]
            if (
                not edges
                or len(numbers) != len(edges)
                or any(b <= a for a, b in itertools.pairwise(numbers))
            ):
                out.append(
                    f"slice band {name!r}: edges {edges!r} must be finite numbers in increasing "
                    "order (at least one)"
                )
        return out

    @property
    def slice_columns(self) -> tuple[str, ...]:
        """What evaluation and the gate slice on: the categorical `slices`, then the banded
        numeric features (`slice_bands`)."""
        return (*self.slices, *self.slice_bands)

    @property
    def input_columns(self) -> tuple[Column, ...]:
        return tuple(self.raw.column(name) for name in self.inputs)

    @property
    def feature_columns(self) -> tuple[Column, ...]:
        """The model's features in matrix order: numeric first, then categorical. A sensitive
        column the model excludes is not one, even when its features table carries it."""
        carried = (
            *KEY_COLUMNS,
            self.label,
            *(s.column for s in self.sensitive if s.use == "excluded"),
        )
        return tuple(
            sorted(
                (c for c in self.features.columns if c.name not in carried),
                key=lambda c: c.type == "string",
            )
        )

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.feature_columns)

    @property
    def metrics(self) -> tuple[str, ...]:
        """The overall metrics of its task, as the evaluation report and the registry name them."""
        return TASK_METRICS[self.task]

    @property
    def online_metrics(self) -> tuple[str, ...]:
        """What online quality measures for its task (`ONLINE_METRICS`)."""
        return ONLINE_METRICS[self.task]

    @property
    def datasets(self) -> tuple[Dataset, ...]:
        """The lake tables this model owns (the raw and curated ones are shared)."""
        return (self.features, self.predictions)


def band_labels(edges: tuple[float, ...]) -> tuple[str, ...]:
    """The labels of the bands between `edges`, lowest first: (6, 12) -> ("<6", "[6,12)", ">=12").
    A value `v` is in band `i` when exactly `i` edges are <= v."""
    shown = [f"{e:g}" for e in edges]
    inner = [f"[{a},{b})" for a, b in itertools.pairwise(shown)]
    return (f"<{shown[0]}", *inner, f">={shown[-1]}")


def pipeline_parameter(hyperparameter: str) -> str:
    """The pipeline parameter of a hyperparameter: `max_iter` -> `MaxIter`, `c` -> `C`."""
    return "".join(part.capitalize() for part in hyperparameter.split("_"))


def predictions_dataset(name: str, raw: Dataset, inputs: tuple[str, ...], score: Column) -> Dataset:
    """A model's flattened capture table: one row per scored record (`ml.capture` writes it)."""
    return Dataset(
        name=name,
        zone="predictions",
        description=(
            "Captured endpoint requests and responses, flattened: one row per scored record"
        ),
        columns=(
            Column("event_id", "string", "SageMaker data-capture event id", nullable=False),
            Column(
                "inference_time", "timestamp", "When the endpoint answered (UTC)", nullable=False
            ),
            Column("endpoint_name", "string", "Endpoint that served the request", nullable=False),
            Column("variant_name", "string", "Production variant that served the request"),
            Column("model_version", "string", "Model package version that served the request"),
            *(raw.column(c) for c in (KEY_COLUMNS[0], *inputs)),
            score,
        ),
    )


def names() -> tuple[str, ...]:
    """The model packages under `ml/models/`, sorted."""
    here = Path(__file__).resolve().parent
    return tuple(
        sorted(
            p.parent.name
            for p in here.glob("*/spec.py")
            if NAME_PATTERN.match(p.parent.name) and (p.parent / "__init__.py").is_file()
        )
    )


def spec(name: str) -> ModelSpec:
    """The declaration of model `name` (pure: loads no numpy)."""
    _check_name(name)
    module = importlib.import_module(f"ml.models.{name}.spec")
    found = getattr(module, "SPEC", None)
    if not isinstance(found, ModelSpec):
        raise ModelSpecError(f"ml/models/{name}/spec.py must define SPEC = ModelSpec(...)")
    if found.name != name:
        raise ModelSpecError(f"ml/models/{name}/spec.py declares name {found.name!r}, not {name!r}")
    return found


def load(name: str) -> Model:
    """The runtime of model `name` (`ml/models/<name>/model.py`'s `MODEL`)."""
    from ml.model import Model

    _check_name(name)
    module = importlib.import_module(f"ml.models.{name}.model")
    found = getattr(module, "MODEL", None)
    if not isinstance(found, Model):
        raise ModelSpecError(f"ml/models/{name}/model.py must define MODEL = Model(...)")
    if found.spec.name != name:
        raise ModelSpecError(
            f"ml/models/{name}/model.py binds the spec of {found.spec.name!r}, not {name!r}"
        )
    return found


def _check_name(name: str) -> None:
    known = names()
    if name not in known:
        raise ModelSpecError(
            f"no model {name!r}: models are packages under ml/models/ with a spec.py; "
            f"known: {', '.join(known) or 'none'}"
        )
