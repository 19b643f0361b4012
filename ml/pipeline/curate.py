"""The curate step: raw partitions -> the curated zone, one partition at a time.

For each work item of this instance's shard: read the raw partition (batch files through its
manifest, plus what the stream delivered, which nobody validated), validate it
(`validate_rows`: the model's `FeatureSet.validate_frame`, rejecting bad rows, and the curated
schema's rules for the columns the model does not read: the key, the labels), drop duplicate
snapshots (same customer_id and event_time: the last one read wins), commit the curated partition
(`ml.lake.write_dataset`, the manifest commit: whole or not at all), write the rejected rows as
Parquet beside the zone (`s3://<curated>/rejected/<dataset>/dt=<d>/part-<write id>.parquet`,
SSE-KMS) and a work item for the features step. Only one partition's rows are in memory at a time.

Then it puts RejectedRows, RejectedShare and CuratedRows (`PIPELINE_NAMESPACE`, dimension
Pipeline) for what it handled, and fails when the rejected share is above the threshold."""

from __future__ import annotations

import io
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ml.contracts import (
    CURATED_ROWS_METRIC,
    PIPELINE_DIMENSION,
    PIPELINE_NAMESPACE,
    REJECTED_ROOT,
    REJECTED_ROWS_METRIC,
    REJECTED_SHARE_METRIC,
)
from ml.features import ValidationReport
from ml.lake import arrow_table, new_write_id, read_dataset, write_dataset
from ml.model import Model
from ml.pipeline.common import (
    StepError,
    WorkItem,
    read_work_items,
    require_bucket,
    write_work_items,
)
from ml.schema import PARTITION_KEY, Column, Dataset

log = logging.getLogger(__name__)

# A snapshot is one customer at one instant: a second copy of it is a duplicate.
DEDUPLICATION_KEY: tuple[str, ...] = ("customer_id", "event_time")


@dataclass(frozen=True, slots=True)
class CuratedPartition:
    """What curating one raw partition did (figures only: its rows are gone)."""

    dt: str
    raw_rows: int
    rejected: int
    duplicates: int
    curated: int
    reasons: dict[str, int] = field(default_factory=dict)
    rejected_uri: str | None = None
    item: WorkItem | None = None  # the curated partition; None when no row was valid

    @property
    def share(self) -> float:
        return self.rejected / self.raw_rows if self.raw_rows else 0.0


@dataclass(frozen=True, slots=True)
class CurateSummary:
    partitions: tuple[CuratedPartition, ...]

    @property
    def raw_rows(self) -> int:
        return sum(p.raw_rows for p in self.partitions)

    @property
    def rejected(self) -> int:
        return sum(p.rejected for p in self.partitions)

    @property
    def curated(self) -> int:
        return sum(p.curated for p in self.partitions)

    @property
    def share(self) -> float:
        return self.rejected / self.raw_rows if self.raw_rows else 0.0


