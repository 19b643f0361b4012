"""Labels coming back: the outcomes dataset read, joined with the prediction logs, written to the
lake.

The outcomes are `ml.schema.CUSTOMER_OUTCOMES` in the raw zone: one row per customer snapshot whose
outcome became known, keyed as the predictions are (`customer_id`, and `event_time` = the time the
endpoint scored the snapshot), with `observed_at` (when it became known) and one column per label
(a model reads its own, `ModelSpec.label`; null until known).

Partitions: the UTC day of `observed_at`, not of `event_time`. Outcomes arrive as a stream of
facts, each day's delivery holding outcomes of snapshots up to a label horizon back. The lake
replaces a partition whole on each write, so partitioning by `event_time` would let each day's
delivery overwrite what an earlier delivery brought for the same snapshot days; by `observed_at` a
delivery is its own partition (delivering it again replaces only itself), and it is where the
Firehose stream puts records too (by arrival time), so batch and stream agree. The price is on
the reader: the outcomes of predictions made since T lie in the partitions from T on (an outcome
is never observed before its snapshot), so `read_labels(since, until)` selects by `observed_at`
and the join picks the snapshots it needs. `mlplat data ingest --dataset customer_outcomes`
partitions the same way (`ml.ingest.partition_column`).

`join_labels` is an as-of join: each prediction takes the outcome of the same customer whose
`event_time` is nearest its `inference_time`, within a tolerance (a day by default: the outcome
names the snapshot scored, and a producer may have rounded its time).

The sandbox and the demo make labels come back with `ml.sample_data.simulate_outcomes` (the
sample data's generating process); real deployments ingest what their business systems observed.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ml.schema import CUSTOMER_OUTCOMES

if TYPE_CHECKING:
    from ml.lake import WriteResult
    from ml.model import Model

# The column whose UTC day partitions the outcomes (see the module docstring).
PARTITION_COLUMN = "observed_at"
KEYS: tuple[str, str] = ("customer_id", "event_time")


class LabelsError(ValueError):
    """Outcomes that cannot be read, joined or simulated as asked (and why)."""


def _utc(when: datetime, what: str) -> pd.Timestamp:
    if when.tzinfo is None:
        raise LabelsError(f"{what} {when.isoformat()} has no timezone; use UTC")
    return pd.Timestamp(when).tz_convert(UTC)


def _label_of(model: Model) -> str:
    label = model.spec.label
    if label not in CUSTOMER_OUTCOMES.column_names:
        raise LabelsError(
            f"model {model.name!r} predicts {label!r}, which the outcomes dataset "
            f"{CUSTOMER_OUTCOMES.name!r} does not record: its labels are "
            f"{[c for c in CUSTOMER_OUTCOMES.column_names if c not in (*KEYS, PARTITION_COLUMN)]}"
        )
    return label


def read_labels(
    model: Model, s3: Any, bucket: str, since: datetime, until: datetime
) -> pd.DataFrame:
    """The outcomes observed in `[since, until)` that hold `model`'s label: columns
    `customer_id`, `event_time`, `observed_at` and the label, one row per snapshot (the latest
    observation of a snapshot wins: a correction supersedes), sorted by `event_time`.

    Rows the stream delivered with a null key or a label outside the schema's range are left out
    (the stream's files are not validated before they land).
    """
    from ml.lake import read_dataset

    label = _label_of(model)
    start, end = _utc(since, "since"), _utc(until, "until")
    if end <= start:
        raise LabelsError(f"empty window: until {end.isoformat()} <= since {start.isoformat()}")
    last_day = (end - pd.Timedelta(microseconds=1)).date()
    columns = [*KEYS, PARTITION_COLUMN, label]
    frame = read_dataset(
        CUSTOMER_OUTCOMES,
        bucket,
        start=start.date(),
        end=last_day,
        columns=columns,
        s3=s3,
        allow_nulls=True,
    )
    column = CUSTOMER_OUTCOMES.column(label)
    values = frame[label].to_numpy(dtype=np.float64, na_value=np.nan)
    observed = frame[PARTITION_COLUMN]
    in_window = (observed >= start) & (observed < end)  # false where observed_at is null
    keep: np.ndarray = frame[list(KEYS)].notna().all(axis=1).to_numpy(dtype=bool, copy=True)
    keep &= in_window.to_numpy(dtype=bool, na_value=False) & np.isfinite(values)
    if column.minimum is not None:
        keep &= values >= column.minimum
    if column.maximum is not None:
        keep &= values <= column.maximum
    kept = frame.loc[keep]
    kept = kept.sort_values(PARTITION_COLUMN, kind="stable").drop_duplicates(
        list(KEYS), keep="last"
    )
    return kept.sort_values("event_time", kind="stable").reset_index(drop=True)


def join_labels(
    model: Model,
    predictions: pd.DataFrame,
    labels: pd.DataFrame,
    *,
    tolerance: timedelta = timedelta(days=1),
) -> pd.DataFrame:
    """The predictions that found their outcome: each prediction row with the label, the outcome's
    `event_time` and `observed_at`, taken from the same customer's outcome whose `event_time` is
    nearest the prediction's `inference_time`, within `tolerance`. Predictions without one are
    left out. Sorted by `inference_time`."""
    label = _label_of(model)
    if tolerance < timedelta(0):
        raise LabelsError(f"tolerance must be >= 0, got {tolerance}")
    needed = {
        "predictions": (predictions, ("customer_id", "inference_time", "score")),
        "labels": (labels, (*KEYS, PARTITION_COLUMN, label)),
    }
    for what, (frame, names) in needed.items():
        missing = [n for n in names if n not in frame.columns]
        if missing:
            raise LabelsError(f"the {what} lack column(s) {missing}")
    taken = [c for c in predictions.columns if c not in (label, "event_time", PARTITION_COLUMN)]
    left = predictions.loc[
        predictions["customer_id"].notna() & predictions["inference_time"].notna(), taken
    ]
    right = labels[[*KEYS, PARTITION_COLUMN, label]]
    if len(left) == 0 or len(right) == 0:
        empty = left.iloc[:0].copy()
        for name in ("event_time", PARTITION_COLUMN, label):
            empty[name] = labels[name].iloc[:0].to_numpy() if name in labels else []
        return empty.reset_index(drop=True)
    # merge_asof needs the same key dtype (and unit) on both sides, each sorted by its time.
    left = left.assign(
        customer_id=left["customer_id"].astype("string"),
        inference_time=left["inference_time"].astype("datetime64[ns, UTC]"),
    ).sort_values("inference_time", kind="stable")
    right = right.assign(
        customer_id=right["customer_id"].astype("string"),
        event_time=right["event_time"].astype("datetime64[ns, UTC]"),
    ).sort_values("event_time", kind="stable")
    joined = pd.merge_asof(
        left,
        right,
        left_on="inference_time",
        right_on="event_time",
        by="customer_id",
        direction="nearest",
        tolerance=pd.Timedelta(tolerance),
    )
    return joined.loc[joined[label].notna()].reset_index(drop=True)


def write_outcomes(
    s3: Any, bucket: str, frame: pd.DataFrame, kms_key_arn: str | None
) -> WriteResult:
    """Add outcomes to the lake (the raw bucket), partitioned by the UTC day of `observed_at`.

    A lake write replaces the partitions it touches whole, so this one first reads what the lake
    already wrote to those days and keeps it: outcomes of another model's predictions delivered
    the same day stay, and a snapshot delivered again (same `customer_id` and `event_time`) is
    replaced by the new row. What the stream delivered into the days is never rewritten (the lake
    leaves stream files in place; readers see both).
    """
    from ml.lake import conform_frame, write_dataset

    if len(frame) == 0:
        raise LabelsError("no outcomes to write")
    new = conform_frame(frame, CUSTOMER_OUTCOMES)
    days = sorted(set(new[PARTITION_COLUMN].dt.strftime("%Y-%m-%d")))
    earlier = _lake_rows(s3, bucket, days)
    if earlier is not None:
        combined = pd.concat([earlier, new], ignore_index=True)
        combined = combined.drop_duplicates(list(KEYS), keep="last").reset_index(drop=True)
    else:
        combined = new
    return write_dataset(
        combined,
        CUSTOMER_OUTCOMES,
        bucket,
        kms_key_id=kms_key_arn,
        partition_column=PARTITION_COLUMN,
        s3=s3,
    )


def _lake_rows(s3: Any, bucket: str, days: Sequence[str]) -> pd.DataFrame | None:
    """The rows earlier lake writes committed to the outcomes' partitions `days` (the files their
    manifests list; not the stream's), or None when there are none."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ml.lake import conform_frame, list_partitions

    tables = []
    for partition in list_partitions(
        bucket,
        CUSTOMER_OUTCOMES.prefix,
        start=days[0],
        end=days[-1],
        s3=s3,
        include_streamed=False,
    ):
        if partition.dt not in days:
            continue
        for file in partition.files:
            body = s3.get_object(Bucket=bucket, Key=file.key)["Body"].read()
            tables.append(pq.read_table(io.BytesIO(body)))
    if not tables:
        return None
    names = list(CUSTOMER_OUTCOMES.column_names)
    frame = pa.concat_tables([t.select(names) for t in tables]).to_pandas()
    return conform_frame(frame, CUSTOMER_OUTCOMES)


def label_window(model: Model, until: datetime, lookback_days: int) -> tuple[datetime, datetime]:
    """The predictions whose outcomes are due by `until`: inference times in
    `[until - horizon - lookback, until - horizon)` (`ModelSpec.label_horizon_days`)."""
    if lookback_days < 1:
        raise LabelsError(f"lookback must be at least 1 day, got {lookback_days}")
    end = _utc(until, "until").to_pydatetime() - timedelta(days=model.spec.label_horizon_days)
    return end - timedelta(days=lookback_days), end
