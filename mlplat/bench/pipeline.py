"""Pipeline benchmarks: the curate and features steps per worker, across workers, and their memory.

S3 cannot be reached here, so the real step functions (`ml.pipeline.curate.run_curate` and
`ml.pipeline.features.run_features`, what `python -m ml.pipeline curate|features` runs) read and
write through `LocalS3`: an object store on a local directory, passed as their `s3` client
(put_object, get_object, the list_objects_v2 paginator and delete_objects on files; each put is
whole, as S3's), with CloudWatch replaced by a client that drops the metrics. The figures
therefore leave out the network: they measure the steps' own work (read Parquet, validate,
de-duplicate, commit, derive features, commit), which is what a worker can make faster.

The raw input is written partition by partition (the lake's manifest commit, 250,000 rows a
partition, 0.5% of them duplicate snapshots), so the generator never holds more than one
partition. Each worker is a fresh process (spawn) that imports the code and warms up on a small
dataset of its own before the clock starts, and uses one Arrow thread: a worker is one core, as
the 2-worker figure needs on a 2-core machine.

* `pipeline_rows_per_s`: one worker, curate then features on 1,000,000 raw rows (4 partitions):
  raw rows / seconds of the curate + features work.
  `pipeline_rows_per_cpu_s` divides by the worker's CPU seconds instead: the same work, less
  sensitive to other load on the machine (the gap between the two is time spent waiting).
* `pipeline_rows_per_s_2_workers`: two workers at once, each on its own half of the partitions
  (disjoint shards, as ShardedByS3Key gives two instances): raw rows / wall seconds from the
  common start to the last worker's end; `pipeline_scaling_2_workers` is its ratio to one worker.
* `pipeline_peak_rss_mb_1m`, `pipeline_peak_rss_mb_10m`: the peak resident memory of one worker
  handling 1,000,000 rows, and 10,000,000 rows made of more partitions of the same size (40).

`quick` uses 25,000-row partitions (the figures keep their names, at a tenth of the rows).
"""

from __future__ import annotations

import contextlib
import errno
import multiprocessing as mp
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROWS_PER_PARTITION = 250_000
QUICK_ROWS_PER_PARTITION = 25_000
PARTITIONS_1M = 4
PARTITIONS_10M = 40
DUPLICATE_SHARE = 0.005
RAW_BUCKET, CURATED_BUCKET, FEATURES_BUCKET = "raw", "curated", "features"
WARM_ROWS = 20_000


# --- the object store ---------------------------------------------------------------------------


class NoSuchKey(Exception):
    """What a missing object raises, shaped like botocore's ClientError for `ml.lake`."""

    def __init__(self, bucket: str, key: str) -> None:
        super().__init__(f"NoSuchKey: s3://{bucket}/{key}")
        self.response = {"Error": {"Code": "NoSuchKey", "Message": f"s3://{bucket}/{key}"}}


class _Body:
    def __init__(self, path: Path) -> None:
        self._path = path

    def read(self) -> bytes:
        return self._path.read_bytes()


class _Paginator:
    def __init__(self, store: LocalS3) -> None:
        self._store = store

    def paginate(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        yield self._store.list_objects_v2(**kwargs)


class LocalS3:
    """The part of the S3 client the lake uses, on files: `root/<bucket>/<key>`."""

    _PARTIAL = ".partial-"  # a put in progress: never listed

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, bucket: str, key: str) -> Path:
        return self.root / bucket / key

    def put_object(self, *, Bucket: str, Key: str, Body: bytes, **_: Any) -> dict[str, Any]:
        path = self._path(Bucket, Key)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{self._PARTIAL}{os.getpid()}-{path.name}")
        partial.write_bytes(Body)
        os.replace(partial, path)  # whole or not at all, as an S3 put
        return {}

    def get_object(self, *, Bucket: str, Key: str, **_: Any) -> dict[str, Any]:
        path = self._path(Bucket, Key)
        if not path.is_file():
            raise NoSuchKey(Bucket, Key)
        return {"Body": _Body(path)}

    def delete_objects(self, *, Bucket: str, Delete: Mapping[str, Any], **_: Any) -> dict[str, Any]:
        for obj in Delete["Objects"]:
            with contextlib.suppress(FileNotFoundError):
                self._path(Bucket, obj["Key"]).unlink()
        return {}

    def get_paginator(self, name: str) -> _Paginator:
        if name != "list_objects_v2":
            raise NotImplementedError(name)
        return _Paginator(self)

    def list_objects_v2(
        self, *, Bucket: str, Prefix: str = "", Delimiter: str | None = None, **_: Any
    ) -> dict[str, Any]:
        if Delimiter not in (None, "/"):
            raise NotImplementedError(f"Delimiter={Delimiter!r}")
        base = self.root / Bucket
        directory = base / Prefix.rpartition("/")[0]
        contents: list[dict[str, Any]] = []
        prefixes: set[str] = set()
        for path in self._walk(directory, recursive=Delimiter is None):
            key = path.relative_to(base).as_posix()
            if not key.startswith(Prefix):
                continue
            if path.is_dir():
                prefixes.add(f"{key}/")
            elif not path.name.startswith(self._PARTIAL):
                contents.append({"Key": key, "Size": path.stat().st_size})
        return {
            "Contents": sorted(contents, key=lambda c: str(c["Key"])),
            "CommonPrefixes": [{"Prefix": p} for p in sorted(prefixes)],
        }

    @staticmethod
    def _walk(directory: Path, *, recursive: bool) -> Iterator[Path]:
        try:
            children = list(directory.iterdir())
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ENOTDIR):
                return
            raise
        for child in children:
            if child.is_dir() and recursive:
                yield from LocalS3._walk(child, recursive=True)
            else:
                yield child