def drop_duplicates(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame.drop_duplicates(subset=DEDUPLICATION_KEY, keep="last")`, the same rows in the same
    order with their index, hashed by Arrow (several times faster than pandas on string keys)."""
    keys = pa.table(
        {
            **{name: _key_array(frame[name]) for name in DEDUPLICATION_KEY},
            "row": pa.array(np.arange(len(frame), dtype=np.int64)),
        }
    )
    last = keys.group_by(list(DEDUPLICATION_KEY), use_threads=False).aggregate([("row", "max")])
    if last.num_rows == len(frame):
        return frame
    keep = np.zeros(len(frame), dtype=bool)
    keep[last["row_max"].to_numpy()] = True
    return frame.loc[keep]  # a filter: cheaper than taking the rows by position


def _key_array(series: pd.Series) -> pa.Array:
    if isinstance(series.dtype, pd.DatetimeTZDtype):  # equal instants are equal in UTC
        return pa.array(series.dt.tz_convert(None).to_numpy())
    array = pa.array(series, from_pandas=True)
    if pa.types.is_large_string(array.type) and array.nbytes < 2**31 - 1:
        # Arrow hashes `string` about five times faster than `large_string` (pandas' storage)
        array = array.cast(pa.string())
    return array


def validate_rows(model: Model, raw: pd.DataFrame) -> tuple[pd.DataFrame, ValidationReport]:
    """The rows of a raw frame the curated zone takes: the model's validation
    (`FeatureSet.validate_frame`, rejecting) and, for the columns the model does not read (the
    key, the labels), the curated schema's rules. A row the zone would refuse is rejected here,
    counted by reason, never left to fail the commit."""
    features = model.features
    valid, report = features.validate_frame(raw, on_invalid="reject")
    reasons = dict(report.reasons)
    bad = np.zeros(len(valid), dtype=bool)
    for column in model.spec.curated.columns:
        if column.name in features.input_names:
            continue
        for reason, mask in _problems(column, valid[column.name]).items():
            if count := int(mask.sum()):
                reasons[f"{column.name}: {reason}"] = count
                bad |= mask
    if bad.any():
        valid = valid.loc[~bad]
    return valid, ValidationReport(len(raw), len(raw) - len(valid), reasons)


def _problems(column: Column, series: pd.Series) -> dict[str, np.ndarray]:
    """Masks of the rows that break the column's rules, by reason (as `validate_frame` words
    them)."""
    null = series.isna().to_numpy(dtype=bool)
    problems = {"null in a required column": null} if not column.nullable else {}
    if column.minimum is not None or column.maximum is not None:
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        low = column.minimum if column.minimum is not None else -math.inf
        high = column.maximum if column.maximum is not None else math.inf
        problems[f"out of range [{low:g}, {high:g}]"] = ~null & ~(
            (values >= low) & (values <= high)
        )
    if column.allowed is not None:
        known = pc.is_in(pa.array(series, from_pandas=True), value_set=pa.array(column.allowed))
        allowed = known.to_numpy(zero_copy_only=False).astype(bool)
        problems[f"not one of {list(column.allowed)}"] = ~null & ~allowed
    return problems


def curate_partition(
    model: Model, item: WorkItem, *, curated_bucket: str, kms_key_arn: str | None, s3: Any
) -> CuratedPartition:
    """Curate one raw partition of `model`'s raw dataset (see the module docstring); its frames
    are released on return."""
    raw_dataset, curated = model.spec.raw, model.spec.curated
    raw = read_dataset(raw_dataset, item.bucket, dt=item.dt, s3=s3, allow_nulls=True)
    if raw.empty:
        raise StepError(f"raw partition {item.uri} holds no rows (is it still visible?)")
    valid, report = validate_rows(model, raw)
    rows = drop_duplicates(valid)
    write_id: str | None = None
    out: WorkItem | None = None
    if len(rows):
        written = write_dataset(
            rows, curated, curated_bucket, kms_key_id=kms_key_arn, dt=item.dt, s3=s3
        )
        write_id = written.write_id
        out = WorkItem(
            dataset=curated.name,
            bucket=curated_bucket,
            prefix=curated.prefix,
            dt=item.dt,
            window_start=item.window_start,
            window_end=item.window_end,
            rows=written.rows,
        )
    rejected_uri = None
    if report.n_rejected:
        kept = np.zeros(len(raw), dtype=bool)
        kept[raw.index.get_indexer(valid.index)] = True
        rejected_uri = _put_rejected(
            raw.loc[~kept],
            raw_dataset,
            item,
            curated_bucket,
            write_id or new_write_id(),
            kms_key_arn,
            s3,
        )
    return CuratedPartition(
        dt=item.dt,
        raw_rows=len(raw),
        rejected=report.n_rejected,
        duplicates=len(valid) - len(rows),
        curated=len(rows),
        reasons=dict(report.reasons),
        rejected_uri=rejected_uri,
        item=out,
    )


def rejected_key(dataset: Dataset, dt: str, write_id: str) -> str:
    return f"{REJECTED_ROOT}/{dataset.name}/{PARTITION_KEY}={dt}/part-{write_id}.parquet"


def _put_rejected(
    rows: pd.DataFrame,
    dataset: Dataset,
    item: WorkItem,
    bucket: str,
    write_id: str,
    kms_key_arn: str | None,
    s3: Any,
) -> str:
    """The rejected rows as read (raw columns and types; any value may be null), SSE-KMS."""
    sink = io.BytesIO()
    pq.write_table(arrow_table(rows, dataset, nullable=True), sink, compression="snappy")
    key = rejected_key(dataset, item.dt, write_id)
    sse = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key_arn} if kms_key_arn else {}
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=sink.getvalue(),
        ContentType="application/vnd.apache.parquet",
        **sse,
    )
    return f"s3://{bucket}/{key}"


def put_metrics(cloudwatch: Any, pipeline: str, summary: CurateSummary) -> None:
    dimensions = [{"Name": PIPELINE_DIMENSION, "Value": pipeline}]
    cloudwatch.put_metric_data(
        Namespace=PIPELINE_NAMESPACE,
        MetricData=[
            {
                "MetricName": REJECTED_ROWS_METRIC,
                "Dimensions": dimensions,
                "Value": float(summary.rejected),
                "Unit": "Count",
            },
            {
                "MetricName": REJECTED_SHARE_METRIC,
                "Dimensions": dimensions,
                "Value": summary.share,
                "Unit": "None",
            },
            {
                "MetricName": CURATED_ROWS_METRIC,
                "Dimensions": dimensions,
                "Value": float(summary.curated),
                "Unit": "Count",
            },
        ],
    )


def run_curate(
    model: Model,
    *,
    work: Path,
    out: Path,
    raw_bucket: str,
    curated_bucket: str,
    kms_key_arn: str | None,
    pipeline: str,
    max_rejected_share: float,
    s3: Any,
    cloudwatch: Any,
) -> CurateSummary:
    """Curate every work item under `work` (one partition of `model`'s raw dataset at a time),
    write the curated work items to `out`, put the metrics; `StepError` when the rejected share is
    above the maximum."""
    if not 0.0 <= max_rejected_share <= 1.0:
        raise StepError(f"--max-rejected-share {max_rejected_share} must be between 0 and 1")
    items = read_work_items(work)
    for item in items:
        require_bucket(item, raw_bucket, "--raw-bucket", model.spec.raw)
    done: list[CuratedPartition] = []
    for item in items:
        part = curate_partition(
            model, item, curated_bucket=curated_bucket, kms_key_arn=kms_key_arn, s3=s3
        )
        if part.item is not None:
            write_work_items(out, [part.item])
        log.info(
            "dt=%s: %d raw rows, %d rejected, %d duplicates, %d curated",
            part.dt,
            part.raw_rows,
            part.rejected,
            part.duplicates,
            part.curated,
        )
        done.append(part)
    summary = CurateSummary(tuple(done))
    if not done:
        log.info("no work items in %s: another instance has the shard", work)
        return summary
    put_metrics(cloudwatch, pipeline, summary)
    if summary.share > max_rejected_share:
        raise StepError(_too_many(summary, max_rejected_share))
    return summary


def _too_many(summary: CurateSummary, threshold: float) -> str:
    worst = max(summary.partitions, key=lambda p: p.share)
    reasons = _top_reasons([p.reasons for p in summary.partitions])
    return (
        f"rejected share {summary.share:.2%} ({summary.rejected} of {summary.raw_rows} raw rows) "
        f"is above the threshold {threshold:.2%}; top reasons: {reasons}; worst partition "
        f"{PARTITION_KEY}={worst.dt} ({worst.share:.2%}), its rejected rows: {worst.rejected_uri}"
    )


def _top_reasons(reasons: Sequence[dict[str, int]], n: int = 3) -> str:
    total: dict[str, int] = {}
    for found in reasons:
        for reason, count in found.items():
            total[reason] = total.get(reason, 0) + count
    top = sorted(total.items(), key=lambda kv: -kv[1])[:n]
    return ", ".join(f"{reason} ({count})" for reason, count in top) or "(none)"
