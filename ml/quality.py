"""Online quality: how right the served predictions were, once their outcomes came back.

The scheduled job (`ml.drift.job`) joins the prediction logs whose label horizon has passed
(`ModelSpec.label_horizon_days`) with the outcomes (`ml.labels`) and hands the joined rows here.
`online_quality` measures them per model version (the `model_version` each row was scored by),
overall and per value of each slice (`ModelSpec.slices`), with the task's online metrics
(`ml.models.ONLINE_METRICS`):

* a classifier: ROC AUC, log loss and expected calibration error, defined exactly as the offline
  evaluation defines them (`ml.evaluate`: ECE over ten equal-width bins, log loss with scores
  clipped at 1e-15), the mean score and the observed rate (calibration at a glance);
* a regressor: RMSE, MAE and bias (mean prediction - outcome), as `ml.regression`.

ROC AUC is the rank statistic (ties counted half), computed with one sort: no scikit-learn call
per slice, so thousands of rows over every version and slice take milliseconds.

`shortfall` compares a version's online headline figure (ROC AUC, RMSE) with its registered
offline figure (the registry's `metric.<name>` metadata), signed so that > 0 is worse: AUC
`offline - online`, RMSE `(online - offline) / offline`. The `QualityShortfall` alarm fires when
it exceeds the margin the stack sets.

Where the figures go:

* CloudWatch (`QUALITY_NAMESPACE`): per version (dimensions `EndpointName`, `ModelVersion`) each
  online metric under its own name, `LabeledRows` and `QualityShortfall`, for the dashboard's
  charts; and, for the alarms, `LabeledRows` (all versions) and `QualityShortfall` of the version
  that served last with the `EndpointName` dimension only;
* the lake: one row per (version, slice value, metric) under
  `<predictions bucket>/quality-reports/<endpoint>/dt=<day of window_end>/` (Parquet, SSE-KMS,
  committed by `ml.lake`), read back for the report's history chart (`read_quality_history`);
* the registry: `update_registry_metadata` writes `online.<metric>`, `online.rows` and
  `online.window_end` to the version's model package, beside its offline `metric.<name>`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from ml.contracts import (
    ENDPOINT_DIMENSION,
    LABELED_ROWS_METRIC,
    MODEL_VERSION_DIMENSION,
    QUALITY_NAMESPACE,
    QUALITY_PREFIX,
    QUALITY_SHORTFALL_METRIC,
)
from ml.schema import Column, Dataset

if TYPE_CHECKING:
    from ml.model import Model

OVERALL = "overall"  # the `slice` of a row that covers every labelled prediction of a version
ALL = "all"  # its `slice_value`
# The figure `shortfall` compares (and the `QualityShortfall` alarm watches), per task.
HEADLINE: dict[str, str] = {"binary_classification": "roc_auc", "regression": "rmse"}
# How each metric that has an offline figure falls short: higher is better (offline - online),
# lower is better (online - offline), lower is better relative to the offline figure.
_DIRECTION: dict[str, Literal["higher", "lower", "relative"]] = {
    "roc_auc": "higher",
    "log_loss": "lower",
    "ece": "lower",
    "rmse": "relative",
    "mae": "relative",
}
# SageMaker's bounds on a model package's CustomerMetadataProperties.
MAX_PROPERTIES = 50
ONLINE_PROPERTY_PREFIX = "online."
METRIC_PROPERTY_PREFIX = "metric."
MIN_SLICE_ROWS = 30
LOG_LOSS_EPS = 1e-15
ECE_BINS = 10


class QualityError(ValueError):
    """Online quality that cannot be computed or recorded as asked (and why)."""


# ---------------------------------------------------------------------------------------------
# The figures
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Figures:
    """The online metrics of some labelled predictions; a metric is None when undefined (ROC AUC
    with one class only) or not computed (fewer rows than `min_slice_rows` in a slice)."""

    n: int
    metrics: Mapping[str, float | None]

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "metrics": dict(self.metrics)}


@dataclass(frozen=True, slots=True)
class VersionQuality:
    """One model version's online quality: overall, and per slice feature -> value."""

    model_version: str
    overall: Figures
    slices: Mapping[str, Mapping[str, Figures]]
    first_inference: datetime
    last_inference: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_version": self.model_version,
            "overall": self.overall.to_dict(),
            "slices": {
                s: {v: f.to_dict() for v, f in values.items()} for s, values in self.slices.items()
            },
            "first_inference": self.first_inference.isoformat(),
            "last_inference": self.last_inference.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class OnlineQuality:
    """Online quality of a model's labelled predictions in a window of inference times."""

    model: str
    task: str
    window_start: datetime
    window_end: datetime
    versions: Mapping[str, VersionQuality] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return sum(v.overall.n for v in self.versions.values())

    @property
    def latest(self) -> VersionQuality | None:
        """The version that scored the most recent labelled prediction (what served last)."""
        if not self.versions:
            return None
        return max(self.versions.values(), key=lambda v: (v.last_inference, v.model_version))

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "task": self.task,
            "window_start": self.window_start.isoformat(),
            "window_end": self.window_end.isoformat(),
            "n": self.n,
            "versions": {k: v.to_dict() for k, v in self.versions.items()},
        }


