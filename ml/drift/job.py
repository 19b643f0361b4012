"""The scheduled monitoring job of a model: capture -> prediction logs -> drift, then, when
configured, online quality, training-serving skew and model age -> metrics, lake, registry, page.

`python -m ml.drift` runs `main` on the last window (the processing job the stack schedules, one per
model, which `MLPLAT_MODEL` names as it does for the pipeline's steps); `run_drift_job` is what
`mlplat monitor drift` and the sandbox run for any window. The statistics live in `ml.drift`,
`ml.quality`, `ml.skew`; the labels in `ml.labels`; the page in `ml.monitor_report`.

Each part after drift runs only when its configuration is there, and the summary says which ran,
which were skipped (and what configures them) and which failed:

* quality (`labels_bucket`): the prediction logs of `[until - horizon - lookback, until - horizon)`
  (`ModelSpec.label_horizon_days`, `quality_lookback_days`) joined with the outcomes observed
  since, per version; with `model_package_group_arn` each version's offline figures are read from
  the registry (shortfall) and its online figures written there. Metrics (`QUALITY_NAMESPACE`),
  rows in the lake (`quality-reports/<endpoint>/`);
* skew (`model_key`): a sample (`skew_sample`) of the window's rows scored by the version that
  served last, re-scored through the training path by the served estimator;
* age (`model_key`): days since the served artifact was trained (its `lineage.json`).

A part that fails does not stop the others; `main` then exits 1 (the job's failure alarm pages).
The page (`ml.monitor_report.render_html`: drift, quality history, skew, age) replaces the drift
report's HTML at its key; the JSON drift report stays beside it.

What the job reads and writes (the contract of its role's least privilege):

* models bucket: GetObject `baseline_key` and `model_key`;
* predictions bucket: List/Get the capture `<capture_root>/<endpoint>/`; List/Get/Put/Delete the
  model's predictions table `<predictions prefix>/` (prediction logs; quality reads them back) and
  `quality-reports/<endpoint>/`; Put `drift-reports/<endpoint>/`; SSE-KMS with `kms_key_arn`;
* labels (raw) bucket: List/Get `customer_outcomes/`;
* CloudWatch PutMetricData in `MLPlatform/Drift` and `MLPlatform/Quality`;
* SageMaker DescribeModelPackage and UpdateModelPackage on the group's versions.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ml.contracts import DRIFT_ENV_PREFIX as ENV_PREFIX
from ml.contracts import (
    ENDPOINT_DIMENSION,
    MODEL_AGE_METRIC,
    MODEL_ENV,
    REPORT_PREFIX,
    SCORED_ROWS_METRIC,
    SKEW_SHARE_METRIC,
)
from ml.drift import (
    Baseline,
    DriftError,
    DriftReport,
    compute_drift,
    metric_data,
    put_metrics,
    report_keys,
)

if TYPE_CHECKING:
    import pandas as pd

    from ml.model import Model
    from ml.quality import OnlineQuality
    from ml.skew import ServedArtifact, SkewResult

log = logging.getLogger("ml.drift.job")

_ENV_FIELDS = (
    "model",
    "predictions_bucket",
    "models_bucket",
    "baseline_key",
    "endpoint_name",
    "variant_name",
    "threshold",
    "window_hours",
    "kms_key_arn",
    "capture_root",
    "model_key",
    "labels_bucket",
    "model_package_group_arn",
    "quality_margin",
    "skew_tolerance",
    "skew_sample",
    "quality_lookback_days",
)
_GROUP_ARN = re.compile(
    r"arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:model-package-group/"
    r"[A-Za-z0-9](?:-*[A-Za-z0-9]){0,62}"
)


@dataclass(frozen=True, slots=True)
class DriftJobConfig:
    model: str  # the model whose endpoint is watched (a package of `ml.models`)
    predictions_bucket: str
    models_bucket: str
    baseline_key: str
    endpoint_name: str
    threshold: float
    variant_name: str = "primary"
    window_hours: int = 1
    kms_key_arn: str | None = None
    capture_root: str = "capture"
    write_prediction_logs: bool = True
    # --- optional: each configures a part of the job (None: the part is skipped, and said so) ---
    # The served model.tar.gz in the models bucket: skew (its estimator) and age (its lineage).
    model_key: str | None = None
    # The raw bucket holding the outcomes (`ml.schema.CUSTOMER_OUTCOMES.prefix`): online quality.
    labels_bucket: str | None = None
    # The model's registry group: offline figures (shortfall) and online metadata per version.
    model_package_group_arn: str | None = None
    # How far online quality may fall short of offline before the run reports a breach (the
    # stack's QualityShortfall alarm uses its own threshold from settings).
    quality_margin: float = 0.05
    skew_tolerance: float = 1e-6
    skew_sample: int = 1000
    # Labelled predictions of the last N days whose label horizon has passed.
    quality_lookback_days: int = 7

    def __post_init__(self) -> None:
        problems = [
            f"{name} is empty"
            for name in (
                "model",
                "predictions_bucket",
                "models_bucket",
                "baseline_key",
                "endpoint_name",
                "variant_name",
            )
            if not getattr(self, name)
        ]
        if not (math.isfinite(self.threshold) and self.threshold > 0):
            problems.append(f"threshold must be > 0, got {self.threshold}")
        if not 1 <= self.window_hours <= 24 * 31:
            problems.append(f"window_hours must be 1..744, got {self.window_hours}")
        for name in ("model_key", "labels_bucket", "model_package_group_arn"):
            value = getattr(self, name)
            if value is not None and not value.strip():
                problems.append(f"{name} is empty (leave it unset to skip what it configures)")
        if self.model_key is not None and (self.model_key.startswith("/") or "*" in self.model_key):
            problems.append(f"model_key {self.model_key!r}: a key inside the models bucket")
        if self.model_package_group_arn and not _GROUP_ARN.fullmatch(self.model_package_group_arn):
            problems.append(
                f"model_package_group_arn {self.model_package_group_arn!r}: expected "
                "arn:aws:sagemaker:<region>:<account>:model-package-group/<group>"
            )
        if not (math.isfinite(self.quality_margin) and self.quality_margin >= 0):
            problems.append(f"quality_margin must be >= 0, got {self.quality_margin}")
        if not (math.isfinite(self.skew_tolerance) and self.skew_tolerance >= 0):
            problems.append(f"skew_tolerance must be >= 0, got {self.skew_tolerance}")
        if not 1 <= self.skew_sample <= 1_000_000:
            problems.append(f"skew_sample must be 1..1000000, got {self.skew_sample}")
        if not 1 <= self.quality_lookback_days <= 366:
            problems.append(
                f"quality_lookback_days must be 1..366, got {self.quality_lookback_days}"
            )
        if problems:
            raise DriftError("drift job configuration: " + "; ".join(problems))

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> DriftJobConfig:
        """From `MLPLAT_DRIFT_*` variables and `MLPLAT_MODEL` (what the processing job's
        environment carries)."""

        def get(name: str) -> str | None:
            return env.get(_variable(name)) or None

        required = (
            "model",
            "predictions_bucket",
            "models_bucket",
            "baseline_key",
            "endpoint_name",
            "threshold",
        )
        missing = [_variable(n) for n in required if get(n) is None]
        if missing:
            raise DriftError(f"drift job environment lacks {', '.join(missing)}")

        def number(name: str, kind: Callable[[str], Any], default: str) -> Any:
            text = get(name) or default
            try:
                return kind(text)
            except ValueError:
                raise DriftError(
                    f"drift job environment: {_variable(name)}={text!r} is not a valid "
                    f"{kind.__name__}"
                ) from None

        try:
            threshold = float(get("threshold") or "")
            window = int(get("window_hours") or "1")
        except ValueError as exc:
            raise DriftError(f"drift job environment: {exc}") from None
        return cls(
            model=str(get("model")),
            predictions_bucket=str(get("predictions_bucket")),
            models_bucket=str(get("models_bucket")),
            baseline_key=str(get("baseline_key")),
            endpoint_name=str(get("endpoint_name")),
            threshold=threshold,
            variant_name=get("variant_name") or "primary",
            window_hours=window,
            kms_key_arn=get("kms_key_arn"),
            capture_root=get("capture_root") or "capture",
            model_key=get("model_key"),
            labels_bucket=get("labels_bucket"),
            model_package_group_arn=get("model_package_group_arn"),
            quality_margin=number("quality_margin", float, "0.05"),
            skew_tolerance=number("skew_tolerance", float, "1e-6"),
            skew_sample=number("skew_sample", int, "1000"),
            quality_lookback_days=number("quality_lookback_days", int, "7"),
        )

    def to_env(self) -> dict[str, str]:
        out = {}
        for name in _ENV_FIELDS:
            value = getattr(self, name)
            if value is not None:
                out[_variable(name)] = str(value)
        return out


def _variable(field_name: str) -> str:
    """The environment variable of a config field: `MLPLAT_DRIFT_<FIELD>`, and the model in
    `MLPLAT_MODEL` (`ml.contracts.MODEL_ENV`), the variable every model-bound job reads."""
    return MODEL_ENV if field_name == "model" else ENV_PREFIX + field_name.upper()


Status = Literal["ran", "skipped", "failed"]


@dataclass(frozen=True, slots=True)
class Part:
    """What became of one part of a run (`quality`, `skew`, `age`): ran, skipped (with what
    configures it) or failed (with the error)."""

    status: Status
    detail: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"status": self.status, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class QualityRun:
    """The online quality part of a run: the figures, each version's offline figures and
    shortfall (when the registry is configured), what was written where."""

    online: OnlineQuality
    offline: Mapping[str, Mapping[str, float]]
    shortfalls: Mapping[str, float]
    breached: tuple[str, ...]  # versions whose shortfall exceeds `quality_margin`
    row_keys: tuple[str, ...]
    registry_updated: tuple[str, ...]  # model package ARNs whose metadata was written

    def to_dict(self) -> dict[str, Any]:
        return {
            "window": [self.online.window_start.isoformat(), self.online.window_end.isoformat()],
            "labeled_rows": self.online.n,
            "versions": {
                version: {
                    "n": q.overall.n,
                    "metrics": dict(q.overall.metrics),
                    "offline": dict(self.offline.get(version, {})),
                    "shortfall": _json_number(self.shortfalls.get(version)),
                }
                for version, q in self.online.versions.items()
            },
            "breached": list(self.breached),
            "rows": list(self.row_keys),
            "registry_updated": list(self.registry_updated),
        }


def _json_number(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


@dataclass(frozen=True, slots=True)
class DriftJobResult:
    report: DriftReport | None  # None when the window held no usable rows
    n_events: int
    n_rows: int
    report_keys: tuple[str, ...]
    prediction_log_keys: tuple[str, ...]
    metrics_sent: int  # drift datapoints (MLPlatform/Drift)
    skipped: Mapping[str, int]
    # --- the optional parts ---
    parts: Mapping[str, Part] = field(default_factory=dict)
    quality: QualityRun | None = None
    skew: SkewResult | None = None
    age_days: float | None = None
    quality_metrics_sent: int = 0  # datapoints in MLPlatform/Quality
    page_key: str | None = None  # the monitor page (the drift report's .html key)
    model_version: str | None = None  # the version that served last in the window

    @property
    def failed(self) -> tuple[str, ...]:
        return tuple(name for name, part in self.parts.items() if part.status == "failed")


def run_drift_job(
    config: DriftJobConfig,
    *,
    since: datetime,
    until: datetime,
    s3: Any | None = None,
    cloudwatch: Any | None = None,
    sagemaker: Any | None = None,
) -> DriftJobResult:
    """Log the window's predictions to the lake, compute drift, write the report, put metrics;
    then the configured parts (quality, skew, age) and the monitor page.

    Prediction logs: the lake replaces a day's partition whole, so the job re-reads the capture from
    the start of `since`'s UTC day and rewrites the day(s) touched (`ml.prediction_logs`). Drift:
    the rows of `[since, until)` only. A window without usable rows puts only `ScoredRows = 0` (the
    PSI alarms keep their state: they treat missing data as `ignore`) and writes no drift report.
    """
    import boto3

    from ml.capture import read_capture
    from ml.models import ModelSpecError, load
    from ml.prediction_logs import between, day_window, flatten, valid_rows, write_prediction_logs

    try:
        model = load(config.model)
    except ModelSpecError as exc:
        raise DriftError(f"drift job configuration: {exc}") from None
    s3 = s3 or boto3.client("s3")
    cloudwatch = cloudwatch or boto3.client("cloudwatch")
    baseline = Baseline.from_s3(s3, config.models_bucket, config.baseline_key)
    read_from, _ = day_window(since, until) if config.write_prediction_logs else (since, until)
    records = list(
        read_capture(
            s3,
            config.predictions_bucket,
            endpoint=config.endpoint_name,
            variant=config.variant_name,
            since=read_from,
            until=until,
            root=config.capture_root,
        )
    )
    frame, flat = flatten(
        model, records, endpoint_name=config.endpoint_name, variant_name=config.variant_name
    )
    valid, rejected = valid_rows(model, frame)
    log_keys: tuple[str, ...] = ()
    if config.write_prediction_logs and len(valid):
        log_keys = write_prediction_logs(
            model, s3, config.predictions_bucket, valid, kms_key_arn=config.kms_key_arn
        )
    skipped = {**flat.skipped, **rejected}
    window = between(valid, since, until)
    in_window = sum(1 for r in records if since <= r.inference_time < until)
    report: DriftReport | None = None
    keys: tuple[str, ...] = ()
    if len(window):
        table = model.features.build_features(window)
        report = compute_drift(
            baseline,
            table,
            window["score"].to_numpy(dtype=np.float64),
            threshold=config.threshold,
            endpoint_name=config.endpoint_name,
            window_start=since,
            window_end=until,
            n_rejected=len(between(frame, since, until)) - len(window),
            rejected=skipped,
        )
        json_key, html_key = report_keys(report)
        _put(s3, config, json_key, report.to_json(), "application/json")
        keys = (json_key, html_key)
        sent = put_metrics(cloudwatch, metric_data(report))
    else:
        sent = put_metrics(
            cloudwatch,
            [
                {
                    "MetricName": SCORED_ROWS_METRIC,
                    "Timestamp": until,
                    "Unit": "Count",
                    "Value": 0.0,
                    "Dimensions": [{"Name": ENDPOINT_DIMENSION, "Value": config.endpoint_name}],
                }
            ],
        )
    served_rows, version = _last_version(window)
    monitor = _Monitor(config, model, s3, cloudwatch, sagemaker, since, until)
    monitor.run(served_rows)
    if report is None and not any(p.status == "ran" for p in monitor.parts.values()):
        monitor.parts["page"] = Part("skipped", "nothing measured in the window")
    else:
        monitor.attempt("page", lambda: monitor.page(report, version, keys[1] if keys else None))
    return DriftJobResult(
        report,
        in_window,
        len(window),
        keys,
        log_keys,
        sent,
        skipped,
        parts=monitor.parts,
        quality=monitor.quality,
        skew=monitor.skew,
        age_days=monitor.age_days,
        quality_metrics_sent=monitor.sent,
        page_key=monitor.page_key,
        model_version=version,
    )


def _put(s3: Any, config: DriftJobConfig, key: str, body: str, content_type: str) -> None:
    sse = {"ServerSideEncryption": "aws:kms"}
    if config.kms_key_arn:
        sse["SSEKMSKeyId"] = config.kms_key_arn
    s3.put_object(
        Bucket=config.predictions_bucket,
        Key=key,
        Body=body.encode(),
        ContentType=content_type,
        **sse,
    )


def page_key(endpoint_name: str, window_end: datetime) -> str:
    """The monitor page of a run: the drift report's `.html` key (`ml.drift.report_keys`), also
    when the window held no traffic and there is no drift report."""
    end = window_end.astimezone(UTC)
    return f"{REPORT_PREFIX}/{endpoint_name}/dt={end:%Y-%m-%d}/drift-{end:%Y%m%dT%H%M%SZ}.html"


def _last_version(window: pd.DataFrame) -> tuple[pd.DataFrame, str | None]:
    """The window's rows scored by the version that served last, and that version."""
    if len(window) == 0:
        return window, None
    last = window.sort_values("inference_time", kind="stable")["model_version"].iloc[-1]
    if last is None or last != last:  # missing (NA)
        return window, None
    return window.loc[window["model_version"] == last], str(last)


