"""The train step (a SageMaker training job): the window's features partitions -> a model directory.

Channels (`ml.train.ContainerPaths`, SM_* overrides): `partitions` holds the features step's work
items, naming the partitions of the window; `features` is the features zone's prefix, mounted
(FastFile: only the files read are fetched) and read through each partition's `_manifest.json`
by the lake's rules (`ml.lake.read_local_dataset`). Hyperparameters come from
hyperparameters.json; its `search` key ("true") runs the hyperparameter search over the model's
declared space first (`ml.tuning`: cross-validated by customer on the training rows, seeded), the
space, every trial's score and the choice going to `lineage.json`. The model directory gets the
model, its reports and `code/` (`ml.train.write_outputs`): SageMaker archives it as model.tar.gz
for the evaluate step. There is no gate here: the evaluate step runs it against the version that
serves.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from ml.contracts import FEATURES_CHANNEL, PARTITIONS_CHANNEL
from ml.lake import LakeError, read_local_dataset
from ml.model import Model
from ml.pipeline.common import StepError, WorkItem, read_work_items
from ml.train import (
    ContainerPaths,
    TrainingResult,
    read_hyperparameters,
    read_search,
    train,
    write_outputs,
)

log = logging.getLogger(__name__)


def run_train(model: Model, paths: ContainerPaths) -> TrainingResult:
    """Train `model` on the partitions of its features table the work items name; write the
    model directory."""
    table = model.spec.features
    missing = [c for c in (PARTITIONS_CHANNEL, FEATURES_CHANNEL) if c not in paths.channels]
    if missing:
        raise StepError(
            f"no {', '.join(repr(c) for c in missing)} channel (SM_CHANNEL_<NAME>); "
            f"channels: {sorted(paths.channels) or 'none'}"
        )
    hp = read_hyperparameters(model, paths.config_dir)
    search = read_search(paths.config_dir)
    items = read_work_items(paths.channels[PARTITIONS_CHANNEL])
    if not items:
        raise StepError(f"the {PARTITIONS_CHANNEL!r} channel holds no work items: nothing to train")
    sources = {(i.dataset, i.bucket, i.prefix) for i in items}
    if len(sources) != 1 or next(iter(sources))[0] != table.name:
        named = ", ".join(f"s3://{b}/{p}/ ({d})" for d, b, p in sorted(sources))
        raise StepError(
            f"the work items must name partitions of {table.name!r} in one place; they name {named}"
        )
    _, bucket, prefix = next(iter(sources))
    days = [i.dt for i in items]
    try:
        features = read_local_dataset(table, paths.channels[FEATURES_CHANNEL], days, prefix=prefix)
    except LakeError as exc:
        raise StepError(f"the {FEATURES_CHANNEL!r} channel: {exc}") from exc
    log.info(
        "%d feature rows from %d partitions (%s .. %s)", len(features), len(days), days[0], days[-1]
    )
    result = train(model, features, hp, data_uri=f"s3://{bucket}/{prefix}/", search=search)
    del features
    if result.search is not None:
        best = result.search.best_trial
        log.info(
            "search: %d of %d candidates, %d folds, chose %s (%s %.5f) in %.1fs",
            len(result.search.trials),
            result.search.grid_size,
            result.search.config.folds,
            best.point,
            result.search.metric,
            best.cv_score,
            result.search.seconds,
        )
    result = dataclasses.replace(result, lineage=_with_partitions(result.lineage, items))
    write_outputs(result, paths.model_dir, with_code=True)
    return result


def _with_partitions(lineage: dict[str, Any], items: list[WorkItem]) -> dict[str, Any]:
    """The lineage, its data section naming the window and the partitions read."""
    data = {
        **lineage.get("data", {}),
        "partitions": [i.dt for i in items],
        "window": {"start": items[0].window_start, "end": items[0].window_end},
    }
    return {**lineage, "data": data}
