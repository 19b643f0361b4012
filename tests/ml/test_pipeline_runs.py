"""`ml.pipeline_runs` and `mlplat pipeline run|status|list`, against a stubbed SageMaker client
(moto has no ListPipelineExecutionSteps): the requests sent, the progress printed, exit codes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import botocore.session
import pytest
import typer
from botocore.stub import ANY, Stubber
from typer.testing import CliRunner

from ml import pipeline_runs
from ml.contracts import (
    STEP_CURATE,
    STEP_EVALUATE,
    STEP_FEATURES,
    STEP_GATE,
    STEP_REFUSED,
    STEP_REGISTER,
    STEP_TRAIN,
    STEP_WINDOW,
)
from ml.pipeline_runs import PipelineRunError, StepRun
from tests.conftest import make_outputs
from tests.ml.conftest import model_outputs, platform_with

PIPELINE = "ml-platform-staging-churn"
PIPELINE_ARN = f"arn:aws:sagemaker:us-east-1:123456789012:pipeline/{PIPELINE}"
EXECUTION = f"{PIPELINE_ARN}/execution/abc123def456"
T0 = datetime(2025, 3, 1, 6, 0, tzinfo=UTC)
REFUSED = "roc_auc 0.61 < 0.74 (the serving version arn:...:model-package/churn/3)"


def minutes(n: float) -> datetime:
    return T0 + timedelta(minutes=n)


def step(name: str, status: str, start: float, end: float | None = None, reason: str = "") -> dict:
    found: dict[str, Any] = {"StepName": name, "StepStatus": status, "StartTime": minutes(start)}
    if end is not None:
        found["EndTime"] = minutes(end)
    if reason:
        found["FailureReason"] = reason
    return found


class Polls:
    """A stubbed client and what it will answer, poll after poll."""

    def __init__(self) -> None:
        self.client = botocore.session.get_session().create_client(
            "sagemaker", region_name="us-east-1"
        )
        self.stub = Stubber(self.client)
        self.made: dict[str, Any] = {}  # how the command made its client

    def started(self, parameters: list[dict[str, str]] | None = None) -> None:
        self.stub.add_response(
            "start_pipeline_execution",
            {"PipelineExecutionArn": EXECUTION},
            {
                "PipelineName": PIPELINE,
                "ClientRequestToken": ANY,
                "PipelineParameters": parameters or [],
                "PipelineExecutionDisplayName": ANY,
            },
        )

    def poll(self, status: str, steps: list[dict], *, reason: str = "", page: int = 0) -> None:
        execution: dict[str, Any] = {
            "PipelineArn": PIPELINE_ARN,
            "PipelineExecutionArn": EXECUTION,
            "PipelineExecutionDisplayName": "mlplat-20250301-060000",
            "PipelineExecutionStatus": status,
            "CreationTime": T0,
        }
        if reason:
            execution["FailureReason"] = reason
        self.stub.add_response(
            "describe_pipeline_execution", execution, {"PipelineExecutionArn": EXECUTION}
        )
        pages = [steps[:page], steps[page:]] if page else [steps]
        for n, listed in enumerate(pages):
            request = {"PipelineExecutionArn": EXECUTION, "SortOrder": "Ascending"}
            response: dict[str, Any] = {"PipelineExecutionSteps": listed}
            if n:
                request["NextToken"] = "more"
            if n < len(pages) - 1:
                response["NextToken"] = "more"
            self.stub.add_response("list_pipeline_execution_steps", response, request)

    def listed(self, executions: list[dict], limit: int = 10) -> None:
        self.stub.add_response(
            "list_pipeline_executions",
            {"PipelineExecutionSummaries": executions},
            {
                "PipelineName": PIPELINE,
                "SortBy": "CreationTime",
                "SortOrder": "Descending",
                "MaxResults": limit,
            },
        )


@pytest.fixture
def polls() -> Iterator[Polls]:
    polls = Polls()
    with polls.stub:
        yield polls
    polls.stub.assert_no_pending_responses()


def a_successful_run(polls: Polls) -> None:
    polls.poll("Executing", [step(STEP_WINDOW, "Executing", 0)])
    polls.poll(
        "Executing",
        [
            step(STEP_WINDOW, "Succeeded", 0, 2),
            step(STEP_CURATE, "Executing", 2),
            step(STEP_FEATURES, "Starting", 2.5),
        ],
    )
    done = [
        step(STEP_WINDOW, "Succeeded", 0, 2),
        step(STEP_CURATE, "Succeeded", 2, 9),
        step(STEP_FEATURES, "Succeeded", 2.5, 12),
        step(STEP_TRAIN, "Succeeded", 12, 30),
        step(STEP_EVALUATE, "Succeeded", 30, 33),
        step(STEP_GATE, "Succeeded", 33, 33),
        step(STEP_REGISTER, "Succeeded", 33, 34),
    ]
    polls.poll("Succeeded", done, page=3)


def a_refused_run(polls: Polls) -> None:
    polls.poll(
        "Failed",
        [
            step(STEP_WINDOW, "Succeeded", 0, 2),
            step(STEP_EVALUATE, "Succeeded", 30, 33),
            step(STEP_GATE, "Succeeded", 33, 33),
            step(STEP_REFUSED, "Failed", 33, 33, reason=REFUSED),
        ],
        reason="Step failure: One or multiple steps failed.",
    )


# --- ml.pipeline_runs ---------------------------------------------------------------------------


def test_start_sends_the_parameters_and_a_request_token(polls: Polls) -> None:
    polls.stub.add_response(
        "start_pipeline_execution",
        {"PipelineExecutionArn": EXECUTION},
        {
            "PipelineName": PIPELINE,
            "ClientRequestToken": "t" * 32,
            "PipelineParameters": [{"Name": "WindowStart", "Value": "2025-01-01"}],
            "PipelineExecutionDisplayName": "mlplat-20250301-060000",
        },
    )
    arn = pipeline_runs.start(
        polls.client,
        PIPELINE,
        {"WindowStart": "2025-01-01"},
        display_name=pipeline_runs.display_name(T0),
        token="t" * 32,
    )
    assert arn == EXECUTION


def test_a_new_token_per_run_that_sagemaker_accepts(polls: Polls) -> None:
    tokens: list[str] = []
    for _ in range(2):
        polls.stub.add_response(
            "start_pipeline_execution", {"PipelineExecutionArn": EXECUTION}, None
        )
    polls.client.meta.events.register(
        "provide-client-params.sagemaker.StartPipelineExecution",
        lambda params, **_: tokens.append(params["ClientRequestToken"]),
    )
    pipeline_runs.start(polls.client, PIPELINE)
    pipeline_runs.start(polls.client, PIPELINE)
    assert len(set(tokens)) == 2 and all(32 <= len(t) <= 128 for t in tokens)


def test_follow_reports_each_step_change_once_and_never_sleeps(polls: Polls) -> None:
    a_successful_run(polls)
    changes: list[tuple[str, str]] = []
    pauses: list[float] = []
    execution = pipeline_runs.follow(
        polls.client,
        EXECUTION,
        on_step=lambda s: changes.append((s.name, s.status)),
        poll_seconds=7,
        sleep=pauses.append,
    )
    assert changes == [
        (STEP_WINDOW, "Executing"),
        (STEP_WINDOW, "Succeeded"),
        (STEP_CURATE, "Executing"),
        (STEP_FEATURES, "Starting"),
        (STEP_CURATE, "Succeeded"),
        (STEP_FEATURES, "Succeeded"),
        (STEP_TRAIN, "Succeeded"),
        (STEP_EVALUATE, "Succeeded"),
        (STEP_GATE, "Succeeded"),
        (STEP_REGISTER, "Succeeded"),
    ]
    assert pauses == [7, 7]  # between the three polls, not after the last
    assert execution.status == "Succeeded" and not execution.failed
    assert [s.name for s in execution.steps][-1] == STEP_REGISTER  # every page read


def test_a_failed_execution_names_the_failing_step_and_its_reason(polls: Polls) -> None:
    a_refused_run(polls)
    execution = pipeline_runs.describe(polls.client, EXECUTION)
    assert execution.failed and execution.ended
    assert execution.failures() == [f"step {STEP_REFUSED} failed: {REFUSED}"]
    assert execution.pipeline == PIPELINE
    document = execution.to_json()
    assert document["steps"][-1] == {
        "name": STEP_REFUSED,
        "status": "Failed",
        "started": minutes(33).isoformat(),
        "ended": minutes(33).isoformat(),
        "failureReason": REFUSED,
    }


def test_a_stopped_execution_without_a_failed_step_gives_its_own_reason(polls: Polls) -> None:
    polls.poll("Stopped", [step(STEP_WINDOW, "Stopped", 0, 1)], reason="stopped by ops")
    execution = pipeline_runs.describe(polls.client, EXECUTION)
    assert execution.failed
    assert execution.failures() == ["execution stopped: stopped by ops"]


def test_latest_and_recent(polls: Polls) -> None:
    summaries = [
        {
            "PipelineExecutionArn": EXECUTION,
            "PipelineExecutionStatus": "Failed",
            "StartTime": T0,
            "PipelineExecutionDisplayName": "mlplat-20250301-060000",
        }
    ]
    polls.listed(summaries, limit=1)
    assert pipeline_runs.latest(polls.client, PIPELINE) == EXECUTION
    polls.listed([], limit=1)
    with pytest.raises(PipelineRunError, match="has no executions yet"):
        pipeline_runs.latest(polls.client, PIPELINE)


def test_aws_errors_are_explained(polls: Polls) -> None:
    polls.stub.add_client_error(
        "start_pipeline_execution",
        service_error_code="ResourceNotFound",
        service_message=f"Pipeline '{PIPELINE}' does not exist.",
    )
    with pytest.raises(
        PipelineRunError, match=f"cannot start {PIPELINE}: ResourceNotFound: Pipeline '"
    ):
        pipeline_runs.start(polls.client, PIPELINE)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({}, {}),
        (
            {"window_start": "2025-01-01", "window_end": "2025-01-31"},
            {"WindowStart": "2025-01-01", "WindowEnd": "2025-01-31"},
        ),
        (
            {"pairs": ["Estimator=hist_gradient_boosting", "C=0.5", "WindowDays=7"]},
            {"Estimator": "hist_gradient_boosting", "C": "0.5", "WindowDays": "7"},
        ),
        ({"pairs": ["WindowEnd="]}, {"WindowEnd": ""}),
    ],
)
def test_run_parameters(args: dict[str, Any], expected: dict[str, str]) -> None:
    assert pipeline_runs.run_parameters("churn", **args) == expected


def test_each_model_has_its_own_hyperparameter_parameters() -> None:
    assert pipeline_runs.parameters_of("churn")[-3:] == ("Estimator", "C", "MaxIter")
    spend = pipeline_runs.parameters_of("spend")
    assert "MaxDepth" in spend and "C" not in spend
    assert pipeline_runs.run_parameters("spend", pairs=["MaxDepth=6"]) == {"MaxDepth": "6"}
    with pytest.raises(PipelineRunError, match=r"not a parameter of the spend pipeline.*MaxDepth"):
        pipeline_runs.run_parameters("spend", pairs=["C=1"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"pairs": ["Estimator"]}, "--param 'Estimator': expected NAME=VALUE"),
        ({"pairs": ["Alpha=1"]}, "--param Alpha: not a parameter of the churn pipeline; its"),
        ({"pairs": ["C=1", "C=2"]}, "--param C is given twice"),
        (
            {"window_start": "2025-01-01", "pairs": ["WindowStart=2025-01-02"]},
            "--window-start and --param WindowStart both set WindowStart",
        ),
        ({"window_start": "1/1/2025"}, "--window-start '1/1/2025': expected a date, YYYY-MM-DD"),
        ({"window_end": "2025-02-30"}, "--window-end '2025-02-30': expected a date"),
        ({"pairs": ["WindowEnd=May"]}, "--param WindowEnd 'May': expected a date"),
        (
            {"window_start": "2025-02-01", "window_end": "2025-01-01"},
            r"the window starts \(2025-02-01\) after it ends \(2025-01-01\)",
        ),
    ],
)
def test_bad_parameters_are_explained(args: dict[str, Any], message: str) -> None:
    with pytest.raises(PipelineRunError, match=message):
        pipeline_runs.run_parameters("churn", **args)


def test_the_pipeline_of_a_model_of_the_stack() -> None:
    outputs = make_outputs(
        stack="staging",
        models={
            "churn": model_outputs(pipeline_name=PIPELINE),
            "spend": model_outputs(pipeline_name="ml-platform-staging-spend"),
        },
    )
    assert pipeline_runs.pipeline_for(outputs, "churn") == PIPELINE
    assert pipeline_runs.pipeline_for(outputs, "spend") == "ml-platform-staging-spend"
    with pytest.raises(
        PipelineRunError, match="unknown model 'fraud'; the models of stack 'staging': churn, spend"
    ):
        pipeline_runs.pipeline_for(outputs, "fraud")
    without = platform_with(outputs={"stack": "staging"}, pipeline_name=None)
    with pytest.raises(PipelineRunError, match=r"deploys no pipeline for 'churn' \(pipelineEn"):
        pipeline_runs.pipeline_for(without, "churn")


def test_a_step_line_shows_its_duration_and_reason() -> None:
    from mlplat.cli.commands.pipeline import _step_line

    assert _step_line(StepRun("Train", "Succeeded", minutes(0), minutes(18.5))) == (
        "Train          Succeeded (18m 30s)"
    )
    assert _step_line(StepRun("GateRefused", "Failed", failure_reason=REFUSED)) == (
        f"GateRefused    Failed: {REFUSED}"
    )


# --- the commands -------------------------------------------------------------------------------

runner = CliRunner()


@pytest.fixture
def cli(polls: Polls, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[Any, Path]:
    """The `pipeline` commands with the stubbed client, no sleeping, the outputs in a file."""
    import boto3

    from mlplat.cli.commands import pipeline

    pauses: list[float] = []
    monkeypatch.setattr(pipeline, "sleep", pauses.append)

    def client(service: str, **kwargs: Any) -> Any:
        assert service == "sagemaker"
        polls.made = kwargs
        return polls.client

    monkeypatch.setattr(boto3, "client", client)
    outputs = tmp_path / "outputs.json"
    platform = platform_with(
        outputs={"stack": "staging", "region": "eu-west-1"}, pipeline_name=PIPELINE
    )
    outputs.write_text(json.dumps(platform.to_json()))
    app = typer.Typer()
    pipeline.register(app)
    return app, outputs


def invoke(cli: tuple[Any, Path], *args: str) -> Any:
    app, outputs = cli
    return runner.invoke(app, ["pipeline", *args, "--model", "churn", "--outputs", str(outputs)])


def test_run_wait_prints_progress_per_step_and_exits_0(
    cli: tuple[Any, Path], polls: Polls, tmp_path: Path
) -> None:
    polls.started([{"Name": "C", "Value": "2"}, {"Name": "WindowStart", "Value": "2025-01-01"}])
    a_successful_run(polls)
    report = tmp_path / "run.json"
    result = invoke(
        cli,
        "run",
        "--window-start",
        "2025-01-01",
        "--param",
        "C=2",
        "--wait",
        "--json",
        str(report),
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"started {EXECUTION}"
    assert lines[1:4] == [
        "Window         Executing",
        "Window         Succeeded (2m 00s)",
        "Curate         Executing",
    ]
    assert "Train          Succeeded (18m 00s)" in lines
    assert lines[-1] == f"execution {EXECUTION}: Succeeded"
    assert json.loads(report.read_text())["status"] == "Succeeded"
    assert polls.made == {"region_name": "eu-west-1", "endpoint_url": None}


def test_run_wait_exits_1_naming_the_failing_step(cli: tuple[Any, Path], polls: Polls) -> None:
    polls.started()
    a_refused_run(polls)
    result = invoke(cli, "run", "--wait")
    assert result.exit_code == 1
    assert f"execution {EXECUTION}: Failed" in result.stdout
    assert f"step {STEP_REFUSED} failed: {REFUSED}" in result.stderr


def test_run_without_wait_only_starts(cli: tuple[Any, Path], polls: Polls, tmp_path: Path) -> None:
    polls.started()
    report = tmp_path / "run.json"
    result = invoke(cli, "run", "--json", str(report))
    assert result.exit_code == 0, result.output
    assert result.stdout == f"started {EXECUTION}\n"
    assert json.loads(report.read_text()) == {
        "arn": EXECUTION,
        "pipeline": PIPELINE,
        "parameters": {},
    }


def test_status_of_the_latest_execution(cli: tuple[Any, Path], polls: Polls) -> None:
    polls.listed([{"PipelineExecutionArn": EXECUTION, "PipelineExecutionStatus": "Failed"}], 1)
    a_refused_run(polls)
    result = invoke(cli, "status")
    assert result.exit_code == 1
    assert f"{STEP_REFUSED:<14} Failed (0m 00s): {REFUSED}" in result.stdout
    assert f"step {STEP_REFUSED} failed: {REFUSED}" in result.stderr


def test_status_of_a_running_execution_exits_0(cli: tuple[Any, Path], polls: Polls) -> None:
    polls.poll(
        "Executing", [step(STEP_WINDOW, "Succeeded", 0, 2), step(STEP_CURATE, "Executing", 2)]
    )
    result = invoke(cli, "status", "--execution", EXECUTION)
    assert result.exit_code == 0, result.output
    assert "Curate         Executing" in result.stdout
    assert result.stdout.splitlines()[-1] == f"execution {EXECUTION}: Executing"


def test_list_shows_status_start_and_display_name(
    cli: tuple[Any, Path], polls: Polls, tmp_path: Path
) -> None:
    polls.listed(
        [
            {
                "PipelineExecutionArn": EXECUTION,
                "PipelineExecutionStatus": "Succeeded",
                "StartTime": T0,
                "PipelineExecutionDisplayName": "mlplat-20250301-060000",
            },
            {
                "PipelineExecutionArn": f"{PIPELINE_ARN}/execution/old",
                "PipelineExecutionStatus": "Failed",
            },
        ],
        limit=5,
    )
    report = tmp_path / "list.json"
    result = invoke(cli, "list", "--limit", "5", "--json", str(report))
    assert result.exit_code == 0, result.output
    first, second = result.stdout.splitlines()
    assert first.split() == [
        "Succeeded",
        "2025-03-01",
        "06:00:00",
        "UTC",
        "mlplat-20250301-060000",
        EXECUTION,
    ]
    assert second.split()[:3] == ["Failed", "-", "-"]
    assert [e["status"] for e in json.loads(report.read_text())] == ["Succeeded", "Failed"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["run", "--model", "fraud"],
            "unknown model 'fraud'; the models of stack 'staging': churn",
        ),
        (["run", "--param", "Alpha=1"], "--param Alpha: not a parameter of the churn pipeline"),
        (["run", "--window-end", "yesterday"], "--window-end 'yesterday': expected a date"),
    ],
)
def test_bad_usage_exits_2_before_anything_starts(
    cli: tuple[Any, Path], args: list[str], message: str
) -> None:
    app, outputs = cli
    full = ["pipeline", *args, "--outputs", str(outputs)]
    if "--model" not in args:
        full += ["--model", "churn"]
    result = runner.invoke(app, full)
    assert result.exit_code == 2
    assert f"error: {message}" in result.stderr


def test_a_stack_without_its_pipeline_is_a_usage_error(
    cli: tuple[Any, Path], tmp_path: Path
) -> None:
    app, _ = cli
    outputs = tmp_path / "no-pipeline.json"
    outputs.write_text(
        json.dumps(platform_with(outputs={"stack": "dev"}, pipeline_name=None).to_json())
    )
    result = runner.invoke(app, ["pipeline", "list", "--model", "churn", "--outputs", str(outputs)])
    assert result.exit_code == 2
    assert "stack 'dev' deploys no pipeline for 'churn'" in result.stderr


def test_the_model_defaults_to_the_stacks_first(cli: tuple[Any, Path], polls: Polls) -> None:
    polls.started()  # the stub answers only a start of PIPELINE, churn's
    app, outputs = cli
    result = runner.invoke(app, ["pipeline", "run", "--outputs", str(outputs)])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"started {EXECUTION}\n"


def test_every_pipeline_command_has_help(cli: tuple[Any, Path]) -> None:
    app, _ = cli
    for command in ("run", "status", "list"):
        result = runner.invoke(app, ["pipeline", command, "--help"])
        assert result.exit_code == 0 and "--model" in result.output