class _Monitor:
    """The optional parts of one run (quality, skew, age), each recorded in `parts`."""

    def __init__(
        self,
        config: DriftJobConfig,
        model: Model,
        s3: Any,
        cloudwatch: Any,
        sagemaker: Any | None,
        since: datetime,
        until: datetime,
    ) -> None:
        self.config = config
        self.model = model
        self.s3 = s3
        self.cloudwatch = cloudwatch
        self._sagemaker = sagemaker
        self.since = since
        self.until = until
        self.parts: dict[str, Part] = {}
        self.quality: QualityRun | None = None
        self.skew: SkewResult | None = None
        self.age_days: float | None = None
        self.sent = 0
        self.history: list[dict[str, Any]] = []
        self.page_key: str | None = None

    @property
    def sagemaker(self) -> Any:
        if self._sagemaker is None:
            import boto3

            self._sagemaker = boto3.client("sagemaker")
        return self._sagemaker

    def attempt(self, name: str, step: Callable[[], str]) -> None:
        try:
            self.parts[name] = Part("ran", step())
        except Exception as exc:  # one part's failure must not stop the others
            log.exception("%s failed", name)
            self.parts[name] = Part("failed", f"{type(exc).__name__}: {exc}")

    def run(self, served_rows: pd.DataFrame) -> None:
        config = self.config
        if config.labels_bucket is None:
            self.parts["quality"] = Part("skipped", "not configured (MLPLAT_DRIFT_LABELS_BUCKET)")
        else:
            self.attempt("quality", self._quality)
        if config.model_key is None:
            for name in ("skew", "age"):
                self.parts[name] = Part("skipped", "not configured (MLPLAT_DRIFT_MODEL_KEY)")
            return
        from ml.skew import load_served

        try:
            artifact = load_served(self.model, self.s3, config.models_bucket, config.model_key)
        except Exception as exc:  # skew and age need it; quality and the page do not
            log.exception("reading the served model failed")
            detail = f"the served model could not be read: {type(exc).__name__}: {exc}"
            self.parts["skew"] = self.parts["age"] = Part("failed", detail)
            return
        if len(served_rows) == 0:
            self.parts["skew"] = Part("skipped", "no scored rows in the window")
        else:
            self.attempt("skew", lambda: self._skew(artifact, served_rows))
        self.attempt("age", lambda: self._age(artifact))

    # --- quality ---------------------------------------------------------------------------

    def _quality(self) -> str:
        from ml import quality
        from ml.labels import join_labels, label_window, read_labels
        from ml.lake import read_dataset

        config, model = self.config, self.model
        start, end = label_window(model, self.until, config.quality_lookback_days)
        logged = read_dataset(
            model.spec.predictions,
            config.predictions_bucket,
            start=start.date(),
            end=(end - timedelta(microseconds=1)).date(),
            s3=self.s3,
        )
        times = logged["inference_time"]
        logged = logged.loc[(times >= start) & (times < end)]
        labels = read_labels(model, self.s3, str(config.labels_bucket), start, self.until)
        joined = join_labels(model, logged, labels)
        online = quality.online_quality(model, joined, window_start=start, window_end=end)
        offline: dict[str, dict[str, float]] = {}
        shortfalls: dict[str, float] = {}
        updated: list[str] = []
        if config.model_package_group_arn:
            for version in online.versions:
                arn = quality.package_arn(config.model_package_group_arn, version)
                if arn is None:
                    continue
                package = self.sagemaker.describe_model_package(ModelPackageName=arn)
                offline[version] = quality.offline_metrics(package)
                shortfalls[version] = quality.shortfall(
                    model, online.versions[version], offline[version]
                )
                quality.update_registry_metadata(self.sagemaker, arn, online, package=package)
                updated.append(arn)
        rows = quality.quality_rows(
            online,
            endpoint_name=config.endpoint_name,
            computed_at=self.until,
            offline=offline,
        )
        row_keys = quality.write_quality_rows(
            self.s3,
            config.predictions_bucket,
            rows,
            endpoint_name=config.endpoint_name,
            kms_key_arn=config.kms_key_arn,
        )
        self.sent += quality.put_metrics(
            self.cloudwatch,
            quality.metric_data(
                online, endpoint_name=config.endpoint_name, when=self.until, shortfalls=shortfalls
            ),
        )
        breached = tuple(
            sorted(
                v
                for v, gap in shortfalls.items()
                if math.isfinite(gap) and gap > config.quality_margin
            )
        )
        self.quality = QualityRun(online, offline, shortfalls, breached, row_keys, tuple(updated))
        self.history = quality.read_quality_history(
            self.s3,
            config.predictions_bucket,
            endpoint_name=config.endpoint_name,
            since=end - timedelta(days=config.quality_lookback_days),
            until=end,
        )
        registry = (
            f", registry: {len(updated)} version(s) updated"
            if config.model_package_group_arn
            else ", registry: not configured (MLPLAT_DRIFT_MODEL_PACKAGE_GROUP_ARN)"
        )
        return (
            f"{online.n} labelled prediction(s) of {start:%Y-%m-%d} to {end:%Y-%m-%d} over "
            f"{len(online.versions)} version(s){registry}"
            + (
                f"; short of offline by more than {config.quality_margin:g}: {list(breached)}"
                if breached
                else ""
            )
        )

    # --- skew and age ----------------------------------------------------------------------

    def _endpoint_point(self, name: str, value: float, unit: str = "None") -> None:
        from ml.quality import put_metrics as put_quality_metrics

        datum = {
            "MetricName": name,
            "Timestamp": self.until,
            "Unit": unit,
            "Value": float(value),
            "Dimensions": [{"Name": ENDPOINT_DIMENSION, "Value": self.config.endpoint_name}],
        }
        self.sent += put_quality_metrics(self.cloudwatch, [datum])

    def _skew(self, artifact: ServedArtifact, rows: pd.DataFrame) -> str:
        from ml.skew import measure_skew

        result = measure_skew(
            self.model,
            artifact.estimator,
            rows,
            tolerance=self.config.skew_tolerance,
            sample=self.config.skew_sample,
        )
        self.skew = result
        self._endpoint_point(SKEW_SHARE_METRIC, result.share)
        return f"{result.n_differ} of {result.n} re-scored row(s) differ (share {result.share:.4f})"

    def _age(self, artifact: ServedArtifact) -> str:
        from ml.skew import model_age_days

        self.age_days = model_age_days(artifact.lineage, self.until)
        self._endpoint_point(MODEL_AGE_METRIC, self.age_days)
        return f"{self.age_days:.2f} day(s) since {artifact.lineage.get('created_at')}"

    # --- the page --------------------------------------------------------------------------

    def page(self, report: DriftReport | None, version: str | None, html_key: str | None) -> str:
        """Render and put the monitor page at the drift report's .html key (`page_key`)."""
        from ml.monitor_report import render_html

        latest = self.quality.online.latest if self.quality is not None else None
        html = render_html(
            model=self.model.name,
            endpoint=self.config.endpoint_name,
            model_version=version or (latest.model_version if latest else None),
            drift=report,
            quality_history=self.history,
            skew=(
                {"n": self.skew.n, "n_differ": self.skew.n_differ, "share": self.skew.share}
                if self.skew is not None
                else None
            ),
            age_days=self.age_days,
        )
        key = html_key or page_key(self.config.endpoint_name, self.until)
        _put(self.s3, self.config, key, html, "text/html; charset=utf-8")
        self.page_key = key
        return f"s3://{self.config.predictions_bucket}/{key}"


