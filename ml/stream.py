"""Streaming ingestion: records to the platform's Firehose delivery stream, nothing dropped.

Records are JSON lines: one object per record, newline-terminated (Firehose concatenates records
into S3 objects as they are), datetimes and dates as ISO-8601, NaN/NA as null.

`send_records` packs records into `PutRecordBatch` calls within the service limits (500 records
and 4 MiB per call, 1,000 KiB per record). A record over the per-record limit is never sent and is
reported as failed (``RecordTooLarge``). When a call reports ``FailedPutCount > 0``, only the
records whose response entry carries an ``ErrorCode`` are sent again, after an exponential backoff
(``base_delay * 2**n``, capped at ``max_delay``; `sleep` is injectable); a throttling or
service-unavailable error of the whole call is retried the same way. What is still undelivered
after `max_attempts` is returned in `DeliveryResult.failed` with its last error code — the caller
decides; nothing is dropped silently. Errors that retrying cannot fix (an unknown stream, denied
access) raise `StreamError`, which carries the result so far.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import pandas as pd

from ml.schema import Dataset

FirehoseClient = Any

MAX_BATCH_RECORDS = 500
MAX_BATCH_BYTES = 4 * 1024 * 1024
MAX_RECORD_BYTES = 1000 * 1024
RECORD_TOO_LARGE = "RecordTooLarge"
RETRYABLE_CALL_ERRORS = frozenset(
    {
        "ServiceUnavailableException",
        "ThrottlingException",
        "Throttling",
        "InternalFailure",
        "InternalServerError",
        "RequestTimeout",
    }
)


@dataclass(frozen=True, slots=True)
class FailedRecord:
    """A record that was not delivered: its position in the input, the data, the last error."""

    index: int
    data: bytes
    error_code: str
    error_message: str = ""


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    stream_name: str
    delivered: int
    failed: tuple[FailedRecord, ...] = ()
    calls: int = 0
    retried: int = 0  # records sent more than once

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def error_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for f in self.failed:
            counts[f.error_code] = counts.get(f.error_code, 0) + 1
        return counts


class StreamError(RuntimeError):
    """Delivery stopped on an error retrying cannot fix; `result` says what got through."""

    def __init__(self, message: str, result: DeliveryResult) -> None:
        super().__init__(message)
        self.result = result


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date | pd.Timestamp):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if isinstance(value, bytes):
        return value.decode()
    raise TypeError(f"cannot encode {type(value).__name__} as JSON: {value!r}")


def _clean(value: Any) -> Any:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item") and not isinstance(value, pd.Timestamp):
        value = value.item()
        if isinstance(value, float) and math.isnan(value):
            return None
    return value


def encode_record(record: Mapping[str, Any]) -> bytes:
    """One JSON line (UTF-8, newline-terminated): ISO-8601 datetimes, null for NaN/NA."""
    cleaned = {str(k): _clean(v) for k, v in record.items()}
    text = json.dumps(cleaned, default=_json_default, separators=(",", ":"), allow_nan=False)
    return (text + "\n").encode()


def frame_records(frame: pd.DataFrame, dataset: Dataset | None = None) -> list[dict[str, Any]]:
    """The rows of `frame` as records; with `dataset`, validated against its schema first."""
    if dataset is not None:
        from ml.lake import conform_frame

        frame = conform_frame(frame, dataset)
    return [
        dict(zip(frame.columns, row, strict=True))
        for row in frame.itertuples(index=False, name=None)
    ]


def batches(
    sizes: Sequence[int],
    max_records: int = MAX_BATCH_RECORDS,
    max_bytes: int = MAX_BATCH_BYTES,
) -> Iterator[list[int]]:
    """Indices of `sizes` grouped into consecutive batches within both limits."""
    current: list[int] = []
    total = 0
    for i, size in enumerate(sizes):
        if current and (len(current) >= max_records or total + size > max_bytes):
            yield current
            current, total = [], 0
        current.append(i)
        total += size
    if current:
        yield current


def firehose_client(region: str | None = None, endpoint_url: str | None = None) -> FirehoseClient:
    import boto3

    return boto3.client("firehose", region_name=region, endpoint_url=endpoint_url)


def _call_error(exc: Exception) -> tuple[str, str] | None:
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return None
    error = response.get("Error", {})
    return str(error.get("Code", "")), str(error.get("Message", ""))


def send_records(
    records: Iterable[Mapping[str, Any] | bytes],
    stream_name: str,
    *,
    firehose: FirehoseClient | None = None,
    region: str | None = None,
    endpoint_url: str | None = None,
    max_attempts: int = 5,
    base_delay: float = 0.2,
    max_delay: float = 10.0,
    sleep: Callable[[float], None] = time.sleep,
) -> DeliveryResult:
    """Deliver `records` (mappings, or already-encoded JSON-line bytes) to `stream_name`."""
    if max_attempts < 1:
        raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
    payloads = [r if isinstance(r, bytes) else encode_record(r) for r in records]
    client = firehose if firehose is not None else firehose_client(region, endpoint_url)
    failed: list[FailedRecord] = []
    sendable: list[int] = []
    for i, data in enumerate(payloads):
        if len(data) > MAX_RECORD_BYTES:
            failed.append(
                FailedRecord(
                    i,
                    data,
                    RECORD_TOO_LARGE,
                    f"{len(data):,} bytes; Firehose takes at most {MAX_RECORD_BYTES:,} per record",
                )
            )
        else:
            sendable.append(i)

    delivered = calls = 0
    retried: set[int] = set()
    for batch in batches([len(payloads[i]) for i in sendable]):
        pending = [sendable[j] for j in batch]
        last: dict[int, tuple[str, str]] = {}
        for attempt in range(1, max_attempts + 1):
            if attempt > 1:
                retried.update(pending)
                sleep(min(max_delay, base_delay * 2 ** (attempt - 2)))
            calls += 1
            try:
                answer = client.put_record_batch(
                    DeliveryStreamName=stream_name,
                    Records=[{"Data": payloads[i]} for i in pending],
                )
            except Exception as exc:
                error = _call_error(exc)
                if error is None or error[0] not in RETRYABLE_CALL_ERRORS:
                    done = [
                        FailedRecord(
                            i, payloads[i], error[0] if error else type(exc).__name__, str(exc)
                        )
                        for i in pending
                    ]
                    result = DeliveryResult(
                        stream_name, delivered, tuple(failed + done), calls, len(retried)
                    )
                    raise StreamError(
                        f"put_record_batch to {stream_name!r} failed: {exc}", result
                    ) from exc
                last = dict.fromkeys(pending, error)
                continue
            responses = answer.get("RequestResponses", [])
            if len(responses) != len(pending):
                raise StreamError(
                    f"put_record_batch answered {len(responses)} entries for {len(pending)} "
                    "records",
                    DeliveryResult(stream_name, delivered, tuple(failed), calls, len(retried)),
                )
            still: list[int] = []
            for i, entry in zip(pending, responses, strict=True):
                if entry.get("ErrorCode"):
                    still.append(i)
                    last[i] = (str(entry["ErrorCode"]), str(entry.get("ErrorMessage", "")))
                else:
                    delivered += 1
            pending = still
            if not pending:
                break
        failed.extend(FailedRecord(i, payloads[i], *last[i]) for i in pending)

    failed.sort(key=lambda f: f.index)
    return DeliveryResult(stream_name, delivered, tuple(failed), calls, len(retried))
