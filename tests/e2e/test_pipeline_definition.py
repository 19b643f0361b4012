"""The sandbox executes the pipeline definition the stack deployed, and nothing else: a definition
broken on purpose (a wrong S3 URI, a role that may not read its input, a reference to a step that
has not run, a parameter it does not declare) fails the execution at that step, with the step's
name and the reason.

One platform for the module: the local stack realized in moto, the customers ingested; each test
breaks one thing in the realized definition (`UpdatePipeline`), executes it, and puts the
original back.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ml.contracts import STEP_CURATE, STEP_WINDOW
from mlplat.sandbox.context import SandboxContext, SandboxReport, StepFailed
from mlplat.sandbox.lifecycle import PLATFORM_STEPS, run_steps
from mlplat.sandbox.pipeline import PipelineRun
from mlplat.sandbox.steps.data import generate_data, ingest
from mlplat.sandbox.steps.pipeline import execute
from tests.conftest import make_config, make_settings


@pytest.fixture(scope="module")
def ctx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxContext]:
    context = SandboxContext(
        settings=make_settings("local"),
        config=make_config("local"),
        scratch=Path(tmp_path_factory.mktemp("pipeline")),
        report=SandboxReport(stack="local"),
    )
    try:
        report = run_steps(context, PLATFORM_STEPS)
        assert report.ok, [(s.name, s.error) for s in report.steps if s.error]
        generate_data(context)
        ingest(context)
        yield context
    finally:
        context.close()


def _window(ctx: SandboxContext) -> dict[str, str]:
    times = ctx.state.need_customers()["event_time"]
    return {"WindowStart": f"{times.min():%Y-%m-%d}", "WindowEnd": f"{times.max():%Y-%m-%d}"}


def _broken(ctx: SandboxContext, change: Callable[[dict[str, Any]], None]) -> PipelineRun:
    """Execute the realized definition with `change` applied to it; then restore it."""
    sm = ctx.client("sagemaker")
    name = ctx.outputs["pipeline_name"]
    original = sm.describe_pipeline(PipelineName=name)["PipelineDefinition"]
    definition = json.loads(original)
    change(definition)
    sm.update_pipeline(PipelineName=name, PipelineDefinition=json.dumps(definition))
    try:
        return execute(ctx, _window(ctx), "broken")
    finally:
        sm.update_pipeline(PipelineName=name, PipelineDefinition=original)


def _step(definition: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in definition["Steps"] if s["Name"] == name)


def _failed(run: PipelineRun) -> tuple[str, str]:
    assert run.status == "Failed" and run.model_package_arn is None
    [failed] = [s for s in run.steps if s.status == "Failed"]
    assert run.failure == failed.failure
    return failed.name, failed.failure or ""


def test_a_wrong_s3_uri_fails_the_step_that_reads_it(ctx: SandboxContext) -> None:
    def wrong_uri(definition: dict[str, Any]) -> None:
        [source] = _step(definition, STEP_CURATE)["Arguments"]["ProcessingInputs"]
        source["S3Input"]["S3Uri"] = "s3://no-such-bucket/work/"

    run = _broken(ctx, wrong_uri)
    name, failure = _failed(run)
    assert name == STEP_CURATE
    assert failure.startswith("step Curate: cannot list input s3://no-such-bucket/work/: ")
    assert [s.status for s in run.steps] == ["Succeeded", "Failed"]  # nothing ran after it


def test_a_role_that_may_not_read_its_input_fails_the_step(ctx: SandboxContext) -> None:
    def train_role_curates(definition: dict[str, Any]) -> None:
        train_role = next(s for s in definition["Steps"] if s["Type"] == "Training")["Arguments"][
            "RoleArn"
        ]
        _step(definition, STEP_CURATE)["Arguments"]["RoleArn"] = train_role

    name, failure = _failed(_broken(ctx, train_role_curates))
    assert name == STEP_CURATE
    assert "AccessDenied" in failure and "train-role" in failure


def test_a_reference_to_a_step_that_has_not_run_fails(ctx: SandboxContext) -> None:
    def forward_reference(definition: dict[str, Any]) -> None:
        window = _step(definition, STEP_WINDOW)["Arguments"]["AppSpecification"]
        window["ContainerArguments"] += [
            "--extra",
            {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"},
        ]

    name, failure = _failed(_broken(ctx, forward_reference))
    assert name == STEP_WINDOW
    assert failure.startswith("step Window: refers to step Train, which has not run before it")


def test_a_parameter_the_definition_does_not_declare_is_refused(ctx: SandboxContext) -> None:
    with pytest.raises(StepFailed, match=r"has no parameter\(s\) Windw; parameters: C, "):
        execute(ctx, {"Windw": "2026-01-01"}, "typo")


def test_a_failing_container_fails_its_step_with_its_own_reason(ctx: SandboxContext) -> None:
    def empty_window(definition: dict[str, Any]) -> None:
        for parameter in definition["Parameters"]:
            if parameter["Name"] in ("WindowStart", "WindowEnd"):
                parameter["DefaultValue"] = "1999-01-01"

    sm = ctx.client("sagemaker")
    name = ctx.outputs["pipeline_name"]
    original = sm.describe_pipeline(PipelineName=name)["PipelineDefinition"]
    definition = json.loads(original)
    empty_window(definition)
    sm.update_pipeline(PipelineName=name, PipelineDefinition=json.dumps(definition))
    try:
        run = execute(ctx, {}, "empty")
    finally:
        sm.update_pipeline(PipelineName=name, PipelineDefinition=original)
    step, failure = _failed(run)
    assert step == STEP_WINDOW
    assert failure.startswith("step Window: algo-1 exited 1: ")
    assert "1999-01-01" in failure  # the container's own message names the empty window
