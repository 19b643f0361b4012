"""Lake I/O: schema-checked, partitioned Parquet in the zone buckets, committed atomically.

Layout (Hive style, one partition key ``dt``)::

    s3://<bucket>/<dataset.prefix>/dt=YYYY-MM-DD/part-<write_id>-00000.parquet
    s3://<bucket>/<dataset.prefix>/dt=YYYY-MM-DD/part-<write_id>-00001.parquet
    s3://<bucket>/<dataset.prefix>/dt=YYYY-MM-DD/_manifest.json

Atomicity: a partition appears whole or not at all
-------------------------------------------------
S3 has no rename and no multi-object transaction, but a single PutObject is atomic: a reader
sees the old object or the new one, never a mix. The lake builds its commit on that.

1. Every write gets a unique, time-sortable ``write_id``. Its data files carry it in their names
   (``part-<write_id>-NNNNN.parquet``), so a write never overwrites a file another write (or an
   earlier attempt of the same write) published.
2. All data files of all partitions of the write are uploaded first.
3. Only then is each partition's ``_manifest.json`` put: the list of the partition's files with
   their row counts, the write id and the commit time. That single put is the commit point.
4. Readers (``read_dataset``, ``list_partitions``, ``ml.catalog``) list partitions, read each
   ``_manifest.json`` and read exactly the lake files it lists (and the streamed objects, below).
   Lake files that no manifest lists are invisible to them, and so is a partition that has
   nothing else.

So a write that fails half way (crash, network, a bad upload) leaves no visible partition: its
files are not listed by any manifest. It best-effort deletes what it uploaded (except the files
of a partition whose manifest put failed: that put may have landed), but correctness never
depends on that cleanup. If the partition existed before, the old manifest still stands and
the old version stays visible, whole. A retried write uses a new ``write_id`` and its manifest
replaces the partition whole (never appends): after committing, it deletes every other lake file
under the partition prefix (the superseded version and any leftovers of failed attempts), so Athena,
which reads every file of a partition's location and ignores names starting with ``_``, sees the
same rows as the lake readers once the write has returned.

Streamed files share the partitions
-----------------------------------
The Firehose stream (`ml.stream`, `components/ingestion.py`) delivers Parquet objects straight into
the raw dataset's ``dt=`` directories, named by Firehose, each put whole. Those objects are data
too: readers include every object of a partition directory that is not a lake file
(``part-<write_id>-NNNNN.parquet``) and whose name does not start with ``_`` or ``.``, manifest
or not. A lake write replaces only the lake-written (batch) part of a partition: its cleanup
deletes only lake files, never what the stream delivered (raw data is immutable).

Across partitions, a write that fails while publishing manifests leaves the partitions committed
so far visible (each whole) and the rest invisible; retrying the write republishes them all.
The design assumes one writer per partition at a time (the last manifest wins); a reader that
loaded a manifest just before it was replaced and finds a file gone re-reads the manifest once.

A local copy of a dataset's prefix (a SageMaker training channel, `ml.pipeline.train`) is read
by the same rules: ``read_local_dataset`` reads the files a partition's manifest lists (their keys
mapped into the directory) and the streamed files beside them.

Every object is put with ``ServerSideEncryption='aws:kms'`` and ``SSEKMSKeyId`` when a key is
given: the zone buckets' policies deny unencrypted puts.

Frames are validated against ``ml.schema`` before anything is written (`conform_frame`, in
`ml.lake_schema`, re-exported here with the errors).
"""

from __future__ import annotations

import dataclasses
import difflib
import io
import json
import logging
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ml.lake_schema import ARROW_TYPES, dtype_of
from ml.lake_schema import LakeError as LakeError
from ml.lake_schema import SchemaError as SchemaError
from ml.lake_schema import UnknownDatasetError as UnknownDatasetError
from ml.lake_schema import arrow_schema as arrow_schema
from ml.lake_schema import conform_frame as conform_frame
from ml.lake_schema import empty_frame as empty_frame
from ml.lake_schema import get_dataset as get_dataset
from ml.lake_schema import load_file as load_file
from ml.schema import PARTITION_KEY, Column, Dataset

if TYPE_CHECKING:
    from ml.outputs import PlatformOutputs

log = logging.getLogger(__name__)

# boto3 clients are untyped here (no service stubs installed): injected or made per call.
S3Client = Any

