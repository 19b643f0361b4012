"""`mlplat sandbox`, end to end: the local stack realized and the whole ML lifecycle run on it.

One run for the module (about half a minute): `mlplat sandbox --keep --json`, with the wait for
Ctrl-C replaced by `observe`, which looks at the live sandbox (moto and the model server) the way a
user would in another shell. Every test reads that run's report, output or observations.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pyarrow.parquet as pq
import pytest
import typer
from botocore.config import Config
from typer.testing import CliRunner

from ml.capture import parse_capture_file
from mlplat.cli.commands import sandbox as sandbox_command
from mlplat.sandbox import lifecycle
from mlplat.sandbox.context import SandboxContext
from mlplat.sandbox.lifecycle import STEPS
from tests.conftest import ROOT
from tests.e2e.pipeline_breaks import break_definitions

GROUP = "ml-platform-local-churn"
ENDPOINT = "ml-platform-local"
QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:ml-platform-local-oncall"
PIPELINE_CONTAINERS = ("Window", "Curate", "Features", "Train", "Evaluate")


@dataclass
class Run:
    exit_code: int
    output: str
    report: dict[str, Any]
    env: dict[str, str] = field(default_factory=dict)
    seen: dict[str, Any] = field(default_factory=dict)
    ctx: SandboxContext | None = None


def _client(env: dict[str, str], service: str) -> Any:
    return boto3.client(  # type: ignore[call-overload]
        service,
        endpoint_url=env["AWS_ENDPOINT_URL"],
        region_name=env["AWS_DEFAULT_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        config=Config(s3={"addressing_style": "path"}),
    )


def _observe(run: Run, report_path: Path) -> None:
    """What a user finds in the kept sandbox (the report is already written)."""
    report = json.loads(report_path.read_text())
    outputs, seen = report["outputs"], run.seen
    s3, sm = _client(run.env, "s3"), _client(run.env, "sagemaker")
    serving = report["lifecycle"]["deploy"]
    with urllib.request.urlopen(f"{serving['url']}/ping", timeout=10) as response:
        seen["ping"] = response.status
    request = urllib.request.Request(
        f"{serving['url']}/invocations",
        data=json.dumps(
            {
                "instances": [
                    {
                        "tenure_months": 3,
                        "monthly_charges": 95.0,
                        "total_charges": 280.0,
                        "contract_type": "month-to-month",
                        "payment_method": "invoice",
                        "support_tickets": 4,
                        "data_usage_gb": 12.0,
                        "region": "north",
                        "is_senior": False,
                    }
                ]
            }
        ).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        seen["invocation"] = json.loads(response.read())
    endpoint = sm.describe_endpoint(EndpointName=outputs["endpoint_name"])
    config = sm.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    seen["endpoint_config"] = config
    seen["model"] = sm.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])
    definition = json.loads(
        sm.describe_pipeline(PipelineName=outputs["pipeline_name"])["PipelineDefinition"]
    )
    seen["definition_instances"] = {
        step["Name"]: step["Arguments"]["ProcessingResources"]["ClusterConfig"]["InstanceCount"]
        for step in definition["Steps"]
        if step["Type"] == "Processing"
    }
    arn = seen["model"]["PrimaryContainer"]["ModelPackageName"]
    seen["package"] = sm.describe_model_package(ModelPackageName=arn)
    capture = report["lifecycle"]["capture"]["prefix"].removeprefix("s3://").split("/", 1)[1]
    keys = [
        o["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=outputs["predictions_bucket"], Prefix=capture
        )
        for o in page.get("Contents", [])
    ]
    seen["capture_keys"] = keys
    first = s3.get_object(Bucket=outputs["predictions_bucket"], Key=keys[0])
    seen["capture_sse"] = first.get("ServerSideEncryption")
    seen["capture_records"] = parse_capture_file(first["Body"].read(), keys[0])
    streamed = report["lifecycle"]["ingest"]["streamedObjects"][0]
    body = s3.get_object(Bucket=outputs["raw_bucket"], Key=streamed)["Body"].read()
    seen["streamed_table"] = pq.read_table(io.BytesIO(body))
    baseline_key = serving["driftBaseline"].removeprefix("s3://").split("/", 1)[1]
    seen["baseline"] = json.loads(
        s3.get_object(Bucket=outputs["models_bucket"], Key=baseline_key)["Body"].read()
    )
    queue_url = _client(run.env, "sqs").get_queue_url(QueueName=QUEUE_ARN.rsplit(":", 1)[-1])
    seen["queue_policy"] = json.loads(
        _client(run.env, "sqs").get_queue_attributes(
            QueueUrl=queue_url["QueueUrl"], AttributeNames=["Policy"]
        )["Attributes"]["Policy"]
    )
    assert run.ctx is not None
    seen["broken"] = break_definitions(run.ctx)
    seen["alarms"] = {
        a["AlarmName"]: a
        for page in _client(run.env, "cloudwatch").get_paginator("describe_alarms").paginate()
        for a in page["MetricAlarms"]
    }


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    app = typer.Typer()
    sandbox_command.register(app)

    @app.command("noop")
    def noop() -> None:  # a second command keeps typer from flattening `sandbox` away
        pass

    report_path = tmp_path_factory.mktemp("sandbox") / "sandbox-report.json"
    state = Run(exit_code=-1, output="", report={})
    scratch: list[Path] = []
    real_print = sandbox_command._print_environment

    def capture(env: dict[str, str], where: Path, serving: str | None = None) -> None:
        state.env = env
        scratch.append(where)
        real_print(env, where, serving)

    def wait() -> None:
        _observe(state, report_path)

    real_run_steps = lifecycle.run_steps

    def run_steps(ctx: SandboxContext, *args: Any, **kwargs: Any) -> Any:
        state.ctx = ctx
        return real_run_steps(ctx, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(lifecycle, "run_steps", run_steps)
        patch.setattr(sandbox_command, "_print_environment", capture)
        patch.setattr(sandbox_command, "wait_until_interrupted", wait)
        result = CliRunner().invoke(
            app, ["sandbox", "--keep", "--json", str(report_path), "--project-dir", str(ROOT)]
        )
    state.exit_code, state.output = result.exit_code, result.output
    if report_path.exists():
        state.report = json.loads(report_path.read_text())
    yield state
    for path in scratch:
        shutil.rmtree(path, ignore_errors=True)


def test_every_step_runs_green_in_order(run: Run) -> None:
    failed = [(s["name"], s["error"]) for s in run.report.get("steps", []) if s["error"]]
    assert run.exit_code == 0, failed or run.output[-3000:]
    steps = run.report["steps"]
    assert [(s["name"], s["status"]) for s in steps] == [(s.name, "ok") for s in STEPS]
    assert all(s["seconds"] > 0 and s["detail"] for s in steps)
    assert run.report["ok"] is True and run.report["stack"] == "local"
    assert run.report["seconds"] == pytest.approx(sum(s["seconds"] for s in steps), abs=0.01)


def test_the_summary_and_the_kept_sandbox_are_printed(run: Run) -> None:
    assert "the lifecycle" in run.output and "every step passed in" in run.output
    assert f"model                │ {GROUP}/1" in run.output
    for key, value in run.env.items():
        assert f"export {key}={value}" in run.output
    serving = run.report["lifecycle"]["deploy"]["url"]
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", serving)
    assert f"endpoint traffic: POST {serving}/invocations" in run.output
    assert run.seen["ping"] == 200  # the model server was still serving while kept
    [prediction] = run.seen["invocation"]["predictions"]
    assert 0.0 < prediction["score"] < 1.0


def test_every_resource_is_realized(run: Run) -> None:
    resources = run.report["resources"]
    assert resources["failed"] == [] and resources["notEmulated"] == []
    assert resources["realizedCount"] == sum(resources["realized"].values())
    assert resources["realized"]["aws:s3/bucketLogging:BucketLogging"] == 7
    assert resources["realized"]["aws:sagemaker/endpoint:Endpoint"] == 1
    notes = {n["name"]: n["note"] for n in resources["notes"]}
    assert notes["lake-raw-policy"].startswith(
        "conditioned Deny statement(s) DenyInsecureTransport, DenyNonKmsEncryption"
    )


def test_ingest_streams_through_firehose_as_parquet(run: Run) -> None:
    ingest = run.report["lifecycle"]["ingest"]
    assert (ingest["batchRows"], ingest["streamedRecords"]) == (29_000, 1_000)
    stream = run.report["outputs"]["ingest_stream_name"]
    for key in ingest["streamedObjects"]:
        assert re.fullmatch(
            rf"customers/dt=\d{{4}}-\d{{2}}-\d{{2}}/{stream}-1-[-\d]+-.+\.parquet", key
        )
    table = run.seen["streamed_table"]
    assert "churned" in table.column_names and "dt" not in table.column_names
    assert str(table.schema.field("event_time").type) == "timestamp[ms, tz=UTC]"


def test_the_pipeline_runs_every_step_of_its_deployed_definition(run: Run) -> None:
    pipeline = run.report["lifecycle"]["pipeline"]
    assert pipeline["status"] == "Succeeded" and pipeline["failure"] is None
    assert [(s["name"], s["type"], s["status"]) for s in pipeline["steps"]] == [
        ("Window", "Processing", "Succeeded"),
        ("Curate", "Processing", "Succeeded"),
        ("Features", "Processing", "Succeeded"),
        ("Train", "Training", "Succeeded"),
        ("Evaluate", "Processing", "Succeeded"),
        ("GatePassed", "Condition", "Succeeded"),
        ("Register", "RegisterModel", "Succeeded"),
    ]
    execution = pipeline["executionArn"].rsplit("/", 1)[-1]
    work = f"s3://{run.report['outputs']['models_bucket']}/models/{GROUP}/pipeline/{execution}"
    steps = {s["name"]: s for s in pipeline["steps"]}
    assert steps["Curate"]["detail"].endswith(f"outputs to {work}/curate")
    assert steps["Train"]["detail"].endswith(
        f"{work}/train/pipelines-{execution}-train/output/model.tar.gz"
    )
    # the sharded steps ran on every instance the definition asks for, each with its share
    instances = run.seen["definition_instances"]
    assert steps["Curate"]["detail"].startswith(f"{instances['Curate']} instance(s), 31 input")
    assert pipeline["parameters"]["ModelApprovalStatus"] == "Approved"  # local auto-approves
    assert pipeline["modelPackageArn"].endswith(f":model-package/{GROUP}/1")


def test_the_model_is_registered_with_its_reports_and_deployed(run: Run) -> None:
    report, seen = run.report, run.seen
    assert report["modelVersion"] == f"{GROUP}/1"
    assert report["metrics"]["roc_auc"] > 0.75 and report["metrics"]["log_loss"] < 0.5
    execution = report["lifecycle"]["pipeline"]["executionArn"].rsplit("/", 1)[-1]
    work = f"s3://{report['outputs']['models_bucket']}/models/{GROUP}/pipeline/{execution}"
    package = seen["package"]
    assert package["ModelApprovalStatus"] == "Approved"
    container = package["InferenceSpecification"]["Containers"][0]
    assert container["ModelDataUrl"] == (
        f"{work}/train/pipelines-{execution}-train/output/model.tar.gz"
    )
    quality, data = (
        package["ModelMetrics"]["ModelQuality"],
        package["ModelMetrics"]["ModelDataQuality"],
    )
    assert quality["Statistics"]["S3Uri"] == f"{work}/evaluate/metrics.json"
    assert quality["Constraints"]["S3Uri"] == f"{work}/evaluate/gate.json"
    assert data["Statistics"]["S3Uri"] == f"{work}/evaluate/baseline.json"
    metadata = package["CustomerMetadataProperties"]
    assert metadata["pipeline-execution"] == report["lifecycle"]["pipeline"]["executionArn"]
    assert float(metadata["metric.roc_auc"]) == report["metrics"]["roc_auc"]
    assert (metadata["deployed-to"], metadata["deploy-seq.local"]) == ("local", "1")
    # the endpoint now runs a model made from the approved package, capture kept on
    assert seen["model"]["PrimaryContainer"]["ModelPackageName"] == package["ModelPackageArn"]
    assert seen["endpoint_config"]["DataCaptureConfig"]["InitialSamplingPercentage"] == 100
    assert seen["baseline"]["format"] == "mlplat-baseline/1"


def test_a_worse_model_is_refused_against_the_deployed_version(run: Run) -> None:
    refused = run.report["lifecycle"]["retrain-refused"]
    assert refused["status"] == "Failed" and refused["modelPackageArn"] is None
    assert refused["parameters"]["C"] == "0.0001"
    assert [(s["name"], s["status"]) for s in refused["steps"]][-2:] == [
        ("GatePassed", "Succeeded"),
        ("GateRefused", "Failed"),
    ]
    gate = refused["gate"]
    assert (
        gate["passed"] is False and gate["servingVersion"] == run.seen["package"]["ModelPackageArn"]
    )
    assert "log_loss vs approved" in gate["failed"]
    # the Fail step's message is the refusing rules, with their figures
    assert refused["failure"].startswith("step GateRefused: gate refused: ")
    assert "log_loss vs approved: candidate " in refused["failure"]


def test_traffic_is_captured_in_sagemakers_format_and_logged_to_the_lake(run: Run) -> None:
    report, seen = run.report, run.seen
    traffic = report["lifecycle"]["traffic"]
    assert report["predictionsServed"] == traffic["predictions"] == 3_000
    assert traffic["refused"] == 4
    capture = report["lifecycle"]["capture"]
    assert capture["events"] == 200 and capture["files"] == len(seen["capture_keys"]) == 12
    for key in seen["capture_keys"]:
        assert re.fullmatch(
            rf"capture/{ENDPOINT}/primary/\d{{4}}/\d{{2}}/\d{{2}}/\d{{2}}/"
            r"\d{2}-\d{2}-\d{3}-[0-9a-f-]{36}\.jsonl",
            key,
        )
    assert seen["capture_sse"] == "aws:kms"
    record = seen["capture_records"][0]
    assert record.input.encoding == "JSON" and record.input.mode == "INPUT"
    assert len(record.input_records()) == len(record.output_scores()) == 15
    logs = report["predictionLogs"]
    assert logs["rows"] == 3_000 and logs["partitions"]


def test_drift_fires_the_drift_alarms_and_pages_on_call(run: Run) -> None:
    report, seen = run.report, run.seen
    clean, drifted = report["drift"]["windows"]
    threshold = report["drift"]["threshold"]
    assert clean["window"] == "clean" and clean["driftedFeatures"] == []
    assert clean["maxFeaturePsi"] < threshold < drifted["maxFeaturePsi"]
    assert {"monthly_charges", "contract_type", "support_tickets"} <= set(
        drifted["driftedFeatures"]
    )
    assert clean["rows"] == drifted["rows"] == 1_500
    states = report["alarmStates"]
    by_role = {re.sub(r"-[0-9a-f]{7}$", "", name): state for name, state in states.items()}
    assert by_role["monitoring-drift-monthly_charges"] == "ALARM"
    assert by_role["monitoring-drift-region"] == "OK"
    assert by_role["monitoring-latency-p99"] == by_role["monitoring-5xx"] == "OK"
    assert by_role["monitoring-freshness"] == "OK"
    assert by_role["monitoring-cpu"] == "INSUFFICIENT_DATA"  # no instance metrics, missing=ignore
    assert set(report["lifecycle"]["alarms"]["notEvaluated"]) == {
        n for n in states if "4xx-rate" in n or "invocations-low" in n
    }
    moto_state = {n: a["StateValue"] for n, a in seen["alarms"].items()}
    assert {n: moto_state[n] for n in states} == states
    # the on-call queue: SNS envelopes from the topic, the drift page among them
    pages = [
        n
        for n in report["notifications"]
        if n["newState"] == "ALARM" and "drift-monthly_charges" in n["alarm"]
    ]
    [page] = pages
    assert page["queue"] == QUEUE_ARN
    assert page["topic"] == report["outputs"]["alarm_topic_arn"]
    assert page["oldState"] == "OK" and "Threshold Crossed" in page["reason"]
    [statement] = seen["queue_policy"]["Statement"]
    assert statement["Principal"] == {"Service": "sns.amazonaws.com"}
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": page["topic"]}}


def test_least_privilege_is_enforced_by_moto(run: Run) -> None:
    lp = run.report["leastPrivilege"]
    assert lp["enforced"] is True and lp["limits"]
    checks = lp["checks"]
    assert checks and all(c["ok"] and c["actual"] == c["expected"] for c in checks)
    outputs = run.report["outputs"]
    denied = {(c["role"], c["resource"]) for c in checks if c["actual"] == "AccessDenied"}
    assert (
        "training",
        f"s3://{outputs['raw_bucket']}/customers/dt=2025-01-01/injected.parquet",
    ) in denied
    assert (
        "endpoint",
        f"s3://{outputs['predictions_bucket']}/capture/another-endpoint/primary/x.jsonl",
    ) in denied
    for step, zone in (
        ("Curate", "features_bucket"),
        ("Features", "raw_bucket"),
        ("Train", "curated_bucket"),
    ):
        assert any(
            role == f"pipeline {step}" and resource.startswith(f"s3://{outputs[zone]}/")
            for role, resource in denied
        )
    assert ("pipeline Evaluate", GROUP) in denied  # it may not register
    allowed = {(c["role"], c["action"]) for c in checks if c["actual"] == "allowed"}
    assert allowed == {
        *((f"pipeline {s}", "its inputs, container and outputs") for s in PIPELINE_CONTAINERS),
        ("endpoint", "s3:PutObject"),
    }


def test_a_broken_definition_fails_at_its_step_with_the_reason(run: Run) -> None:
    """The sandbox runs the deployed definition and nothing else: each break fails there."""
    broken = run.seen["broken"]
    step, failure = broken["wrong-s3-uri"]
    assert step == "Curate"
    assert failure.startswith("step Curate: cannot list input s3://no-such-bucket/work/: ")
    step, failure = broken["role-may-not-read-input"]
    assert step == "Curate" and "AccessDenied" in failure and "train-role" in failure
    step, failure = broken["reference-to-a-later-step"]
    assert step == "Window"
    assert failure.startswith("step Window: refers to step Train, which has not run before it")
    step, failure = broken["empty-window"]
    assert step == "Window" and failure.startswith("step Window: algo-1 exited 1: ")
    assert "1999-01-01" in failure  # the container's own message names the empty window
    assert broken["undeclared-parameter"] == (
        "",
        "pipeline ml-platform-local-churn has no parameter(s) Windw; parameters: C, Estimator, "
        "MaxIter, ModelApprovalStatus, WindowDays, WindowEnd, WindowStart",
    )
