"""The scheduled drift job: capture -> prediction logs -> features -> drift -> report + metrics.

`python -m ml.drift` runs `main` on the last window (the processing job the stack schedules, one per
model, which `MLPLAT_MODEL` names as it does for the pipeline's steps); `run_drift_job` is what
`mlplat monitor drift` and the sandbox run for any window. The statistics live in `ml.drift`.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from ml.contracts import DRIFT_ENV_PREFIX as ENV_PREFIX
from ml.contracts import ENDPOINT_DIMENSION, MODEL_ENV, SCORED_ROWS_METRIC
from ml.drift import (
    Baseline,
    DriftError,
    DriftReport,
    compute_drift,
    metric_data,
    put_metrics,
    write_report,
)

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


@dataclass(frozen=True, slots=True)
class DriftJobResult:
    report: DriftReport | None  # None when the window held no usable rows
    n_events: int
    n_rows: int
    report_keys: tuple[str, ...]
    prediction_log_keys: tuple[str, ...]
    metrics_sent: int
    skipped: Mapping[str, int]


def run_drift_job(
    config: DriftJobConfig,
    *,
    since: datetime,
    until: datetime,
    s3: Any | None = None,
    cloudwatch: Any | None = None,
) -> DriftJobResult:
    """Log the window's predictions to the lake, compute drift, write the report, put metrics.

    Prediction logs: the lake replaces a day's partition whole, so the job re-reads the capture from
    the start of `since`'s UTC day and rewrites the day(s) touched (`ml.prediction_logs`). Drift:
    the rows of `[since, until)` only. A window without usable rows puts only `ScoredRows = 0` (the
    PSI alarms keep their state: they treat missing data as `ignore`) and writes no report.
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
        keys = write_report(s3, config.predictions_bucket, report, kms_key_arn=config.kms_key_arn)
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
    return DriftJobResult(report, in_window, len(window), keys, log_keys, sent, skipped)


def main(env: Mapping[str, str] | None = None, now: datetime | None = None) -> int:
    """Entry point of the scheduled processing job (`python -m ml.drift`): the last window."""
    config = DriftJobConfig.from_env(os.environ if env is None else env)
    until = (now or datetime.now(UTC)).replace(minute=0, second=0, microsecond=0)
    result = run_drift_job(config, since=until - timedelta(hours=config.window_hours), until=until)
    summary = {
        "events": result.n_events,
        "rows": result.n_rows,
        "metrics": result.metrics_sent,
        "drifted_features": list(result.report.drifted_features) if result.report else [],
        "prediction_drifted": bool(result.report and result.report.prediction_drifted),
        "report": list(result.report_keys),
        "skipped": dict(result.skipped),
    }
    print(json.dumps(summary, sort_keys=True))
    return 0