def main(env: Mapping[str, str] | None = None, now: datetime | None = None) -> int:
    """Entry point of the scheduled processing job (`python -m ml.drift`): the last window. Exits
    1 when a configured part failed (after running the others)."""
    config = DriftJobConfig.from_env(os.environ if env is None else env)
    until = (now or datetime.now(UTC)).replace(minute=0, second=0, microsecond=0)
    result = run_drift_job(config, since=until - timedelta(hours=config.window_hours), until=until)
    summary = {
        "events": result.n_events,
        "rows": result.n_rows,
        "metrics": result.metrics_sent,
        "quality_metrics": result.quality_metrics_sent,
        "drifted_features": list(result.report.drifted_features) if result.report else [],
        "prediction_drifted": bool(result.report and result.report.prediction_drifted),
        "report": list(result.report_keys),
        "page": result.page_key,
        "model_version": result.model_version,
        "skipped": dict(result.skipped),
        "parts": {name: part.to_dict() for name, part in result.parts.items()},
        "quality": result.quality.to_dict() if result.quality else None,
        # counts only: the worst rows hold customer ids and inputs, which must not reach the
        # job's log (CloudWatch Logs, out of reach of a deletion request: `mlplat data forget`)
        "skew": (
            {k: v for k, v in result.skew.to_dict().items() if k != "worst"}
            if result.skew
            else None
        ),
        "age_days": result.age_days,
    }
    print(json.dumps(summary, sort_keys=True, default=str))
    return 1 if result.failed else 0
