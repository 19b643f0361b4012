"""The model steps, once per model: its own SageMaker Pipeline, executed from its deployed
definition.

`pipeline:<model>` starts an execution of the pipeline the program realized for the model (its
`pipeline_name` in the platform outputs) and runs it with `mlplat.sandbox.pipeline.Executor`:
Window → Curate → Features → Train → Evaluate → GatePassed → Register, every container under its
step role while moto enforces IAM. `approve:<model>` approves the registered version (unless the
stack's pipeline registers it approved). After the version has been deployed and watched,
`retrain-refused:<model>` runs the pipeline a second time with the model's weak hyperparameters
(`ModelSpec.weak_hyperparameters`): its gate compares the candidate with the version that serves
now and must refuse it, the execution failing at the Fail step that names the rule.

`slice-refused` trains each classifier of the run once more on the very customers its serving
version learned from, collected a month earlier, with the labels of one slice shuffled (the rows
of the least frequent value of its first declared slice: their outcomes become noise, their
share of positives stays): overall the candidate is as good as the serving version, so only the
gate's per-slice rules (floors, no regression against the serving version) can refuse it, and
they must. (A regressor's overall error moves with any slice's, so the case is the classifiers'.)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from mlplat.sandbox.context import SandboxContext, StepFailed
from mlplat.sandbox.steps.common import (
    as_role,
    model_outputs,
    platform_outputs,
    record_check,
    record_model,
    runtime,
    s3_client,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from mlplat.sandbox.pipeline import PipelineRun

RETRAIN_DAYS = 10  # the second execution's window: the latest days (a scheduled retrain's shape)
# How much earlier the slice-refused case's copy of the training customers was collected: past
# the training window's first day, so the two windows share no partition.
SLICE_CASE_SHIFT_DAYS = 31


def _window(ctx: SandboxContext, days: int | None = None) -> dict[str, str]:
    """The execution's window: the days the generated customers span (UTC dates), or the last
    `days` of them."""
    from datetime import timedelta

    from ml.contracts import PARAM_WINDOW_END, PARAM_WINDOW_START

    times = ctx.state.need_customers()["event_time"]
    start = times.min() if days is None else max(times.min(), times.max() - timedelta(days - 1))
    return {
        PARAM_WINDOW_START: f"{start:%Y-%m-%d}",
        PARAM_WINDOW_END: f"{times.max():%Y-%m-%d}",
    }


def execute(
    ctx: SandboxContext, model: str, parameters: dict[str, str], display_name: str
) -> PipelineRun:
    """One execution of model `model`'s pipeline, run from its realized definition."""
    from mlplat.sandbox.pipeline import Executor, PipelineError

    name = model_outputs(ctx, model).pipeline_name
    if not name:
        raise StepFailed(f"the stack has no pipeline for {model} (pipelineEnabled is false)")

    @contextmanager
    def role(arn: str) -> Iterator[tuple[Callable[[str], Any], dict[str, str]]]:
        with as_role(ctx, arn, "sandbox-pipeline") as credentials:
            env = {
                "AWS_ACCESS_KEY_ID": credentials["aws_access_key_id"],
                "AWS_SECRET_ACCESS_KEY": credentials["aws_secret_access_key"],
                "AWS_SESSION_TOKEN": credentials["aws_session_token"],
            }
            yield (lambda service: ctx.client(service, **credentials)), env

    executor = Executor(
        sagemaker=ctx.client("sagemaker"),
        as_role=role,
        scratch=ctx.scratch / "pipeline" / model,
        endpoint_url=ctx.url,
        region=ctx.settings.region,
    )
    try:
        return executor.execute(name, parameters, display_name=display_name)
    except PipelineError as exc:
        raise StepFailed(str(exc)) from exc