def roc_auc(y: np.ndarray, scores: np.ndarray) -> float | None:
    """Area under the ROC curve (the Mann-Whitney statistic, ties counted half); None with one
    class only."""
    positive = np.asarray(y) == 1
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    p = np.asarray(scores, dtype=np.float64)
    order = np.argsort(p, kind="mergesort")
    ordered = p[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], len(ordered)]
    ranks = np.empty(len(p), dtype=np.float64)
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)  # mean 1-based rank
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def classification_figures(y: np.ndarray, scores: np.ndarray) -> dict[str, float | None]:
    from ml.evaluate import expected_calibration_error

    labels = np.asarray(y, dtype=np.float64)
    p = np.asarray(scores, dtype=np.float64)
    clipped = np.clip(p, LOG_LOSS_EPS, 1 - LOG_LOSS_EPS)
    log_loss = -float(np.mean(labels * np.log(clipped) + (1 - labels) * np.log1p(-clipped)))
    return {
        "roc_auc": roc_auc(labels, p),
        "log_loss": log_loss,
        "ece": expected_calibration_error(labels, p, n_bins=ECE_BINS),
        "mean_score": float(p.mean()),
        "observed_rate": float(labels.mean()),
    }


def regression_figures(y: np.ndarray, predictions: np.ndarray) -> dict[str, float | None]:
    from ml.regression import compute_regression_metrics

    m = compute_regression_metrics(y, predictions)
    return {"rmse": m.rmse, "mae": m.mae, "bias": m.bias}


def _figures(
    task: str, y: np.ndarray, scores: np.ndarray, names: Sequence[str], computed: bool
) -> Figures:
    if not computed:
        return Figures(len(y), dict.fromkeys(names))
    values = (
        classification_figures(y, scores)
        if task == "binary_classification"
        else regression_figures(y, scores)
    )
    return Figures(len(y), {name: values[name] for name in names})


def online_quality(
    model: Model,
    joined: pd.DataFrame,
    *,
    window_start: datetime | None = None,
    window_end: datetime | None = None,
    min_slice_rows: int = MIN_SLICE_ROWS,
) -> OnlineQuality:
    """Online quality of `joined` (prediction rows with their label: `ml.labels.join_labels`) per
    `model_version`, overall and per value of each of the model's slices. A slice value with
    fewer than `min_slice_rows` rows is reported with its row count and no figures (never
    dropped). `window_start`/`window_end` name the inference times the rows were taken from
    (default: the first and last of them)."""
    spec = model.spec
    label = spec.label
    needed = ["model_version", "inference_time", "score", label]
    missing = [c for c in needed if c not in joined.columns]
    if missing:
        raise QualityError(f"the joined predictions lack column(s) {missing}")
    if min_slice_rows < 1:
        raise QualityError(f"min_slice_rows must be >= 1, got {min_slice_rows}")
    times = joined["inference_time"]
    if (window_start is None or window_end is None) and len(joined) == 0:
        raise QualityError("no rows: name the window (window_start, window_end)")
    start = window_start or _utc(times.min())
    end = window_end or _utc(times.max())
    if len(joined) == 0:
        return OnlineQuality(spec.name, spec.task, start, end, {})

    y = joined[label].to_numpy(dtype=np.float64, na_value=np.nan)
    scores = joined["score"].to_numpy(dtype=np.float64, na_value=np.nan)
    if not (np.isfinite(y).all() and np.isfinite(scores).all()):
        raise QualityError(f"labels ({label!r}) and scores must be present and finite")
    if spec.task == "binary_classification" and not np.isin(y, (0.0, 1.0)).all():
        raise QualityError(f"{label!r} must be 0 or 1")
    slice_values = _slice_values(model, joined)
    versions = joined["model_version"].astype("string").fillna("unknown").to_numpy(dtype=object)
    stamps = times.astype("datetime64[ns, UTC]").dt.tz_convert(None).to_numpy()
    names = spec.online_metrics
    out: dict[str, VersionQuality] = {}
    for version in sorted(set(versions)):
        rows = versions == version
        slices: dict[str, dict[str, Figures]] = {}
        for column, values in slice_values.items():
            slices[column] = {}
            for value in sorted(set(values[rows])):
                mask = rows & (values == value)
                n = int(mask.sum())
                slices[column][str(value)] = _figures(
                    spec.task, y[mask], scores[mask], names, n >= min_slice_rows
                )
        out[str(version)] = VersionQuality(
            model_version=str(version),
            overall=_figures(spec.task, y[rows], scores[rows], names, True),
            slices=slices,
            first_inference=_utc(stamps[rows].min()),
            last_inference=_utc(stamps[rows].max()),
        )
    return OnlineQuality(spec.name, spec.task, start, end, out)


