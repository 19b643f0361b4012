"""Group metrics for a model's sensitive attributes (`ModelSpec.sensitive`): is the model as
calibrated, and as often wrong, for each group as for the others?

For every declared attribute, `group_reports` measures each of its groups on the evaluation
rows: a classifier's observed rate, mean score, calibration (mean score minus observed rate),
expected calibration error, the share it decides positive and its false-positive and
false-negative rates at the spec's `decision_threshold`; a regressor's mean label, mean
prediction, RMSE, MAE and bias. `GroupReport.gaps` is the spread (largest minus smallest) of each
of those between the groups with enough rows to judge, and `gap_checks` is what the gate holds
them to (`GateConfig`/`RegressionGateConfig`: `max_group_*`). A group too small to judge is
listed (`GroupReport.unjudged`) and said so in the gate's checks, never dropped.

The report also carries the recorded decision about the attribute (`Sensitive.use` and its
`reason`), so that `metrics.json` (attached to the registered model package) says whether the
model reads it and why. The attribute's values come from the evaluated feature table: a model
that uses it has it as a feature; one that excludes it has its features table carry it beside
the keys. When the rows lack it, the report says so (`missing`) instead of inventing groups.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np
import pandas as pd

from ml.evaluate import GateCheck, expected_calibration_error

if TYPE_CHECKING:
    from ml.evaluate import EvaluationReport
    from ml.model import Model
    from ml.models import Sensitive

__all__ = [
    "CLASSIFICATION_GAPS",
    "REGRESSION_GAPS",
    "ClassificationGroup",
    "GroupReport",
    "RegressionGroup",
    "classification_group",
    "gap_checks",
    "group_labels",
    "group_reports",
    "regression_group",
]


@dataclass(frozen=True, slots=True)
class ClassificationGroup:
    """A classifier on one group. `calibration` > 0: it over-states the group's risk. `fpr` is
    None for a group without negatives, `fnr` for one without positives."""

    n: int
    observed_rate: float
    mean_score: float
    calibration: float
    ece: float
    predicted_positive_rate: float
    fpr: float | None
    fnr: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class RegressionGroup:
    """A regressor on one group. `bias` is mean(prediction - label): > 0 over-predicts."""

    n: int
    mean_label: float
    mean_prediction: float
    rmse: float
    mae: float
    bias: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


AnyGroup: TypeAlias = "ClassificationGroup | RegressionGroup"

# The quantities whose spread between groups is reported (the gate bounds some of them).
CLASSIFICATION_GAPS: tuple[str, ...] = (
    "calibration",
    "fpr",
    "fnr",
    "predicted_positive_rate",
    "observed_rate",
    "ece",
)
REGRESSION_GAPS: tuple[str, ...] = ("rmse", "mae", "bias", "mean_label")


def classification_group(
    y: np.ndarray, scores: np.ndarray, *, threshold: float
) -> ClassificationGroup:
    """The classification metrics of one group's 0/1 labels and probabilities (non-empty)."""
    truth = np.asarray(y, dtype=np.int64)
    p = np.asarray(scores, dtype=np.float64)
    if truth.shape != p.shape or truth.ndim != 1 or len(truth) == 0:
        raise ValueError(f"labels {truth.shape} and scores {p.shape}: need 1-D, same, non-empty")
    decided = p >= threshold
    negatives, positives = truth == 0, truth == 1
    observed, mean_score = float(truth.mean()), float(p.mean())
    return ClassificationGroup(
        n=len(truth),
        observed_rate=observed,
        mean_score=mean_score,
        calibration=mean_score - observed,
        ece=expected_calibration_error(truth, p),
        predicted_positive_rate=float(decided.mean()),
        fpr=float(decided[negatives].mean()) if negatives.any() else None,
        fnr=float((~decided[positives]).mean()) if positives.any() else None,
    )


def regression_group(y: np.ndarray, predictions: np.ndarray) -> RegressionGroup:
    """The regression metrics of one group's labels and predictions (a non-empty group)."""
    truth = np.asarray(y, dtype=np.float64)
    predicted = np.asarray(predictions, dtype=np.float64)
    if truth.shape != predicted.shape or truth.ndim != 1 or len(truth) == 0:
        raise ValueError(
            f"labels {truth.shape} and predictions {predicted.shape}: need 1-D, same, non-empty"
        )
    error = predicted - truth
    return RegressionGroup(
        n=len(truth),
        mean_label=float(truth.mean()),
        mean_prediction=float(predicted.mean()),
        rmse=float(np.sqrt(np.mean(error * error))),
        mae=float(np.abs(error).mean()),
        bias=float(error.mean()),
    )


