"""The EKS training pod's side of remote training (`ml.remote_training` renders the Job).

`run_pod_training(features_uri, output_uri)` mirrors the SageMaker training contract inside the
pod: the model's features table from S3 into a `train` channel, `ml.train`'s job in SageMaker's
directory layout (the model from `MLPLAT_MODEL`), the model directory to
`<output_uri>model.tar.gz`. It logs the GPUs the pod sees (`visible_gpus`: nvidia-smi) before
training and the device the model trained on after it, as the model's lineage records it
(`Model.training_info`, e.g. XGBoost's `device`); the model's own device decision (for spend,
`ml.models.spend.estimator.device`) logs in between. The Job's bootstrap turns the `ml` loggers'
INFO records on, so they reach the pod's log.

Imported by the pod from the bundle (`ml/` on the path); boto3 and the training code load inside
the function.
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ml.contracts import LINEAGE_FILE, MODEL_ENV

log = logging.getLogger(__name__)

# The channel the features land in, named as SageMaker names it (`SM_CHANNEL_TRAIN`).
TRAIN_CHANNEL = "train"


class PodTrainingError(ValueError):
    """The pod cannot use a location it was given."""


def split_s3(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://") or "/" not in uri[5:]:
        raise PodTrainingError(f"{uri!r}: expected s3://bucket/prefix/")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


def run_pod_training(
    features_uri: str,
    output_uri: str,
    *,
    s3_client: Any = None,
    train: Callable[[Mapping[str, str]], object] | None = None,
    workdir: str | None = None,
) -> int:
    """In the pod: features from S3 into a `train` channel, `ml.train` in SageMaker's layout, the
    model directory to `<output_uri>model.tar.gz`. Returns the process exit code. Logs (INFO)
    the GPUs the pod sees, then the device its lineage says the model trained on."""
    import boto3

    failures: tuple[type[Exception], ...] = (ValueError, FileNotFoundError)
    run: Callable[[Mapping[str, str]], object]
    if train is None:
        from ml.evaluate import GateFailed
        from ml.train import run_training_job

        run, failures = run_training_job, (*failures, GateFailed)
    else:
        run = train
    s3 = s3_client or boto3.client("s3")
    root = Path(workdir or tempfile.mkdtemp(prefix="training-"))
    channel, model_dir, out_dir = root / "data" / TRAIN_CHANNEL, root / "model", root / "output"
    bucket, prefix = split_s3(features_uri)
    count = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            relative = obj["Key"][len(prefix) :].lstrip("/")
            if not relative or relative.endswith("/"):
                continue
            local = channel / relative
            if not local.resolve().is_relative_to(channel.resolve()):
                raise PodTrainingError(f"object key {obj['Key']!r} escapes the channel")
            local.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, obj["Key"], str(local))
            count += 1
    if count == 0:
        print(f"training failed: no objects under {features_uri}", file=sys.stderr)
        return 1
    env = {
        MODEL_ENV: os.environ.get(MODEL_ENV, ""),
        "SM_CHANNEL_TRAIN": str(channel),
        "SM_MODEL_DIR": str(model_dir),
        "SM_OUTPUT_DIR": str(out_dir),
        "SM_INPUT_CONFIG_DIR": str(root / "config"),
    }
    gpus = visible_gpus()
    if gpus:
        log.info("GPUs visible to this pod: %s", ", ".join(gpus))
    else:
        log.info("no GPU visible to this pod (nvidia-smi lists none or is absent)")
    try:
        run(env)
    except failures as err:
        print(f"training failed: {err}", file=sys.stderr)
        return 1
    device = trained_device(model_dir)
    model = env[MODEL_ENV] or "the model"
    if device is None:
        log.info("trained %s (its lineage names no device)", model)
    else:
        log.info("trained %s on %s (the device its lineage records)", model, device)
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        for path in sorted(model_dir.rglob("*")):
            tar.add(path, arcname=os.path.relpath(path, model_dir), recursive=False)
    out_bucket, out_prefix = split_s3(output_uri)
    s3.put_object(
        Bucket=out_bucket, Key=f"{out_prefix.rstrip('/')}/model.tar.gz", Body=archive.getvalue()
    )
    return 0


def visible_gpus(timeout: float = 20.0) -> list[str]:
    """The names of the GPUs this container sees (`nvidia-smi`, which the NVIDIA runtime mounts
    with the `utility` capability); empty without one or without nvidia-smi."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        done = subprocess.run(
            [smi, "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return []
    if done.returncode != 0:
        return []
    return [line.strip() for line in done.stdout.splitlines() if line.strip()]


def trained_device(model_dir: Path) -> str | None:
    """The `device` the model directory's lineage records (None: no lineage or no device)."""
    try:
        lineage = json.loads((model_dir / LINEAGE_FILE).read_text())
    except (OSError, ValueError):
        return None
    device = lineage.get("device") if isinstance(lineage, dict) else None
    return str(device) if device else None