MANIFEST_NAME = "_manifest.json"
MANIFEST_FORMAT = "ml-platform/lake-manifest/v1"
DEFAULT_ROWS_PER_FILE = 1_000_000
_DT_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_LAKE_FILE = re.compile(r"^part-\d{8}T\d{12}Z-[0-9a-f]{8}-\d{5}\.parquet$")
# Arrow types read straight into the pandas dtypes of `ml.schema.PANDAS_DTYPES` (the rest, float64
# and timestamps, convert by default).
_PANDAS_TYPES: dict[pa.DataType, Any] = {
    ARROW_TYPES["string"]: pd.StringDtype(),
    ARROW_TYPES["bigint"]: pd.Int64Dtype(),
    ARROW_TYPES["boolean"]: pd.BooleanDtype(),
}


def zone_bucket(outputs: PlatformOutputs, zone: str) -> str:
    """The bucket of a lake zone (`Dataset.zone`) in the platform outputs."""
    buckets = {
        "raw": outputs.raw_bucket,
        "curated": outputs.curated_bucket,
        "features": outputs.features_bucket,
        "predictions": outputs.predictions_bucket,
        "models": outputs.models_bucket,
    }
    try:
        return buckets[zone]
    except KeyError:
        raise LakeError(f"unknown zone {zone!r}; zones: {', '.join(buckets)}") from None


def s3_client(region: str | None = None, endpoint_url: str | None = None) -> S3Client:
    """A fresh S3 client; path-style addressing when pointed at a local endpoint (moto)."""
    import boto3
    from botocore.config import Config

    config = Config(s3={"addressing_style": "path"}) if endpoint_url else None
    return boto3.client("s3", region_name=region, endpoint_url=endpoint_url, config=config)


# --------------------------------------------------------------------------------------------
# Writing


@dataclass(frozen=True, slots=True)
class DataFile:
    key: str
    rows: int | None
    bytes: int


@dataclass(frozen=True, slots=True)
class Partition:
    """A visible partition: what its manifest says, plus the files the stream delivered into it.

    A partition that only the stream has written to has no manifest: `write_id` and
    `committed_at` are None, `files` is empty. `rows` counts the committed (batch) rows only; the
    row counts of `streamed` files are unknown (None) until they are read.
    """

    dt: str
    write_id: str | None
    committed_at: str | None
    rows: int
    files: tuple[DataFile, ...]
    streamed: tuple[DataFile, ...] = ()

    @property
    def values(self) -> dict[str, str]:
        return {PARTITION_KEY: self.dt}

    @classmethod
    def from_manifest(cls, data: dict[str, Any]) -> Partition:
        try:
            if data["format"] != MANIFEST_FORMAT:
                raise LakeError(f"unsupported manifest format {data['format']!r}")
            return cls(
                dt=str(data["partition"][PARTITION_KEY]),
                write_id=str(data["write_id"]),
                committed_at=str(data["committed_at"]),
                rows=int(data["rows"]),
                files=tuple(
                    DataFile(str(f["key"]), int(f["rows"]), int(f["bytes"])) for f in data["files"]
                ),
            )
        except (KeyError, TypeError) as exc:
            raise LakeError(f"malformed manifest: missing {exc}") from None


@dataclass(frozen=True, slots=True)
class WriteResult:
    dataset: str
    bucket: str
    write_id: str
    partitions: tuple[Partition, ...]

    @property
    def rows(self) -> int:
        return sum(p.rows for p in self.partitions)

    @property
    def files(self) -> int:
        return sum(len(p.files) for p in self.partitions)


def partition_prefix(prefix: str, dt: str) -> str:
    return f"{prefix}/{PARTITION_KEY}={dt}/"


def manifest_key(prefix: str, dt: str) -> str:
    return partition_prefix(prefix, dt) + MANIFEST_NAME


def _as_dt(value: str | date, what: str = PARTITION_KEY) -> str:
    text = value.isoformat()[:10] if isinstance(value, date) else str(value)
    if not _DT_RE.match(text):
        raise LakeError(f"{what} must be a date YYYY-MM-DD, got {value!r}")
    try:
        date.fromisoformat(text)
    except ValueError:
        raise LakeError(f"{what} must be a date YYYY-MM-DD, got {value!r}") from None
    return text