@dataclass(frozen=True, slots=True)
class GroupReport:
    """One sensitive attribute: the recorded decision about it and the model on each group.

    `min_rows`: the rows a group needs to enter `gaps` (the gate's `min_group_rows` when
    evaluated); `threshold`: a classifier's decision threshold; `missing`: why no group could be
    measured (the evaluated rows lack the column)."""

    column: str
    use: str
    reason: str
    groups: dict[str, AnyGroup] = field(default_factory=dict)
    threshold: float | None = None
    min_rows: int = 1
    missing: str | None = None

    @property
    def judged(self) -> dict[str, AnyGroup]:
        return {k: g for k, g in self.groups.items() if g.n >= self.min_rows}

    @property
    def unjudged(self) -> dict[str, int]:
        """Groups too small to judge, with their rows."""
        return {k: g.n for k, g in self.groups.items() if g.n < self.min_rows}

    def gaps(self, min_rows: int | None = None) -> dict[str, float | None]:
        """Largest minus smallest value of each quantity over the groups with at least
        `min_rows` rows (default `self.min_rows`) where it is defined; None with fewer than two."""
        floor = self.min_rows if min_rows is None else min_rows
        judged = [g for g in self.groups.values() if g.n >= floor]
        names = (
            REGRESSION_GAPS
            if any(isinstance(g, RegressionGroup) for g in judged)
            else CLASSIFICATION_GAPS
        )
        out: dict[str, float | None] = {}
        for name in names:
            values = [v for v in (getattr(g, name) for g in judged) if v is not None]
            out[name] = float(max(values) - min(values)) if len(values) >= 2 else None
        return out

    def to_dict(self) -> dict[str, Any]:
        """The report, with its `gaps` and `unjudged` groups spelled out for readers of
        metrics.json (`from_dict` recomputes them)."""
        return {
            "column": self.column,
            "use": self.use,
            "reason": self.reason,
            "threshold": self.threshold,
            "min_rows": self.min_rows,
            "missing": self.missing,
            "groups": {k: g.to_dict() for k, g in self.groups.items()},
            "gaps": self.gaps() if self.groups else {},
            "unjudged": self.unjudged,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GroupReport:
        try:
            return cls(
                column=str(data["column"]),
                use=str(data["use"]),
                reason=str(data["reason"]),
                groups={str(k): _group_from_dict(g) for k, g in data.get("groups", {}).items()},
                threshold=data.get("threshold"),
                min_rows=int(data.get("min_rows", 1)),
                missing=data.get("missing"),
            )
        except KeyError as err:
            raise ValueError(f"group report is missing {err.args[0]!r}: {dict(data)}") from None


def _group_from_dict(data: Mapping[str, Any]) -> AnyGroup:
    kind: type[ClassificationGroup] | type[RegressionGroup] = (
        RegressionGroup if "rmse" in data else ClassificationGroup
    )
    try:
        return kind(**{f: data[f] for f in kind.__dataclass_fields__})
    except KeyError as err:
        raise ValueError(f"group metrics are missing {err.args[0]!r}: {dict(data)}") from None


def group_labels(values: pd.Series) -> np.ndarray:
    """Each row's group, as a string: booleans 'true'/'false', numbers as written ('1', '0.5'),
    strings as they are, nulls 'missing'."""
    missing = values.isna().to_numpy(dtype=bool)
    if pd.api.types.is_bool_dtype(values.dtype):
        flags = values.to_numpy(dtype=bool, na_value=False)
        labels = np.where(flags, "true", "false").astype(object)
    elif pd.api.types.is_numeric_dtype(values.dtype):
        numbers = values.to_numpy(dtype=np.float64, na_value=np.nan)
        labels = np.array([f"{v:g}" for v in numbers], dtype=object)
    else:
        labels = values.astype("string").to_numpy(dtype=object, na_value="missing")
    labels[missing] = "missing"
    return labels


def group_reports(
    model: Model,
    features: pd.DataFrame,
    y: np.ndarray,
    scores: np.ndarray,
    *,
    min_rows: int | None = None,
) -> dict[str, GroupReport]:
    """The group metrics of every sensitive attribute of `model` on evaluated rows (`features`,
    its labels `y` and the model's `scores`, row for row). `min_rows`: default the gate's
    `min_group_rows`."""
    floor = int(min_rows if min_rows is not None else getattr(model.gate, "min_group_rows", 1))
    classifier = model.spec.task == "binary_classification"
    threshold = float(model.spec.decision_threshold) if classifier else None
    out: dict[str, GroupReport] = {}
    for sensitive in model.spec.sensitive:
        out[sensitive.column] = _one_attribute(
            sensitive, features, y, scores, threshold=threshold, min_rows=floor
        )
    return out


def _one_attribute(
    sensitive: Sensitive,
    features: pd.DataFrame,
    y: np.ndarray,
    scores: np.ndarray,
    *,
    threshold: float | None,
    min_rows: int,
) -> GroupReport:
    column, use, reason = sensitive.column, sensitive.use, sensitive.reason
    if column not in features.columns:
        missing = (
            f"the evaluated rows have no {column!r} column (columns: "
            f"{', '.join(map(str, features.columns))})"
        )
        return GroupReport(
            column, use, reason, threshold=threshold, min_rows=min_rows, missing=missing
        )
    labels = group_labels(features[column])
    groups: dict[str, AnyGroup] = {}
    for value in sorted(set(labels)):
        mask = labels == value
        groups[value] = (
            classification_group(y[mask], scores[mask], threshold=threshold)
            if threshold is not None
            else regression_group(y[mask], scores[mask])
        )
    return GroupReport(column, use, reason, groups=groups, threshold=threshold, min_rows=min_rows)


# ---------------------------------------------------------------------------------------------
# The gate.
# ---------------------------------------------------------------------------------------------


def gap_checks(model: Model, candidate: EvaluationReport, config: Any) -> list[GateCheck]:
    """The gate's checks of the group gaps of every sensitive attribute the model declares.

    A classifier: calibration, false-positive and false-negative rate gaps within
    `max_group_calibration_gap`, `max_group_fpr_gap`, `max_group_fnr_gap`. A regressor: RMSE and
    bias gaps within `max_group_rmse_gap` and `max_group_bias_gap` of the overall RMSE. Groups
    need `config.min_group_rows` rows; an attribute with fewer than two such groups, or with no
    group metrics in the report, gets a passing check that says it was not judged and why."""
    classifier = model.spec.task == "binary_classification"
    if classifier:
        bounds = {
            "calibration": config.max_group_calibration_gap,
            "fpr": config.max_group_fpr_gap,
            "fnr": config.max_group_fnr_gap,
        }
    else:
        bounds = {"rmse": config.max_group_rmse_gap, "bias": config.max_group_bias_gap}
    floor = int(config.min_group_rows)
    checks: list[GateCheck] = []
    for sensitive in model.spec.sensitive:
        column = sensitive.column
        report = candidate.groups.get(column)
        if report is None or report.missing or not report.groups:
            why = (
                report.missing
                if report is not None and report.missing
                else "the evaluation holds no group metrics for it"
            )
            checks.append(
                GateCheck(f"groups measured [{column}]", True, None, None, f"not judged: {why}")
            )
            continue
        gaps = report.gaps(floor)
        sizes = ", ".join(f"{k!r} {g.n}" for k, g in sorted(report.groups.items()))
        scale = 1.0 if classifier else float(getattr(candidate.overall, "rmse", 0.0))
        for name, bound in bounds.items():
            check = f"{name} gap [{column}]"
            gap = gaps.get(name)
            if gap is None:
                detail = (
                    f"not judged: fewer than two groups with {floor} rows and a defined {name} "
                    f"(rows: {sizes})"
                )
                checks.append(GateCheck(check, True, None, bound, detail))
                continue
            values = ", ".join(
                f"{k!r} {getattr(g, name):.4f}"
                for k, g in sorted(report.groups.items())
                if g.n >= floor and getattr(g, name) is not None
            )
            if classifier:
                relative, unit = gap, ""
            else:
                # an overall RMSE of 0 leaves every group's at 0: no gap
                relative = gap / scale if scale > 0 else 0.0
                unit = f" = {relative:.3f} x the overall RMSE {scale:.4f}"
            small = {k: g.n for k, g in report.groups.items() if g.n < floor}
            note = f"; not judged: {small} (fewer than {floor} rows)" if small else ""
            checks.append(
                GateCheck(
                    check,
                    relative <= bound,
                    relative,
                    bound,
                    f"{name} by group {values}: gap {gap:.4f}{unit}; allowed <= {bound}{note}",
                )
            )
    return checks
