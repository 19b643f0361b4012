"""Breaks of a realized pipeline definition, each executed in the kept sandbox of
`test_lifecycle`: the sandbox runs the definition the stack deployed and nothing else, so a wrong
S3 URI, a role that may not read its input, a reference to a step that has not run, a container
that fails or a parameter the definition does not declare fails the execution at that step, with
the step's name and the reason. Each break is undone after its execution."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from ml.contracts import PARAM_WINDOW_END, PARAM_WINDOW_START, STEP_CURATE, STEP_WINDOW
from mlplat.sandbox.context import SandboxContext, StepFailed
from mlplat.sandbox.steps.pipeline import execute

Definition = dict[str, Any]


def _step(definition: Definition, name: str) -> Definition:
    return next(s for s in definition["Steps"] if s["Name"] == name)


def _wrong_uri(definition: Definition) -> None:
    [source] = _step(definition, STEP_CURATE)["Arguments"]["ProcessingInputs"]
    source["S3Input"]["S3Uri"] = "s3://no-such-bucket/work/"


def _train_role_curates(definition: Definition) -> None:
    train = next(s for s in definition["Steps"] if s["Type"] == "Training")
    _step(definition, STEP_CURATE)["Arguments"]["RoleArn"] = train["Arguments"]["RoleArn"]


def _forward_reference(definition: Definition) -> None:
    app = _step(definition, STEP_WINDOW)["Arguments"]["AppSpecification"]
    app["ContainerArguments"] += ["--extra", {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}]


def _empty_window(definition: Definition) -> None:
    for parameter in definition["Parameters"]:
        if parameter["Name"] in (PARAM_WINDOW_START, PARAM_WINDOW_END):
            parameter["DefaultValue"] = "1999-01-01"


BREAKS: dict[str, Callable[[Definition], None]] = {
    "wrong-s3-uri": _wrong_uri,
    "role-may-not-read-input": _train_role_curates,
    "reference-to-a-later-step": _forward_reference,
    "empty-window": _empty_window,
}


def break_definitions(ctx: SandboxContext, model: str) -> dict[str, tuple[str, str]]:
    """Break name -> (the failed step, its failure); "" for a refusal before any step. On the
    pipeline of `model`."""
    sm = ctx.client("sagemaker")
    name = ctx.outputs["models"][model]["pipeline_name"]
    original = sm.describe_pipeline(PipelineName=name)["PipelineDefinition"]
    times = ctx.state.need_customers()["event_time"]
    window = {
        PARAM_WINDOW_START: f"{times.max():%Y-%m-%d}",
        PARAM_WINDOW_END: f"{times.max():%Y-%m-%d}",
    }
    found: dict[str, tuple[str, str]] = {}
    for label, change in BREAKS.items():
        definition = json.loads(original)
        change(definition)
        sm.update_pipeline(PipelineName=name, PipelineDefinition=json.dumps(definition))
        try:
            run = execute(ctx, model, {} if label == "empty-window" else window, label)
        finally:
            sm.update_pipeline(PipelineName=name, PipelineDefinition=original)
        failed = [s for s in run.steps if s.status == "Failed"]
        assert run.status == "Failed" and len(failed) == 1 and run.failure == failed[0].failure
        assert run.model_package_arn is None and run.steps[-1] is failed[0]  # nothing after it
        found[label] = (failed[0].name, run.failure or "")
    try:
        execute(ctx, model, {"Windw": "2026-01-01"}, "typo")
        found["undeclared-parameter"] = ("", "accepted")
    except StepFailed as exc:
        found["undeclared-parameter"] = ("", str(exc))
    return found