def default_partition_column(dataset: Dataset) -> str:
    """The first required timestamp column: the one `dt` is derived from by default."""
    for c in dataset.columns:
        if c.type == "timestamp" and not c.nullable:
            return c.name
    raise LakeError(f"dataset {dataset.name!r} has no required timestamp column; pass dt=")


def _split(
    frame: pd.DataFrame, dataset: Dataset, partition_column: str | None, dt: str | date | None
) -> dict[str, pd.DataFrame]:
    if dataset.partition_keys != (PARTITION_KEY,):
        raise LakeError(
            f"dataset {dataset.name!r} is partitioned by {dataset.partition_keys}; "
            f"the lake writes only ({PARTITION_KEY!r},)"
        )
    if dt is not None:
        if partition_column is not None:
            raise LakeError("pass either dt= or partition_column=, not both")
        return {_as_dt(dt): frame}
    name = partition_column or default_partition_column(dataset)
    if name not in dataset.column_names or dataset.column(name).type != "timestamp":
        timestamps = [c.name for c in dataset.columns if c.type == "timestamp"]
        raise LakeError(
            f"partition column {name!r} is not a timestamp column of {dataset.name!r}; "
            f"timestamp columns: {', '.join(timestamps) or '(none)'}"
        )
    days = frame[name].dt.strftime("%Y-%m-%d")
    return {
        str(day): part.reset_index(drop=True)
        for day, part in frame.groupby(days, sort=True, dropna=True)
    }


def _sse(kms_key_id: str | None) -> dict[str, str]:
    return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key_id} if kms_key_id else {}


def arrow_table(frame: pd.DataFrame, dataset: Dataset, *, nullable: bool = False) -> pa.Table:
    """`frame` (the dataset's columns as `Column.pandas_dtype`) as a table of its file schema;
    `nullable` lifts the required columns' constraint (rows kept aside as they were read)."""
    schema = arrow_schema(dataset)
    if nullable:
        schema = pa.schema([f.with_nullable(True) for f in schema])
    return pa.Table.from_arrays(
        [_arrow_column(frame[c.name], c) for c in dataset.columns], schema=schema
    )


def _parquet_bytes(frame: pd.DataFrame, dataset: Dataset) -> bytes:
    table = arrow_table(frame, dataset)
    sink = io.BytesIO()
    pq.write_table(
        table,
        sink,
        compression="snappy",
        # A column whose dictionary outgrows 64 KiB (ids, amounts, instants) falls back to plain
        # encoding early: at the default 1 MiB the encoder hashes a large share of the column
        # only to throw the dictionary away, half the cost of a write. Codes, flags, counts keep
        # their small dictionaries (smaller files, faster reads).
        dictionary_pagesize_limit=64 * 1024,
        # No min/max for strings: a third of a write's cost, and they prune nothing here (a
        # vocabulary spans every file; ids are in no order).
        write_statistics=[c.name for c in dataset.columns if c.type != "string"],
    )
    return sink.getvalue()


def _arrow_column(series: pd.Series, column: Column) -> pa.Array:
    if column.type == "timestamp":
        # UTC instants as naive ns, then microseconds: only sub-microsecond digits are dropped.
        naive = pa.array(
            series.dt.tz_convert(None).to_numpy(), type=pa.timestamp("ns"), from_pandas=True
        )
        return naive.cast(ARROW_TYPES["timestamp"], safe=False)
    return pa.array(series, type=ARROW_TYPES[column.type], from_pandas=True)


def new_write_id() -> str:
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:8]}"