def _utc(instant: Any) -> datetime:
    stamp = pd.Timestamp(instant)
    moment: datetime = (stamp.tz_localize(UTC) if stamp.tzinfo is None else stamp).to_pydatetime()
    return moment


def _slice_values(model: Model, joined: pd.DataFrame) -> dict[str, np.ndarray]:
    """Each slice's value per row, labelled as the offline evaluation labels it
    (`ml.evaluate.slice_values`: categorical values and numeric bands such as tenure), derived by
    the model's feature code from the raw inputs the prediction logged."""
    from ml.evaluate import slice_values

    if not model.spec.slice_columns:
        return {}
    table = model.features.build_features(joined[list(model.features.input_names)])
    return {column: rows for column, (_, rows) in slice_values(model, table).items()}


# ---------------------------------------------------------------------------------------------
# Against the offline figures
# ---------------------------------------------------------------------------------------------


def _shortfall_of(name: str, online: float | None, offline: float | None) -> float:
    direction = _DIRECTION.get(name)
    if direction is None or not _finite(online) or not _finite(offline):
        return math.nan
    assert online is not None and offline is not None
    if direction == "higher":
        return offline - online
    if direction == "lower":
        return online - offline
    return (online - offline) / offline if offline > 0 else math.nan


def shortfall(
    model: Model, online: VersionQuality | Figures, offline_metrics: Mapping[str, float]
) -> float:
    """How far a version's online headline figure (`HEADLINE`: ROC AUC, RMSE) falls short of its
    offline one, > 0 worse: AUC `offline - online`, RMSE `(online - offline) / offline`. NaN when
    either figure is missing (one class online, no offline figure registered)."""
    figures = online.overall if isinstance(online, VersionQuality) else online
    name = HEADLINE[model.spec.task]
    offline = offline_metrics.get(name)
    return _shortfall_of(name, figures.metrics.get(name), offline)


def offline_metrics(package: Mapping[str, Any]) -> dict[str, float]:
    """A registered version's offline figures: its `metric.<name>` metadata
    (`DescribeModelPackage`'s answer), as numbers."""
    props = package.get("CustomerMetadataProperties") or {}
    out: dict[str, float] = {}
    for key, value in props.items():
        if key.startswith(METRIC_PROPERTY_PREFIX):
            try:
                number = float(value)
            except (TypeError, ValueError):
                continue
            if math.isfinite(number):
                out[key.removeprefix(METRIC_PROPERTY_PREFIX)] = number
    return out


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


# ---------------------------------------------------------------------------------------------
# CloudWatch
# ---------------------------------------------------------------------------------------------


# Labelled rows a version needs for its shortfall to count for the alarm (`metric_data`).
ALARM_MIN_ROWS = 100


