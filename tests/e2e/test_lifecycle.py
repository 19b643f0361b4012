"""`mlplat sandbox`, end to end: the local stack realized and the whole ML lifecycle run on it, for
both of its models (churn, a classifier; spend, a regressor) side by side.

One run for the module (under a minute): `mlplat sandbox --keep --json`, with the wait for Ctrl-C
replaced by `observe`, which looks at the live sandbox (moto and the model servers) the way a
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
from ml.models import pipeline_parameter, spec
from mlplat.cli.commands import sandbox as sandbox_command
from mlplat.sandbox import lifecycle
from mlplat.sandbox.context import SandboxContext
from mlplat.sandbox.lifecycle import STEPS, expand
from tests.conftest import ROOT
from tests.e2e.pipeline_breaks import break_definitions

MODELS = ("churn", "spend")
GROUPS = {"churn": "ml-platform-local-churn", "spend": "ml-platform-local-spend"}
ENDPOINTS = {"churn": "ml-platform-local", "spend": "ml-platform-local-spend"}
QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:ml-platform-local-oncall"
PIPELINE_CONTAINERS = ("Window", "Curate", "Features", "Train", "Evaluate")
# One customer, every raw input any model reads: each model's request takes its own inputs.
CUSTOMER = {
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


@dataclass
class Run:
    exit_code: int
    output: str
    report: dict[str, Any]
    env: dict[str, str] = field(default_factory=dict)
    seen: dict[str, Any] = field(default_factory=dict)
    ctx: SandboxContext | None = None

    def model(self, name: str) -> dict[str, Any]:
        return dict(self.report["models"][name])


def _client(env: dict[str, str], service: str) -> Any:
    return boto3.client(  # type: ignore[call-overload]
        service,
        endpoint_url=env["AWS_ENDPOINT_URL"],
        region_name=env["AWS_DEFAULT_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        config=Config(s3={"addressing_style": "path"}),
    )


def _observe_model(run: Run, report: dict[str, Any], name: str) -> dict[str, Any]:
    """What a user finds of one model in the kept sandbox: its endpoint answering, its endpoint,
    model and package in moto, its pipeline definition, its capture files and baseline."""
    outputs, seen = report["outputs"], {}
    mine = outputs["models"][name]
    s3, sm = _client(run.env, "s3"), _client(run.env, "sagemaker")
    serving = report["models"][name]["lifecycle"]["deploy"]
    with urllib.request.urlopen(f"{serving['url']}/ping", timeout=10) as response:
        seen["ping"] = response.status
    record = {k: CUSTOMER[k] for k in spec(name).inputs}
    request = urllib.request.Request(
        f"{serving['url']}/invocations",
        data=json.dumps({"instances": [record]}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        seen["invocation"] = json.loads(response.read())
    endpoint = sm.describe_endpoint(EndpointName=mine["endpoint_name"])
    config = sm.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    seen["endpoint_config"] = config
    seen["model"] = sm.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])
    definition = json.loads(
        sm.describe_pipeline(PipelineName=mine["pipeline_name"])["PipelineDefinition"]
    )
    seen["definition_instances"] = {
        step["Name"]: step["Arguments"]["ProcessingResources"]["ClusterConfig"]["InstanceCount"]
        for step in definition["Steps"]
        if step["Type"] == "Processing"
    }
    arn = seen["model"]["PrimaryContainer"]["ModelPackageName"]
    seen["package"] = sm.describe_model_package(ModelPackageName=arn)
    capture = report["models"][name]["lifecycle"]["capture"]["prefix"]
    capture = capture.removeprefix("s3://").split("/", 1)[1]
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
    baseline_key = serving["driftBaseline"].removeprefix("s3://").split("/", 1)[1]
    seen["baseline"] = json.loads(
        s3.get_object(Bucket=outputs["models_bucket"], Key=baseline_key)["Body"].read()
    )
    return seen


def _observe(run: Run, report_path: Path) -> None:
    """What a user finds in the kept sandbox (the report is already written)."""
    report = json.loads(report_path.read_text())
    outputs, seen = report["outputs"], run.seen
    s3 = _client(run.env, "s3")
    for name in MODELS:
        seen[name] = _observe_model(run, report, name)
    streamed = report["lifecycle"]["ingest"]["streamedObjects"][0]
    body = s3.get_object(Bucket=outputs["raw_bucket"], Key=streamed)["Body"].read()
    seen["streamed_table"] = pq.read_table(io.BytesIO(body))
    queue_url = _client(run.env, "sqs").get_queue_url(QueueName=QUEUE_ARN.rsplit(":", 1)[-1])
    seen["queue_policy"] = json.loads(
        _client(run.env, "sqs").get_queue_attributes(
            QueueUrl=queue_url["QueueUrl"], AttributeNames=["Policy"]
        )["Attributes"]["Policy"]
    )
    assert run.ctx is not None
    seen["broken"] = break_definitions(run.ctx, "churn")
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

    def capture(env: dict[str, str], where: Path, serving: dict[str, str] | None = None) -> None:
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
    expected = expand(STEPS, MODELS)
    assert [(s["name"], s["status"], s["model"]) for s in steps] == [
        (s.name, "ok", s.model) for s in expected
    ]
    # the models side by side: each model's step, for churn then spend, where the step stands
    names = [s["name"] for s in steps]
    assert names[names.index("ingest") + 1 : names.index("ingest") + 5] == [
        "pipeline:churn",
        "pipeline:spend",
        "approve:churn",
        "approve:spend",
    ]
    assert {"least-privilege", "alarms", "notifications", "generate-data"} <= set(names)
    assert all(s["seconds"] > 0 and s["detail"] for s in steps)
    assert run.report["ok"] is True and run.report["stack"] == "local"
    assert run.report["seconds"] == pytest.approx(sum(s["seconds"] for s in steps), abs=0.01)
    assert list(run.report["models"]) == list(MODELS)


def test_the_summary_and_the_kept_sandbox_are_printed(run: Run) -> None:
    output = run.output
    assert "the lifecycle" in output and "every step passed in" in output
    assert re.search(r"churn: model\s+│ ml-platform-local-churn/1: ROC AUC 0\.\d{3}, log", output)
    assert re.search(r"spend: model\s+│ ml-platform-local-spend/1: RMSE \d+\.\d{3}, MAE", output)
    for name in MODELS:
        assert re.search(rf"{name}: predictions served\s+│ 3,000", output)
        assert re.search(rf"{name}: worse retrain\s+│ refused", output)
    for key, value in run.env.items():
        assert f"export {key}={value}" in output
    urls = {name: run.model(name)["lifecycle"]["deploy"]["url"] for name in MODELS}
    assert len(set(urls.values())) == 2  # one model server per endpoint
    for name, url in urls.items():
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url)
        assert f"{name} endpoint traffic: POST {url}/invocations" in output
        assert run.seen[name]["ping"] == 200  # its model server was still serving while kept
    [churn] = run.seen["churn"]["invocation"]["predictions"]
    assert 0.0 < churn["score"] < 1.0  # a probability
    [spend] = run.seen["spend"]["invocation"]["predictions"]
    assert spend["score"] > 1.0  # an amount


def test_every_resource_is_realized(run: Run) -> None:
    resources = run.report["resources"]
    assert resources["failed"] == [] and resources["notEmulated"] == []
    assert resources["realizedCount"] == sum(resources["realized"].values())
    assert resources["realized"]["aws:s3/bucketLogging:BucketLogging"] == 7
    assert resources["realized"]["aws:sagemaker/endpoint:Endpoint"] == 2
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
    # the customers carry every model's label
    assert {"churned", "next_month_spend"} <= set(table.column_names)
    assert "dt" not in table.column_names
    assert str(table.schema.field("event_time").type) == "timestamp[ms, tz=UTC]"
    labels = run.report["lifecycle"]["generate-data"]["labelMeans"]
    assert set(labels) == {"churned", "next_month_spend"}


@pytest.mark.parametrize("name", MODELS)
def test_each_pipeline_runs_every_step_of_its_deployed_definition(run: Run, name: str) -> None:
    pipeline = run.model(name)["lifecycle"]["pipeline"]
    assert pipeline["pipeline"] == run.report["outputs"]["models"][name]["pipeline_name"]
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
    group = GROUPS[name]
    work = f"s3://{run.report['outputs']['models_bucket']}/models/{group}/pipeline/{execution}"
    steps = {s["name"]: s for s in pipeline["steps"]}
    assert steps["Curate"]["detail"].endswith(f"outputs to {work}/curate")
    assert steps["Train"]["detail"].endswith(
        f"{work}/train/pipelines-{execution}-train/output/model.tar.gz"
    )
    # the sharded steps ran on every instance the definition asks for, each with its share
    instances = run.seen[name]["definition_instances"]
    assert steps["Curate"]["detail"].startswith(f"{instances['Curate']} instance(s), 31 input")
    assert pipeline["parameters"]["ModelApprovalStatus"] == "Approved"  # local auto-approves
    assert pipeline["modelPackageArn"].endswith(f":model-package/{group}/1")
    # the model's own hyperparameters are its pipeline's parameters
    for hyperparameter in spec(name).pipeline_hyperparameters:
        assert pipeline_parameter(hyperparameter) in pipeline["parameters"]


@pytest.mark.parametrize("name", MODELS)
def test_each_model_is_registered_with_its_reports_and_deployed(run: Run, name: str) -> None:
    model, seen = run.model(name), run.seen[name]
    group = GROUPS[name]
    assert model["modelVersion"] == f"{group}/1"
    assert model["task"] == spec(name).task
    metrics = model["metrics"]
    if name == "churn":
        assert metrics["roc_auc"] > 0.75 and metrics["log_loss"] < 0.5
        assert set(model["headline"]) == {"roc_auc", "log_loss"}
    else:
        assert 0 < metrics["mae"] < metrics["rmse"] and metrics["r2"] > 0.3
        assert set(model["headline"]) == {"rmse", "mae"}
    execution = model["lifecycle"]["pipeline"]["executionArn"].rsplit("/", 1)[-1]
    work = f"s3://{run.report['outputs']['models_bucket']}/models/{group}/pipeline/{execution}"
    package = seen["package"]
    assert package["ModelApprovalStatus"] == "Approved"
    assert package["ModelPackageGroupName"] == group
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
    assert metadata["pipeline-execution"] == model["lifecycle"]["pipeline"]["executionArn"]
    headline = next(iter(model["headline"]))
    assert float(metadata[f"metric.{headline}"]) == metrics[headline]
    assert (metadata["deployed-to"], metadata["deploy-seq.local"]) == ("local", "1")
    # its own endpoint now runs a model made from the approved package, capture kept on
    deploy = model["lifecycle"]["deploy"]
    assert model["endpoint"] == deploy["endpoint"] == ENDPOINTS[name]
    assert seen["model"]["PrimaryContainer"]["ModelPackageName"] == package["ModelPackageArn"]
    assert seen["endpoint_config"]["DataCaptureConfig"]["InitialSamplingPercentage"] == 100
    assert seen["baseline"]["format"] == "mlplat-baseline/1"
    assert deploy["driftBaseline"].endswith(f"/{name}/current/baseline.json")


@pytest.mark.parametrize("name", MODELS)
def test_a_worse_model_is_refused_against_the_deployed_version(run: Run, name: str) -> None:
    refused = run.model(name)["lifecycle"]["retrain-refused"]
    assert refused["status"] == "Failed" and refused["modelPackageArn"] is None
    for hyperparameter, value in spec(name).weak_hyperparameters.items():
        assert refused["parameters"][pipeline_parameter(hyperparameter)] == value
    assert [(s["name"], s["status"]) for s in refused["steps"]][-2:] == [
        ("GatePassed", "Succeeded"),
        ("GateRefused", "Failed"),
    ]
    gate = refused["gate"]
    serving = run.seen[name]["package"]["ModelPackageArn"]
    assert gate["passed"] is False and gate["servingVersion"] == serving
    rule = {"churn": "log_loss vs approved", "spend": "rmse vs approved"}[name]
    assert rule in gate["failed"]
    # the Fail step's message is the refusing rules, with their figures
    assert refused["failure"].startswith("step GateRefused: gate refused: ")
    assert f"{rule}: candidate " in refused["failure"]


@pytest.mark.parametrize("name", MODELS)
def test_traffic_is_captured_into_each_models_prefix_and_logged(run: Run, name: str) -> None:
    model, seen = run.model(name), run.seen[name]
    traffic = model["lifecycle"]["traffic"]
    assert model["predictionsServed"] == traffic["predictions"] == 3_000
    assert traffic["refused"] == 4
    capture = model["lifecycle"]["capture"]
    assert capture["events"] == 200 and capture["files"] == len(seen["capture_keys"]) == 12
    own = run.report["outputs"]["models"][name]["capture_prefix"]
    assert own == f"capture/{ENDPOINTS[name]}"
    for key in seen["capture_keys"]:
        assert re.fullmatch(
            rf"{own}/primary/\d{{4}}/\d{{2}}/\d{{2}}/\d{{2}}/"
            r"\d{2}-\d{2}-\d{3}-[0-9a-f-]{36}\.jsonl",
            key,
        )
    assert seen["capture_sse"] == "aws:kms"
    record = seen["capture_records"][0]
    assert record.input.encoding == "JSON" and record.input.mode == "INPUT"
    inputs = record.input_records(spec(name))
    assert len(inputs) == len(record.output_scores()) == 15
    # each request carried the model's own inputs, nothing else
    assert set(inputs[0]) == {"customer_id", *spec(name).inputs}
    logs = model["predictionLogs"]
    assert logs["rows"] == 3_000 and logs["partitions"]
    assert logs["prefix"] == spec(name).predictions.prefix


def _by_role(states: dict[str, str]) -> dict[str, str]:
    return {re.sub(r"-[0-9a-f]{7}$", "", name): state for name, state in states.items()}


def test_each_models_drift_fires_its_own_drift_alarms(run: Run) -> None:
    report, seen = run.report, run.seen
    for name in MODELS:
        drift = run.model(name)["drift"]
        clean, drifted = drift["windows"]
        assert clean["window"] == "clean" and clean["driftedFeatures"] == []
        assert clean["maxFeaturePsi"] < drift["threshold"] < drifted["maxFeaturePsi"]
        assert set(clean["featurePsi"]) == set(spec(name).feature_names)  # its own features
        assert {"monthly_charges", "contract_type", "support_tickets"} <= set(
            drifted["driftedFeatures"]
        )
        assert clean["rows"] == drifted["rows"] == 1_500
        # its drift alarms: one per feature of its own, and the prediction's
        alarms = run.model(name)["driftAlarms"]
        features = {re.sub(rf"^{name}-alarms-drift-|-[0-9a-f]{{7}}$", "", a) for a in alarms}
        assert features == {*spec(name).feature_names, "prediction"}
        firing = {a for a, state in alarms.items() if state == "ALARM"}
        assert firing and all(a.startswith(f"{name}-alarms-drift-") for a in firing)
        transitions = {
            (t["alarm"], t["pass"]): t["to"] for t in report["lifecycle"]["alarms"]["transitions"]
        }
        for alarm in firing:  # OK after the clean hour, then ALARM after the drifted one
            assert transitions[(alarm, "end of the clean hour")] == "OK"
            assert transitions[(alarm, "end of the drifted hour")] == "ALARM"
    states = _by_role(report["alarmStates"])
    assert states["churn-alarms-drift-monthly_charges"] == "ALARM"
    assert states["spend-alarms-drift-monthly_charges"] == "ALARM"
    assert states["churn-alarms-drift-region"] == states["spend-alarms-drift-region"] == "OK"
    for name in MODELS:
        assert states[f"{name}-alarms-latency-p99"] == states[f"{name}-alarms-5xx"] == "OK"
        assert states[f"{name}-alarms-cpu"] == "INSUFFICIENT_DATA"  # no instance metrics
    assert states["monitoring-freshness"] == "OK"
    assert set(report["lifecycle"]["alarms"]["notEvaluated"]) == {
        n for n in report["alarmStates"] if "4xx-rate" in n or "invocations-low" in n
    }
    moto_state = {n: a["StateValue"] for n, a in seen["alarms"].items()}
    assert {n: moto_state[n] for n in report["alarmStates"]} == report["alarmStates"]


def test_each_models_drift_alarm_pages_on_call(run: Run) -> None:
    report, seen = run.report, run.seen
    for name in MODELS:
        pages = [
            n
            for n in report["notifications"]
            if n["newState"] == "ALARM" and f"{name}-alarms-drift-monthly_charges" in n["alarm"]
        ]
        [page] = pages
        assert page["driftOf"] == name
        assert page["queue"] == QUEUE_ARN
        assert page["topic"] == report["outputs"]["alarm_topic_arn"]
        assert page["oldState"] == "OK" and "Threshold Crossed" in page["reason"]
    paged = {n["driftOf"] for n in report["notifications"] if n["newState"] == "ALARM"}
    assert paged == set(MODELS)
    [statement] = seen["queue_policy"]["Statement"]
    assert statement["Principal"] == {"Service": "sns.amazonaws.com"}
    assert statement["Condition"] == {
        "ArnEquals": {"aws:SourceArn": report["outputs"]["alarm_topic_arn"]}
    }


def test_least_privilege_within_each_model_is_enforced_by_moto(run: Run) -> None:
    lp = run.report["leastPrivilege"]
    assert lp["enforced"] is True and lp["limits"]
    checks = lp["checks"]
    assert checks and all(c["ok"] and c["actual"] == c["expected"] for c in checks)
    outputs = run.report["outputs"]
    for name in MODELS:
        mine = [c for c in checks if c["model"] == name and "otherModel" not in c]
        denied = {(c["role"], c["resource"]) for c in mine if c["actual"] == "AccessDenied"}
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
        assert ("pipeline Evaluate", GROUPS[name]) in denied  # it may not register
        allowed = {(c["role"], c["action"]) for c in mine if c["actual"] == "allowed"}
        assert allowed == {
            *((f"pipeline {s}", "its inputs, container and outputs") for s in PIPELINE_CONTAINERS),
            ("endpoint", "s3:PutObject"),  # its capture
            ("endpoint", "s3:GetObject"),  # its own artifact
            ("drift", "s3:GetObject"),  # its own capture
        }


@pytest.mark.parametrize(("name", "other"), [("churn", "spend"), ("spend", "churn")])
def test_one_models_roles_cannot_reach_anothers(run: Run, name: str, other: str) -> None:
    outputs = run.report["outputs"]
    theirs = outputs["models"][other]
    crossing = [
        c
        for c in run.report["leastPrivilege"]["checks"]
        if c["model"] == name and c.get("otherModel") == other
    ]
    assert crossing and all(c["actual"] == c["expected"] == "AccessDenied" for c in crossing)
    found = {(c["role"], c["action"], c["resource"]) for c in crossing}
    models = f"s3://{outputs['models_bucket']}/{theirs['model_artifacts_prefix']}/"
    capture = f"s3://{outputs['predictions_bucket']}/{theirs['capture_prefix']}/"
    features = f"s3://{outputs['features_bucket']}/{spec(other).features.prefix}/"

    def reached(role: str, action: str, prefix: str) -> bool:
        return any(r == role and a == action and x.startswith(prefix) for r, a, x in found)

    # its endpoint cannot read their artifact (the one deployed) nor write their capture prefix
    deployed = run.model(other)["lifecycle"]["deploy"]["modelDataUrl"]
    assert ("endpoint", "s3:GetObject", deployed) in found
    assert reached("endpoint", "s3:PutObject", capture)
    # its pipeline's step roles (and its training role) cannot read their features table nor
    # write their artifacts prefix
    for role in (*(f"pipeline {s}" for s in PIPELINE_CONTAINERS), "training"):
        assert reached(role, "s3:GetObject", features), role
        assert reached(role, "s3:PutObject", models), role
    # its drift job cannot read their capture (one of their capture files)
    captured = {
        c["resource"]
        for c in run.report["leastPrivilege"]["checks"]
        if c["model"] == other
        and c["role"] == "endpoint"
        and c["expected"] == "allowed"
        and c["action"] == "s3:PutObject"
    }
    assert any(("drift", "s3:GetObject", key) in found for key in captured)


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