def write_dataset(
    frame: pd.DataFrame,
    dataset: Dataset,
    bucket: str,
    *,
    kms_key_id: str | None = None,
    partition_column: str | None = None,
    dt: str | date | None = None,
    rows_per_file: int = DEFAULT_ROWS_PER_FILE,
    s3: S3Client | None = None,
    region: str | None = None,
    endpoint_url: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> WriteResult:
    """Validate `frame` and commit it to `s3://bucket/<dataset.prefix>/dt=.../`.

    Each partition touched is replaced whole (see the module docstring). `dt` puts every row in
    one partition; otherwise it is the UTC date of `partition_column` (default: the dataset's
    first required timestamp column). `progress(done, total)` is called after each uploaded file.
    Raises `SchemaError` (nothing written) when the frame does not match the schema.
    """
    if rows_per_file < 1:
        raise LakeError(f"rows_per_file must be >= 1, got {rows_per_file}")
    conformed = conform_frame(frame, dataset)
    groups = _split(conformed, dataset, partition_column, dt)
    client = s3 if s3 is not None else s3_client(region, endpoint_url)
    write_id = new_write_id()
    sse = _sse(kms_key_id)

    planned: list[tuple[str, str, pd.DataFrame]] = []
    for day, part in groups.items():
        for i, start in enumerate(range(0, len(part), rows_per_file)):
            key = f"{partition_prefix(dataset.prefix, day)}part-{write_id}-{i:05d}.parquet"
            planned.append((day, key, part.iloc[start : start + rows_per_file]))
    total = len(planned) + len(groups)

    files: dict[str, list[DataFile]] = {day: [] for day in groups}
    uploaded: set[str] = set()
    attempted: set[str] = set()  # partitions whose manifest put was sent (it may have landed)
    committed: list[Partition] = []
    try:
        for done, (day, key, chunk) in enumerate(planned, start=1):
            body = _parquet_bytes(chunk, dataset)
            client.put_object(
                Bucket=bucket,
                Key=key,
                Body=body,
                ContentType="application/vnd.apache.parquet",
                **sse,
            )
            uploaded.add(key)
            files[day].append(DataFile(key, len(chunk), len(body)))
            if progress is not None:
                progress(done, total)
        for day, day_files in files.items():
            partition = Partition(
                dt=day,
                write_id=write_id,
                committed_at=datetime.now(UTC).isoformat(),
                rows=len(groups[day]),
                files=tuple(day_files),
            )
            attempted.add(day)
            client.put_object(
                Bucket=bucket,
                Key=manifest_key(dataset.prefix, day),
                Body=_manifest_body(dataset, partition),
                ContentType="application/json",
                **sse,
            )
            committed.append(partition)
            if progress is not None:
                progress(len(planned) + len(committed), total)
    except BaseException:
        # Only files no manifest can list: a manifest put that failed may still have landed.
        _delete_quietly(
            client, bucket, [k for d, k, _ in planned if d not in attempted and k in uploaded]
        )
        raise

    for partition in committed:
        _collect_garbage(client, bucket, dataset.prefix, partition)
    return WriteResult(dataset.name, bucket, write_id, tuple(committed))


def _manifest_body(dataset: Dataset, partition: Partition) -> bytes:
    data = {
        "format": MANIFEST_FORMAT,
        "dataset": dataset.name,
        "partition": partition.values,
        "write_id": partition.write_id,
        "committed_at": partition.committed_at,
        "rows": partition.rows,
        "columns": [{"name": c.name, "type": c.type} for c in dataset.columns],
        "files": [{"key": f.key, "rows": f.rows, "bytes": f.bytes} for f in partition.files],
    }
    return (json.dumps(data, indent=2) + "\n").encode()


def _list_keys(client: S3Client, bucket: str, prefix: str) -> list[str]:
    keys: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(obj["Key"] for obj in page.get("Contents", []))
    return keys


def _delete_quietly(client: S3Client, bucket: str, keys: Sequence[str]) -> None:
    """Best effort: leftovers are invisible to readers anyway and removed by the next commit."""
    for start in range(0, len(keys), 1000):
        batch = keys[start : start + 1000]
        try:
            client.delete_objects(
                Bucket=bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True}
            )
        except Exception as exc:  # cleanup must not mask the real outcome
            log.warning(
                "could not delete %d uncommitted object(s) in %s: %s", len(batch), bucket, exc
            )


def _collect_garbage(client: S3Client, bucket: str, prefix: str, partition: Partition) -> None:
    """Delete every lake file of the partition that its new manifest does not list."""
    keep = {f.key for f in partition.files}
    try:
        stale = [
            k
            for k in _list_keys(client, bucket, partition_prefix(prefix, partition.dt))
            if is_lake_file(k) and k not in keep
        ]
    except Exception as exc:  # committed already; leftovers are invisible
        log.warning(
            "could not list %s for cleanup: %s", partition_prefix(prefix, partition.dt), exc
        )
        return
    _delete_quietly(client, bucket, stale)


# --------------------------------------------------------------------------------------------
# Reading