def metric_data(
    online: OnlineQuality,
    *,
    endpoint_name: str,
    when: datetime,
    shortfalls: Mapping[str, float] | None = None,
) -> list[dict[str, Any]]:
    """The quality datapoints of a run (`QUALITY_NAMESPACE`): per version (`EndpointName`,
    `ModelVersion`) each defined online metric, `LabeledRows` and `QualityShortfall` (of
    `shortfalls`, by version, when finite); for the alarms (`EndpointName` only) `LabeledRows`
    of every version and the worst `QualityShortfall` of the versions judged on at least
    `ALARM_MIN_ROWS` labelled rows: any version that served in the measured window and fell
    short pages (after a rollback the version serving again is as much in question as the one
    rolled back), a version seen on a handful of rows does not (its figure is noise). Nothing is
    put for the alarm when no version has enough rows (the alarm ignores missing data)."""
    endpoint = {"Name": ENDPOINT_DIMENSION, "Value": endpoint_name}
    shortfalls = shortfalls or {}
    data: list[dict[str, Any]] = []

    def point(name: str, value: float, dims: list[dict[str, str]], unit: str = "None") -> None:
        data.append(
            {
                "MetricName": name,
                "Timestamp": when,
                "Unit": unit,
                "Value": float(value),
                "Dimensions": dims,
            }
        )

    for version, quality in online.versions.items():
        dims = [endpoint, {"Name": MODEL_VERSION_DIMENSION, "Value": version}]
        for name, value in quality.overall.metrics.items():
            if _finite(value):
                assert value is not None
                point(name, value, dims)
        point(LABELED_ROWS_METRIC, quality.overall.n, dims, "Count")
        if _finite(shortfalls.get(version)):
            point(QUALITY_SHORTFALL_METRIC, shortfalls[version], dims)
    point(LABELED_ROWS_METRIC, online.n, [endpoint], "Count")
    judged = [
        shortfalls[version]
        for version, quality in online.versions.items()
        if quality.overall.n >= ALARM_MIN_ROWS and _finite(shortfalls.get(version))
    ]
    if judged:
        point(QUALITY_SHORTFALL_METRIC, max(judged), [endpoint])
    return data


def put_metrics(
    cloudwatch: Any, data: Sequence[Mapping[str, Any]], namespace: str = QUALITY_NAMESPACE
) -> int:
    """PutMetricData into `namespace` (default `QUALITY_NAMESPACE`) in API-sized batches; returns
    the datapoints sent."""
    for start in range(0, len(data), 500):
        cloudwatch.put_metric_data(Namespace=namespace, MetricData=list(data[start : start + 500]))
    return len(data)


# ---------------------------------------------------------------------------------------------
# The lake: quality rows, and their history
# ---------------------------------------------------------------------------------------------

QUALITY_COLUMNS: tuple[Column, ...] = (
    Column(
        "window_end",
        "timestamp",
        "End of the inference times whose predictions were measured (UTC)",
        nullable=False,
    ),
    Column("window_start", "timestamp", "Start of those inference times (UTC)", nullable=False),
    Column("computed_at", "timestamp", "When the job measured them (UTC)", nullable=False),
    Column("endpoint_name", "string", "Endpoint that served the predictions", nullable=False),
    Column("model_version", "string", "Model package version that scored them", nullable=False),
    Column("slice", "string", "'overall', or the slice feature", nullable=False),
    Column(
        "slice_value", "string", "The slice feature's value ('all' when overall)", nullable=False
    ),
    Column("n", "bigint", "Labelled predictions measured", nullable=False, minimum=0),
    Column("metric", "string", "Online metric name (ml.models.ONLINE_METRICS)", nullable=False),
    Column("online", "double", "The figure online; null when undefined or the slice is too small"),
    Column("offline", "double", "The version's registered offline figure (overall rows)"),
    Column("shortfall", "double", "How far online falls short of offline; > 0 is worse"),
)


def quality_dataset(endpoint_name: str) -> Dataset:
    """The quality rows of an endpoint: `quality-reports/<endpoint>/dt=<day of window_end>/`
    in the predictions bucket."""
    if not endpoint_name or "/" in endpoint_name:
        raise QualityError(f"endpoint name {endpoint_name!r} must be non-empty without '/'")
    return Dataset(
        name=f"{QUALITY_PREFIX}/{endpoint_name}",
        zone="predictions",
        description="Online quality per model version, slice and metric, per job run",
        columns=QUALITY_COLUMNS,
    )


