"""`mlplat pipeline run|status|list`: the executions of a model's SageMaker Pipeline.

The pipeline comes from the platform outputs (`--stack S` or `--outputs FILE`) and `--model` (one
of the stack's models, default its first: that model's `pipeline_name`); the work is
`ml.pipeline_runs`. `run --wait` and
`status` print the steps and exit 1 when the execution failed or was stopped, naming the failing
step and its reason on stderr. Errors (an unknown model, a bad parameter, an AWS refusal): message
on stderr, exit 2.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mlplat.cli import options
from mlplat.cli.errors import ExitCode, fail, usage_errors
from mlplat.cli.inputs import model_name, platform_outputs

if TYPE_CHECKING:
    from ml.pipeline_runs import Execution, StepRun

# How `--wait` pauses between polls (tests replace it: no test sleeps).
sleep = time.sleep


def register(app: typer.Typer) -> None:
    pipeline = typer.Typer(
        name="pipeline",
        help="The model's SageMaker Pipeline: start, follow and list its executions.",
        no_args_is_help=True,
    )
    pipeline.command("run")(run_command)
    pipeline.command("status")(status_command)
    pipeline.command("list")(list_command)
    app.add_typer(pipeline, name="pipeline")


def _pipeline(
    stack: str | None,
    outputs: Path | None,
    model: str | None,
    region: str | None,
    endpoint_url: str | None,
) -> tuple[Any, str, str]:
    """A SageMaker client for the stack's region, the model's name and its pipeline's name."""
    import boto3

    from ml.pipeline_runs import PipelineRunError, pipeline_for

    platform = platform_outputs(stack, outputs, exactly_one=True)
    model = model or model_name(None, platform)
    with usage_errors(PipelineRunError):
        name = pipeline_for(platform, model)
    client = boto3.client(
        "sagemaker", region_name=region or platform.region, endpoint_url=endpoint_url
    )
    return client, model, name


def _step_line(step: StepRun) -> str:
    line = f"{step.name:<14} {step.status}"
    if step.started and step.ended:
        line += f" ({_duration((step.ended - step.started).total_seconds())})"
    if step.failure_reason:
        line += f": {step.failure_reason}"
    return line


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m {secs:02d}s"


def _finish(execution: Execution, json_path: Path | None) -> None:
    """Write the execution to `--json`, say how it ended; exit 1 if it failed or was stopped."""
    if json_path is not None:
        json_path.write_text(json.dumps(execution.to_json(), indent=2) + "\n")
    typer.echo(f"execution {execution.arn}: {execution.status}")
    if execution.failed:
        fail("\n".join(execution.failures()), ExitCode.FAILED_CHECK)


def run_command(
    model: options.Model = None,
    stack: options.Stack = None,
    outputs: options.Outputs = None,
    window_start: Annotated[
        str | None,
        typer.Option(
            "--window-start",
            help="First day of data, YYYY-MM-DD (default: the "
            "pipeline's window of days up to --window-end).",
        ),
    ] = None,
    window_end: Annotated[
        str | None,
        typer.Option("--window-end", help="Last day of data, YYYY-MM-DD (default: today, UTC)."),
    ] = None,
    params: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            help="A pipeline parameter, NAME=VALUE (repeatable): WindowDays, "
            "ModelApprovalStatus, and the hyperparameters the model exposes (churn: Estimator, "
            "C, MaxIter).",
        ),
    ] = None,
    wait: Annotated[
        bool,
        typer.Option("--wait", help="Follow the execution step by step; exit 1 if it fails."),
    ] = False,
    region: options.Region = None,
    endpoint_url: options.EndpointUrl = None,
    json_path: Annotated[Path | None, options.json_file("the execution")] = None,
) -> None:
    """Start an execution of the model's pipeline (curate, features, train, evaluate, register).

    With --wait, print each step's progress until it ends: exit 0 when it succeeded, 1 when it
    failed or was stopped (the failing step and its reason on stderr).
    """
    from ml.pipeline_runs import PipelineRunError, display_name, follow, run_parameters, start

    client, model, name = _pipeline(stack, outputs, model, region, endpoint_url)
    with usage_errors(PipelineRunError):
        parameters = run_parameters(model, window_start, window_end, params or ())
    with usage_errors(PipelineRunError):
        arn = start(client, name, parameters, display_name=display_name(datetime.now(UTC)))
    typer.echo(f"started {arn}")
    if not wait:
        if json_path is not None:
            started = {"arn": arn, "pipeline": name, "parameters": parameters}
            json_path.write_text(json.dumps(started, indent=2) + "\n")
        return
    with usage_errors(PipelineRunError):
        execution = follow(
            client, arn, on_step=lambda step: typer.echo(_step_line(step)), sleep=sleep
        )
    _finish(execution, json_path)


def status_command(
    model: options.Model = None,
    stack: options.Stack = None,
    outputs: options.Outputs = None,
    execution_arn: Annotated[
        str | None,
        typer.Option("--execution", help="Execution ARN (default: the latest execution)."),
    ] = None,
    region: options.Region = None,
    endpoint_url: options.EndpointUrl = None,
    json_path: Annotated[Path | None, options.json_file("the execution")] = None,
) -> None:
    """The steps of an execution (default: the latest) and how it ended.

    Exit 0 when it succeeded or still runs, 1 when it failed or was stopped.
    """
    from ml.pipeline_runs import PipelineRunError, describe, latest

    client, _, name = _pipeline(stack, outputs, model, region, endpoint_url)
    with usage_errors(PipelineRunError):
        execution = describe(client, execution_arn or latest(client, name))
    started = f", started {execution.started:%Y-%m-%d %H:%M:%S %Z}" if execution.started else ""
    typer.echo(f"{execution.display_name or execution.arn} of {name}{started}")
    for step in execution.steps:
        typer.echo(_step_line(step))
    _finish(execution, json_path)


def list_command(
    model: options.Model = None,
    stack: options.Stack = None,
    outputs: options.Outputs = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=100, help="How many executions, newest first.")
    ] = 10,
    region: options.Region = None,
    endpoint_url: options.EndpointUrl = None,
    json_path: Annotated[Path | None, options.json_file("the executions")] = None,
) -> None:
    """The recent executions of the model's pipeline: status, start, display name, ARN."""
    from ml.pipeline_runs import PipelineRunError, recent

    client, _, name = _pipeline(stack, outputs, model, region, endpoint_url)
    with usage_errors(PipelineRunError):
        executions = recent(client, name, limit=limit)
    if not executions:
        typer.echo(f"{name}: no executions yet (`mlplat pipeline run`)")
    for e in executions:
        started = f"{e.started:%Y-%m-%d %H:%M:%S %Z}" if e.started else "-"
        typer.echo(f"{e.status:<10} {started:<24} {e.display_name or '-':<24} {e.arn}")
    if json_path is not None:
        json_path.write_text(json.dumps([e.to_json() for e in executions], indent=2) + "\n")