def pipeline(ctx: SandboxContext, model: str) -> str:
    """The first execution: every step, a version registered."""
    from ml import registry

    run = execute(ctx, model, _window(ctx), "sandbox-first")
    record_model(ctx, model, "pipeline", **run.to_json())
    if not run.succeeded or run.model_package_arn is None:
        raise StepFailed(f"execution {run.execution_arn} failed: {run.failure}")
    for step in run.steps:  # each container step read and wrote the lake as its own role
        if step.type in ("Processing", "Training"):
            arguments = run.properties[step.name]
            record_check(
                ctx,
                f"pipeline {step.name}",
                "its inputs, container and outputs",
                str(arguments["RoleArn"]),
                "allowed",
                "allowed",
                model=model,
            )
    version = registry.describe(run.model_package_arn, client=ctx.client("sagemaker"))
    ctx.state.model(model).version = version
    report = ctx.report.model(model)
    report.task = runtime(ctx, model).spec.task
    report.model_version = f"{version.group}/{version.version}"
    report.metrics = {k: float(v) for k, v in version.metrics.items() if isinstance(v, int | float)}
    steps = " -> ".join(f"{s.name} {s.seconds:.1f}s" for s in run.steps)
    return f"{steps}; {version.arn} ({version.status})"


def approve(ctx: SandboxContext, model: str) -> str:
    """Approve the registered version (what `mlplat approve` does), unless the pipeline
    registered it approved (`pipelineAutoApprove`)."""
    from ml import registry

    state = ctx.state.model(model)
    registered = state.need_version("pipeline")
    version = registry.describe(registered.arn, client=ctx.client("sagemaker"))
    if version.status == "Approved":
        state.version = version
        return f"{version.group}/{version.version}: registered Approved (pipelineAutoApprove)"
    approved = registry.approve(
        version.arn,
        description="sandbox: evaluation gate passed in the pipeline",
        client=ctx.client("sagemaker"),
    )
    state.version = approved
    return f"{approved.group}/{approved.version}: {approved.status}"


def retrain_refused(ctx: SandboxContext, model: str) -> str:
    """A second execution whose candidate is worse than the deployed version: refused."""
    from ml.contracts import GATE_PROPERTY_FILE, PARAM_SEARCH, STEP_EVALUATE, STEP_REFUSED
    from ml.models import pipeline_parameter

    serving = ctx.state.model(model).need_version("pipeline")
    # the model's own deliberately weak setting (`ModelSpec.weak_hyperparameters`)
    weak = runtime(ctx, model).spec.weak_hyperparameters
    if not weak:
        raise StepFailed(f"model {model} declares no weak_hyperparameters to retrain with")
    worse = {pipeline_parameter(name): value for name, value in weak.items()}
    # no search: it would tune the weak setting away (the point is a candidate the gate refuses)
    run = execute(
        ctx, model, {**_window(ctx, RETRAIN_DAYS), **worse, PARAM_SEARCH: "false"}, "sandbox-worse"
    )
    gate = run.property_files.get(f"{STEP_EVALUATE}.{GATE_PROPERTY_FILE}", {})
    record_model(ctx, model, "retrain-refused", **run.to_json(), gate=gate)
    if run.succeeded:
        raise StepFailed(
            f"execution {run.execution_arn} registered {run.model_package_arn}: the gate let a "
            f"deliberately worse model ({worse}) through"
        )
    failed = [s for s in run.steps if s.status == "Failed"]
    if not failed or failed[-1].name != STEP_REFUSED:
        raise StepFailed(f"execution {run.execution_arn} failed before its gate: {run.failure}")
    if gate.get("servingVersion") != serving.arn:
        raise StepFailed(
            f"the gate compared with {gate.get('servingVersion')}, not the deployed {serving.arn}"
        )
    rules = ", ".join(gate.get("failed", [])) or "?"
    return f"refused at {STEP_REFUSED} against {serving.group}/{serving.version}: {rules}"


