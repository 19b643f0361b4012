"""Prediction logs: captured requests and responses, flattened back into the lake.

`flatten(model, records, ...)` turns SageMaker capture records (`ml.capture`) of a model's endpoint
into one row per scored record with exactly the columns and dtypes of the model's predictions table
(`ModelSpec.predictions`): the event metadata, the raw inputs the request carried and the score the
endpoint answered. `write_prediction_logs` commits them with `ml.lake.write_dataset`
(schema-checked, partitioned by the UTC day of `inference_time`, atomic per partition) into the
predictions zone, where the lake component catalogs that table in Glue: Athena can then join
predictions with labels that arrive later (on `customer_id`).

The version that scored each row (`model_version`, never null): the one the response names (the
handler's JSON answers carry it, `ml.inference`); else the caller's `model_version`; else
`"unknown"` (a CSV answer, which holds scores only, or a capture older than the field).

Joining keys: `customer_id` is taken from the request record when it carries one (extra keys are
ignored by the handler, so clients may send it); otherwise from the caller's `inferenceId` (the
SageMaker header meant exactly for joining ground truth) when the request held a single record;
otherwise `<eventId>#<n>`, which keeps rows unique but joins nothing.

An event that cannot be read (a body that is not the handler's format, a different number of
scores than records) is skipped and counted by reason, never guessed at. Rows whose inputs break
the schema (the handler would have refused them) are dropped and counted too, so the lake write
cannot fail on them: `valid_rows` applies the same validation as the feature code.

Partition semantics: `ml.lake` replaces a day's partition whole on each write. So a caller logging
an hourly window re-logs the whole UTC day(s) the window touches (`day_window`), and each run leaves
every day complete and duplicate-free however often it is repeated.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from ml.capture import CaptureFormatError, CaptureRecord, parse_response
from ml.model import Model

_META = ("event_id", "inference_time", "endpoint_name", "variant_name", "model_version")
# The version of a row whose response names none and whose reader was told none.
UNKNOWN_VERSION = "unknown"


def input_columns(model: Model) -> tuple[str, ...]:
    """The raw input columns a prediction row carries (the predictions table minus the event
    metadata and the score)."""
    return tuple(c.name for c in model.spec.predictions.columns if c.name not in (*_META, "score"))


@dataclass(frozen=True, slots=True)
class FlattenReport:
    n_events: int
    n_rows: int
    skipped: Mapping[str, int] = field(default_factory=dict)


def _skip(skipped: dict[str, int], reason: str) -> None:
    skipped[reason] = skipped.get(reason, 0) + 1


def _customer_id(record: Mapping[str, Any], event: CaptureRecord, n: int, many: bool) -> str:
    value = record.get("customer_id")
    if value is not None and str(value) != "":
        return str(value)
    if event.inference_id and not many:
        return event.inference_id
    return f"{event.event_id}#{n}"


def empty_predictions(model: Model) -> pd.DataFrame:
    return pd.DataFrame(
        {c.name: pd.Series([], dtype=c.pandas_dtype) for c in model.spec.predictions.columns}
    )


def _typed(model: Model, rows: dict[str, list[Any]]) -> pd.DataFrame:
    out: dict[str, pd.Series] = {}
    for column in model.spec.predictions.columns:
        values = rows[column.name]
        if column.type in ("double", "bigint"):
            numbers = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce")
            if column.type == "bigint":
                whole = numbers.where(numbers.isna() | (numbers == np.floor(numbers)))
                out[column.name] = whole.astype("Float64").astype("Int64")
            else:
                out[column.name] = numbers.astype("float64")
        elif column.type == "boolean":
            out[column.name] = pd.Series(
                [v if isinstance(v, bool) else None for v in values], dtype="boolean"
            )
        elif column.type == "timestamp":
            out[column.name] = pd.Series(pd.to_datetime(values, utc=True)).astype(
                column.pandas_dtype
            )
        else:
            out[column.name] = pd.Series(
                [None if v is None else str(v) for v in values], dtype="string"
            )
    return pd.DataFrame(out)


def flatten(
    model: Model,
    records: Iterable[CaptureRecord],
    *,
    endpoint_name: str,
    variant_name: str,
    model_version: str | None = None,
) -> tuple[pd.DataFrame, FlattenReport]:
    """One row of `model`'s predictions table per scored record of the captured events of its
    endpoint, and what was skipped.

    `model_version` fills rows whose response does not name one (default `"unknown"`).
    """
    spec = model.spec
    inputs_of_row = input_columns(model)
    rows: dict[str, list[Any]] = {c.name: [] for c in spec.predictions.columns}
    skipped: dict[str, int] = {}
    n_events = 0
    for event in records:
        n_events += 1
        try:
            inputs = event.input_records(spec)
            scores_list, version = parse_response(event.output.content_type, event.output.text())
        except CaptureFormatError as exc:
            _skip(skipped, f"unreadable payload: {exc}")
            continue
        if len(inputs) != len(scores_list):
            _skip(skipped, "number of scores differs from number of records")
            continue
        many = len(inputs) > 1
        for n, (record, score) in enumerate(zip(inputs, scores_list, strict=True)):
            rows["event_id"].append(event.event_id if not many else f"{event.event_id}#{n}")
            rows["inference_time"].append(event.inference_time)
            rows["endpoint_name"].append(endpoint_name)
            rows["variant_name"].append(variant_name)
            rows["model_version"].append(version or model_version or UNKNOWN_VERSION)
            for name in inputs_of_row:
                rows[name].append(record.get(name))
            rows["customer_id"][-1] = _customer_id(record, event, n, many)
            rows["score"].append(score)
    frame = _typed(model, rows) if rows["event_id"] else empty_predictions(model)
    return frame, FlattenReport(n_events, len(frame), skipped)


def valid_rows(model: Model, frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """The rows the schema accepts (inputs as the model's feature code validates them, the score
    in the range of the predictions table's `score` column: [0, 1] for a probability)."""
    if len(frame) == 0:
        return frame, {}
    valid, report = model.features.validate_frame(frame, on_invalid="reject")
    reasons = {f"invalid {k}": v for k, v in report.reasons.items()}
    score = valid["score"].to_numpy(dtype=np.float64, na_value=np.nan)
    column = model.spec.predictions.column("score")
    low = column.minimum if column.minimum is not None else -math.inf
    high = column.maximum if column.maximum is not None else math.inf
    bad = ~((score >= low) & (score <= high))
    if bad.any():
        reasons[f"invalid score: not in [{low:g}, {high:g}]"] = int(bad.sum())
        valid = valid.loc[~bad]
    return valid.reset_index(drop=True), reasons


def day_window(since: datetime, until: datetime) -> tuple[datetime, datetime]:
    """`[start of since's UTC day, until)`: what to re-log so each touched partition is whole."""
    start = since.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return start, until


def write_prediction_logs(
    model: Model,
    s3: Any,
    bucket: str,
    frame: pd.DataFrame,
    *,
    kms_key_arn: str | None = None,
) -> tuple[str, ...]:
    """Commit prediction rows to `model`'s table in the predictions zone; returns the partition
    manifest keys.

    Each UTC day in `frame` replaces that day's partition whole (see the module docstring).
    """
    from ml.lake import manifest_key, write_dataset

    if len(frame) == 0:
        return ()
    table = model.spec.predictions
    result = write_dataset(frame, table, bucket, kms_key_id=kms_key_arn, s3=s3)
    return tuple(manifest_key(table.prefix, p.dt) for p in result.partitions)


def scores_of(frame: pd.DataFrame) -> np.ndarray:
    array: np.ndarray = frame["score"].to_numpy(dtype=np.float64, na_value=np.nan)
    return array


def between(frame: pd.DataFrame, since: datetime, until: datetime) -> pd.DataFrame:
    """Rows whose inference time is in `[since, until)`."""
    times = frame["inference_time"]
    return frame.loc[(times >= pd.Timestamp(since)) & (times < pd.Timestamp(until))]
