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
    machine = _client(run.env, "stepfunctions").describe_state_machine(
        stateMachineArn=mine["drift_state_machine_arn"]
    )
    seen["monitor_env"] = json.loads(machine["definition"])["States"]["Drift"]["Parameters"][
        "Environment"
    ]
    seen["served_artifact"] = s3.head_object(
        Bucket=outputs["models_bucket"], Key=seen["monitor_env"]["MLPLAT_DRIFT_MODEL_KEY"]
    )
    seen["versions"] = {
        p["ModelPackageVersion"]: sm.describe_model_package(ModelPackageName=p["ModelPackageArn"])
        for p in sm.list_model_packages(ModelPackageGroupName=GROUPS[name])[
            "ModelPackageSummaryList"
        ]
    }
    seen["quality_metrics"] = _quality_metrics(run, mine["endpoint_name"])
    return seen


def _quality_metrics(run: Run, endpoint: str) -> dict[str, list[float]]:
    """The datapoints CloudWatch (moto) holds of the endpoint's skew share, age, shortfall and
    labelled rows with exactly the alarms' dimension (EndpointName; not the per-version series),
    each hour's maximum over the sandbox's days, oldest first."""
    from datetime import UTC, datetime, timedelta

    cloudwatch = _client(run.env, "cloudwatch")
    now = datetime.now(UTC)
    names = ("SkewShare", "ModelAgeDays", "QualityShortfall", "LabeledRows")
    response = cloudwatch.get_metric_data(
        MetricDataQueries=[
            {
                "Id": f"m{i}",
                "MetricStat": {
                    "Metric": {
                        "Namespace": "MLPlatform/Quality",
                        "MetricName": metric,
                        "Dimensions": [{"Name": "EndpointName", "Value": endpoint}],
                    },
                    "Period": 3600,
                    "Stat": "Maximum",
                },
            }
            for i, metric in enumerate(names)
        ],
        StartTime=now - timedelta(days=2),
        EndTime=now + timedelta(days=40),
    )
    found: dict[str, list[float]] = {}
    for result in response["MetricDataResults"]:
        points = sorted(zip(result["Timestamps"], result["Values"], strict=True))
        found[names[int(result["Id"][1:])]] = [value for _, value in points]
    return found


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
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        import traceback

        state.output += "".join(traceback.format_exception(result.exception))
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
    # the run's wall time: the steps that run together (the models' pipelines) overlap
    step_seconds = sum(s["seconds"] for s in steps)
    assert run.report["stepSeconds"] == pytest.approx(step_seconds, abs=0.01)
    assert max(s["seconds"] for s in steps) < run.report["seconds"] < step_seconds
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
    # deployed (1), replaced by the skewed handler (2), rolled back to (3)
    assert (metadata["deployed-to"], metadata["deploy-seq.local"]) == ("local", "3")
    assert metadata["deploy-action"] == "rollback"
    assert metadata["rolled-back-from"] == model["lifecycle"]["skewed-handler"]["modelPackageArn"]
    # its own endpoint now runs a model made from the approved package, capture kept on
    deploy = model["lifecycle"]["deploy"]
    assert model["endpoint"] == deploy["endpoint"] == ENDPOINTS[name]
    assert seen["model"]["PrimaryContainer"]["ModelPackageName"] == package["ModelPackageArn"]
    # the container names the version it serves, and the handler answers with it
    environment = seen["model"]["PrimaryContainer"]["Environment"]
    assert environment["MLPLAT_MODEL_VERSION"] == package["ModelPackageArn"]
    assert seen["invocation"]["model_version"] == f"{group}/1"
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
    skewed = model["lifecycle"]["skewed-handler"]
    assert capture["events"] == 200 and capture["files"] == 12
    # the capture prefix holds those and the skewed handler's hour
    assert len(seen["capture_keys"]) == capture["files"] + skewed["captureFiles"]
    # every answer named the version that served it
    assert traffic["modelVersions"] == [f"{GROUPS[name]}/1"]
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
            ("drift", "s3:GetObject"),  # its capture, served model, the labels, quality reports
            ("drift", "sagemaker:DescribeModelPackage"),  # its own version (simulated)
            ("drift", "sagemaker:UpdateModelPackage"),
        }
        # the monitor job reads its served model and the labels, writes neither
        monitor = {(c["action"], c["resource"]): c["actual"] for c in mine if c["role"] == "drift"}
        served = f"s3://{outputs['models_bucket']}/{name}/current/model.tar.gz"
        assert monitor[("s3:GetObject", served)] == "allowed"
        assert monitor[("s3:PutObject", served)] == "AccessDenied"
        labels = {(a, v) for (a, r), v in monitor.items() if "/customer_outcomes/" in r}
        assert labels == {("s3:GetObject", "allowed"), ("s3:PutObject", "AccessDenied")}
        reports = f"s3://{outputs['predictions_bucket']}/quality-reports/{ENDPOINTS[name]}/"
        assert any(r.startswith(reports) and v == "allowed" for (a, r), v in monitor.items())


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
    # nor their served model, nor read or write their quality reports
    served = f"s3://{outputs['models_bucket']}/{other}/current/model.tar.gz"
    assert ("drift", "s3:GetObject", served) in found
    reports = f"s3://{outputs['predictions_bucket']}/quality-reports/{theirs['endpoint_name']}/"
    assert reached("drift", "s3:GetObject", reports)
    assert reached("drift", "s3:PutObject", reports)
    # nor describe or update their registry versions (IAM's evaluation of its policy)
    package = run.seen[other]["package"]["ModelPackageArn"]
    for action in ("sagemaker:DescribeModelPackage", "sagemaker:UpdateModelPackage"):
        assert ("drift", action, package) in found


