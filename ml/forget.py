"""A deletion request: remove customers' data from every zone, the capture and the prediction logs.

`forget(customer_ids, targets, s3=...)` (`mlplat data forget --customer-id ...`):

1. Every lake dataset with a `customer_id` column (`ml.lake_schema.lake_datasets`: the raw
   customers and outcomes, the curated copy, every model's features and predictions tables, the
   latter being the prediction logs) is scanned partition by partition, reading the `customer_id`
   column only (so are the curate step's rejected rows, `rejected/` in the curated bucket, each
   file put again without the rows). A partition that holds a key is rewritten:
   * its lake-written part through `ml.lake.write_dataset(..., dt=<the partition>)`, the lake's
     atomic partition commit: the new files are uploaded, then the manifest is replaced in one put
     (readers see the old partition or the new one, never a mix), then the superseded files are
     deleted. A part left without rows loses its manifest (one delete: invisible at once), then
     its files;
   * each file the stream delivered into it (Firehose names them; the lake never rewrites them)
     is put again under its own key without the rows (one put: atomic), or deleted when empty.
2. The endpoints' data capture (JSON Lines under each model's `capture_prefix` in the
   predictions bucket; `ml.forget_capture`): an event whose every record is a key's is dropped;
   an event that scored several customers is rewritten without the key's records and their
   scores (request and response stay aligned), and an `inferenceId` that is a key is removed.
   Each file is put again whole (atomic) or deleted when nothing is left. An event that cannot be
   read and mentions a key is dropped (every reader skips unreadable events anyway).
3. The buckets are versioned, so the superseded data still exists as noncurrent versions: every
   noncurrent version under the datasets' and the capture's prefixes that holds a key is deleted
   (`DeleteObject` with its `VersionId`; `ml.forget_objects`). S3 Object Lock (the raw bucket's
   default retention, governance mode) forbids that before a version's retain-until date: such
   versions are reported with the date after which they can be deleted (a legal hold: once it is
   released), and the request can be run again then. `bypass_governance` deletes governance-mode
   versions (it needs `s3:BypassGovernanceRetention`); compliance mode and legal holds cannot be
   bypassed.
4. An audit record is written to the raw bucket (`audit/forget/dt=<day>/<request>.json`, under
   the bucket's Object Lock when it has one): what was removed where, the versions deleted and
   those still locked, and the keys as salted PBKDF2-SHA256 hashes, never in clear: a later
   question "was customer X forgotten?" is answered by hashing X with the record's salt.

`dry_run` does every read and reports what would change, writing nothing. `progress` receives a
line per step (a dataset, a partition rewritten, a capture file, the versions).
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ml.contracts import REJECTED_ROOT
from ml.forget_capture import CaptureChange as CaptureChange
from ml.forget_capture import CaptureTarget as CaptureTarget
from ml.forget_capture import (
    capture_keys,
    forget_capture_file,
    forget_line,
    mentions,
)
from ml.forget_objects import KEY_COLUMN as KEY_COLUMN
from ml.forget_objects import ForgetError as ForgetError
from ml.forget_objects import LockedVersion as LockedVersion
from ml.forget_objects import ObjectVersion as ObjectVersion
from ml.forget_objects import (
    Progress,
    matches,
    noncurrent_versions,
    purge,
    read_table,
    rewrite_parquet,
    sse,
)
from ml.lake import (
    Partition,
    arrow_schema,
    is_lake_file,
    list_partitions,
    manifest_key,
    write_dataset,
    zone_bucket,
)
from ml.lake_schema import ARROW_TYPES, lake_datasets

if TYPE_CHECKING:
    from ml.models import ModelSpec
    from ml.outputs import PlatformOutputs
    from ml.schema import Dataset

AUDIT_PREFIX = "audit/forget"
HASH_ITERATIONS = 200_000
# A lake file no manifest lists is a failed write's leftover, or a write still in flight: only
# leftovers older than this are deleted (a write in flight takes seconds to minutes).
ORPHAN_MIN_AGE_SECONDS = 3600


# ---------------------------------------------------------------------------------------------
# Where the data is
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Targets:
    """Every place a deletion request reaches, and where its audit record goes."""

    datasets: tuple[tuple[Dataset, str], ...]  # (dataset, its zone's bucket)
    captures: tuple[CaptureTarget, ...]
    audit_bucket: str
    kms_key_arn: str | None = None
    # Parquet objects that are no dataset's but hold its rows: (bucket, key prefix)
    files: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_platform(cls, platform: PlatformOutputs) -> Targets:
        """Every lake dataset keyed by customer (in its zone's bucket) and every hosted model's
        endpoint capture; the audit record in the raw bucket."""
        from ml.models import spec

        datasets = tuple(
            (dataset, zone_bucket(platform, dataset.zone))
            for _, dataset in sorted(lake_datasets().items())
            if KEY_COLUMN in dataset.column_names
        )
        captures = tuple(
            CaptureTarget(platform.predictions_bucket, outputs.capture_prefix, spec(name))
            for name, outputs in sorted(platform.models.items())
            if outputs.capture_prefix
        )
        rejected = ((platform.curated_bucket, f"{REJECTED_ROOT}/"),)  # ml.pipeline.curate's
        return cls(
            datasets,
            captures,
            platform.raw_bucket,
            platform.lake_kms_key_arn or None,
            rejected,
        )


# ---------------------------------------------------------------------------------------------
# What was done
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PartitionChange:
    """A partition of a dataset that held a key's rows."""

    dataset: str
    bucket: str
    dt: str
    rows_removed: int
    rows_kept: int  # of the lake-written part
    lake_part: Literal["rewritten", "emptied", "unchanged"]
    streamed_rewritten: tuple[str, ...] = ()
    streamed_deleted: tuple[str, ...] = ()
    lake_files: tuple[str, ...] = ()  # the lake-written files that held the keys

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "bucket": self.bucket,
            "dt": self.dt,
            "rows_removed": self.rows_removed,
            "rows_kept": self.rows_kept,
            "lake_part": self.lake_part,
            "streamed_rewritten": list(self.streamed_rewritten),
            "streamed_deleted": list(self.streamed_deleted),
        }


