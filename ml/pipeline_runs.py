"""Executions of a model's SageMaker Pipeline: start one, follow it, read how it went, list them.

`mlplat pipeline run|status|list` parse their options and call these with a SageMaker client they
make (tests inject a stubbed one); nothing here makes a client or talks to AWS at import time.

* `pipeline_for(outputs, model)`: the pipeline of one of the stack's models, from the platform
  outputs (`models[model].pipeline_name`).
* `run_parameters(model, window_start, window_end, pairs)`: the execution's parameters, checked
  against the pipeline's (`parameters_of(model)`): the window as `YYYY-MM-DD`, anything else as
  `NAME=VALUE`.
* `start(client, pipeline, parameters)`: `StartPipelineExecution` with a client request token, so
  that a request the SDK retries starts one execution, not two. Returns the execution's ARN.
* `describe(client, arn)`: the execution and its steps (`DescribePipelineExecution`, then every
  page of `ListPipelineExecutionSteps`, in the order the steps started), as an `Execution`.
* `follow(client, arn, on_step=...)`: polls `describe` until the execution ends, calling `on_step`
  for each step whose status changed; `sleep` is injected (tests never sleep).
* `latest(client, pipeline)` / `recent(client, pipeline)`: the newest execution / the newest few.

An execution ends `Succeeded`, `Failed` or `Stopped`; `Execution.failures()` says which steps
failed and why (their `FailureReason`: a Fail step's message, a job's error).
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from ml.contracts import (
    PARAM_WINDOW_END,
    PARAM_WINDOW_START,
    PIPELINE_PARAMETERS,
)
from ml.models import pipeline_parameter, spec

if TYPE_CHECKING:
    from ml.outputs import PlatformOutputs

# A boto3 SageMaker client (no type stubs for it are installed).
SageMakerClient = Any


def parameters_of(model: str) -> tuple[str, ...]:
    """The parameters of `model`'s pipeline: the window, the approval status, and one per
    hyperparameter the model exposes (`ModelSpec.pipeline_hyperparameters`)."""
    exposed = spec(model).pipeline_hyperparameters
    return (*PIPELINE_PARAMETERS, *(pipeline_parameter(h) for h in exposed))


SUCCEEDED = "Succeeded"
FAILED_STATUSES: tuple[str, ...] = ("Failed", "Stopped")
ENDED_STATUSES: tuple[str, ...] = (SUCCEEDED, *FAILED_STATUSES)
POLL_SECONDS = 15.0
DISPLAY_NAME_PREFIX = (
    "mlplat"  # a run started by hand; the schedule's runs are named by EventBridge
)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class PipelineRunError(ValueError):
    """An execution that cannot be started or read as asked, and why."""


@dataclass(frozen=True, slots=True)
class StepRun:
    """One step of an execution, as `ListPipelineExecutionSteps` shows it."""

    name: str
    status: str  # Starting | Executing | Stopping | Stopped | Failed | Succeeded
    started: datetime | None = None
    ended: datetime | None = None
    failure_reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "started": _iso(self.started),
            "ended": _iso(self.ended),
            "failureReason": self.failure_reason,
        }


@dataclass(frozen=True, slots=True)
class Execution:
    """A pipeline execution and the steps it has run so far."""

    arn: str
    pipeline: str
    status: str  # Executing | Stopping | Stopped | Failed | Succeeded
    display_name: str | None
    started: datetime | None
    failure_reason: str | None
    steps: tuple[StepRun, ...]

    @property
    def ended(self) -> bool:
        return self.status in ENDED_STATUSES

    @property
    def failed(self) -> bool:
        return self.status in FAILED_STATUSES

    def failures(self) -> list[str]:
        """Why a failed or stopped execution ended: each failed step's name and reason, else the
        execution's own reason."""
        failed = [s for s in self.steps if s.status == "Failed"]
        if failed:
            return [
                f"step {s.name} failed: {s.failure_reason or 'no reason given'}" for s in failed
            ]
        return [f"execution {self.status.lower()}: {self.failure_reason or 'no reason given'}"]

    def to_json(self) -> dict[str, Any]:
        return {
            "arn": self.arn,
            "pipeline": self.pipeline,
            "status": self.status,
            "displayName": self.display_name,
            "started": _iso(self.started),
            "failureReason": self.failure_reason,
            "steps": [s.to_json() for s in self.steps],
        }


