"""What the pipeline's steps share: their one error, the work items, clients, failure messages.

A work item (`WORK_ITEM_FORMAT`, `ml.contracts`) names one partition of one dataset: the window
step writes one per raw partition, curate one per curated partition, features one per features
partition. Each is a JSON file `<dataset>-dt=<YYYY-MM-DD>.json`; SageMaker moves the files from a
step's output to the next step's input, sharding them across instances by S3 key.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ml.contracts import CONTAINER_OUTPUT_DIR, OUTPUT_DIR_ENV, WORK_ITEM_FORMAT
from ml.lake import LakeError, get_dataset
from ml.schema import PARTITION_KEY, Dataset

MAX_MESSAGE_BYTES = 1024  # SageMaker shows the first 1 KB of a failure message


class StepError(RuntimeError):
    """A step that cannot complete; the message is the one-line reason SageMaker shows."""


@dataclass(frozen=True, slots=True)
class WorkItem:
    """One partition for a step to handle: `s3://<bucket>/<prefix>/dt=<dt>/`, of the window
    [window_start, window_end]; `rows` when known (committed rows, no streamed files)."""

    dataset: str
    bucket: str
    prefix: str
    dt: str
    window_start: str
    window_end: str
    rows: int | None = None

    @property
    def file_name(self) -> str:
        return f"{self.dataset}-{PARTITION_KEY}={self.dt}.json"

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}/{PARTITION_KEY}={self.dt}/"

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": WORK_ITEM_FORMAT,
            "dataset": self.dataset,
            "bucket": self.bucket,
            "prefix": self.prefix,
            "dt": self.dt,
            "window": {"start": self.window_start, "end": self.window_end},
            "rows": self.rows,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str) -> WorkItem:
        if not isinstance(data, Mapping) or data.get("format") != WORK_ITEM_FORMAT:
            found = data.get("format") if isinstance(data, Mapping) else type(data).__name__
            raise StepError(
                f"{source}: not a work item (format {found!r}, need {WORK_ITEM_FORMAT})"
            )
        try:
            window = data["window"]
            rows = data.get("rows")
            return cls(
                dataset=str(data["dataset"]),
                bucket=str(data["bucket"]),
                prefix=str(data["prefix"]),
                dt=str(data["dt"]),
                window_start=str(window["start"]),
                window_end=str(window["end"]),
                rows=None if rows is None else int(rows),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise StepError(
                f"{source}: malformed work item ({type(exc).__name__}: {exc})"
            ) from None


def dataset_named(name: str, where: str) -> Dataset:
    """The dataset `ml.schema` declares as `name`; `StepError` naming `where` it came from."""
    try:
        return get_dataset(name)
    except LakeError as exc:
        raise StepError(f"{where}: {exc}") from None


def read_work_items(directory: Path) -> list[WorkItem]:
    """The work items under `directory` (this instance's shard), by dataset and date."""
    if not directory.is_dir():
        raise StepError(f"no work item directory {directory}: is the step's input mapped there?")
    items = []
    for path in sorted(directory.rglob("*.json")):
        try:
            data = json.loads(path.read_text())
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise StepError(f"{path}: not a JSON work item ({exc})") from None
        items.append(WorkItem.from_dict(data, str(path)))
    return sorted(items, key=lambda i: (i.dataset, i.dt))


def write_work_items(directory: Path, items: Iterable[WorkItem]) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for item in items:
        path = directory / item.file_name
        path.write_text(json.dumps(item.to_dict(), indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written


def require_bucket(item: WorkItem, bucket: str, option: str, dataset: Dataset) -> None:
    """A work item must name the dataset and bucket the step was told to read: a mismatch is a
    broken definition, not something to guess around."""
    if item.dataset != dataset.name:
        raise StepError(
            f"work item {item.file_name} names dataset {item.dataset!r}; this step reads "
            f"{dataset.name!r}"
        )
    if item.bucket != bucket:
        raise StepError(
            f"work item {item.file_name} is in bucket {item.bucket!r}, but {option} is {bucket!r}"
        )


def output_dir(env: Mapping[str, str] | None = None) -> Path:
    """The container's output directory, where SageMaker reads a failure message."""
    env = os.environ if env is None else env
    return Path(env.get(OUTPUT_DIR_ENV, CONTAINER_OUTPUT_DIR))


def write_message(path: Path, message: str) -> None:
    """Best effort: the message for SageMaker (UTF-8, first 1 KB); stderr has it anyway."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = message.encode()[:MAX_MESSAGE_BYTES]
        path.write_bytes(data.decode(errors="ignore").encode())
    except OSError:
        pass


def client(service: str, region: str | None) -> Any:
    """A fresh boto3 client (made per call, never at import)."""
    import boto3

    session: Any = boto3.session.Session(region_name=region or None)  # any service: untyped
    return session.client(service)