# --- online quality, skew and age ---------------------------------------------------------------


@pytest.mark.parametrize("name", MODELS)
def test_the_monitor_job_runs_as_its_component_configures_it(run: Run, name: str) -> None:
    """The scheduled job's environment (its state machine, as realized) names the served artifact,
    the labels, the model's registry group and the thresholds; each drift run measured skew and
    age beside drift, and the served artifact it reads is the one the endpoint serves."""
    env = run.seen[name]["monitor_env"]
    outputs = run.report["outputs"]
    assert env["MLPLAT_DRIFT_MODEL_KEY"] == f"{name}/current/model.tar.gz"
    assert env["MLPLAT_DRIFT_LABELS_BUCKET"] == outputs["raw_bucket"]
    assert env["MLPLAT_DRIFT_MODEL_PACKAGE_GROUP_ARN"].endswith(
        f":model-package-group/{GROUPS[name]}"
    )
    assert float(env["MLPLAT_DRIFT_QUALITY_MARGIN"]) == 0.05
    deployed = run.model(name)["lifecycle"]["deploy"]
    assert deployed["servedArtifact"] == (
        f"s3://{outputs['models_bucket']}/{env['MLPLAT_DRIFT_MODEL_KEY']}"
    )
    for window in run.model(name)["drift"]["windows"]:
        assert {k: v["status"] for k, v in window["parts"].items()} == {
            "quality": "ran",
            "skew": "ran",
            "age": "ran",
            "page": "ran",
        }
        assert window["modelVersion"] == f"{GROUPS[name]}/1"


@pytest.mark.parametrize("name", MODELS)
def test_the_deployed_handler_has_no_skew_and_a_hand_edited_one_pages(run: Run, name: str) -> None:
    model = run.model(name)
    skew = model["skew"]
    # the pipeline's artifact, re-scored through the training path: no captured row differs
    assert [(w["n"], w["n_differ"]) for w in skew["faithful"]] == [(1_000, 0), (1_000, 0)]
    # the same model with a hand-edited handler, as version 2: its hour differs
    case = model["lifecycle"]["skewed-handler"]
    assert case["modelVersion"] == f"{GROUPS[name]}/2" == skew["skewed"]["modelVersion"]
    assert case["predictions"] == 300 and skew["skewed"]["n"] == 300
    alarm = skew["alarm"]
    assert skew["skewed"]["share"] > alarm["threshold"] == 0.01
    assert (alarm["from"], alarm["to"]) == ("OK", "ALARM")
    [page] = case["pages"]
    assert page["alarm"] == alarm["alarm"] and page["queue"] == QUEUE_ARN
    assert "Threshold Crossed" in page["reason"]
    assert run.seen["alarms"][alarm["alarm"]]["StateValue"] == "ALARM"
    # registered as the deployed version was, with its own artifact; then rolled back
    v2 = run.seen[name]["versions"][2]
    assert v2["CustomerMetadataProperties"]["sandbox-case"] == "skewed-handler"
    assert v2["InferenceSpecification"]["Containers"][0]["ModelDataUrl"] == case["artifact"]
    assert case["rolledBackTo"] == run.seen[name]["package"]["ModelPackageArn"]
    # CloudWatch holds the job's skew shares: 0, 0, then the skewed hour's
    shares = run.seen[name]["quality_metrics"]["SkewShare"]
    assert shares[:2] == [0.0, 0.0] and shares[2] == pytest.approx(skew["skewed"]["share"])


def test_labels_come_back_by_batch_and_through_the_outcomes_stream(run: Run) -> None:
    labels = run.report["lifecycle"]["labels"]
    # every prediction served: two hours of 1,500 customers and the skewed hour's 300
    assert labels["outcomes"] == 3_300
    assert (labels["batchRows"], labels["streamedRecords"]) == (3_100, 200)
    assert labels["horizonDays"] == max(spec(m).label_horizon_days for m in MODELS)
    day = labels["observedAt"][:10]
    [key] = labels["streamedObjects"]
    assert key.startswith(f"customer_outcomes/dt={day}/{labels['stream']}-")
    assert labels["stream"].startswith("ingest-customer-outcomes-stream-")
    assert set(labels["labelMeans"]) == {"churned", "next_month_spend"}