def quality_rows(
    online: OnlineQuality,
    *,
    endpoint_name: str,
    computed_at: datetime,
    offline: Mapping[str, Mapping[str, float]] | None = None,
) -> pd.DataFrame:
    """One row per (version, slice value, metric) of `online`, with the version's offline figure
    and shortfall on its overall rows (`offline`: version -> `offline_metrics`)."""
    offline = offline or {}
    records: list[dict[str, Any]] = []
    for version, quality in online.versions.items():
        registered = offline.get(version, {})
        parts: list[tuple[str, str, Figures]] = [(OVERALL, ALL, quality.overall)]
        parts += [
            (column, value, figures)
            for column, values in quality.slices.items()
            for value, figures in values.items()
        ]
        for column, value, figures in parts:
            for metric, figure in figures.metrics.items():
                off = registered.get(metric) if column == OVERALL else None
                gap = _shortfall_of(metric, figure, off)
                records.append(
                    {
                        "window_end": online.window_end,
                        "window_start": online.window_start,
                        "computed_at": computed_at,
                        "endpoint_name": endpoint_name,
                        "model_version": version,
                        "slice": column,
                        "slice_value": value,
                        "n": figures.n,
                        "metric": metric,
                        "online": figure if _finite(figure) else None,
                        "offline": off,
                        "shortfall": gap if math.isfinite(gap) else None,
                    }
                )
    return _typed(records)


def _typed(records: list[dict[str, Any]]) -> pd.DataFrame:
    out: dict[str, pd.Series] = {}
    for column in QUALITY_COLUMNS:
        values = [r[column.name] for r in records]
        if column.type == "timestamp":
            out[column.name] = pd.Series(pd.to_datetime(values, utc=True)).astype(
                column.pandas_dtype
            )
        elif column.type == "double":
            out[column.name] = pd.Series(
                [np.nan if v is None else float(v) for v in values], dtype="float64"
            )
        else:
            out[column.name] = pd.Series(values, dtype=column.pandas_dtype)
    return pd.DataFrame(out)


def write_quality_rows(
    s3: Any,
    bucket: str,
    rows: pd.DataFrame,
    *,
    endpoint_name: str,
    kms_key_arn: str | None = None,
) -> tuple[str, ...]:
    """Add a run's quality rows to the lake (the day of their `window_end`); returns the
    partition manifest keys. The day's earlier rows stay (the lake replaces a partition whole, so
    they are read and written again with the new ones); rows of the same `window_end` and
    version (the same run repeated) are replaced."""
    from ml.lake import manifest_key, read_dataset, write_dataset

    if len(rows) == 0:
        return ()
    dataset = quality_dataset(endpoint_name)
    days = sorted(set(rows["window_end"].dt.strftime("%Y-%m-%d")))
    keys: list[str] = []
    for day in days:
        new = rows.loc[rows["window_end"].dt.strftime("%Y-%m-%d") == day]
        earlier = read_dataset(dataset, bucket, dt=day, s3=s3)
        if len(earlier):
            replaced = earlier.set_index(["window_end", "model_version"]).index.isin(
                new.set_index(["window_end", "model_version"]).index
            )
            new = pd.concat([earlier.loc[~replaced], new], ignore_index=True)
        result = write_dataset(new, dataset, bucket, kms_key_id=kms_key_arn, dt=day, s3=s3)
        keys += [manifest_key(dataset.prefix, p.dt) for p in result.partitions]
    return tuple(keys)


def read_quality_history(
    s3: Any, bucket: str, *, endpoint_name: str, since: datetime, until: datetime
) -> list[dict[str, Any]]:
    """The overall figures of the runs whose `window_end` is in `[since, until]`, one entry per
    (window_end, version), oldest first: `{"window_end": ISO, "model_version", "n",
    "metrics": {name: float | None}, "offline": {name: float}}` (`ml.monitor_report`'s
    history)."""
    from ml.lake import read_dataset

    dataset = quality_dataset(endpoint_name)
    frame = read_dataset(
        dataset,
        bucket,
        start=since.astimezone(UTC).date(),
        end=until.astimezone(UTC).date(),
        s3=s3,
    )
    frame = frame.loc[
        (frame["slice"] == OVERALL)
        & (frame["window_end"] >= pd.Timestamp(since))
        & (frame["window_end"] <= pd.Timestamp(until))
    ]
    history: list[dict[str, Any]] = []
    for (end, version), group in frame.groupby(["window_end", "model_version"], sort=True):
        history.append(
            {
                "window_end": pd.Timestamp(end).isoformat(),
                "model_version": str(version),
                "n": int(group["n"].max()),
                "metrics": {
                    str(m): (None if pd.isna(v) else float(v))
                    for m, v in zip(group["metric"], group["online"], strict=True)
                },
                "offline": {
                    str(m): float(v)
                    for m, v in zip(group["metric"], group["offline"], strict=True)
                    if not pd.isna(v)
                },
            }
        )
    return history