def _is_missing(exc: Exception) -> bool:
    response = getattr(exc, "response", None)
    code = (response or {}).get("Error", {}).get("Code")
    return code in ("NoSuchKey", "404", "NotFound")


def read_manifest(client: S3Client, bucket: str, prefix: str, dt: str) -> Partition | None:
    """The committed partition `dt`, or None when it has no manifest (not committed)."""
    try:
        body = client.get_object(Bucket=bucket, Key=manifest_key(prefix, dt))["Body"].read()
    except Exception as exc:
        if _is_missing(exc):
            return None
        raise
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        raise LakeError(f"s3://{bucket}/{manifest_key(prefix, dt)}: not JSON: {exc}") from None
    return Partition.from_manifest(data)


def _filter(
    dt: str | date | None, start: str | date | None, end: str | date | None
) -> Callable[[str], bool]:
    if dt is not None and (start is not None or end is not None):
        raise LakeError("pass either dt= or a start=/end= range, not both")
    eq = _as_dt(dt) if dt is not None else None
    lo = _as_dt(start, "start") if start is not None else None
    hi = _as_dt(end, "end") if end is not None else None
    if lo is not None and hi is not None and lo > hi:
        raise LakeError(f"empty date range: start {lo} is after end {hi}")

    def keep(day: str) -> bool:
        if eq is not None:
            return day == eq
        return (lo is None or day >= lo) and (hi is None or day <= hi)

    return keep


def list_partitions(
    bucket: str,
    prefix: str,
    *,
    dt: str | date | None = None,
    start: str | date | None = None,
    end: str | date | None = None,
    s3: S3Client | None = None,
    region: str | None = None,
    endpoint_url: str | None = None,
    include_streamed: bool = True,
) -> list[Partition]:
    """Visible partitions under `s3://bucket/prefix/`, by date; `start`/`end` are inclusive.

    A partition is visible when it has a committed manifest or holds files the stream delivered
    (`include_streamed`). Uncommitted lake files (`part-*.parquet` no manifest lists) never count.
    """
    keep = _filter(dt, start, end)
    client = s3 if s3 is not None else s3_client(region, endpoint_url)
    days: list[str] = []
    marker = f"{prefix}/{PARTITION_KEY}="
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=marker, Delimiter="/"):
        for common in page.get("CommonPrefixes", []):
            day = common["Prefix"][len(marker) :].rstrip("/")
            if _DT_RE.match(day) and keep(day):
                days.append(day)
    partitions: list[Partition] = []
    for day in sorted(days):
        objects = _list_objects(client, bucket, partition_prefix(prefix, day))
        names = {key.rsplit("/", 1)[-1] for key in objects}
        partition = read_manifest(client, bucket, prefix, day) if MANIFEST_NAME in names else None
        streamed = tuple(
            DataFile(key, None, size)
            for key, size in sorted(objects.items())
            if include_streamed and is_stream_file(key)
        )
        if partition is None and streamed:
            partition = Partition(day, None, None, 0, ())
        if partition is not None:
            partitions.append(dataclasses.replace(partition, streamed=streamed))
    return partitions


def is_lake_file(key: str) -> bool:
    """A data file a lake write made (visible only through a manifest)."""
    return _LAKE_FILE.match(key.rsplit("/", 1)[-1]) is not None


def is_stream_file(key: str) -> bool:
    """An object another writer (the Firehose stream) delivered into a partition directory.

    Each such object is put whole by its writer, so it is visible as soon as it exists. Names
    starting with `_` or `.` (markers, manifests; Athena skips them too) are not data.
    """
    name = key.rsplit("/", 1)[-1]
    return bool(name) and not name.startswith(("_", ".")) and not is_lake_file(key)


def _list_objects(client: S3Client, bucket: str, prefix: str) -> dict[str, int]:
    """Keys directly under `prefix` (not in sub-directories) with their sizes."""
    found: dict[str, int] = {}
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix, Delimiter="/"):
        for obj in page.get("Contents", []):
            found[str(obj["Key"])] = int(obj["Size"])
    return found


