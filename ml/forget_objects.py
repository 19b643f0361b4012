"""Objects and their versions for a deletion request (`ml.forget`): Parquet objects read and put
again without a customer's rows, the noncurrent versions that still hold them, and S3 Object Lock.

A locked version (retention not past, or a legal hold) is never deleted: it is reported with the
date after which it can be. Governance-mode retention is bypassed only when asked (it needs
`s3:BypassGovernanceRetention`); compliance mode and legal holds never are.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ml.lake import LakeError

KEY_COLUMN = "customer_id"
Progress = Callable[[str], None]


class ForgetError(ValueError):
    """A deletion request that cannot be carried out as given (the reason, what is allowed)."""


@dataclass(frozen=True, slots=True)
class ObjectVersion:
    bucket: str
    key: str
    version_id: str

    def to_dict(self) -> dict[str, Any]:
        return {"bucket": self.bucket, "key": self.key, "version_id": self.version_id}


@dataclass(frozen=True, slots=True)
class LockedVersion:
    """A version that holds a key's data and that Object Lock keeps until `retain_until`."""

    version: ObjectVersion
    mode: str | None  # GOVERNANCE or COMPLIANCE, None: a legal hold only
    retain_until: datetime | None
    legal_hold: bool

    @property
    def deletable_after(self) -> str:
        if self.legal_hold:
            return "when its legal hold is released"
        if self.retain_until is None:
            return "unknown (no retain-until date)"
        return self.retain_until.astimezone(UTC).isoformat(timespec="seconds")

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.version.to_dict(),
            "mode": self.mode,
            "retain_until": None
            if self.retain_until is None
            else self.retain_until.astimezone(UTC).isoformat(timespec="seconds"),
            "legal_hold": self.legal_hold,
            "deletable_after": self.deletable_after,
        }


def read_table(s3: Any, bucket: str, key: str, columns: Sequence[str] | None = None) -> pa.Table:
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    try:
        return pq.read_table(pa.BufferReader(body), columns=list(columns) if columns else None)
    except (pa.ArrowInvalid, pa.ArrowTypeError, KeyError) as exc:
        raise LakeError(f"s3://{bucket}/{key} is not a Parquet file of the dataset: {exc}") from exc


def matches(table: pa.Table, keys: frozenset[str]) -> pa.Array:
    column = table.column(KEY_COLUMN).cast(pa.string())
    return pc.fill_null(pc.is_in(column, value_set=pa.array(sorted(keys), pa.string())), False)


def parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="snappy")
    return sink.getvalue()


def sse(kms_key_arn: str | None) -> dict[str, str]:
    return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key_arn} if kms_key_arn else {}


def rewrite_parquet(
    s3: Any, bucket: str, key: str, keys: frozenset[str], *, dry_run: bool, kms: str | None
) -> tuple[Literal["rewritten", "deleted", "unchanged"], int]:
    """A Parquet object put again under its own key without the keys' rows (one put: atomic), or
    deleted when nothing is left; its schema is kept as it was."""
    table = read_table(s3, bucket, key)
    if KEY_COLUMN not in table.column_names:
        return "unchanged", 0
    hits = matches(table, keys)
    removed = int(pc.sum(hits).as_py() or 0)
    if not removed:
        return "unchanged", 0
    remaining = table.filter(pc.invert(hits))
    if not dry_run:
        if len(remaining):
            s3.put_object(
                Bucket=bucket,
                Key=key,
                Body=parquet_bytes(remaining),
                ContentType="application/vnd.apache.parquet",
                **sse(kms),
            )
        else:
            s3.delete_object(Bucket=bucket, Key=key)
    return ("rewritten" if len(remaining) else "deleted"), removed


def noncurrent_versions(s3: Any, bucket: str, prefix: str) -> list[ObjectVersion]:
    found: list[ObjectVersion] = []
    paginator = s3.get_paginator("list_object_versions")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for v in page.get("Versions", []):
            if not v.get("IsLatest") and v.get("VersionId") not in (None, "null"):
                found.append(ObjectVersion(bucket, str(v["Key"]), str(v["VersionId"])))
    return found


def lock_of(s3: Any, version: ObjectVersion, now: datetime) -> LockedVersion | None:
    """The Object Lock that protects a version now (retention not yet past, or a legal hold)."""
    head = s3.head_object(Bucket=version.bucket, Key=version.key, VersionId=version.version_id)
    legal_hold = head.get("ObjectLockLegalHoldStatus") == "ON"
    mode = head.get("ObjectLockMode")
    until = head.get("ObjectLockRetainUntilDate")
    retained = isinstance(until, datetime) and until > now
    if not legal_hold and not retained:
        return None
    return LockedVersion(
        version,
        str(mode) if mode and retained else None,
        until.astimezone(UTC) if isinstance(until, datetime) else None,
        legal_hold,
    )


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", type(exc).__name__))


def purge(
    s3: Any,
    candidates: Sequence[ObjectVersion],
    *,
    dry_run: bool,
    bypass_governance: bool,
    now: datetime,
    progress: Progress,
) -> tuple[list[ObjectVersion], list[LockedVersion], list[tuple[ObjectVersion, str]]]:
    from botocore.exceptions import ClientError

    deleted: list[ObjectVersion] = []
    locked: list[LockedVersion] = []
    failed: list[tuple[ObjectVersion, str]] = []
    for n, version in enumerate(candidates, start=1):
        lock = lock_of(s3, version, now)
        can_bypass = (
            lock is not None
            and bypass_governance
            and not lock.legal_hold
            and lock.mode == "GOVERNANCE"
        )
        if lock is not None and not can_bypass:
            locked.append(lock)
            continue
        if dry_run:
            deleted.append(version)
            continue
        extra = {"BypassGovernanceRetention": True} if can_bypass else {}
        try:
            s3.delete_object(
                Bucket=version.bucket, Key=version.key, VersionId=version.version_id, **extra
            )
        except ClientError as exc:
            failed.append((version, f"{_error_code(exc)}: {exc}"))
            continue
        deleted.append(version)
        if n % 100 == 0:
            progress(f"versions: {n} of {len(candidates)} checked")
    return deleted, locked, failed