# ---------------------------------------------------------------------------------------------
# The registry
# ---------------------------------------------------------------------------------------------

# A model package version's ARN and the group ARN its versions belong to.
_PACKAGE_ARN = re.compile(
    r"(?P<head>arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}):model-package/"
    r"(?P<group>[A-Za-z0-9](?:-*[A-Za-z0-9]){0,62})/(?P<version>\d+)"
)
_GROUP_ARN = re.compile(
    r"(?P<head>arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}):model-package-group/"
    r"(?P<group>[A-Za-z0-9](?:-*[A-Za-z0-9]){0,62})"
)


def version_key(model_package_arn: str) -> str:
    """`<group>/<version>` of a model package version ARN: what the endpoint answers with and
    the prediction logs record (`ml.inference.served_version`)."""
    match = _PACKAGE_ARN.fullmatch(model_package_arn)
    if match is None:
        raise QualityError(
            f"{model_package_arn!r} is not a model package version ARN; expected "
            "arn:aws:sagemaker:<region>:<account>:model-package/<group>/<version>"
        )
    return f"{match.group('group')}/{match.group('version')}"


def package_arn(group_arn: str, model_version: str) -> str | None:
    """The ARN of version `<group>/<n>` in the group `group_arn`; None when the version is not
    one of that group's (`unregistered`, `unknown`, another group)."""
    match = _GROUP_ARN.fullmatch(group_arn)
    if match is None:
        raise QualityError(
            f"{group_arn!r} is not a model package group ARN; expected "
            "arn:aws:sagemaker:<region>:<account>:model-package-group/<group>"
        )
    group, _, number = model_version.partition("/")
    if group != match.group("group") or not number.isdigit():
        return None
    return f"{match.group('head')}:model-package/{group}/{number}"


def registry_properties(quality: VersionQuality, window_end: datetime) -> dict[str, str]:
    """The `online.*` metadata of a version: each defined overall metric, the rows measured and
    the end of the window (values SageMaker accepts: digits, letters, `.:+-`)."""
    props = {
        f"{ONLINE_PROPERTY_PREFIX}{name}": repr(float(value))
        for name, value in quality.overall.metrics.items()
        if value is not None and _finite(value)
    }
    props[f"{ONLINE_PROPERTY_PREFIX}rows"] = str(quality.overall.n)
    props[f"{ONLINE_PROPERTY_PREFIX}window_end"] = window_end.astimezone(UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    return props


def update_registry_metadata(
    sagemaker: Any,
    model_package_arn: str,
    online: OnlineQuality,
    *,
    package: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """Write the version's online figures (`online.<metric>`, `online.rows`, `online.window_end`)
    to its model package's metadata, beside its offline `metric.<name>`; returns what was written.

    `package` is the version's `DescribeModelPackage` answer when the caller has it (else it is
    read). The request carries the full metadata (the existing properties with the new `online.*`
    replacing the old ones, stale ones removed) and the approval status just read, so it means the
    same whether the service merges or replaces the properties (as `ml.deploy` records a
    deployment): the version's offline figures, lineage and approval are never lost.
    """
    key = version_key(model_package_arn)
    quality = online.versions.get(key)
    if quality is None:
        raise QualityError(
            f"no labelled predictions of version {key} in the window: known "
            f"{sorted(online.versions)}"
        )
    current = package or sagemaker.describe_model_package(ModelPackageName=model_package_arn)
    props = registry_properties(quality, online.window_end)
    existing = dict(current.get("CustomerMetadataProperties") or {})
    stale = sorted(k for k in existing if k.startswith(ONLINE_PROPERTY_PREFIX) and k not in props)
    merged = {k: v for k, v in existing.items() if k not in stale} | props
    if len(merged) > MAX_PROPERTIES:
        raise QualityError(
            f"{model_package_arn} would hold {len(merged)} metadata properties; SageMaker "
            f"allows {MAX_PROPERTIES}: remove some before recording online quality"
        )
    request: dict[str, Any] = {
        "ModelPackageArn": model_package_arn,
        "CustomerMetadataProperties": merged,
    }
    if stale:
        request["CustomerMetadataPropertiesToRemove"] = stale
    if current.get("ModelApprovalStatus"):
        request["ModelApprovalStatus"] = current["ModelApprovalStatus"]
    if current.get("ApprovalDescription"):
        request["ApprovalDescription"] = current["ApprovalDescription"]
    sagemaker.update_model_package(**request)
    return props
