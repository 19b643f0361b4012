"""Training-serving skew, and the served artifact's age.

Skew: the endpoint answers with the artifact's own copy of the feature code (`code/ml/...` in
`model.tar.gz`) and the training pipeline derives features with this package's. When the two
disagree (a feature changed on one side only, a handler edited by hand, a library that parses
differently), the endpoint scores differently from what training measured, silently.
`measure_skew` re-scores a seeded sample of the captured raw inputs through the training path
(`model.features.build_features`, `model.features.feature_matrix`, `model.predict`) with the served
estimator, and compares with the score the endpoint returned: the share of rows that differ by
more than `tolerance` (relative to the score's magnitude when that exceeds 1) is the `SkewShare`
metric. A row the training path refuses outright (its validation rejects what the endpoint
accepted) counts as differing too. A faithful handler gives 0 (the handler folds a linear model
into one dot product, which agrees with the pipeline to ~1e-15).

Age: `model_age_days` is the days since the served version was trained, from the `created_at` of
the `lineage.json` that training writes beside the model (`ml.contracts.LINEAGE_FILE`); the
`ModelAgeDays` metric's alarm fires past the retraining period.

`load_served` reads both from the served `model.tar.gz` in the models bucket (extracted the way
`mlplat serve` extracts it: no paths out of the directory).
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ml.contracts import LINEAGE_FILE

if TYPE_CHECKING:
    from ml.model import Model

WORST_EXAMPLES = 5


class SkewError(ValueError):
    """Skew or age that cannot be measured as asked (and why)."""


@dataclass(frozen=True, slots=True)
class SkewResult:
    """`n` captured rows re-scored, `n_differ` of them differ; `worst` the rows that differ most
    (customer, inference time, both scores, the difference, the inputs)."""

    n: int
    n_differ: int
    share: float
    worst: list[dict[str, Any]] = field(default_factory=list)
    # rows the training path's validation refused (they count as differing), by reason
    refused: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "n_differ": self.n_differ,
            "share": self.share,
            "worst": self.worst,
            "refused": self.refused,
        }


def measure_skew(
    model: Model,
    estimator: Any,
    captured_rows: pd.DataFrame,
    *,
    tolerance: float = 1e-6,
    sample: int = 1000,
    seed: int = 0,
) -> SkewResult:
    """Re-score up to `sample` rows of `captured_rows` (prediction-log rows of `model`: its raw
    inputs and the endpoint's `score`, `ml.prediction_logs`) through the training path with
    `estimator` (the served one) and count the rows whose score differs from the endpoint's by
    more than `tolerance * max(1, |endpoint score|)`. The sample is drawn without replacement
    with `seed`; fewer rows than `sample` are all taken."""
    if not (math.isfinite(tolerance) and tolerance >= 0):
        raise SkewError(f"tolerance must be a finite number >= 0, got {tolerance}")
    if sample < 1:
        raise SkewError(f"sample must be at least 1 row, got {sample}")
    inputs = list(model.features.input_names)
    missing = [c for c in (*inputs, "score") if c not in captured_rows.columns]
    if missing:
        raise SkewError(f"the captured rows lack column(s) {missing}")
    if len(captured_rows) == 0:
        return SkewResult(0, 0, 0.0, [])
    rows = captured_rows.reset_index(drop=True)
    if len(rows) > sample:
        chosen = np.sort(np.random.default_rng(seed).choice(len(rows), sample, replace=False))
        rows = rows.iloc[chosen].reset_index(drop=True)
    served = rows["score"].to_numpy(dtype=np.float64, na_value=np.nan)
    valid, report = model.features.validate_frame(rows[inputs], on_invalid="reject")
    accepted = np.zeros(len(rows), dtype=bool)
    accepted[valid.index.to_numpy()] = True
    rescored = np.full(len(rows), np.nan)
    if accepted.any():
        table = model.features.build_features(valid)
        rescored[accepted] = model.predict(estimator, model.features.feature_matrix(table))
    difference = np.abs(rescored - served)
    scale = np.maximum(1.0, np.abs(np.nan_to_num(served)))
    differ = ~accepted | ~np.isfinite(difference) | (difference > tolerance * scale)
    n_differ = int(differ.sum())
    order = np.argsort(np.where(differ, np.nan_to_num(difference, nan=np.inf), -1.0))[::-1]
    worst = [
        _example(rows.iloc[i], inputs, served[i], rescored[i], bool(accepted[i]))
        for i in order[: min(WORST_EXAMPLES, n_differ)]
    ]
    return SkewResult(len(rows), n_differ, n_differ / len(rows), worst, dict(report.reasons))


def _example(
    row: pd.Series, inputs: list[str], served: float, rescored: float, accepted: bool
) -> dict[str, Any]:
    def plain(value: Any) -> Any:
        if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
            return None
        if isinstance(value, pd.Timestamp):
            return value.isoformat()
        return value.item() if hasattr(value, "item") else value

    out: dict[str, Any] = {
        name: plain(row[name])
        for name in ("customer_id", "inference_time", "model_version")
        if name in row.index
    }
    out["endpoint_score"] = plain(served)
    out["training_score"] = plain(rescored) if accepted else None
    out["difference"] = plain(abs(rescored - served)) if accepted else None
    out["inputs"] = {name: plain(row[name]) for name in inputs}
    return out


# ---------------------------------------------------------------------------------------------
# The served artifact
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServedArtifact:
    """The estimator and the lineage of the `model.tar.gz` an endpoint serves."""

    estimator: Any
    lineage: Mapping[str, Any]
    uri: str


def load_served(model: Model, s3: Any, bucket: str, key: str) -> ServedArtifact:
    """The served artifact at `s3://bucket/key`: its estimator (`model.load`, as `model_fn`
    loads it before any serving-time folding) and its `lineage.json` (empty when it has none)."""
    from botocore.exceptions import ClientError

    from ml.serve import ServeError, extract_artifact

    uri = f"s3://{bucket}/{key}"
    try:
        body: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        raise SkewError(f"no served model at {uri} ({code}): check model_key") from None
    with tempfile.TemporaryDirectory(prefix="mlplat-served-") as tmp:
        archive = Path(tmp) / "model.tar.gz"
        archive.write_bytes(body)
        directory = Path(tmp) / "model"
        directory.mkdir()
        try:
            extract_artifact(archive, directory)
        except ServeError as exc:
            raise SkewError(f"{uri}: {exc}") from None
        try:
            estimator = model.load(directory)
        except FileNotFoundError as exc:
            raise SkewError(f"{uri}: {exc}") from None
        lineage_path = directory / LINEAGE_FILE
        lineage: dict[str, Any] = {}
        if lineage_path.is_file():
            try:
                loaded = json.loads(lineage_path.read_text())
            except json.JSONDecodeError as exc:
                raise SkewError(f"{uri}: {LINEAGE_FILE} is not JSON: {exc}") from None
            if isinstance(loaded, dict):
                lineage = loaded
    return ServedArtifact(estimator, lineage, uri)


def model_age_days(lineage: Mapping[str, Any], now: datetime) -> float:
    """Days from the lineage's `created_at` (when training wrote the model) to `now`."""
    created = lineage.get("created_at")
    if not isinstance(created, str) or not created:
        raise SkewError(
            f"the lineage has no created_at (got {created!r}): was it trained by ml.train?"
        )
    try:
        when = datetime.fromisoformat(created)
    except ValueError:
        raise SkewError(f"lineage created_at {created!r} is not an ISO 8601 time") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    if now.tzinfo is None:
        raise SkewError(f"now {now.isoformat()} has no timezone; use UTC")
    return (now - when).total_seconds() / 86400.0