def noisy_slice(frame: Any, label: str, column: str, *, seed: int = 0) -> tuple[Any, str]:
    """`frame` with the `label` values shuffled among the rows of the least frequent value of
    `column` (that slice's outcomes become noise, its share of positives and every other row stay
    as they are), and that value."""
    import numpy as np

    counts = frame[column].astype("string").value_counts()
    if counts.empty:
        raise StepFailed(f"no values of slice {column!r} to shuffle labels in")
    value = str(counts.index[-1])
    out = frame.copy()
    where = (out[column].astype("string") == value).to_numpy(dtype=bool, na_value=False)
    rows = out.index[where]
    shuffled = np.random.default_rng(seed).permutation(out.loc[rows, label].to_numpy())
    out.loc[rows, label] = shuffled
    return out, value


def slice_refused(ctx: SandboxContext) -> str:
    """For each classifier of the run: the training customers collected again a month earlier
    with one slice's labels shuffled, written to the raw zone, the pipeline run on that month:
    the gate passes overall and refuses the slice."""
    from datetime import timedelta

    from ml.contracts import (
        GATE_PROPERTY_FILE,
        PARAM_WINDOW_END,
        PARAM_WINDOW_START,
        STEP_EVALUATE,
        STEP_REFUSED,
    )
    from ml.lake import write_dataset
    from ml.schema import CUSTOMERS_RAW

    classifiers = [m for m in ctx.models if runtime(ctx, m).spec.task == "binary_classification"]
    if not classifiers:
        return "no classifier in the run: a regressor's overall error moves with any slice's"
    outputs = platform_outputs(ctx)
    customers = ctx.state.need_customers()
    shown: list[str] = []
    for n, model in enumerate(classifiers, start=1):
        spec = runtime(ctx, model).spec
        serving = ctx.state.model(model).need_version("pipeline")
        if not spec.slices:
            raise StepFailed(f"model {model} declares no slices for its gate to judge")
        column = spec.slices[0]
        earlier = customers.assign(
            event_time=customers["event_time"] - timedelta(days=SLICE_CASE_SHIFT_DAYS * n)
        )
        noisy, value = noisy_slice(earlier, spec.label, column)
        written = write_dataset(
            noisy,
            CUSTOMERS_RAW,
            outputs.raw_bucket,
            kms_key_id=outputs.lake_kms_key_arn,
            s3=s3_client(ctx),
        )
        times = noisy["event_time"]
        window = {
            PARAM_WINDOW_START: f"{times.min():%Y-%m-%d}",
            PARAM_WINDOW_END: f"{times.max():%Y-%m-%d}",
        }
        run = execute(ctx, model, window, "sandbox-slice-noise")
        gate = run.property_files.get(f"{STEP_EVALUATE}.{GATE_PROPERTY_FILE}", {})
        failed = [str(rule) for rule in gate.get("failed", [])]
        noised = f"[{column}={value}]"
        record_model(
            ctx,
            model,
            "slice-refused",
            **run.to_json(),
            gate=gate,
            slice={"column": column, "value": value, "label": spec.label},
            rawRows=written.rows,
        )
        if run.succeeded:
            raise StepFailed(
                f"execution {run.execution_arn} registered {run.model_package_arn}: the gate let "
                f"a model whose {spec.label} is noise in slice {column}={value} through"
            )
        steps = [s for s in run.steps if s.status == "Failed"]
        if not steps or steps[-1].name != STEP_REFUSED:
            raise StepFailed(f"execution {run.execution_arn} failed before its gate: {run.failure}")
        if gate.get("servingVersion") != serving.arn:
            raise StepFailed(
                f"the gate compared with {gate.get('servingVersion')}, not the serving "
                f"{serving.arn}"
            )
        overall = [rule for rule in failed if "[" not in rule]
        if overall or not any(noised in rule for rule in failed):
            raise StepFailed(
                f"the gate of {model} was to refuse slice {column}={value} alone; it failed "
                f"{failed or 'nothing'}"
            )
        shown.append(f"{model}: {column}={value} refused ({', '.join(failed)})")
    return "; ".join(shown)
