"""Deploying: promote an approved model package version to a stack's endpoint, or roll back.

`deploy(stack, package_arn, apply=...)` refuses a version that is not `Approved` (saying what it
is), then runs `apply(stack, package_arn)` — with the Pulumi CLI, `pulumi_apply`: set the stack's
`ml-platform:modelPackageArn` and `pulumi up`; the sandbox passes its own callable that re-realizes
the endpoint — and, once that succeeded, records the deployment in the version's metadata
(`CustomerMetadataProperties`):

* `deployed-to`, `deployed-by`, `deployed-at`, `deploy-action` (`deploy` | `rollback`): the latest
  deployment of this version;
* `deploy-seq.<stack>`: the number of this version's latest deployment to that stack (1, 2, ...
  per stack, across the group): the history rollback reads, exact where timestamps could tie, and
  per stack so one group can serve several stacks;
* on the version a rollback leaves: `rolled-back-seq.<stack>`, `rolled-back-at`, `rolled-back-by`;
  on the one it returns to: `rolled-back-from`.

`rollback(stack, group, apply=...)` finds the version that serves the stack (the highest
`deploy-seq.<stack>` not since rolled back from) and returns to the one deployed there before it
that is still approved. Rolling back twice goes two deployments back; deploying a version again
makes it current again.

SageMaker clients come from an injected `boto3.Session` (or the default one), made per call.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import boto3

# A boto3 SageMaker client (no type stubs for it are installed).
SageMakerClient = Any

APPROVED = "Approved"
CONFIG_KEY = "ml-platform:modelPackageArn"
# The first model of a stack turns its endpoint on (a new stack may start without one).
ENABLED_KEY = "ml-platform:endpointEnabled"
PACKAGE_ARN_PATTERN = (
    r"arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:model-package/(?P<group>[A-Za-z0-9-]+)/(?P<v>\d+)"
)

# (stack, model package ARN) -> None; raises on failure.
ApplyFn = Callable[[str, str], None]


class DeployError(RuntimeError):
    """A deployment or rollback that cannot go ahead, and why."""


@dataclass(frozen=True, slots=True)
class Deployment:
    action: Literal["deploy", "rollback"]
    stack: str
    model_package_arn: str
    previous_arn: str | None
    deployed_by: str
    deployed_at: str


def group_of(package_arn: str) -> str:
    """The model package group of a version ARN (`.../model-package/<group>/<version>`)."""
    match = re.fullmatch(PACKAGE_ARN_PATTERN, package_arn)
    if match is None:
        raise DeployError(
            f"{package_arn!r} is not a model package version ARN; expected "
            "arn:aws:sagemaker:<region>:<account>:model-package/<group>/<version>"
        )
    return match.group("group")


def _client(session: boto3.Session | None) -> SageMakerClient:
    import boto3

    return (session or boto3.Session()).client("sagemaker")


def caller(session: boto3.Session | None = None) -> str:
    """Who is deploying: the caller's ARN (STS)."""
    import boto3

    return str((session or boto3.Session()).client("sts").get_caller_identity()["Arn"])


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _describe(client: SageMakerClient, arn: str) -> dict[str, Any]:
    from botocore.exceptions import ClientError

    try:
        return dict(client.describe_model_package(ModelPackageName=arn))
    except ClientError as exc:
        message = exc.response.get("Error", {}).get("Message", str(exc))
        raise DeployError(f"cannot read model package {arn}: {message}") from exc


def _record(
    client: SageMakerClient, package: Mapping[str, Any], updates: Mapping[str, str]
) -> None:
    """Add `updates` to a version's metadata.

    The request carries the full metadata (existing + new) and the approval status just read, so it
    means the same whether the service merges or replaces the properties.
    """
    metadata = {**package.get("CustomerMetadataProperties", {}), **updates}
    request: dict[str, Any] = {
        "ModelPackageArn": package["ModelPackageArn"],
        "CustomerMetadataProperties": metadata,
        "ModelApprovalStatus": package["ModelApprovalStatus"],
    }
    if package.get("ApprovalDescription"):
        request["ApprovalDescription"] = package["ApprovalDescription"]
    client.update_model_package(**request)


def _require_approved(package: Mapping[str, Any]) -> None:
    status = package.get("ModelApprovalStatus", "unknown")
    if status != APPROVED:
        raise DeployError(
            f"model package {package['ModelPackageArn']} is {status}, not {APPROVED}: only an "
            "approved version is deployed (approve it after its evaluation gate passes)"
        )


def _seq_key(stack: str) -> str:
    return f"deploy-seq.{stack}"


def _gone_key(stack: str) -> str:
    return f"rolled-back-seq.{stack}"


def _deployment_updates(stack: str, by: str, at: str, action: str, seq: int) -> dict[str, str]:
    return {
        "deployed-to": stack,
        "deployed-by": by,
        "deployed-at": at,
        "deploy-action": action,
        _seq_key(stack): str(seq),
    }


def deploy(
    stack: str,
    model_package_arn: str,
    apply: ApplyFn,
    *,
    session: boto3.Session | None = None,
    deployed_by: str | None = None,
) -> Deployment:
    """Promote an approved version to `stack`: check, apply, record."""
    group = group_of(model_package_arn)
    client = _client(session)
    package = _describe(client, model_package_arn)
    _require_approved(package)
    versions = _versions(client, group)
    history = _history(versions, stack)
    by = deployed_by or caller(session)
    apply(stack, model_package_arn)
    at = _now()
    seq = _next_seq(versions, stack)
    _record(client, package, _deployment_updates(stack, by, at, "deploy", seq))
    current = history[0] if history else None
    previous = current["ModelPackageArn"] if current is not None else None
    return Deployment("deploy", stack, model_package_arn, previous, by, at)


