"""SageMaker data capture: the real file format, read and written.

An endpoint with data capture writes JSON Lines files to
`s3://<bucket>/<root>/<endpoint>/<variant>/yyyy/mm/dd/hh/<mm>-<ss>-<ms>-<uuid>.jsonl`, one line per
captured request:

```
{"captureData": {
   "endpointInput":  {"observedContentType": "application/json", "mode": "INPUT",
                      "data": "...", "encoding": "JSON"},
   "endpointOutput": {"observedContentType": "application/json", "mode": "OUTPUT",
                      "data": "...", "encoding": "JSON"}},
 "eventMetadata": {"eventId": "<uuid>", "inferenceTime": "2025-01-01T12:00:00Z",
                   "inferenceId": "<caller's id, optional>"},
 "eventVersion": "0"}
```

`encoding` is `JSON` or `CSV` when the endpoint's capture header lists the content type (the body is
stored as text), `BASE64` otherwise (the body is stored base64-encoded, whatever it holds).
`parse_capture_line` / `parse_capture_file` read that format strictly (a malformed line raises
`CaptureFormatError` naming the line and the problem); `capture_record` writes it, so tests and the
sandbox produce exactly what an endpoint would.

The request and response bodies follow the inference handler's contract, read by
`CaptureRecord.input_records(spec)` and `CaptureRecord.output_scores()`, `spec` being the
`ModelSpec` of the model the endpoint serves:

* request, JSON: `{"instances": [record, ...]}`, a list of records, or one record (an object of raw
  input values keyed by column name);
* request, CSV: rows of the model's raw inputs in `ModelSpec.inputs` order, or under a header row
  when every field of the first row is a column name of its raw dataset (the handler's rule,
  `ml.inference`);
* response, JSON: `{"predictions": [...]}` with `"model_version"` (the handler always names the
  registered version that answered, `ml.inference`; older captures may lack it), or a bare list;
  each prediction is a number or an object with `"score"` (or `"probability"`);
* response, CSV: one score per line (no version: `parse_response` gives None for it).
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from ml.contracts import CAPTURE_ROOT

if TYPE_CHECKING:
    from ml.models import ModelSpec

ENCODINGS: tuple[str, ...] = ("JSON", "CSV", "BASE64")
EVENT_VERSION = "0"
JSON_CONTENT_TYPE = "application/json"
CSV_CONTENT_TYPE = "text/csv"

Encoding = Literal["JSON", "CSV", "BASE64"]


class CaptureFormatError(ValueError):
    """A capture line or payload that is not in the format SageMaker writes."""


# ---------------------------------------------------------------------------------------------
# Records
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CapturePayload:
    """One side (INPUT or OUTPUT) of a captured exchange, as stored."""

    content_type: str
    mode: Literal["INPUT", "OUTPUT"]
    encoding: Encoding
    data: str

    def body(self) -> bytes:
        """The body the endpoint received or sent (base64 decoded when stored as BASE64)."""
        if self.encoding == "BASE64":
            try:
                return base64.b64decode(self.data, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise CaptureFormatError(f"{self.mode} data is not valid base64: {exc}") from None
        return self.data.encode("utf-8")

    def text(self) -> str:
        try:
            return self.body().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CaptureFormatError(f"{self.mode} body is not UTF-8 text: {exc}") from None

    @property
    def is_csv(self) -> bool:
        return _media_type(self.content_type) == CSV_CONTENT_TYPE

    @property
    def is_json(self) -> bool:
        media = _media_type(self.content_type)
        return media == JSON_CONTENT_TYPE or media.endswith("+json")


@dataclass(frozen=True, slots=True)
class CaptureRecord:
    """One captured request and response with its event metadata."""

    event_id: str
    inference_time: datetime
    input: CapturePayload
    output: CapturePayload
    inference_id: str | None = None

    def input_records(self, spec: ModelSpec) -> list[dict[str, Any]]:
        """The raw input records the request to `spec`'s endpoint carried (see the module
        docstring for shapes)."""
        return parse_request(self.input.content_type, self.input.text(), spec=spec)

    def output_scores(self) -> list[float]:
        return parse_response(self.output.content_type, self.output.text())[0]

    def model_version(self) -> str | None:
        return parse_response(self.output.content_type, self.output.text())[1]


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _encoding_for(content_type: str) -> Encoding:
    media = _media_type(content_type)
    if media == CSV_CONTENT_TYPE:
        return "CSV"
    if media == JSON_CONTENT_TYPE or media.endswith("+json"):
        return "JSON"
    return "BASE64"


def format_inference_time(when: datetime) -> str:
    if when.tzinfo is None:
        raise ValueError(f"inference time {when.isoformat()} has no timezone; use UTC")
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def capture_record(
    request: str | bytes,
    response: str | bytes,
    *,
    request_content_type: str = JSON_CONTENT_TYPE,
    response_content_type: str = JSON_CONTENT_TYPE,
    base64_encode: bool = False,
    event_id: str | None = None,
    inference_time: datetime | None = None,
    inference_id: str | None = None,
) -> dict[str, Any]:
    """One capture line as SageMaker writes it (a dict; `json.dumps` it for the file).

    Bodies of JSON and CSV content types are stored as text with encoding `JSON`/`CSV`, as an
    endpoint whose capture header lists them does; anything else, or everything with
    `base64_encode=True` (an endpoint without a capture header), is stored base64-encoded with
    encoding `BASE64`.
    """

    def side(body: str | bytes, content_type: str, mode: str) -> dict[str, str]:
        raw = body.encode("utf-8") if isinstance(body, str) else body
        encoding = "BASE64" if base64_encode else _encoding_for(content_type)
        if encoding == "BASE64":
            data = base64.b64encode(raw).decode("ascii")
        else:
            try:
                data = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ValueError(
                    f"{mode} body of {content_type} is not UTF-8 text: {exc}"
                ) from None
        return {
            "observedContentType": content_type,
            "mode": mode,
            "data": data,
            "encoding": encoding,
        }

    metadata: dict[str, str] = {
        "eventId": event_id or str(uuid.uuid4()),
        "inferenceTime": format_inference_time(inference_time or datetime.now(UTC)),
    }
    if inference_id is not None:
        metadata["inferenceId"] = inference_id
    return {
        "captureData": {
            "endpointInput": side(request, request_content_type, "INPUT"),
            "endpointOutput": side(response, response_content_type, "OUTPUT"),
        },
        "eventMetadata": metadata,
        "eventVersion": EVENT_VERSION,
    }


def capture_lines(records: Iterable[Mapping[str, Any]]) -> str:
    """A capture file body: one compact JSON object per line."""
    return "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records)


def capture_prefix(
    endpoint: str, variant: str, hour: datetime | None = None, root: str = CAPTURE_ROOT
) -> str:
    """`root/endpoint/variant/` or, for an hour, `root/endpoint/variant/yyyy/mm/dd/hh/`."""
    for what, value in (("endpoint", endpoint), ("variant", variant)):
        if not value or "/" in value:
            raise ValueError(f"{what} name {value!r} must be non-empty and contain no '/'")
    base = f"{root.strip('/')}/{endpoint}/{variant}/"
    if hour is None:
        return base
    if hour.tzinfo is None:
        raise ValueError(f"hour {hour.isoformat()} has no timezone; use UTC")
    return base + hour.astimezone(UTC).strftime("%Y/%m/%d/%H/")


def capture_key(endpoint: str, variant: str, when: datetime, root: str = CAPTURE_ROOT) -> str:
    """The key an endpoint would give a file opened at `when`."""
    utc = when.astimezone(UTC) if when.tzinfo else when
    name = f"{utc:%M-%S}-{utc.microsecond // 1000:03d}-{uuid.uuid4()}.jsonl"
    return capture_prefix(endpoint, variant, when, root) + name


def write_capture_file(
    s3: Any,
    bucket: str,
    records: Sequence[Mapping[str, Any]],
    *,
    endpoint: str,
    variant: str,
    when: datetime,
    root: str = CAPTURE_ROOT,
) -> str:
    """Write one capture file where the endpoint would; returns its key."""
    if not records:
        raise ValueError("no capture records to write")
    key = capture_key(endpoint, variant, when, root)
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=capture_lines(records).encode("utf-8"),
        ContentType="application/jsonlines",
    )
    return key


# ---------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------


def _payload(obj: Any, where: str, mode: Literal["INPUT", "OUTPUT"]) -> CapturePayload:
    if not isinstance(obj, Mapping):
        raise CaptureFormatError(f"{where}: expected an object, got {type(obj).__name__}")
    missing = [k for k in ("observedContentType", "mode", "data", "encoding") if k not in obj]
    if missing:
        raise CaptureFormatError(f"{where}: missing {', '.join(missing)}")
    if obj["mode"] != mode:
        raise CaptureFormatError(f"{where}: mode is {obj['mode']!r}, expected {mode!r}")
    encoding = obj["encoding"]
    if encoding not in ENCODINGS:
        raise CaptureFormatError(
            f"{where}: encoding {encoding!r} is not one of {', '.join(ENCODINGS)}"
        )
    if not isinstance(obj["data"], str) or not isinstance(obj["observedContentType"], str):
        raise CaptureFormatError(f"{where}: data and observedContentType must be strings")
    return CapturePayload(
        content_type=obj["observedContentType"], mode=mode, encoding=encoding, data=obj["data"]
    )


def parse_inference_time(value: Any, where: str = "inferenceTime") -> datetime:
    if not isinstance(value, str):
        raise CaptureFormatError(f"{where}: expected an ISO 8601 string, got {value!r}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise CaptureFormatError(f"{where}: {value!r} is not an ISO 8601 time") from None
    if parsed.tzinfo is None:
        raise CaptureFormatError(f"{where}: {value!r} has no timezone (SageMaker writes UTC 'Z')")
    return parsed.astimezone(UTC)


def parse_capture_line(line: str | bytes, where: str = "line") -> CaptureRecord:
    """One capture line; raises `CaptureFormatError` naming `where` and the problem."""
    try:
        obj = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CaptureFormatError(f"{where}: not JSON: {exc}") from None
    if not isinstance(obj, Mapping):
        raise CaptureFormatError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    data, meta = obj.get("captureData"), obj.get("eventMetadata")
    if not isinstance(data, Mapping) or not isinstance(meta, Mapping):
        raise CaptureFormatError(f"{where}: missing captureData or eventMetadata")
    if "endpointInput" not in data or "endpointOutput" not in data:
        raise CaptureFormatError(f"{where}: captureData lacks endpointInput or endpointOutput")
    event_id = meta.get("eventId")
    if not isinstance(event_id, str) or not event_id:
        raise CaptureFormatError(f"{where}: eventMetadata.eventId is missing")
    inference_id = meta.get("inferenceId")
    if inference_id is not None and not isinstance(inference_id, str):
        raise CaptureFormatError(f"{where}: eventMetadata.inferenceId must be a string")
    return CaptureRecord(
        event_id=event_id,
        inference_time=parse_inference_time(
            meta.get("inferenceTime"), f"{where}: eventMetadata.inferenceTime"
        ),
        input=_payload(data["endpointInput"], f"{where}: endpointInput", "INPUT"),
        output=_payload(data["endpointOutput"], f"{where}: endpointOutput", "OUTPUT"),
        inference_id=inference_id,
    )


def parse_capture_file(body: str | bytes, source: str = "capture file") -> list[CaptureRecord]:
    """Every record of a capture file (blank lines skipped)."""
    text = body.decode("utf-8") if isinstance(body, bytes) else body
    return [
        parse_capture_line(line, f"{source}:{n}")
        for n, line in enumerate(text.splitlines(), start=1)
        if line.strip()
    ]


def hours_between(since: datetime, until: datetime) -> list[datetime]:
    """Every UTC hour that `[since, until)` touches, floored to the hour."""
    for t in (since, until):
        if t.tzinfo is None:
            raise ValueError(f"{t.isoformat()} has no timezone; use UTC")
    if until <= since:
        raise ValueError(f"empty window: until {until.isoformat()} <= since {since.isoformat()}")
    hour = since.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    out = []
    while hour < until:
        out.append(hour)
        hour += timedelta(hours=1)
    return out


def list_capture_keys(
    s3: Any,
    bucket: str,
    *,
    endpoint: str,
    variant: str,
    since: datetime,
    until: datetime,
    root: str = CAPTURE_ROOT,
) -> list[str]:
    """Keys of the capture files in the hour folders `[since, until)` touches, in time order.

    One paginated listing from the first hour's folder on (keys sort chronologically), stopped at
    the first folder past the window, instead of one listing per hour.
    """
    hours = hours_between(since, until)
    first = capture_prefix(endpoint, variant, hours[0], root)
    stop = capture_prefix(endpoint, variant, hours[-1] + timedelta(hours=1), root)
    base = capture_prefix(endpoint, variant, None, root)
    keys: list[str] = []
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=base, StartAfter=first[:-1]):
        for item in page.get("Contents", []):
            key = str(item["Key"])
            if key >= stop:
                return keys
            if key.endswith(".jsonl"):
                keys.append(key)
    return keys


def read_capture(
    s3: Any,
    bucket: str,
    *,
    endpoint: str,
    variant: str,
    since: datetime,
    until: datetime,
    root: str = CAPTURE_ROOT,
) -> Iterator[CaptureRecord]:
    """The captured records whose inference time is in `[since, until)`."""
    for key in list_capture_keys(
        s3, bucket, endpoint=endpoint, variant=variant, since=since, until=until, root=root
    ):
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        for record in parse_capture_file(body, f"s3://{bucket}/{key}"):
            if since <= record.inference_time < until:
                yield record


# ---------------------------------------------------------------------------------------------
# Bodies: the handler's request and response contract
# ---------------------------------------------------------------------------------------------


def _csv_value(text: str, kind: str) -> Any:
    value = text.strip()
    if value == "":
        return None
    try:
        if kind == "bigint":
            number = float(value)
            return int(number) if number.is_integer() else number
        if kind == "double":
            return float(value)
    except ValueError:
        return value  # kept as sent; validation downstream names it
    if kind == "boolean":
        lowered = value.lower()
        if lowered in ("true", "1"):
            return True
        if lowered in ("false", "0"):
            return False
    return value


def parse_request(content_type: str, text: str, *, spec: ModelSpec) -> list[dict[str, Any]]:
    """The raw input records of a request body to the endpoint of the model `spec` declares."""
    media = _media_type(content_type)
    if media == CSV_CONTENT_TYPE:
        raw = spec.raw
        try:
            rows = [r for r in csv.reader(io.StringIO(text)) if any(c.strip() for c in r)]
        except csv.Error as exc:
            raise CaptureFormatError(f"CSV request is not CSV: {exc}") from None
        names: list[str] = list(spec.inputs)
        if rows and all(c.strip() in raw.column_names for c in rows[0]):
            names, rows = [c.strip() for c in rows[0]], rows[1:]
        records = []
        for n, row in enumerate(rows, start=1):
            if len(row) != len(names):
                raise CaptureFormatError(
                    f"CSV request row {n} has {len(row)} fields; expected {len(names)} "
                    f"({', '.join(names)})"
                )
            records.append(
                {
                    name: _csv_value(v, raw.column(name).type)
                    for name, v in zip(names, row, strict=True)
                }
            )
        return records
    if media == JSON_CONTENT_TYPE or media.endswith("+json"):
        try:
            body = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CaptureFormatError(f"JSON request is not JSON: {exc}") from None
        if isinstance(body, Mapping) and "instances" in body:
            body = body["instances"]
        if isinstance(body, Mapping):
            body = [body]
        if not isinstance(body, list) or not all(isinstance(r, Mapping) for r in body):
            raise CaptureFormatError(
                'JSON request must be a record, a list of records or {"instances": [...]}'
            )
        return [dict(r) for r in body]
    raise CaptureFormatError(f"request content type {content_type!r} is not JSON or CSV")


def _score(value: Any, n: int) -> float:
    if isinstance(value, Mapping):
        for key in ("score", "probability"):
            if key in value:
                value = value[key]
                break
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CaptureFormatError(f'prediction {n} is not a number or {{"score": number}}')
    return float(value)


def parse_response(content_type: str, text: str) -> tuple[list[float], str | None]:
    """The scores of a response body and the model version when the response names it."""
    media = _media_type(content_type)
    if media == CSV_CONTENT_TYPE:
        fields = [v for line in text.splitlines() for v in line.split(",") if v.strip()]
        try:
            return [float(v) for v in fields], None
        except ValueError as exc:
            raise CaptureFormatError(f"CSV response holds a non-number: {exc}") from None
    if media == JSON_CONTENT_TYPE or media.endswith("+json"):
        try:
            body = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CaptureFormatError(f"JSON response is not JSON: {exc}") from None
        version: str | None = None
        if isinstance(body, Mapping):
            raw_version = body.get("model_version")
            version = str(raw_version) if raw_version is not None else None
            if "predictions" not in body:
                raise CaptureFormatError('JSON response object has no "predictions"')
            body = body["predictions"]
        if not isinstance(body, list):
            body = [body]
        return [_score(v, n) for n, v in enumerate(body)], version
    raise CaptureFormatError(f"response content type {content_type!r} is not JSON or CSV")