@dataclass(frozen=True, slots=True)
class ExecutionSummary:
    """An execution as `ListPipelineExecutions` shows it."""

    arn: str
    status: str
    started: datetime | None
    display_name: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "arn": self.arn,
            "status": self.status,
            "started": _iso(self.started),
            "displayName": self.display_name,
        }


def stack_pipelines(outputs: PlatformOutputs) -> dict[str, str | None]:
    """The stack's models and their pipelines (None: the stack deploys none)."""
    return {name: model.pipeline_name for name, model in outputs.models.items()}


def pipeline_for(outputs: PlatformOutputs, model: str) -> str:
    """The name of `model`'s pipeline in the stack of `outputs`."""
    pipelines = stack_pipelines(outputs)
    if model not in pipelines:
        raise PipelineRunError(
            f"unknown model {model!r}; the models of stack {outputs.stack!r}: "
            + ", ".join(sorted(pipelines))
        )
    name = pipelines[model]
    if not name:
        raise PipelineRunError(
            f"stack {outputs.stack!r} deploys no pipeline for {model!r} (pipelineEnabled is "
            "false): enable it and `pulumi up`"
        )
    return name


def run_parameters(
    model: str,
    window_start: str | None = None,
    window_end: str | None = None,
    pairs: Iterable[str] = (),
) -> dict[str, str]:
    """The parameters of an execution of `model`'s pipeline: `window_start` / `window_end`
    (YYYY-MM-DD) and `NAME=VALUE` pairs of the pipeline's other parameters (`parameters_of`).
    The pipeline's defaults apply to the ones not given."""
    known = parameters_of(model)
    values: dict[str, str] = {}
    given_as: dict[str, str] = {}  # how each value was given, for the messages
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise PipelineRunError(f"--param {pair!r}: expected NAME=VALUE")
        if name not in known:
            raise PipelineRunError(
                f"--param {name}: not a parameter of the {model} pipeline; its parameters: "
                + ", ".join(known)
            )
        if name in values:
            raise PipelineRunError(f"--param {name} is given twice")
        values[name], given_as[name] = value, f"--param {name}"
    for name, given, option in (
        (PARAM_WINDOW_START, window_start, "--window-start"),
        (PARAM_WINDOW_END, window_end, "--window-end"),
    ):
        if given is None:
            continue
        if name in values:
            raise PipelineRunError(f"{option} and --param {name} both set {name}: give one")
        values[name], given_as[name] = given, option
    for name in (PARAM_WINDOW_START, PARAM_WINDOW_END):
        if values.get(name):
            _check_date(given_as[name], values[name])
    start, end = values.get(PARAM_WINDOW_START), values.get(PARAM_WINDOW_END)
    if start and end and start > end:
        raise PipelineRunError(f"the window starts ({start}) after it ends ({end})")
    return values


def _check_date(option: str, value: str) -> None:
    try:
        if not _DATE.fullmatch(value):
            raise ValueError
        date.fromisoformat(value)
    except ValueError:
        raise PipelineRunError(f"{option} {value!r}: expected a date, YYYY-MM-DD") from None


def start(
    client: SageMakerClient,
    pipeline: str,
    parameters: Mapping[str, str] | None = None,
    *,
    display_name: str | None = None,
    token: str | None = None,
) -> str:
    """Start an execution of `pipeline`; returns its ARN. `token` (default: a new one) makes a
    retried request start the same execution."""
    request: dict[str, Any] = {
        "PipelineName": pipeline,
        "ClientRequestToken": token or uuid.uuid4().hex,
        "PipelineParameters": [{"Name": k, "Value": v} for k, v in (parameters or {}).items()],
    }
    if display_name:
        request["PipelineExecutionDisplayName"] = display_name
    response = _call(client, "start_pipeline_execution", f"cannot start {pipeline}", **request)
    return str(response["PipelineExecutionArn"])


