"""SageMaker data capture: real-format lines read, the writer's output, the S3 layout."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from ml.capture import (
    CaptureFormatError,
    capture_key,
    capture_lines,
    capture_record,
    list_capture_keys,
    parse_capture_file,
    parse_capture_line,
    parse_request,
    parse_response,
    read_capture,
    write_capture_file,
)
from ml.models.churn.spec import SPEC

BUCKET = "predictions"
RECORD = {
    "tenure_months": 12,
    "monthly_charges": 70.5,
    "total_charges": 846.0,
    "contract_type": "month-to-month",
    "payment_method": "card",
    "support_tickets": 2,
    "data_usage_gb": 10.0,
    "region": "north",
    "is_senior": False,
}
CSV_ROW = "12,70.5,846.0,month-to-month,card,2,10.0,north,false"

# Lines as an endpoint writes them (shapes from the SageMaker data-capture documentation).
JSON_LINE = (
    '{"captureData":{"endpointInput":{"observedContentType":"application/json","mode":"INPUT",'
    '"data":"{\\"instances\\": [{\\"tenure_months\\": 12, \\"monthly_charges\\": 70.5, '
    '\\"total_charges\\": 846.0, \\"contract_type\\": \\"month-to-month\\", \\"payment_method\\": '
    '\\"card\\", \\"support_tickets\\": 2, \\"data_usage_gb\\": 10.0, \\"region\\": \\"north\\", '
    '\\"is_senior\\": false, \\"customer_id\\": \\"c-1\\"}]}","encoding":"JSON"},'
    '"endpointOutput":{"observedContentType":"application/json","mode":"OUTPUT",'
    '"data":"{\\"predictions\\": [{\\"score\\": 0.25}]}","encoding":"JSON"}},'
    '"eventMetadata":{"eventId":"5ee8b4d2-d8b3-4d4d-a7bb-0a3b47de3d6c",'
    '"inferenceTime":"2025-01-01T12:34:56Z"},"eventVersion":"0"}'
)
CSV_LINE = (
    '{"captureData":{"endpointInput":{"observedContentType":"text/csv","mode":"INPUT",'
    f'"data":"{CSV_ROW}","encoding":"CSV"}},'
    '"endpointOutput":{"observedContentType":"text/csv; charset=utf-8","mode":"OUTPUT",'
    '"data":"0.75\\n","encoding":"CSV"}},'
    '"eventMetadata":{"eventId":"b1c2","inferenceId":"customer-9",'
    '"inferenceTime":"2025-01-01T12:59:59.123Z"},"eventVersion":"0"}'
)
B64_IN = base64.b64encode(json.dumps(RECORD).encode()).decode()
B64_OUT = base64.b64encode(b'{"predictions": [{"score": 0.5}]}').decode()
BASE64_LINE = (
    '{"captureData":{"endpointInput":{"observedContentType":"application/json","mode":"INPUT",'
    f'"data":"{B64_IN}","encoding":"BASE64"}},'
    '"endpointOutput":{"observedContentType":"application/json","mode":"OUTPUT",'
    f'"data":"{B64_OUT}","encoding":"BASE64"}}}},'
    '"eventMetadata":{"eventId":"e-3","inferenceTime":"2025-01-01T13:00:00Z"},'
    '"eventVersion":"0"}'
)


def test_reads_a_json_capture_line() -> None:
    record = parse_capture_line(JSON_LINE)
    assert record.event_id == "5ee8b4d2-d8b3-4d4d-a7bb-0a3b47de3d6c"
    assert record.inference_time == datetime(2025, 1, 1, 12, 34, 56, tzinfo=UTC)
    assert record.inference_id is None
    assert (record.input.encoding, record.input.mode) == ("JSON", "INPUT")
    assert record.input_records(SPEC) == [{**RECORD, "customer_id": "c-1"}]
    assert record.output_scores() == [0.25]


def test_reads_a_csv_capture_line() -> None:
    record = parse_capture_line(CSV_LINE)
    assert record.inference_id == "customer-9"
    assert record.inference_time == datetime(2025, 1, 1, 12, 59, 59, 123000, tzinfo=UTC)
    assert record.input.encoding == "CSV"
    assert record.input_records(SPEC) == [RECORD]
    assert record.output_scores() == [0.75]


def test_reads_a_base64_capture_line() -> None:
    record = parse_capture_line(BASE64_LINE)
    assert record.input.encoding == "BASE64"
    assert record.input.data == B64_IN
    assert record.input_records(SPEC) == [RECORD]
    assert record.output_scores() == [0.5]


def test_csv_request_with_a_header_row_and_empty_fields() -> None:
    body = (
        "monthly_charges,tenure_months,total_charges,contract_type,payment_method,"
        "support_tickets,data_usage_gb,region,is_senior\n70.5,12,,two-year,,0,,south,1\n"
    )
    assert parse_request("text/csv", body, spec=SPEC) == [
        {
            "monthly_charges": 70.5,
            "tenure_months": 12,
            "total_charges": None,
            "contract_type": "two-year",
            "payment_method": None,
            "support_tickets": 0,
            "data_usage_gb": None,
            "region": "south",
            "is_senior": True,
        }
    ]


def test_json_request_shapes() -> None:
    assert parse_request("application/json", json.dumps(RECORD), spec=SPEC) == [RECORD]
    assert parse_request("application/json", json.dumps([RECORD, RECORD]), spec=SPEC) == [
        RECORD,
        RECORD,
    ]
    assert parse_response("application/json", "[0.1, 0.2]") == ([0.1, 0.2], None)
    assert parse_response("application/json", '{"predictions": [0.3], "model_version": "7"}') == (
        [0.3],
        "7",
    )


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: "not json", "capture file:3: not JSON"),
        (lambda d: json.dumps({"captureData": {}}), "missing captureData or eventMetadata"),
        (
            lambda d: json.dumps({**d, "eventMetadata": {"inferenceTime": "2025-01-01T00:00:00Z"}}),
            "eventId is missing",
        ),
        (
            lambda d: json.dumps(
                {**d, "eventMetadata": {"eventId": "x", "inferenceTime": "2025-01-01T00:00:00"}}
            ),
            "has no timezone",
        ),
        (
            lambda d: json.dumps(
                {**d, "eventMetadata": {"eventId": "x", "inferenceTime": "yesterday"}}
            ),
            "is not an ISO 8601 time",
        ),
        (lambda d: json.dumps(_with_input(d, encoding="XML")), "encoding 'XML' is not one of"),
        (lambda d: json.dumps(_with_input(d, mode="OUTPUT")), "mode is 'OUTPUT', expected 'INPUT'"),
        (lambda d: json.dumps(_with_input(d, data=None)), "must be strings"),
    ],
)
def test_malformed_lines_are_refused_with_their_place(mutate: Any, message: str) -> None:
    good = json.loads(JSON_LINE)
    with pytest.raises(CaptureFormatError, match=re.escape(message)) as info:
        parse_capture_file(JSON_LINE + "\n\n" + mutate(good) + "\n")
    assert str(info.value).startswith("capture file:3: ")


def _with_input(line: dict[str, Any], **changes: Any) -> dict[str, Any]:
    data = dict(line["captureData"])
    data["endpointInput"] = {**data["endpointInput"], **changes}
    return {**line, "captureData": data}


def test_bad_bodies_are_refused() -> None:
    bad64 = parse_capture_line(BASE64_LINE.replace(B64_IN, "%%%not-base64%%%"))
    with pytest.raises(CaptureFormatError, match="INPUT data is not valid base64"):
        bad64.input_records(SPEC)
    with pytest.raises(CaptureFormatError, match="CSV request row 1 has 2 fields; expected 9"):
        parse_request("text/csv", "1,2\n", spec=SPEC)
    with pytest.raises(CaptureFormatError, match="not JSON or CSV"):
        parse_request("application/x-npy", "...", spec=SPEC)
    with pytest.raises(CaptureFormatError, match='has no "predictions"'):
        parse_response("application/json", '{"scores": [1]}')
    with pytest.raises(CaptureFormatError, match="prediction 0 is not a number"):
        parse_response("application/json", '{"predictions": ["high"]}')


# --- the writer ----------------------------------------------------------------------------------


def test_writer_produces_the_exact_format_and_reads_back() -> None:
    when = datetime(2025, 1, 1, 12, 0, 1, tzinfo=UTC)
    line = capture_record(
        json.dumps(RECORD),
        '{"predictions": [{"score": 0.5}]}',
        event_id="e-1",
        inference_time=when,
        inference_id="i-1",
    )
    assert line == {
        "captureData": {
            "endpointInput": {
                "observedContentType": "application/json",
                "mode": "INPUT",
                "data": json.dumps(RECORD),
                "encoding": "JSON",
            },
            "endpointOutput": {
                "observedContentType": "application/json",
                "mode": "OUTPUT",
                "data": '{"predictions": [{"score": 0.5}]}',
                "encoding": "JSON",
            },
        },
        "eventMetadata": {
            "eventId": "e-1",
            "inferenceTime": "2025-01-01T12:00:01Z",
            "inferenceId": "i-1",
        },
        "eventVersion": "0",
    }
    parsed = parse_capture_file(capture_lines([line]))
    assert len(parsed) == 1 and parsed[0].input_records(SPEC) == [RECORD]


def test_writer_encodings() -> None:
    csv_line = capture_record(
        CSV_ROW, "0.5\n", request_content_type="text/csv", response_content_type="text/csv"
    )
    assert csv_line["captureData"]["endpointInput"]["encoding"] == "CSV"
    assert csv_line["captureData"]["endpointInput"]["data"] == CSV_ROW
    b64 = capture_record(json.dumps(RECORD), "[0.5]", base64_encode=True)
    assert b64["captureData"]["endpointInput"]["encoding"] == "BASE64"
    assert (
        base64.b64decode(b64["captureData"]["endpointInput"]["data"]) == json.dumps(RECORD).encode()
    )
    binary = capture_record(b"\x93NUMPY", "[0.5]", request_content_type="application/x-npy")
    assert binary["captureData"]["endpointInput"]["encoding"] == "BASE64"
    with pytest.raises(ValueError, match="has no timezone"):
        capture_record("{}", "[]", inference_time=datetime(2025, 1, 1))


# --- S3 layout -----------------------------------------------------------------------------------


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def test_keys_follow_the_endpoint_layout() -> None:
    key = capture_key("churn-ep", "primary", datetime(2025, 3, 4, 5, 6, 7, 89000, tzinfo=UTC))
    assert re.fullmatch(
        r"capture/churn-ep/primary/2025/03/04/05/06-07-089-[0-9a-f-]{36}\.jsonl", key
    ), key
    with pytest.raises(ValueError, match="contain no '/'"):
        capture_key("a/b", "primary", datetime(2025, 1, 1, tzinfo=UTC))


def test_reads_only_the_window_across_hour_folders(s3: Any) -> None:
    start = datetime(2025, 1, 1, 22, 30, tzinfo=UTC)
    for minutes in range(0, 180, 20):  # 22:30 .. 01:10 next day, one file per 20 minutes
        when = start + timedelta(minutes=minutes)
        write_capture_file(
            s3,
            BUCKET,
            [
                capture_record(
                    json.dumps(RECORD), "[0.5]", event_id=f"e{minutes}", inference_time=when
                )
            ],
            endpoint="churn-ep",
            variant="primary",
            when=when,
        )
    # another endpoint's files never show up
    write_capture_file(
        s3,
        BUCKET,
        [capture_record("{}", "[]", inference_time=start)],
        endpoint="other",
        variant="primary",
        when=start,
    )
    since, until = datetime(2025, 1, 1, 23, 0, tzinfo=UTC), datetime(2025, 1, 2, 0, 30, tzinfo=UTC)
    keys = list_capture_keys(
        s3, BUCKET, endpoint="churn-ep", variant="primary", since=since, until=until
    )
    assert [k.split("/")[5:7] for k in keys] == [["01", "23"]] * 3 + [["02", "00"]] * 3
    got = [
        r.event_id
        for r in read_capture(
            s3, BUCKET, endpoint="churn-ep", variant="primary", since=since, until=until
        )
    ]
    assert got == ["e40", "e60", "e80", "e100"]  # 23:10, 23:30, 23:50, 00:10
    with pytest.raises(ValueError, match="empty window"):
        list_capture_keys(
            s3, BUCKET, endpoint="churn-ep", variant="primary", since=until, until=since
        )


def test_a_header_less_csv_request_lists_the_models_inputs() -> None:
    from ml.models import spec

    spend = spec("spend")
    row = "12,70.5,month-to-month,card,2,3.5,north"
    assert parse_request("text/csv", row, spec=spend) == [
        {
            "tenure_months": 12,
            "monthly_charges": 70.5,
            "contract_type": "month-to-month",
            "payment_method": "card",
            "support_tickets": 2,
            "data_usage_gb": 3.5,
            "region": "north",
        }
    ]
    with pytest.raises(CaptureFormatError, match="has 7 fields; expected 9"):
        parse_request("text/csv", row, spec=SPEC)


def test_the_capture_keeps_the_version_the_handler_answered_with(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import numpy as np

    from ml.inference import handler

    monkeypatch.setenv(
        "MLPLAT_MODEL_VERSION", "arn:aws:sagemaker:us-east-1:123456789012:model-package/churn/5"
    )
    output_fn = handler("churn")[3]  # bound where the container imports it
    body, content_type = output_fn(np.array([0.125, 0.5]), "application/json")
    line = capture_record('{"instances": []}', body, response_content_type=content_type)
    record = parse_capture_line(json.dumps(line))
    assert record.model_version() == "churn/5"
    assert record.output_scores() == [0.125, 0.5]