def read_dataset(
    dataset: Dataset,
    bucket: str,
    *,
    dt: str | date | None = None,
    start: str | date | None = None,
    end: str | date | None = None,
    columns: Sequence[str] | None = None,
    s3: S3Client | None = None,
    region: str | None = None,
    endpoint_url: str | None = None,
    allow_nulls: bool = False,
) -> pd.DataFrame:
    """The committed rows of `dataset`, as `Column.pandas_dtype`, partitions in date order.

    `dt` selects one partition, `start`/`end` an inclusive range. `columns` selects columns (in
    the given order); `"dt"` among them adds the partition value as a string column. A null in a
    required column is a `LakeError` unless `allow_nulls` (a reader that rejects such rows itself:
    the stream's files are not validated before they land).
    """
    names = _column_names(dataset, columns)
    file_columns = [n for n in names if n != PARTITION_KEY]
    client = s3 if s3 is not None else s3_client(region, endpoint_url)
    partitions = list_partitions(bucket, dataset.prefix, dt=dt, start=start, end=end, s3=client)
    tables = [
        (
            partition.dt,
            _read_partition(client, bucket, dataset, partition, file_columns, allow_nulls),
        )
        for partition in partitions
    ]
    return _frame(dataset, names, tables)


def _column_names(dataset: Dataset, columns: Sequence[str] | None) -> tuple[str, ...]:
    names = tuple(columns) if columns is not None else dataset.column_names
    unknown = [n for n in names if n != PARTITION_KEY and n not in dataset.column_names]
    if unknown:
        hints = [
            f"{n!r} (did you mean {m[0]!r}?)"
            if (m := difflib.get_close_matches(n, dataset.column_names, n=1))
            else repr(n)
            for n in unknown
        ]
        raise SchemaError(
            dataset.name,
            [f"unknown column(s) {', '.join(hints)}; columns: {', '.join(dataset.column_names)}"],
        )
    return names


def _frame(
    dataset: Dataset, names: Sequence[str], tables: Sequence[tuple[str, pa.Table]]
) -> pd.DataFrame:
    """Partition tables (already cast to the schema) as one frame of `Column.pandas_dtype`
    columns, in order; `"dt"` among `names` adds the partition value as a string column."""
    if not tables:
        return empty_frame(dataset, names)
    table = pa.concat_tables([t for _, t in tables]) if len(tables) > 1 else tables[0][1]
    # Straight to the schema's dtypes: no Python objects for strings, no second conversion pass.
    frame = table.to_pandas(types_mapper=_PANDAS_TYPES.get, coerce_temporal_nanoseconds=True)
    if PARTITION_KEY in names:
        days = pa.array([day for day, _ in tables], pa.string())
        which = np.repeat(np.arange(len(tables)), [len(t) for _, t in tables])
        frame[PARTITION_KEY] = pd.arrays.ArrowStringArray(days.take(pa.array(which)))
    dtypes = {n: pd.api.types.pandas_dtype(dtype_of(dataset, n)) for n in names}
    if list(frame.columns) == list(names) and all(frame[n].dtype == d for n, d in dtypes.items()):
        return frame
    return pd.DataFrame({n: frame[n].astype(d) for n, d in dtypes.items()})


def _read_partition(
    client: S3Client,
    bucket: str,
    dataset: Dataset,
    partition: Partition,
    columns: list[str],
    allow_nulls: bool = False,
) -> pa.Table:
    for attempt in (1, 2):
        try:
            tables = [
                _read_file(client, bucket, f.key, columns)
                for f in (*partition.files, *partition.streamed)
            ]
        except Exception as exc:
            if not _is_missing(exc) or attempt == 2:
                raise
            # The partition changed while we read it (a write replaced it): look again, once.
            again = list_partitions(bucket, dataset.prefix, dt=partition.dt, s3=client)
            if not again or again[0] == partition:
                raise LakeError(
                    f"partition {PARTITION_KEY}={partition.dt} of {dataset.name!r} lists a file "
                    f"that is gone: {exc}"
                ) from exc
            partition = again[0]
            continue
        schema = arrow_schema(dataset, columns)
        if allow_nulls:
            schema = pa.schema([f.with_nullable(True) for f in schema])
        if not tables:
            return schema.empty_table()
        try:
            return pa.concat_tables([t.select(columns).cast(schema) for t in tables])
        except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError) as exc:
            raise LakeError(
                f"partition {PARTITION_KEY}={partition.dt} of {dataset.name!r} holds a file that "
                f"does not match the schema: {exc}"
            ) from exc
    raise AssertionError("unreachable")  # pragma: no cover