def display_name(now: datetime) -> str:
    """A name that tells a run started by hand from a scheduled one in `mlplat pipeline list`."""
    return f"{DISPLAY_NAME_PREFIX}-{now:%Y%m%d-%H%M%S}"


def describe(client: SageMakerClient, arn: str) -> Execution:
    """The execution and every step it has started so far, in the order they started."""
    what = f"cannot read execution {arn}"
    found = _call(client, "describe_pipeline_execution", what, PipelineExecutionArn=arn)
    steps: list[StepRun] = []
    request: dict[str, Any] = {"PipelineExecutionArn": arn, "SortOrder": "Ascending"}
    while True:
        page = _call(client, "list_pipeline_execution_steps", what, **request)
        steps += [
            StepRun(
                name=str(s["StepName"]),
                status=str(s.get("StepStatus", "Starting")),
                started=s.get("StartTime"),
                ended=s.get("EndTime"),
                failure_reason=s.get("FailureReason") or None,
            )
            for s in page.get("PipelineExecutionSteps", [])
        ]
        if not page.get("NextToken"):
            break
        request["NextToken"] = page["NextToken"]
    pipeline_arn = str(found.get("PipelineArn", ""))
    return Execution(
        arn=arn,
        pipeline=pipeline_arn.rsplit("/", 1)[-1],
        status=str(found["PipelineExecutionStatus"]),
        display_name=found.get("PipelineExecutionDisplayName"),
        started=found.get("CreationTime"),
        failure_reason=found.get("FailureReason") or None,
        steps=tuple(steps),
    )


def follow(
    client: SageMakerClient,
    arn: str,
    *,
    on_step: Callable[[StepRun], None],
    poll_seconds: float = POLL_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> Execution:
    """Poll the execution until it ends; `on_step` gets each step whenever its status changed
    (a step once per status). Returns the ended execution."""
    seen: dict[str, str] = {}
    while True:
        execution = describe(client, arn)
        for step in execution.steps:
            if seen.get(step.name) != step.status:
                seen[step.name] = step.status
                on_step(step)
        if execution.ended:
            return execution
        sleep(poll_seconds)


def recent(client: SageMakerClient, pipeline: str, *, limit: int = 10) -> list[ExecutionSummary]:
    """The newest `limit` executions of `pipeline`, newest first."""
    found = _call(
        client,
        "list_pipeline_executions",
        f"cannot list the executions of {pipeline}",
        PipelineName=pipeline,
        SortBy="CreationTime",
        SortOrder="Descending",
        MaxResults=limit,
    )
    return [
        ExecutionSummary(
            arn=str(e["PipelineExecutionArn"]),
            status=str(e.get("PipelineExecutionStatus", "")),
            started=e.get("StartTime"),
            display_name=e.get("PipelineExecutionDisplayName"),
        )
        for e in found.get("PipelineExecutionSummaries", [])
    ]


def latest(client: SageMakerClient, pipeline: str) -> str:
    """The ARN of the newest execution of `pipeline`."""
    newest = recent(client, pipeline, limit=1)
    if not newest:
        raise PipelineRunError(
            f"pipeline {pipeline} has no executions yet: start one (`mlplat pipeline run`)"
        )
    return newest[0].arn


def _call(client: SageMakerClient, operation: str, what: str, **request: Any) -> dict[str, Any]:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return dict(getattr(client, operation)(**request))
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise PipelineRunError(
            f"{what}: {error.get('Code', 'error')}: {error.get('Message', exc)}"
        ) from exc
    except BotoCoreError as exc:
        raise PipelineRunError(f"{what}: {exc}") from exc


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