class _NoMetrics:
    def put_metric_data(self, **_: Any) -> dict[str, Any]:
        return {}


# --- the input ------------------------------------------------------------------------------------


def _days(count: int, first: int = 0) -> list[str]:
    from datetime import date, timedelta

    start = date(2025, 1, 1)
    return [(start + timedelta(days=first + i)).isoformat() for i in range(count)]


def write_raw(root: Path, bucket: str, days: Sequence[str], rows: int, *, seed: int = 0) -> int:
    """Raw partitions of `rows` rows each (a share of them duplicate snapshots), one at a time."""
    import numpy as np
    import pandas as pd

    from ml.lake import write_dataset
    from ml.sample_data import generate_customers
    from ml.schema import CUSTOMERS_RAW

    s3 = LocalS3(root)
    duplicates = int(rows * DUPLICATE_SHARE)
    for i, day in enumerate(days):
        fresh = generate_customers(rows - duplicates, seed=seed + i, id_offset=i * rows)
        copies = fresh.iloc[np.random.default_rng(seed + i).integers(0, len(fresh), duplicates)]
        frame = pd.concat([fresh, copies], ignore_index=True)
        write_dataset(frame, CUSTOMERS_RAW, bucket, dt=day, s3=s3)
    return rows * len(days)


def _shards(root: Path, name: str, bucket: str, days: Sequence[str], count: int) -> list[Path]:
    """Work items of the raw partitions `days`, dealt across `count` shard directories."""
    from ml.pipeline.common import WorkItem, write_work_items
    from ml.schema import CUSTOMERS_RAW

    shards = [root / "work" / f"{name}-{n}" for n in range(count)]
    for n, shard in enumerate(shards):
        items = [
            WorkItem(CUSTOMERS_RAW.name, bucket, CUSTOMERS_RAW.prefix, day, days[0], days[-1])
            for day in days[n::count]
        ]
        write_work_items(shard, items)
    return shards


# --- a worker -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Job:
    root: Path
    work: Path
    raw_bucket: str
    suffix: str  # curated/features buckets of this job: runs never share an output


def _steps(job: Job, s3: Any) -> tuple[int, float, float]:
    """(raw rows, curate seconds, features seconds) of one shard."""
    from ml.models import load
    from ml.pipeline.curate import run_curate
    from ml.pipeline.features import run_features

    churn = load("churn")
    curated_work = job.work.with_name(job.work.name + "-curated")
    started = time.perf_counter()
    summary = run_curate(
        churn,
        work=job.work,
        out=curated_work,
        raw_bucket=job.raw_bucket,
        curated_bucket=CURATED_BUCKET + job.suffix,
        kms_key_arn=None,
        pipeline="bench",
        max_rejected_share=0.0,
        s3=s3,
        cloudwatch=_NoMetrics(),
    )
    curated = time.perf_counter()
    run_features(
        churn,
        work=curated_work,
        out=job.work.with_name(job.work.name + "-features"),
        curated_bucket=CURATED_BUCKET + job.suffix,
        features_bucket=FEATURES_BUCKET + job.suffix,
        kms_key_arn=None,
        s3=s3,
    )
    return summary.raw_rows, curated - started, time.perf_counter() - curated


