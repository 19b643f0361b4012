"""What the lifecycle's steps share: the platform outputs, the sandbox's clock and the drift it
injects, clients (as the sandbox or as one of the stack's roles), the least-privilege record, the
report's figures, and where the realized drift job is."""

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
MACHINE_TOKEN = "aws:sfn/stateMachine:StateMachine"


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


def lifecycle_model(ctx: SandboxContext) -> Model:
    """The model the lifecycle trains, serves and watches: the stack's first (`models`)."""
    from ml.models import ModelSpecError, load

    outputs = platform_outputs(ctx)
    if not outputs.models:
        raise StepFailed(f"stack {outputs.stack!r} hosts no model (its `models` is empty)")
    try:
        return load(next(iter(outputs.models)))
    except ModelSpecError as exc:
        raise StepFailed(str(exc)) from None


def model_outputs(ctx: SandboxContext) -> ModelOutputs:
    """What the stack made for the lifecycle's model (`lifecycle_model`)."""
    return platform_outputs(ctx).model(lifecycle_model(ctx).name)


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
    """How far `step` got, in figures: the report's `lifecycle[step]`."""
    ctx.report.lifecycle[step] = figures


def sse(outputs: PlatformOutputs) -> dict[str, str]:
    """The put arguments the lake buckets demand: SSE-KMS with the lake key."""
    return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": outputs.lake_kms_key_arn}


@contextmanager
def as_role(ctx: SandboxContext, role_arn: str, session_name: str) -> Iterator[dict[str, str]]:
    """Client credentials of `role_arn` (for `ctx.client(..., **credentials)`), valid while moto
    enforces IAM.

    The sandbox's identity calls AssumeRole, standing in for the service principal the role
    trusts (SageMaker): moto does not check a trust policy for an unauthenticated caller."""
    if ctx.server is None:
        raise StepFailed("the sandbox server is not running (did start-server run?)")
    assumed = ctx.client("sts").assume_role(RoleArn=role_arn, RoleSessionName=session_name)[
        "Credentials"
    ]
    credentials = {
        "aws_access_key_id": assumed["AccessKeyId"],
        "aws_secret_access_key": assumed["SecretAccessKey"],
        "aws_session_token": assumed["SessionToken"],
    }
    with ctx.server.iam_enforced():
        yield credentials


def check(
    ctx: SandboxContext,
    role: str,
    action: str,
    resource: str,
    expected: str,
    call: Callable[[], Any],
) -> str:
    """Run one call as a role (inside `as_role`) and record what happened against what the
    role's policy says should happen: `allowed` or `AccessDenied`."""
    try:
        call()
        actual = "allowed"
    except Exception as exc:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
        # moto answers a JSON-protocol service's denial in XML, which botocore reads as "403"
        actual = "AccessDenied" if str(code) == "403" and "AccessDenied" in str(exc) else str(code)
    return record_check(ctx, role, action, resource, expected, actual)


def record_check(
    ctx: SandboxContext, role: str, action: str, resource: str, expected: str, actual: str
) -> str:
    """Record what a role's call did against what its policy says it should; a mismatch fails
    the step."""
    checks: list[dict[str, Any]] = ctx.report.least_privilege.setdefault("checks", [])
    checks.append(
        {
            "role": role,
            "action": action,
            "resource": resource,
            "expected": expected,
            "actual": actual,
            "ok": actual == expected,
        }
    )
    if actual != expected:
        raise StepFailed(f"{role} {action} on {resource}: expected {expected}, got {actual}")
    return actual


def drift_environment(ctx: SandboxContext) -> dict[str, str]:
    """The drift job's environment, read from the realized state machine's processing job."""
    sfn = ctx.client("stepfunctions")
    for _, arn in realized(ctx, MACHINE_TOKEN):
        definition = json.loads(sfn.describe_state_machine(stateMachineArn=arn)["definition"])
        for state in definition.get("States", {}).values():
            env = state.get("Parameters", {}).get("Environment")
            if isinstance(env, dict) and any(k.startswith(DRIFT_ENV_PREFIX) for k in env):
                ctx.state.drift_machine = arn
                return {str(k): str(v) for k, v in env.items()}
    raise StepFailed("no realized state machine runs the drift job (MLPLAT_DRIFT_* environment)")