@pytest.mark.parametrize("name", MODELS)
def test_online_quality_per_version_beside_the_offline_figures(run: Run, name: str) -> None:
    model = run.model(name)
    quality = model["onlineQuality"]
    group = GROUPS[name]
    versions = quality["versions"]
    assert {v: q["n"] for v, q in versions.items()} == {f"{group}/1": 3_000, f"{group}/2": 300}
    assert quality["labeledRows"] == 3_300
    task = spec(name).task
    head = "roc_auc" if task == "binary_classification" else "rmse"
    for version, figures in versions.items():
        number = int(version.rsplit("/", 1)[1])
        registered = run.seen[name]["versions"][number]["CustomerMetadataProperties"]
        # offline: the version's registered figure; shortfall by the contract's sign rule
        offline = float(registered[f"metric.{head}"])
        assert figures["offline"][head] == pytest.approx(offline)
        online = figures["metrics"][head]
        expected = offline - online if head == "roc_auc" else online / offline - 1
        assert figures["shortfall"] == pytest.approx(expected)
        # and the online figures sit beside them in the registry
        assert float(registered[f"online.{head}"]) == pytest.approx(online)
        assert registered["online.rows"] == str(figures["n"])
    if task == "binary_classification":
        assert 0.7 < versions[f"{group}/1"]["metrics"]["roc_auc"] < 0.95
    else:
        assert (
            0 < versions[f"{group}/1"]["metrics"]["mae"] < versions[f"{group}/1"]["metrics"]["rmse"]
        )


@pytest.mark.parametrize("name", MODELS)
def test_quality_and_age_alarms_judge_what_the_job_put(run: Run, name: str) -> None:
    model = run.model(name)
    judged = model["lifecycle"]["quality-alarms"]
    metrics = run.seen[name]["quality_metrics"]
    # the worst shortfall of the versions judged on enough rows (the rolled-back-to version v1
    # counts as much as the skewed v2), and the age a label horizon and more after training
    from ml.quality import ALARM_MIN_ROWS

    versions = model["onlineQuality"]["versions"]
    shortfall = metrics["QualityShortfall"][-1]
    assert shortfall == pytest.approx(
        max(v["shortfall"] for v in versions.values() if v["n"] >= ALARM_MIN_ROWS)
    )
    age = metrics["ModelAgeDays"][-1]
    assert age == pytest.approx(model["modelAgeDays"], abs=1e-3)
    assert age > spec(name).label_horizon_days - 1
    assert metrics["LabeledRows"][-1] == 3_300
    for metric, value in (("QualityShortfall", shortfall), ("ModelAgeDays", age)):
        alarm = judged[metric]
        assert alarm["to"] == ("ALARM" if value > alarm["threshold"] else "OK"), alarm
        assert run.seen["alarms"][alarm["alarm"]]["StateValue"] == alarm["to"]
    settings_age = judged["ModelAgeDays"]["threshold"]
    from ml.backtest import recommended_max_age_days

    assert settings_age == recommended_max_age_days(name)


def test_a_classifier_whose_slice_labels_are_noise_is_refused_by_the_slice_gate(run: Run) -> None:
    refused = run.model("churn")["lifecycle"]["slice-refused"]
    assert refused["slice"] == {"column": "contract_type", "value": "two-year", "label": "churned"}
    assert refused["status"] == "Failed" and refused["modelPackageArn"] is None
    assert [(s["name"], s["status"]) for s in refused["steps"]][-2:] == [
        ("GatePassed", "Succeeded"),
        ("GateRefused", "Failed"),
    ]
    gate = refused["gate"]
    assert gate["servingVersion"] == run.model("churn")["lifecycle"]["pipeline"]["modelPackageArn"]
    # only slice rules fail, the noisy slice's among them; the overall figures pass
    assert gate["failed"] and all("[" in rule for rule in gate["failed"])
    assert "roc_auc floor [contract_type=two-year]" in gate["failed"]
    overall = [c for c in gate["checks"] if "[" not in c["name"]]
    assert overall and all(c["passed"] for c in overall)
    # trained on the very customers of the serving version, a month earlier
    assert refused["rawRows"] == 30_000
    assert "slice-refused" not in run.model("spend")["lifecycle"]  # a regressor has no such case


def test_the_summary_shows_quality_skew_and_age(run: Run) -> None:
    from mlplat.sandbox.ml_lifecycle import summary_rows

    rows = dict(summary_rows(run.report))
    for name in MODELS:
        assert " on 3,000 labelled (offline short by " in rows[f"{name}: online v1"]
        assert " on 300 labelled " in rows[f"{name}: online v2"]
        assert rows[f"{name}: skew"].startswith("deployed 0/2000 rows differ; hand-edited handler")
        assert rows[f"{name}: skew"].endswith("-> ALARM, rolled back")
        assert re.fullmatch(
            r"\d+\.\d days at the quality run; alarms: .+", rows[f"{name}: model age"]
        )
    assert rows["churn: slice-noise retrain"].startswith(
        "refused by the slice gate (contract_type=two-year labels shuffled: "
    )
    assert rows["labels"].startswith("3,300 outcomes back on ")
    assert "churn: slice-noise retrain" in run.output


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
        "MaxIter, ModelApprovalStatus, Search, WindowDays, WindowEnd, WindowStart",
    )
