"""`mlplat data forget` against moto: every zone, the capture, the prediction logs, the stored
versions, Object Lock, the dry run and the audit record.

The lake is filled as the platform fills it (`ml.lake.write_dataset`, a Firehose-named file in a
raw partition, capture files in the endpoint's format, prediction logs flattened from them), with
one customer (`TARGET`) spread over all of it. After the request, every stored version of every
object is read back: none may hold the customer, unless Object Lock keeps it (then the report
names it and its date).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import typer
from moto import mock_aws
from typer.testing import CliRunner

from ml import forget as forget_module
from ml import lake
from ml.capture import capture_record, parse_capture_file
from ml.forget import ForgetError, ForgetReport, Targets, forget, forget_platform
from ml.models import load
from ml.outputs import PlatformOutputs
from ml.prediction_logs import flatten, write_prediction_logs
from ml.sample_data import generate_customers
from ml.schema import CUSTOMER_OUTCOMES, CUSTOMERS_CURATED, CUSTOMERS_RAW
from mlplat.cli.commands import data as data_commands
from tests.conftest import make_outputs
from tests.ml.conftest import model_outputs, records

REGION = "us-east-1"
CHURN = load("churn")
DAYS = [datetime(2025, 3, d, 12, tzinfo=UTC) for d in (1, 2, 3)]
ENDPOINT = "churn-ep"
CAPTURE_PREFIX = f"capture/{ENDPOINT}"
REJECTED_KEY = "rejected/customers/dt=2025-03-01/part-20250301T000000000000Z-aaaaaaaa.parquet"


def customers() -> pd.DataFrame:
    """12 customers: TARGET on days 1 and 2 (two snapshots), and alone on day 3."""
    frame = generate_customers(12, seed=4)
    frame["event_time"] = [DAYS[i % 2] for i in range(12)]
    target = frame.iloc[[0]].copy()
    target["event_time"] = DAYS[1]
    alone = frame.iloc[[0]].copy()
    alone["event_time"] = DAYS[2]
    return pd.concat([frame, target, alone], ignore_index=True)


TARGET = "C000000000"
OTHERS = [f"C{i:09d}" for i in range(1, 12)]


@dataclass
class Lake:
    s3: Any
    platform: PlatformOutputs
    targets: Targets
    streamed: list[str]
    captures: list[str]
    scores: dict[str, float]  # every other customer's score in the capture


def _streamed_file(frame: pd.DataFrame) -> bytes:
    sink = io.BytesIO()
    pq.write_table(lake.arrow_table(frame, CUSTOMERS_RAW), sink)
    return sink.getvalue()


def _event(rows: list[dict[str, Any]], scores: list[float], **kwargs: Any) -> dict[str, Any]:
    response = json.dumps({"predictions": [{"score": s} for s in scores], "model_version": "g/1"})
    return capture_record(json.dumps({"instances": rows}), response, **kwargs)


def fill(s3: Any, *, locked: bool) -> Lake:
    key = boto3.client("kms", region_name=REGION).create_key()["KeyMetadata"]["Arn"]
    platform = make_outputs(
        region=REGION,
        lake_kms_key_arn=key,
        raw_bucket="lake-raw",
        curated_bucket="lake-curated",
        features_bucket="lake-features",
        models_bucket="lake-models",
        predictions_bucket="lake-predictions",
        models={"churn": model_outputs(endpoint_name=ENDPOINT, capture_prefix=CAPTURE_PREFIX)},
    )
    for zone in ("raw", "curated", "features", "models", "predictions"):
        bucket = lake.zone_bucket(platform, zone)
        if zone == "raw" and locked:
            s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
            s3.put_object_lock_configuration(
                Bucket=bucket,
                ObjectLockConfiguration={
                    "ObjectLockEnabled": "Enabled",
                    "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}},
                },
            )
        else:
            s3.create_bucket(Bucket=bucket)
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    frame = customers()
    lake.write_dataset(frame, CUSTOMERS_RAW, "lake-raw", kms_key_id=key, s3=s3)
    lake.write_dataset(frame.iloc[:13], CUSTOMERS_CURATED, "lake-curated", kms_key_id=key, s3=s3)
    outcomes = frame.iloc[:13][["customer_id", "event_time", "churned", "next_month_spend"]].copy()
    outcomes["observed_at"] = outcomes["event_time"] + timedelta(days=30)
    lake.write_dataset(outcomes, CUSTOMER_OUTCOMES, "lake-raw", kms_key_id=key, s3=s3)
    features = CHURN.features.build_features(frame.iloc[:13])
    lake.write_dataset(features, CHURN.spec.features, "lake-features", kms_key_id=key, s3=s3)

    # The stream delivered two files into day 1 of the raw customers: one mixed, one the target's.
    day1 = lake.partition_prefix(CUSTOMERS_RAW.prefix, "2025-03-01")
    mixed = frame.iloc[[0, 2]].assign(event_time=DAYS[0])
    streamed = [
        f"{day1}ingest-1-2025-03-01-12-00-00-aaaa",
        f"{day1}ingest-1-2025-03-01-13-00-00-bbbb",
    ]
    s3.put_object(Bucket="lake-raw", Key=streamed[0], Body=_streamed_file(mixed))
    s3.put_object(Bucket="lake-raw", Key=streamed[1], Body=_streamed_file(frame.iloc[[0]]))

    # The curate step refused two rows of day 1 (kept aside as read, in the curated bucket).
    rejected = lake.arrow_table(frame.iloc[[0, 4]], CUSTOMERS_RAW, nullable=True)
    sink = io.BytesIO()
    pq.write_table(rejected, sink)
    s3.put_object(
        Bucket="lake-curated",
        Key=REJECTED_KEY,
        Body=sink.getvalue(),
        ServerSideEncryption="aws:kms",
    )

    # The capture: every shape an endpoint writes.
    inputs = {
        r["customer_id"]: r
        for r in (
            {**rec, "customer_id": cid}
            for rec, cid in zip(records(frame.iloc[:12]), frame["customer_id"][:12], strict=True)
        )
    }
    scores = {cid: round(0.05 + 0.07 * i, 4) for i, cid in enumerate(inputs)}
    target, o = inputs[TARGET], [inputs[c] for c in OTHERS]
    when = DAYS[0]
    plain = {k: v for k, v in target.items() if k != "customer_id"}
    lines_a = [
        _event([target], [scores[TARGET]], inference_time=when),  # the target alone: dropped
        _event([o[0]], [scores[OTHERS[0]]], inference_time=when),  # someone else: kept
        _event(  # three customers: rewritten without the target
            [o[1], target, o[2]],
            [scores[OTHERS[1]], scores[TARGET], scores[OTHERS[2]]],
            inference_time=when,
        ),
    ]
    header = ",".join(["customer_id", *CHURN.spec.inputs])
    csv_rows = [
        ",".join(
            "" if r[c] is None else str(r[c]).lower() if isinstance(r[c], bool) else str(r[c])
            for c in ["customer_id", *CHURN.spec.inputs]
        )
        for r in (o[3], target)
    ]
    lines_c = [
        capture_record(  # CSV with a header: rewritten without the target's row and score
            "\n".join([header, *csv_rows]) + "\n",
            f"{scores[OTHERS[3]]}\n{scores[TARGET]}\n",
            request_content_type="text/csv",
            response_content_type="text/csv",
            inference_time=when,
        ),
        capture_record(  # base64-stored, a bare list: rewritten, still base64
            json.dumps([target, o[4]]),
            json.dumps([scores[TARGET], scores[OTHERS[4]]]),
            base64_encode=True,
            inference_time=when,
        ),
    ]
    lines_b = [  # no customer_id in the record: the caller's inferenceId names it
        _event([plain], [scores[TARGET]], inference_id=TARGET, inference_time=when),
    ]
    capture_keys: list[str] = []
    for lines in (lines_a, lines_b, lines_c):
        key = f"{CAPTURE_PREFIX}/AllTraffic/2025/03/01/12/{len(capture_keys):02d}-00-000-x.jsonl"
        body = "".join(json.dumps(line) + "\n" for line in lines)
        if lines is lines_c:
            body += '{"broken": "' + TARGET + '"\n'  # unreadable, and it names the target
        s3.put_object(Bucket="lake-predictions", Key=key, Body=body.encode())
        capture_keys.append(key)
    events = [e for k in capture_keys for e in _readable(s3, k)]
    logged, _ = flatten(CHURN, events, endpoint_name=ENDPOINT, variant_name="AllTraffic")
    write_prediction_logs(CHURN, s3, "lake-predictions", logged, kms_key_arn=key)
    return Lake(
        s3,
        platform,
        Targets.from_platform(platform),
        streamed,
        capture_keys,
        {c: scores[c] for c in OTHERS[:5]},
    )


def _readable(s3: Any, key: str) -> list[Any]:
    body = s3.get_object(Bucket="lake-predictions", Key=key)["Body"].read().decode()
    good = "\n".join(line for line in body.splitlines() if "broken" not in line)
    return parse_capture_file(good)


@pytest.fixture
def aws() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("s3", region_name=REGION)


@pytest.fixture
def filled(aws: Any) -> Lake:
    return fill(aws, locked=False)


@pytest.fixture
def locked(aws: Any) -> Lake:
    return fill(aws, locked=True)


# --- reading everything back --------------------------------------------------------------------


def every_version(s3: Any) -> list[tuple[str, str, str]]:
    """(bucket, key, version id) of every stored version of every object (delete markers aside)."""
    out = []
    for bucket in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
            out += [(bucket, v["Key"], v["VersionId"]) for v in page.get("Versions", [])]
    return sorted(out)


def holds_target(s3: Any, bucket: str, key: str, version: str) -> bool:
    """Whether one stored version holds the target: a Parquet file's customer_id column, or the
    text of anything else (capture lines, base64 payloads decoded, manifests, the audit)."""
    body = s3.get_object(Bucket=bucket, Key=key, VersionId=version)["Body"].read()
    try:
        table = pq.read_table(pa.BufferReader(body))
    except pa.ArrowInvalid:
        text = body.decode("utf-8", "replace")
        decoded = [
            base64.b64decode(side["data"]).decode()
            for line in text.splitlines()
            if line.startswith('{"captureData"')
            for side in json.loads(line)["captureData"].values()
            if side.get("encoding") == "BASE64"
        ]
        return any(TARGET in t for t in (text, *decoded))
    ids = table.column("customer_id").to_pylist() if "customer_id" in table.column_names else []
    return TARGET in ids


def versions_with_target(s3: Any) -> list[tuple[str, str, str]]:
    return [v for v in every_version(s3) if holds_target(s3, *v)]


def rows_of(s3: Any, dataset: Any, bucket: str) -> pd.DataFrame:
    return lake.read_dataset(dataset, bucket, s3=s3)


# --- the request --------------------------------------------------------------------------------


def test_every_row_request_and_version_of_the_customer_is_gone(filled: Lake) -> None:
    s3 = filled.s3
    before = {
        name: rows_of(s3, dataset, bucket) for name, (dataset, bucket) in _datasets(filled).items()
    }
    assert versions_with_target(s3)  # the customer is everywhere to begin with
    said: list[str] = []
    report = forget([TARGET], filled.targets, s3=s3, progress=said.append)

    for name, (dataset, bucket) in _datasets(filled).items():
        after = rows_of(s3, dataset, bucket)
        assert TARGET not in set(after["customer_id"]), name
        kept = before[name][before[name]["customer_id"] != TARGET]
        assert len(after) == len(kept), name  # nobody else lost a row
        assert sorted(after["customer_id"]) == sorted(kept["customer_id"]), name
    removed = {name: int((before[name]["customer_id"] == TARGET).sum()) for name in before}
    assert report.to_dict()["rows_removed_by_dataset"] == {n: r for n, r in removed.items() if r}
    assert report.rows_removed == sum(removed.values()) + 1  # and the rejected row
    assert removed["customers"] == 3 + 2  # three snapshots, and the two streamed rows
    # day 3 held the target alone: the partition is gone
    days = [p.dt for p in lake.list_partitions("lake-raw", CUSTOMERS_RAW.prefix, s3=s3)]
    assert days == ["2025-03-01", "2025-03-02"]
    # the mixed streamed file was put again under its own name; the target's own is deleted
    remaining = pq.read_table(
        pa.BufferReader(s3.get_object(Bucket="lake-raw", Key=filled.streamed[0])["Body"].read())
    )
    assert remaining.column("customer_id").to_pylist() == ["C000000002"]
    assert "Contents" not in s3.list_objects_v2(Bucket="lake-raw", Prefix=filled.streamed[1])
    # the curate step's rejected rows lose the target's
    assert [f.to_dict() for f in report.files] == [
        {"bucket": "lake-curated", "key": REJECTED_KEY, "rows_removed": 1, "action": "rewritten"}
    ]
    rejected = s3.get_object(Bucket="lake-curated", Key=REJECTED_KEY)["Body"].read()
    assert pq.read_table(pa.BufferReader(rejected)).column("customer_id").to_pylist() == [
        "C000000004"
    ]

    assert versions_with_target(s3) == []  # no stored version holds the customer
    assert report.complete and report.versions_locked == ()
    assert report.versions_deleted
    assert any("customers (s3://lake-raw/customers/)" in line for line in said)
    assert any("versions:" in line for line in said)


def _datasets(lake_: Lake) -> dict[str, tuple[Any, str]]:
    return {
        dataset.name: (dataset, bucket)
        for dataset, bucket in lake_.targets.datasets
        if dataset.name not in ("spend_features", "spend_predictions")
    }


def test_the_capture_keeps_everyone_else_aligned(filled: Lake) -> None:
    s3 = filled.s3
    report = forget([TARGET], filled.targets, s3=s3)
    changes = {c.key: c for c in report.captures}
    a, b, c = filled.captures
    assert (changes[a].events_removed, changes[a].events_rewritten) == (1, 1)
    assert (changes[b].action, changes[b].records_removed) == ("deleted", 1)
    assert (changes[c].events_removed, changes[c].events_rewritten) == (1, 2)  # the broken line
    assert "Contents" not in s3.list_objects_v2(Bucket="lake-predictions", Prefix=b)
    events = [e for key in (a, c) for e in _readable(s3, key)]
    rows, skipped = flatten(CHURN, events, endpoint_name=ENDPOINT, variant_name="AllTraffic")
    assert skipped.skipped == {}
    scored = dict(zip(rows["customer_id"], rows["score"], strict=True))
    assert scored == pytest.approx(filled.scores)  # each other customer keeps its own score
    csv_event = _readable(s3, c)[0]
    assert csv_event.input.text().startswith("customer_id,")  # the header stays
    assert _readable(s3, c)[1].input.encoding == "BASE64"
    logged = lake.read_dataset(CHURN.spec.predictions, "lake-predictions", s3=s3)
    assert sorted(logged["customer_id"]) == sorted(filled.scores)


def test_a_second_request_finds_nothing(filled: Lake) -> None:
    forget([TARGET], filled.targets, s3=filled.s3)
    again = forget([TARGET], filled.targets, s3=filled.s3)
    assert (again.rows_removed, again.captures, again.versions_deleted) == (0, (), ())


def test_the_audit_record_names_no_customer(filled: Lake) -> None:
    report = forget([TARGET, "C000000005"], filled.targets, s3=filled.s3)
    assert report.audit_key is not None
    key = report.audit_key.removeprefix("s3://lake-raw/")
    assert key.startswith("audit/forget/dt=")
    text = filled.s3.get_object(Bucket="lake-raw", Key=key)["Body"].read().decode()
    assert TARGET not in text and "C000000005" not in text
    record = json.loads(text)["keys"]
    salt = bytes.fromhex(record["salt"])
    expected = sorted(
        hashlib.pbkdf2_hmac("sha256", k.encode(), salt, record["iterations"]).hex()
        for k in (TARGET, "C000000005")
    )
    assert record["hashes"] == expected and record["hash"] == "pbkdf2_hmac_sha256"
    assert json.loads(text)["rows_removed"] == report.rows_removed


def test_a_dry_run_changes_nothing_and_says_what_would_change(filled: Lake) -> None:
    s3 = filled.s3
    stored = every_version(s3)
    said: list[str] = []
    dry = forget([TARGET], filled.targets, s3=s3, dry_run=True, progress=said.append)
    assert every_version(s3) == stored  # not one put or delete
    assert dry.audit_key is None and all(line.startswith("dry run: ") for line in said)
    done = forget([TARGET], filled.targets, s3=s3)
    assert dry.rows_removed == done.rows_removed
    assert [p.to_dict() for p in dry.partitions] == [p.to_dict() for p in done.partitions]
    assert [c.to_dict() for c in dry.captures] == [c.to_dict() for c in done.captures]
    assert len(dry.versions_deleted) == len(done.versions_deleted)
    assert "would remove" in dry.summary()[0]


# --- Object Lock --------------------------------------------------------------------------------


def test_locked_versions_are_reported_with_when_they_can_go(locked: Lake) -> None:
    s3 = locked.s3
    started = datetime.now(UTC)
    report = forget([TARGET], locked.targets, s3=s3)
    left = versions_with_target(s3)
    assert left and {bucket for bucket, _, _ in left} == {"lake-raw"}
    assert {(v.version.key, v.version.version_id) for v in report.versions_locked} == {
        (key, version) for _, key, version in left
    }
    for v in report.versions_locked:
        assert v.mode == "GOVERNANCE" and not v.legal_hold
        assert v.retain_until is not None
        assert started + timedelta(hours=23) < v.retain_until < started + timedelta(days=1, hours=1)
    assert not report.complete
    text = "\n".join(report.summary())
    assert "locked (GOVERNANCE): s3://lake-raw/customers/dt=" in text
    assert f"can be deleted after {report.versions_locked[0].deletable_after}" in text
    assert "run the same request again after those dates" in text
    # the current data is clean all the same
    assert TARGET not in set(rows_of(s3, CUSTOMERS_RAW, "lake-raw")["customer_id"])


def test_governance_can_be_bypassed_compliance_and_legal_holds_cannot(locked: Lake) -> None:
    s3 = locked.s3
    key = locked.streamed[0]
    compliance = s3.put_object(
        Bucket="lake-raw",
        Key=key,
        Body=s3.get_object(Bucket="lake-raw", Key=key)["Body"].read(),
        ObjectLockMode="COMPLIANCE",
        ObjectLockRetainUntilDate=datetime.now(UTC) + timedelta(days=30),
    )["VersionId"]
    held = s3.list_object_versions(Bucket="lake-raw", Prefix=locked.streamed[1])["Versions"][0]
    s3.put_object_legal_hold(
        Bucket="lake-raw",
        Key=locked.streamed[1],
        VersionId=held["VersionId"],
        LegalHold={"Status": "ON"},
    )
    report = forget([TARGET], locked.targets, s3=s3, bypass_governance=True)
    still = {(v.version.key, v.version.version_id): v for v in report.versions_locked}
    assert set(still) == {(key, compliance), (locked.streamed[1], held["VersionId"])}
    assert still[(key, compliance)].mode == "COMPLIANCE"
    assert still[(locked.streamed[1], held["VersionId"])].deletable_after == (
        "when its legal hold is released"
    )
    assert {(k, v) for _, k, v in versions_with_target(s3)} == set(still)


# --- uncommitted files, bad requests, the command -----------------------------------------------


def test_an_old_uncommitted_lake_file_is_deleted_a_young_one_waits(
    filled: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3 = filled.s3
    prefix = lake.partition_prefix(CUSTOMERS_RAW.prefix, "2025-03-02")
    orphan = f"{prefix}part-20250302T000000000000Z-0badf00d-00000.parquet"
    s3.put_object(Bucket="lake-raw", Key=orphan, Body=_streamed_file(customers().iloc[[0]]))
    waiting = forget([TARGET], filled.targets, s3=s3, dry_run=True)
    assert [v.key for v, _ in waiting.versions_failed] == [orphan]
    assert "a write in flight?" in waiting.versions_failed[0][1]
    monkeypatch.setattr(forget_module, "ORPHAN_MIN_AGE_SECONDS", 0)
    done = forget([TARGET], filled.targets, s3=s3)
    assert done.orphans_deleted == (f"s3://lake-raw/{orphan}",)
    assert versions_with_target(s3) == []


@pytest.mark.parametrize(
    ("ids", "message"),
    [([], "no customer id: name at least one"), (["C1", " "], "a customer id is empty")],
)
def test_a_request_without_ids_is_refused(filled: Lake, ids: list[str], message: str) -> None:
    with pytest.raises(ForgetError, match=message):
        forget(ids, filled.targets, s3=filled.s3)


def test_the_platform_names_every_place(filled: Lake) -> None:
    names = {d.name for d, _ in filled.targets.datasets}
    assert {"customers", "customers_curated", "customer_outcomes", "customer_features"} <= names
    assert {"predictions", "spend_features", "spend_predictions"} <= names
    buckets = dict((d.name, b) for d, b in filled.targets.datasets)
    assert buckets["predictions"] == "lake-predictions" and buckets["customers"] == "lake-raw"
    assert [(c.bucket, c.prefix) for c in filled.targets.captures] == [
        ("lake-predictions", CAPTURE_PREFIX)
    ]
    assert filled.targets.files == (("lake-curated", "rejected/"),)
    report = forget_platform([TARGET], filled.platform, s3=filled.s3, dry_run=True)
    assert isinstance(report, ForgetReport) and report.rows_removed > 0


def test_the_command_reports_and_writes_json(filled: Lake, tmp_path: Path) -> None:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """test app"""

    data_commands.register(app)
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps(filled.platform.to_json()))
    base = ["data", "forget", "--customer-id", TARGET, "--outputs", str(outputs)]
    dry = CliRunner().invoke(app, [*base, "--dry-run", "--json", str(tmp_path / "dry.json")])
    assert dry.exit_code == 0, dry.output
    assert "would remove" in dry.stdout and "dry run: [1/" in dry.stderr
    assert json.loads((tmp_path / "dry.json").read_text())["dry_run"] is True
    done = CliRunner().invoke(app, base)
    assert done.exit_code == 0, done.output
    assert "removed" in done.stdout and "audit record: s3://lake-raw/audit/forget/" in done.stdout
    missing = CliRunner().invoke(app, ["data", "forget", "--outputs", str(outputs)])
    assert missing.exit_code == 2 and "--customer-id" in missing.output
