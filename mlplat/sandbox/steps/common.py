"""What the lifecycle's steps share: the platform outputs and each model's part of them, the
models' runtimes, the sandbox's clock and the drift it injects, clients (as the sandbox or as one
of the stack's roles), the least-privilege record, the report's figures, and each model's realized
drift job."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from ml.contracts import DRIFT_ENV_PREFIX
from mlplat.sandbox.context import SandboxContext, StepFailed

if TYPE_CHECKING:
    from ml.model import Model
    from ml.outputs import ModelOutputs, PlatformOutputs

HOUR = timedelta(hours=1)
DRIFT = 1.0  # `generate_customers(drift=...)` for the second hour of traffic


def platform_outputs(ctx: SandboxContext) -> PlatformOutputs:
    """The platform outputs the realized program exported (read once)."""
    from ml.outputs import OutputsError, PlatformOutputs

    if ctx.state.platform is None:
        if not ctx.outputs:
            raise StepFailed("no platform outputs (did realize-platform run?)")
        try:
            ctx.state.platform = PlatformOutputs.from_mapping(ctx.outputs)
        except OutputsError as exc:
            raise StepFailed(str(exc)) from None
    return ctx.state.platform


def runtime(ctx: SandboxContext, name: str) -> Model:
    """Model `name`'s runtime (`ml.models.load`), loaded once per run."""
    from ml.models import ModelSpecError, load

    state = ctx.state.model(name)
    if state.runtime is None:
        try:
            state.runtime = load(name)
        except ModelSpecError as exc:
            raise StepFailed(str(exc)) from None
    return state.runtime


def model_outputs(ctx: SandboxContext, name: str) -> ModelOutputs:
    """What the stack made for model `name` (its entry in the platform outputs' `models`)."""
    from ml.outputs import OutputsError

    try:
        return platform_outputs(ctx).model(name)
    except OutputsError as exc:
        raise StepFailed(str(exc)) from None


def clock(ctx: SandboxContext) -> datetime:
    """H: the start of the current hour; the traffic is stamped over the two hours before it."""
    if ctx.state.hour is None:
        ctx.state.hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    return ctx.state.hour


def s3_client(ctx: SandboxContext, credentials: Mapping[str, str] | None = None) -> Any:
    """The sandbox's S3 client, or one signing with a role's `credentials` (see `as_role`)."""
    return ctx.client("s3", **(credentials or {}))


def realized(ctx: SandboxContext, token: str) -> list[tuple[str, str]]:
    """(logical name, id) of the realized resources of one type."""
    if ctx.mocks is None:
        raise StepFailed("nothing was realized (did realize-platform run?)")
    return sorted((name, ident) for type_, name, ident in ctx.mocks.realized if type_ == token)


def record(ctx: SandboxContext, step: str, **figures: Any) -> None:
    """How far a shared `step` got, in figures: the report's `lifecycle[step]`."""
    ctx.report.lifecycle[step] = figures


def record_model(ctx: SandboxContext, name: str, step: str, **figures: Any) -> None:
    """How far model `name`'s `step` got, in figures: its report's `lifecycle[step]`."""
    ctx.report.model(name).lifecycle[step] = figures


def sse(outputs: PlatformOutputs) -> dict[str, str]:
    """The put arguments the lake buckets demand: SSE-KMS with the lake key."""
    return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": outputs.lake_kms_key_arn}


def assume(ctx: SandboxContext, role_arn: str, session_name: str) -> dict[str, str]:
    """Client credentials of `role_arn` (for `ctx.client(..., **credentials)`); they work while
    moto enforces IAM (`SandboxServer.iam_enforced`).

    The sandbox's identity calls AssumeRole, standing in for the service principal the role
    trusts (SageMaker): moto does not check a trust policy for an unauthenticated caller."""
    assumed = ctx.client("sts").assume_role(RoleArn=role_arn, RoleSessionName=session_name)[
        "Credentials"
    ]
    return {
        "aws_access_key_id": assumed["AccessKeyId"],
        "aws_secret_access_key": assumed["SecretAccessKey"],
        "aws_session_token": assumed["SessionToken"],
    }


@contextmanager
def as_role(ctx: SandboxContext, role_arn: str, session_name: str) -> Iterator[dict[str, str]]:
    """Client credentials of `role_arn` (see `assume`), valid while inside: moto enforces IAM."""
    if ctx.server is None:
        raise StepFailed("the sandbox server is not running (did start-server run?)")
    credentials = assume(ctx, role_arn, session_name)
    with ctx.server.iam_enforced():
        yield credentials


def check(
    ctx: SandboxContext,
    role: str,
    action: str,
    resource: str,
    expected: str,
    call: Callable[[], Any],
    *,
    model: str | None = None,
    other: str | None = None,
) -> str:
    """Run one call as a role (inside `as_role`) and record what happened against what the
    role's policy says should happen: `allowed` or `AccessDenied`. `model` is the model whose
    role it is, `other` the model whose resource it reaches for (a cross-model check)."""
    try:
        call()
        actual = "allowed"
    except Exception as exc:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
        # moto answers a JSON-protocol service's denial in XML, which botocore reads as "403"
        actual = "AccessDenied" if str(code) == "403" and "AccessDenied" in str(exc) else str(code)
    return record_check(ctx, role, action, resource, expected, actual, model=model, other=other)


def record_check(
    ctx: SandboxContext,
    role: str,
    action: str,
    resource: str,
    expected: str,
    actual: str,
    *,
    model: str | None = None,
    other: str | None = None,
) -> str:
    """Record what a role's call did against what its policy says it should; a mismatch fails
    the step."""
    checks: list[dict[str, Any]] = ctx.report.least_privilege.setdefault("checks", [])
    entry: dict[str, Any] = {"model": model, "role": role}
    if other is not None:
        entry["otherModel"] = other
    entry |= {
        "action": action,
        "resource": resource,
        "expected": expected,
        "actual": actual,
        "ok": actual == expected,
    }
    checks.append(entry)
    if actual != expected:
        whose = f"{model} {role}" if model else role
        raise StepFailed(f"{whose} {action} on {resource}: expected {expected}, got {actual}")
    return actual


def drift_environment(ctx: SandboxContext, name: str) -> dict[str, str]:
    """Model `name`'s drift job environment, read (once) from its realized state machine's
    processing job, with the role the job runs as (`ModelState.drift_role`)."""
    state = ctx.state.model(name)
    if state.drift_environment is not None:
        return state.drift_environment
    arn = model_outputs(ctx, name).drift_state_machine_arn
    if not arn:
        raise StepFailed(f"model {name} has no drift job (the stack gives it no endpoint)")
    described = ctx.client("stepfunctions").describe_state_machine(stateMachineArn=arn)
    for job in json.loads(described["definition"]).get("States", {}).values():
        parameters = job.get("Parameters", {})
        env = parameters.get("Environment")
        if isinstance(env, dict) and any(k.startswith(DRIFT_ENV_PREFIX) for k in env):
            state.drift_environment = {str(k): str(v) for k, v in env.items()}
            state.drift_role = str(parameters.get("RoleArn", "")) or None
            return state.drift_environment
    raise StepFailed(
        f"the drift state machine of {name} ({arn}) runs no drift job (MLPLAT_DRIFT_* environment)"
    )