@dataclass(frozen=True, slots=True)
class FileChange:
    """A Parquet object outside the datasets (the curate step's rejected rows) that held keys."""

    bucket: str
    key: str
    rows_removed: int
    action: Literal["rewritten", "deleted"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "bucket": self.bucket,
            "key": self.key,
            "rows_removed": self.rows_removed,
            "action": self.action,
        }


@dataclass(frozen=True, slots=True)
class ForgetReport:
    request_id: str
    requested_at: datetime
    dry_run: bool
    salt: str
    key_hashes: tuple[str, ...]
    partitions: tuple[PartitionChange, ...] = ()
    captures: tuple[CaptureChange, ...] = ()
    files: tuple[FileChange, ...] = ()
    versions_deleted: tuple[ObjectVersion, ...] = ()
    versions_locked: tuple[LockedVersion, ...] = ()
    versions_failed: tuple[tuple[ObjectVersion, str], ...] = ()
    orphans_deleted: tuple[str, ...] = ()  # s3:// URIs of uncommitted lake files with the keys
    audit_key: str | None = None

    @property
    def rows_removed(self) -> int:
        return sum(p.rows_removed for p in self.partitions) + sum(
            f.rows_removed for f in self.files
        )

    @property
    def complete(self) -> bool:
        """Nothing that holds the keys is left (no locked or undeletable version)."""
        return not self.versions_locked and not self.versions_failed

    def to_dict(self) -> dict[str, Any]:
        by_dataset: dict[str, int] = {}
        for p in self.partitions:
            by_dataset[p.dataset] = by_dataset.get(p.dataset, 0) + p.rows_removed
        return {
            "format": "mlplat-forget/1",
            "request_id": self.request_id,
            "requested_at": self.requested_at.isoformat(timespec="seconds"),
            "dry_run": self.dry_run,
            "keys": {
                "column": KEY_COLUMN,
                "hash": "pbkdf2_hmac_sha256",
                "iterations": HASH_ITERATIONS,
                "salt": self.salt,
                "hashes": list(self.key_hashes),
            },
            "rows_removed": self.rows_removed,
            "rows_removed_by_dataset": by_dataset,
            "partitions": [p.to_dict() for p in self.partitions],
            "captures": [c.to_dict() for c in self.captures],
            "files": [f.to_dict() for f in self.files],
            "orphans_deleted": list(self.orphans_deleted),
            "versions_deleted": [v.to_dict() for v in self.versions_deleted],
            "versions_locked": [v.to_dict() for v in self.versions_locked],
            "versions_failed": [
                {**v.to_dict(), "error": error} for v, error in self.versions_failed
            ],
            "complete": self.complete,
            "audit_key": self.audit_key,
        }

    def summary(self) -> list[str]:
        verb = "would remove" if self.dry_run else "removed"
        lines = [f"request {self.request_id}: {verb} {self.rows_removed} row(s)"]
        by_dataset = self.to_dict()["rows_removed_by_dataset"]
        lines += [f"  {name}: {rows} row(s)" for name, rows in sorted(by_dataset.items())]
        lines += [
            f"  s3://{f.bucket}/{f.key}: {f.rows_removed} row(s), {f.action}" for f in self.files
        ]
        events = sum(c.events_removed for c in self.captures)
        rewritten = sum(c.events_rewritten for c in self.captures)
        lines.append(
            f"  capture: {events} event(s) dropped, {rewritten} rewritten, in "
            f"{len(self.captures)} file(s)"
        )
        deleted = "would delete" if self.dry_run else "deleted"
        if self.orphans_deleted:
            lines.append(f"  uncommitted lake files {deleted}: {len(self.orphans_deleted)}")
        lines.append(f"  noncurrent versions {deleted}: {len(self.versions_deleted)}")
        for locked in self.versions_locked:
            v = locked.version
            lines.append(
                f"  locked ({locked.mode or 'legal hold'}): s3://{v.bucket}/{v.key} version "
                f"{v.version_id}: can be deleted after {locked.deletable_after}"
            )
        for version, error in self.versions_failed:
            lines.append(
                f"  not deleted: s3://{version.bucket}/{version.key} version "
                f"{version.version_id}: {error}"
            )
        if self.versions_locked:
            lines.append("  run the same request again after those dates to finish it")
        if self.audit_key:
            lines.append(f"  audit record: {self.audit_key}")
        return lines


