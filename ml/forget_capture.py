"""The endpoints' data capture without a customer's requests (`ml.forget`).

An event whose every record is a key's is dropped; an event that scored several customers is
rewritten without the key's records and their scores (request and response stay aligned, in the
shape and encoding they were captured in), and an `inferenceId` that is a key is removed. A file is
put again whole (atomic) or deleted when nothing is left. An event that cannot be read and mentions
a key is dropped: every reader skips unreadable events anyway.
"""

from __future__ import annotations

import base64
import csv
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from ml.capture import CaptureFormatError, CaptureRecord, parse_capture_line, parse_response
from ml.forget_objects import KEY_COLUMN, ForgetError, sse

if TYPE_CHECKING:
    from ml.models import ModelSpec


@dataclass(frozen=True, slots=True)
class CaptureTarget:
    """One endpoint's capture: its bucket, its key prefix and the model whose requests it holds."""

    bucket: str
    prefix: str
    spec: ModelSpec


@dataclass(frozen=True, slots=True)
class CaptureChange:
    """A capture file that held a key's requests."""

    bucket: str
    key: str
    events_removed: int
    records_removed: int
    events_rewritten: int
    action: Literal["rewritten", "deleted"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "bucket": self.bucket,
            "key": self.key,
            "events_removed": self.events_removed,
            "records_removed": self.records_removed,
            "events_rewritten": self.events_rewritten,
            "action": self.action,
        }


@dataclass(slots=True)
class LineResult:
    line: str | None  # the line to keep (rewritten or as it was); None: dropped
    records_removed: int = 0
    dropped: bool = False
    rewritten: bool = False


def mentions(text: str, keys: frozenset[str]) -> bool:
    return any(k in text for k in keys)


def _payload_texts(obj: Any) -> str:
    """Every payload of an unreadable capture line, decoded where it can be (for `_mentions`)."""
    parts = [json.dumps(obj)]
    data = obj.get("captureData") if isinstance(obj, Mapping) else None
    for side in (data or {}).values() if isinstance(data, Mapping) else ():
        if isinstance(side, Mapping) and side.get("encoding") == "BASE64":
            try:
                parts.append(base64.b64decode(str(side.get("data", ""))).decode("utf-8", "replace"))
            except ValueError:
                continue
    return "\n".join(parts)


def _csv_rows(text: str) -> list[list[str]]:
    return [r for r in csv.reader(io.StringIO(text)) if any(c.strip() for c in r)]


def _keep_request(text: str, content_type: str, spec: ModelSpec, kept: list[int]) -> str:
    """The request body with only the records at `kept` (same shape as sent)."""
    if "csv" in content_type.lower():
        rows = _csv_rows(text)
        header: list[list[str]] = []
        if rows and all(c.strip() in spec.raw.column_names for c in rows[0]):
            header, rows = [rows[0]], rows[1:]
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows([*header, *(rows[i] for i in kept)])
        return out.getvalue()
    body = json.loads(text)
    if isinstance(body, dict) and "instances" in body:
        body["instances"] = [body["instances"][i] for i in kept]
    else:
        body = [body[i] for i in kept]
    return json.dumps(body, separators=(",", ":"))


def _keep_response(text: str, content_type: str, kept: list[int]) -> str:
    """The response body with only the scores at `kept`."""
    if "csv" in content_type.lower():
        scores = [v.strip() for line in text.splitlines() for v in line.split(",") if v.strip()]
        return "".join(f"{scores[i]}\n" for i in kept)
    body = json.loads(text)
    if isinstance(body, dict):
        body["predictions"] = [body["predictions"][i] for i in kept]
    else:
        body = [body[i] for i in kept]
    return json.dumps(body, separators=(",", ":"))


def _set_body(side: dict[str, Any], text: str) -> None:
    if side.get("encoding") == "BASE64":
        side["data"] = base64.b64encode(text.encode()).decode("ascii")
    else:
        side["data"] = text


def forget_line(line: str, spec: ModelSpec, keys: frozenset[str]) -> LineResult:
    try:
        event: CaptureRecord = parse_capture_line(line)
        records = event.input_records(spec)
        parse_response(event.output.content_type, event.output.text())
    except CaptureFormatError:
        try:
            obj = json.loads(line)
        except ValueError:
            obj = line
        if mentions(line, keys) or mentions(_payload_texts(obj), keys):
            return LineResult(None, dropped=True)
        return LineResult(line)
    hits = {i for i, r in enumerate(records) if str(r.get(KEY_COLUMN)) in keys}
    id_is_key = event.inference_id is not None and event.inference_id in keys
    if id_is_key and len(records) == 1:
        hits = {0}  # the prediction logs join a single record on its inferenceId
    if not hits and not id_is_key:
        return LineResult(line)
    if len(hits) == len(records):
        return LineResult(None, records_removed=len(records), dropped=True)
    obj = json.loads(line)
    if id_is_key:
        obj["eventMetadata"].pop("inferenceId", None)
    kept = [i for i in range(len(records)) if i not in hits]
    data = obj["captureData"]
    _set_body(
        data["endpointInput"],
        _keep_request(event.input.text(), event.input.content_type, spec, kept),
    )
    _set_body(
        data["endpointOutput"],
        _keep_response(event.output.text(), event.output.content_type, kept),
    )
    rewritten = json.dumps(obj, separators=(",", ":"))
    again = parse_capture_line(rewritten)  # still the format every reader expects
    if len(again.input_records(spec)) != len(kept) or len(again.output_scores()) != len(kept):
        raise ForgetError(f"rewriting capture event {event.event_id} broke its request/response")
    return LineResult(rewritten, records_removed=len(hits), rewritten=True)


def forget_capture_file(
    s3: Any,
    target: CaptureTarget,
    key: str,
    keys: frozenset[str],
    *,
    dry_run: bool,
    kms_key_arn: str | None,
) -> CaptureChange | None:
    text = s3.get_object(Bucket=target.bucket, Key=key)["Body"].read().decode("utf-8", "replace")
    kept: list[str] = []
    events_removed = records_removed = events_rewritten = 0
    for line in text.splitlines():
        if not line.strip():
            continue
        result = forget_line(line, target.spec, keys)
        records_removed += result.records_removed
        events_removed += int(result.dropped)
        events_rewritten += int(result.rewritten)
        if result.line is not None:
            kept.append(result.line)
    if not events_removed and not events_rewritten:
        return None
    action: Literal["rewritten", "deleted"] = "rewritten" if kept else "deleted"
    if not dry_run:
        if kept:
            s3.put_object(
                Bucket=target.bucket,
                Key=key,
                Body=("\n".join(kept) + "\n").encode(),
                ContentType="application/jsonlines",
                **sse(kms_key_arn),
            )
        else:
            s3.delete_object(Bucket=target.bucket, Key=key)
    return CaptureChange(
        target.bucket, key, events_removed, records_removed, events_rewritten, action
    )


def capture_keys(s3: Any, bucket: str, prefix: str) -> list[str]:
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [str(o["Key"]) for o in page.get("Contents", []) if o["Key"].endswith(".jsonl")]
    return keys