def rollback(
    stack: str,
    group: str,
    apply: ApplyFn,
    *,
    session: boto3.Session | None = None,
    deployed_by: str | None = None,
) -> Deployment:
    """Return `stack` to the approved version deployed there before the current one."""
    client = _client(session)
    versions = _versions(client, group)
    history = _history(versions, stack)
    if not history:
        raise DeployError(
            f"no deployment of model package group {group!r} to stack {stack!r} is recorded: "
            "nothing to roll back (deploy with `mlplat deploy` first)"
        )
    current, earlier = history[0], history[1:]
    target = next((p for p in earlier if p["ModelApprovalStatus"] == APPROVED), None)
    if target is None:
        skipped = ", ".join(f"{p['ModelPackageArn']} ({p['ModelApprovalStatus']})" for p in earlier)
        raise DeployError(
            f"stack {stack!r} serves {current['ModelPackageArn']}, and no earlier approved version "
            "was deployed there to roll back to"
            + (f" (earlier, no longer approved: {skipped})" if skipped else "")
        )
    by = deployed_by or caller(session)
    apply(stack, target["ModelPackageArn"])
    at = _now()
    seq = _next_seq(versions, stack)
    _record(
        client,
        current,
        {_gone_key(stack): str(seq), "rolled-back-at": at, "rolled-back-by": by},
    )
    _record(
        client,
        target,
        {
            **_deployment_updates(stack, by, at, "rollback", seq),
            "rolled-back-from": current["ModelPackageArn"],
        },
    )
    return Deployment(
        "rollback", stack, target["ModelPackageArn"], current["ModelPackageArn"], by, at
    )


def _versions(client: SageMakerClient, group: str) -> list[dict[str, Any]]:
    from botocore.exceptions import ClientError

    arns: list[str] = []
    try:
        paginator = client.get_paginator("list_model_packages")
        for page in paginator.paginate(ModelPackageGroupName=group):
            arns += [s["ModelPackageArn"] for s in page["ModelPackageSummaryList"]]
    except ClientError as exc:
        message = exc.response.get("Error", {}).get("Message", str(exc))
        raise DeployError(f"cannot list model package group {group!r}: {message}") from exc
    return [_describe(client, arn) for arn in arns]


def _seq(package: Mapping[str, Any], key: str) -> int:
    value = package.get("CustomerMetadataProperties", {}).get(key, "")
    return int(value) if str(value).isdigit() else 0


def _history(versions: list[dict[str, Any]], stack: str) -> list[dict[str, Any]]:
    """Versions deployed to `stack` and not since rolled back from, latest deployment first."""
    deployed = [
        p
        for p in versions
        if _seq(p, _seq_key(stack)) > 0 and _seq(p, _gone_key(stack)) <= _seq(p, _seq_key(stack))
    ]
    return sorted(deployed, key=lambda p: _seq(p, _seq_key(stack)), reverse=True)


def _next_seq(versions: list[dict[str, Any]], stack: str) -> int:
    return 1 + max(
        (max(_seq(p, _seq_key(stack)), _seq(p, _gone_key(stack))) for p in versions), default=0
    )


def publish_baseline(
    model_package_arn: str,
    bucket: str,
    key: str,
    kms_key_arn: str | None,
    *,
    session: boto3.Session | None = None,
) -> str:
    """Copy the version's registered baseline (`ModelDataQuality` statistics) to `bucket/key`.

    The scheduled drift job compares traffic with the baseline at that key, so every deploy and
    rollback must publish the baseline of the version it serves. Returns the new S3 URI.
    """
    import boto3
    from botocore.exceptions import ClientError

    package = _describe(_client(session), model_package_arn)
    source = (
        package.get("ModelMetrics", {})
        .get("ModelDataQuality", {})
        .get("Statistics", {})
        .get("S3Uri")
    )
    if not source or not str(source).startswith("s3://"):
        raise DeployError(
            f"{model_package_arn} was registered without a baseline (ModelMetrics."
            "ModelDataQuality.Statistics): register it with `baseline_s3_uri`"
        )
    source_bucket, source_key = str(source).removeprefix("s3://").split("/", 1)
    encryption = (
        {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key_arn} if kms_key_arn else {}
    )
    try:
        (session or boto3.Session()).client("s3").copy_object(
            Bucket=bucket,
            Key=key,
            CopySource={"Bucket": source_bucket, "Key": source_key},
            **encryption,
        )
    except ClientError as exc:
        message = exc.response.get("Error", {}).get("Message", str(exc))
        raise DeployError(
            f"cannot publish the baseline {source} to s3://{bucket}/{key}: {message}"
        ) from exc
    return f"s3://{bucket}/{key}"


def pulumi_apply(stack: str, model_package_arn: str, cwd: Path | None = None) -> None:
    """Set the stack's model setting and `pulumi up` it (needs the Pulumi CLI)."""
    commands = [
        ["pulumi", "config", "set", CONFIG_KEY, model_package_arn, "-s", stack],
        ["pulumi", "config", "set", ENABLED_KEY, "true", "-s", stack],
        ["pulumi", "up", "-s", stack, "--yes"],
    ]
    for command in commands:
        try:
            done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
        except FileNotFoundError as exc:
            raise DeployError(
                "the Pulumi CLI is not installed: install it, or deploy in the sandbox "
                "(`mlplat sandbox`)"
            ) from exc
        if done.returncode != 0:
            tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-20:])
            raise DeployError(f"`{' '.join(command)}` failed ({done.returncode}):\n{tail}")