# ---------------------------------------------------------------------------------------------
# Keys
# ---------------------------------------------------------------------------------------------


def _keys(customer_ids: Iterable[str]) -> frozenset[str]:
    keys = [str(k) for k in customer_ids]
    blank = [k for k in keys if not k.strip()]
    if not keys:
        raise ForgetError("no customer id: name at least one (--customer-id ID)")
    if blank:
        raise ForgetError("a customer id is empty: ids are non-empty strings")
    return frozenset(keys)


def key_hash(customer_id: str, salt: str, iterations: int = HASH_ITERATIONS) -> str:
    """The salted, slow hash an audit record keeps instead of the id."""
    digest = hashlib.pbkdf2_hmac("sha256", customer_id.encode(), bytes.fromhex(salt), iterations)
    return digest.hex()


# ---------------------------------------------------------------------------------------------
# Lake partitions
# ---------------------------------------------------------------------------------------------

_PANDAS_TYPES: dict[pa.DataType, Any] = {
    ARROW_TYPES["string"]: pd.StringDtype(),
    ARROW_TYPES["bigint"]: pd.Int64Dtype(),
    ARROW_TYPES["boolean"]: pd.BooleanDtype(),
}


def _forget_partition(
    s3: Any,
    dataset: Dataset,
    bucket: str,
    partition: Partition,
    keys: frozenset[str],
    *,
    dry_run: bool,
    kms_key_arn: str | None,
) -> PartitionChange | None:
    lake_hits = 0
    lake_rows = 0
    holding: list[str] = []
    for f in partition.files:
        hits = matches(read_table(s3, bucket, f.key, [KEY_COLUMN]), keys)
        n = pc.sum(hits).as_py() or 0
        lake_hits += n
        lake_rows += len(hits)
        if n:
            holding.append(f.key)
    streamed: dict[str, int] = {}
    for f in partition.streamed:
        n = pc.sum(matches(read_table(s3, bucket, f.key, [KEY_COLUMN]), keys)).as_py() or 0
        if n:
            streamed[f.key] = n
    if not lake_hits and not streamed:
        return None
    kept = lake_rows - lake_hits
    lake_part: Literal["rewritten", "emptied", "unchanged"] = "unchanged"
    if lake_hits:
        lake_part = "rewritten" if kept else "emptied"
    rewritten: list[str] = []
    deleted: list[str] = []
    for key in streamed:
        action, _ = rewrite_parquet(s3, bucket, key, keys, dry_run=dry_run, kms=kms_key_arn)
        (rewritten if action == "rewritten" else deleted).append(key)
    if lake_hits and not dry_run:
        if kept:
            schema = arrow_schema(dataset)
            tables = [
                read_table(s3, bucket, f.key).select(dataset.column_names).cast(schema)
                for f in partition.files
            ]
            table = pa.concat_tables(tables)
            table = table.filter(pc.invert(matches(table, keys)))
            frame = table.to_pandas(types_mapper=_PANDAS_TYPES.get)
            write_dataset(frame, dataset, bucket, dt=partition.dt, kms_key_id=kms_key_arn, s3=s3)
        else:
            # The manifest first: one delete makes the lake part invisible at once.
            s3.delete_object(Bucket=bucket, Key=manifest_key(dataset.prefix, partition.dt))
            for f in partition.files:
                s3.delete_object(Bucket=bucket, Key=f.key)
    return PartitionChange(
        dataset=dataset.name,
        bucket=bucket,
        dt=partition.dt,
        rows_removed=lake_hits + sum(streamed.values()),
        rows_kept=kept,
        lake_part=lake_part,
        streamed_rewritten=tuple(rewritten),
        streamed_deleted=tuple(deleted),
        lake_files=tuple(holding),
    )