def _read_file(client: S3Client, bucket: str, key: str, columns: list[str]) -> pa.Table:
    body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    try:
        return pq.read_table(pa.BufferReader(body), columns=columns)
    except (pa.ArrowInvalid, pa.ArrowTypeError, KeyError) as exc:
        raise LakeError(f"s3://{bucket}/{key} is not a Parquet file of the dataset: {exc}") from exc


# --------------------------------------------------------------------------------------------
# Reading a local copy: a directory that mirrors `s3://<bucket>/<prefix>/` (a SageMaker training
# channel, FastFile or File mode), read by the same visibility rules as the bucket.


def local_partition(root: Path, prefix: str, dt: str | date) -> Partition | None:
    """Partition `dt` under `root` (its `dt=<d>/` directory): the files its `_manifest.json`
    lists, and the streamed files beside them; None when it has neither (not visible).

    The keys stay S3 keys (`<prefix>/dt=<d>/<name>`), as in the bucket; `local_path` maps one to
    its file under `root`.
    """
    day = _as_dt(dt)
    directory = root / f"{PARTITION_KEY}={day}"
    if not directory.is_dir():
        return None
    partition: Partition | None = None
    manifest = directory / MANIFEST_NAME
    if manifest.is_file():
        try:
            partition = Partition.from_manifest(json.loads(manifest.read_bytes()))
        except json.JSONDecodeError as exc:
            raise LakeError(f"{manifest}: not JSON: {exc}") from None
        if partition.dt != day:
            raise LakeError(f"{manifest} is the manifest of {PARTITION_KEY}={partition.dt}")
    streamed = tuple(
        DataFile(partition_prefix(prefix, day) + path.name, None, path.stat().st_size)
        for path in sorted(directory.iterdir())
        if path.is_file() and is_stream_file(path.name)
    )
    if partition is None and streamed:
        partition = Partition(day, None, None, 0, ())
    if partition is None:
        return None
    return dataclasses.replace(partition, streamed=streamed)


def local_path(root: Path, prefix: str, key: str) -> Path:
    """The file under `root` (the copy of `s3://<bucket>/<prefix>/`) of the object `key`."""
    if not key.startswith(f"{prefix}/"):
        raise LakeError(f"{key!r} is not under the prefix {prefix!r} that {root} holds")
    return root / key[len(prefix) + 1 :]


def read_local_dataset(
    dataset: Dataset,
    root: Path,
    partitions: Sequence[str | date],
    *,
    prefix: str | None = None,
    columns: Sequence[str] | None = None,
) -> pd.DataFrame:
    """The visible rows of the partitions `partitions` (dates) of `dataset` under `root`, a copy
    of `s3://<bucket>/<prefix>/` (default prefix: the dataset's), as `read_dataset` returns them.

    Raises `LakeError` naming the partition when one is not visible (no manifest, no streamed
    file) or a file it lists is missing or does not match the schema.
    """
    names = _column_names(dataset, columns)
    file_columns = [n for n in names if n != PARTITION_KEY]
    prefix = dataset.prefix if prefix is None else prefix
    schema = arrow_schema(dataset, file_columns)
    tables: list[tuple[str, pa.Table]] = []
    for day in sorted({_as_dt(d) for d in partitions}):
        partition = local_partition(root, prefix, day)
        if partition is None:
            raise LakeError(
                f"partition {PARTITION_KEY}={day} of {dataset.name!r} is not visible under "
                f"{root}: no {MANIFEST_NAME} and no streamed file in {PARTITION_KEY}={day}/"
            )
        parts = []
        for file in (*partition.files, *partition.streamed):
            path = local_path(root, prefix, file.key)
            if not path.is_file():
                raise LakeError(
                    f"partition {PARTITION_KEY}={day} of {dataset.name!r} lists {file.key}, "
                    f"which is not at {path}"
                )
            try:
                table = pq.ParquetFile(path).read(columns=file_columns)
                parts.append(table.select(file_columns).cast(schema))
            except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError, KeyError) as exc:
                raise LakeError(f"{path} is not a Parquet file of {dataset.name!r}: {exc}") from exc
        table = pa.concat_tables(parts) if parts else schema.empty_table()
        tables.append((day, table))
    return _frame(dataset, names, tables)