def _worker(job: Job, warm: Job, ready: Any, go: Any, results: Any) -> None:
    """A worker process: warm up, wait for the start, run its shard, report."""
    import resource

    import pyarrow as pa

    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    s3 = LocalS3(job.root)
    _steps(warm, s3)
    ready.set()
    go.wait()
    cpu = time.process_time()
    rows, curate_s, features_s = _steps(job, s3)
    cpu_s = time.process_time() - cpu
    peak_kb = _peak_rss_kb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    results.put(
        {
            "rows": rows,
            "curate_s": curate_s,
            "features_s": features_s,
            "cpu_s": cpu_s,
            "ended": time.monotonic(),
            "peak_rss_mb": peak_kb / 1024,
        }
    )


def _peak_rss_kb(fallback: int) -> int:
    """This process's resident high-water mark (VmHWM). Not `ru_maxrss`: Linux carries that
    across exec from the parent, so a worker spawned by a bench process that has grown (the
    sandbox ran before) would report the parent's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return fallback


def run_workers(jobs: Sequence[Job], warm: Sequence[Job]) -> tuple[list[dict[str, float]], float]:
    """Start one process per job, let them all go at once; (their reports, wall seconds)."""
    context = mp.get_context("spawn")
    go = context.Event()
    results = context.Queue()
    workers = []
    for job, warm_job in zip(jobs, warm, strict=True):
        ready = context.Event()
        process = context.Process(target=_worker, args=(job, warm_job, ready, go, results))
        process.start()
        workers.append((process, ready))
    for process, ready in workers:
        while not ready.wait(timeout=1.0):
            if not process.is_alive():
                raise RuntimeError(f"a bench worker died warming up (exit {process.exitcode})")
    started = time.monotonic()
    go.set()
    reports = [results.get(timeout=3600) for _ in workers]
    for process, _ in workers:
        process.join()
        if process.exitcode != 0:
            raise RuntimeError(f"a bench worker failed (exit {process.exitcode})")
    wall = max(r["ended"] for r in reports) - started
    return reports, wall


# --- the figures ----------------------------------------------------------------------------------


def run(quick: bool) -> dict[str, float]:
    rows = QUICK_ROWS_PER_PARTITION if quick else ROWS_PER_PARTITION
    root = Path(tempfile.mkdtemp(prefix="mlplat-bench-pipeline-"))
    try:
        return _measure(root, rows)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _measure(root: Path, rows: int) -> dict[str, float]:
    warm_days = _days(2, first=1000)
    write_raw(root, "warm", warm_days, WARM_ROWS // 2, seed=10_000)

    runs = iter(range(1_000))

    def warm(n: int) -> list[Job]:
        """A warm-up job per worker: the whole small dataset, into buckets of its own."""
        jobs = []
        for _ in range(n):
            name = f"warm-{next(runs)}"
            [shard] = _shards(root, name, "warm", warm_days, 1)
            jobs.append(Job(root, shard, "warm", f"-{name}"))
        return jobs

    days_1m = _days(PARTITIONS_1M)
    total = write_raw(root, RAW_BUCKET, days_1m, rows)
    [one] = _shards(root, "one", RAW_BUCKET, days_1m, 1)
    [single], _ = run_workers([Job(root, one, RAW_BUCKET, "-one")], warm(1))
    per_worker = total / (single["curate_s"] + single["features_s"])

    halves = _shards(root, "two", RAW_BUCKET, days_1m, 2)
    _, wall = run_workers(
        [Job(root, h, RAW_BUCKET, f"-two-{i}") for i, h in enumerate(halves)], warm(2)
    )
    two = total / wall

    days_10m = _days(PARTITIONS_10M, first=100)
    write_raw(root, "raw-10m", days_10m, rows, seed=100)
    [ten] = _shards(root, "ten", "raw-10m", days_10m, 1)
    [large], _ = run_workers([Job(root, ten, "raw-10m", "-ten")], warm(1))
    return {
        "pipeline_rows_per_s": per_worker,
        "pipeline_rows_per_cpu_s": total / single["cpu_s"],
        "pipeline_rows_per_s_2_workers": two,
        "pipeline_scaling_2_workers": two / per_worker,
        "pipeline_peak_rss_mb_1m": single["peak_rss_mb"],
        "pipeline_peak_rss_mb_10m": large["peak_rss_mb"],
    }