def _orphans(
    s3: Any,
    bucket: str,
    dataset: Dataset,
    visible: Sequence[Partition],
    keys: frozenset[str],
    now: datetime,
) -> tuple[list[str], list[tuple[ObjectVersion, str]]]:
    """Lake files under the dataset's prefix that no manifest lists and that hold the keys:
    (those old enough to delete, those that may belong to a write in flight)."""
    listed = {f.key for p in visible for f in (*p.files, *p.streamed)}
    old, young = [], []
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=f"{dataset.prefix}/"
    ):
        for obj in page.get("Contents", []):
            key = str(obj["Key"])
            if not is_lake_file(key) or key in listed:
                continue
            if not pc.any(matches(read_table(s3, bucket, key, [KEY_COLUMN]), keys)).as_py():
                continue
            age = (now - obj["LastModified"]).total_seconds()
            if age >= ORPHAN_MIN_AGE_SECONDS:
                old.append(key)
            else:
                young.append(
                    (
                        ObjectVersion(bucket, key, str(obj.get("VersionId") or "current")),
                        "an uncommitted lake file younger than an hour (a write in flight?): "
                        "run the request again later",
                    )
                )
    return old, young


# ---------------------------------------------------------------------------------------------
# Noncurrent versions and Object Lock
# ---------------------------------------------------------------------------------------------


