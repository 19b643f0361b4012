"""The features step: curated partitions -> the features zone, one partition at a time.

For each work item of this instance's shard: read the curated partition, derive the feature table
with the code the endpoint serves (the model's `FeatureSet.build_features`), commit it to the
model's table in the features zone
(`ml.lake.write_dataset`, the manifest commit) and write a work item for the training step.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ml.lake import read_dataset, write_dataset
from ml.model import Model
from ml.pipeline.common import (
    StepError,
    WorkItem,
    read_work_items,
    require_bucket,
    write_work_items,
)

log = logging.getLogger(__name__)


def features_partition(
    model: Model, item: WorkItem, *, features_bucket: str, kms_key_arn: str | None, s3: Any
) -> WorkItem:
    """Derive and commit `model`'s features of one curated partition; its frames are released on
    return. Returns the work item of the features partition."""
    table_dataset = model.spec.features
    curated = read_dataset(model.spec.curated, item.bucket, dt=item.dt, s3=s3)
    if curated.empty:
        raise StepError(f"curated partition {item.uri} holds no rows (did curate commit it?)")
    table = model.features.build_features(curated)
    del curated
    written = write_dataset(
        table, table_dataset, features_bucket, kms_key_id=kms_key_arn, dt=item.dt, s3=s3
    )
    return WorkItem(
        dataset=table_dataset.name,
        bucket=features_bucket,
        prefix=table_dataset.prefix,
        dt=item.dt,
        window_start=item.window_start,
        window_end=item.window_end,
        rows=written.rows,
    )


def run_features(
    model: Model,
    *,
    work: Path,
    out: Path,
    curated_bucket: str,
    features_bucket: str,
    kms_key_arn: str | None,
    s3: Any,
) -> list[WorkItem]:
    """The features of every work item under `work`, one partition at a time; their work items
    to `out`."""
    items = read_work_items(work)
    for item in items:
        require_bucket(item, curated_bucket, "--curated-bucket", model.spec.curated)
    done = []
    for item in items:
        written = features_partition(
            model, item, features_bucket=features_bucket, kms_key_arn=kms_key_arn, s3=s3
        )
        write_work_items(out, [written])
        log.info("dt=%s: %s feature rows", written.dt, written.rows)
        done.append(written)
    if not done:
        log.info("no work items in %s: another instance has the shard", work)
    return done