def _version_holds_keys(
    s3: Any, version: ObjectVersion, keys: frozenset[str], spec: ModelSpec | None
) -> bool:
    body = s3.get_object(Bucket=version.bucket, Key=version.key, VersionId=version.version_id)[
        "Body"
    ].read()
    if version.key.endswith(".jsonl"):
        text = body.decode("utf-8", "replace")
        if spec is None:
            return mentions(text, keys)
        for line in text.splitlines():
            if line.strip():
                result = forget_line(line, spec, keys)
                if result.dropped or result.rewritten:
                    return True
        return False
    try:
        table = pq.read_table(pa.BufferReader(body), columns=[KEY_COLUMN])
    except (pa.ArrowInvalid, pa.ArrowTypeError, KeyError):
        return False  # not a data file of the dataset (a manifest, a marker)
    return bool(pc.any(matches(table, keys)).as_py())


# ---------------------------------------------------------------------------------------------
# The request
# ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Run:
    """One request under way: its settings and what each pass found."""

    s3: Any
    keys: frozenset[str]
    dry_run: bool
    kms_key_arn: str | None
    now: datetime
    say: Progress
    partitions: list[PartitionChange] = field(default_factory=list)
    files: list[FileChange] = field(default_factory=list)
    captures: list[CaptureChange] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    waiting: list[tuple[ObjectVersion, str]] = field(default_factory=list)
    # every prefix whose noncurrent versions are checked (with the model of a capture prefix)
    prefixes: dict[tuple[str, str], ModelSpec | None] = field(default_factory=dict)

    @property
    def mode(self) -> str:
        return "dry run: " if self.dry_run else ""

    def dataset(self, dataset: Dataset, bucket: str, where: str) -> None:
        found = list_partitions(bucket, dataset.prefix, s3=self.s3)
        self.say(
            f"{self.mode}{where} {dataset.name} (s3://{bucket}/{dataset.prefix}/): "
            f"{len(found)} partition(s)"
        )
        self.prefixes[(bucket, f"{dataset.prefix}/")] = None
        old, young = _orphans(self.s3, bucket, dataset, found, self.keys, self.now)
        self.waiting += young
        for key in old:
            self.orphans.append(f"s3://{bucket}/{key}")
            if not self.dry_run:
                self.s3.delete_object(Bucket=bucket, Key=key)
        for partition in found:
            change = _forget_partition(
                self.s3,
                dataset,
                bucket,
                partition,
                self.keys,
                dry_run=self.dry_run,
                kms_key_arn=self.kms_key_arn,
            )
            if change is not None:
                self.partitions.append(change)
                self.say(
                    f"{self.mode}  dt={change.dt}: {change.rows_removed} row(s) removed, "
                    f"lake part {change.lake_part}"
                )

    def parquet_files(self, bucket: str, prefix: str) -> None:
        self.prefixes[(bucket, prefix)] = None
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        found = [
            str(o["Key"])
            for page in pages
            for o in page.get("Contents", [])
            if str(o["Key"]).endswith(".parquet")
        ]
        self.say(f"{self.mode}s3://{bucket}/{prefix}: {len(found)} file(s)")
        for key in found:
            action, removed = rewrite_parquet(
                self.s3, bucket, key, self.keys, dry_run=self.dry_run, kms=self.kms_key_arn
            )
            if action != "unchanged":
                self.files.append(FileChange(bucket, key, removed, action))
                self.say(f"{self.mode}  {key}: {removed} row(s) removed, {action}")

    def capture(self, target: CaptureTarget) -> None:
        prefix = f"{target.prefix.rstrip('/')}/"
        self.prefixes[(target.bucket, prefix)] = target.spec
        found = capture_keys(self.s3, target.bucket, prefix)
        self.say(f"{self.mode}capture s3://{target.bucket}/{prefix}: {len(found)} file(s)")
        for key in found:
            change = forget_capture_file(
                self.s3, target, key, self.keys, dry_run=self.dry_run, kms_key_arn=self.kms_key_arn
            )
            if change is not None:
                self.captures.append(change)
                self.say(
                    f"{self.mode}  {key}: {change.events_removed} event(s) dropped, "
                    f"{change.events_rewritten} rewritten"
                )

    def stored_versions(self) -> list[ObjectVersion]:
        """Every noncurrent version that holds a key; in a dry run, the current versions a real
        run would supersede too."""
        found = [
            version
            for (bucket, prefix), spec in self.prefixes.items()
            for version in noncurrent_versions(self.s3, bucket, prefix)
            if _version_holds_keys(self.s3, version, self.keys, spec)
        ]
        if self.dry_run:
            found += _current_versions(self.s3, self.partitions, self.captures, self.files)
        self.say(f"{self.mode}versions: {len(found)} stored version(s) hold the keys")
        return found


def forget(
    customer_ids: Iterable[str],
    targets: Targets,
    *,
    s3: Any,
    dry_run: bool = False,
    bypass_governance: bool = False,
    progress: Progress | None = None,
    now: datetime | None = None,
) -> ForgetReport:
    """Remove every row, captured request and stored version that holds `customer_ids`
    (see the module docstring); returns what was done (or, `dry_run`, what would be)."""
    keys = _keys(customer_ids)
    requested_at = now or datetime.now(UTC)
    run = _Run(s3, keys, dry_run, targets.kms_key_arn, requested_at, progress or (lambda _: None))
    for i, (dataset, bucket) in enumerate(targets.datasets, start=1):
        run.dataset(dataset, bucket, f"[{i}/{len(targets.datasets)}]")
    for bucket, prefix in targets.files:
        run.parquet_files(bucket, prefix)
    for target in targets.captures:
        run.capture(target)
    deleted, locked, failed = purge(
        s3,
        run.stored_versions(),
        dry_run=dry_run,
        bypass_governance=bypass_governance,
        now=requested_at,
        progress=run.say,
    )
    salt = os.urandom(16).hex()
    report = ForgetReport(
        request_id=f"{requested_at:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}",
        requested_at=requested_at,
        dry_run=dry_run,
        salt=salt,
        key_hashes=tuple(sorted(key_hash(k, salt) for k in keys)),
        partitions=tuple(run.partitions),
        captures=tuple(run.captures),
        files=tuple(run.files),
        versions_deleted=tuple(deleted),
        versions_locked=tuple(locked),
        versions_failed=(*run.waiting, *failed),
        orphans_deleted=tuple(run.orphans),
    )
    if dry_run:
        return report
    audit_key = f"{AUDIT_PREFIX}/dt={requested_at:%Y-%m-%d}/{report.request_id}.json"
    report = replace(report, audit_key=f"s3://{targets.audit_bucket}/{audit_key}")
    s3.put_object(
        Bucket=targets.audit_bucket,
        Key=audit_key,
        Body=(json.dumps(report.to_dict(), indent=2) + "\n").encode(),
        ContentType="application/json",
        **sse(targets.kms_key_arn),
    )
    run.say(f"audit record s3://{targets.audit_bucket}/{audit_key}")
    return report


def _current_versions(
    s3: Any,
    partitions: Sequence[PartitionChange],
    captures: Sequence[CaptureChange],
    files: Sequence[FileChange],
) -> list[ObjectVersion]:
    """The current versions a real run would supersede (a dry run reports their locks too)."""
    objects = [(c.bucket, c.key) for c in captures] + [(f.bucket, f.key) for f in files]
    for p in partitions:
        held = (*p.lake_files, *p.streamed_rewritten, *p.streamed_deleted)
        objects += [(p.bucket, key) for key in held]
    out = []
    for bucket, key in objects:
        head = s3.head_object(Bucket=bucket, Key=key)
        version = head.get("VersionId")
        if version and version != "null":
            out.append(ObjectVersion(bucket, key, str(version)))
    return out


def forget_platform(
    customer_ids: Iterable[str],
    platform: PlatformOutputs,
    *,
    s3: Any,
    dry_run: bool = False,
    bypass_governance: bool = False,
    progress: Progress | None = None,
) -> ForgetReport:
    """`forget` over everything the platform's outputs name (`Targets.from_platform`)."""
    return forget(
        customer_ids,
        Targets.from_platform(platform),
        s3=s3,
        dry_run=dry_run,
        bypass_governance=bypass_governance,
        progress=progress,
    )
