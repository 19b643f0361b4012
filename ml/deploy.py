"""Deploying: promote an approved model package version to a stack's endpoint, or roll back.

`deploy(stack, package_arn, release)` first checks the version, before anything is applied, and
refuses (saying which) a version that is not `Approved`, has no gate report
(`ModelMetrics.ModelQuality.Constraints`: the `gate.json` its evaluation wrote) or whose report does
not say `"passed": true`, or has no readable drift baseline (`ModelMetrics.ModelDataQuality.
Statistics`). Then, in this order:

1. `release.apply(stack, package_arn)` makes the stack serve it: with the Pulumi CLI
   (`ml.workflow.pulumi_release`), `pulumi_apply` sets the stack's `ml-platform:modelPackageArn` and
   runs `pulumi up`; the sandbox passes its own callable that re-realizes the endpoint. A failed
   apply records nothing.
2. The deployment is recorded in the version's metadata (`CustomerMetadataProperties`):

   * `deployed-to`, `deployed-by`, `deployed-at`, `deploy-action` (`deploy` | `rollback`): the
     latest deployment of this version;
   * `deploy-seq.<stack>`: the number of this version's latest deployment to that stack (1, 2, ...
     per stack, across the group): the history rollback reads, exact where timestamps could tie,
     and per stack so one group can serve several stacks;
   * on the version a rollback leaves: `rolled-back-seq.<stack>`, `rolled-back-at`,
     `rolled-back-by`; on the one it returns to: `rolled-back-from`.
3. The version's baseline is copied to `release.baseline`, where the stack's drift job reads it
   (`publish_baseline`), and its artifact (`model.tar.gz`) to `release.baseline.model_key`, where
   the same job reads the served model to measure training-serving skew and the model's age
   (`publish_model`). They come last because they are the steps that may fail once the stack
   serves the version: the deployment is then recorded already, and `BaselineNotPublished` says
   so and how to retry (deploy the same version again: the stack does not change, the baseline
   and the artifact are published).

`rollback(stack, group, release)` finds the version that serves the stack (the highest
`deploy-seq.<stack>` not since rolled back from) and returns to the one deployed there before it
that is still approved, with the same checks and the same order. Rolling back twice goes two
deployments back; deploying a version again makes it current again.

AWS clients come from an injected `boto3.Session` (or the default one), made per call.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ml.contracts import BASELINE_FORMAT

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
    baseline_uri: str  # where the stack's drift job reads the served version's baseline


class BaselineNotPublished(DeployError):
    """The stack serves the version and the deployment is recorded, but its drift baseline could
    not be published; `deployment` is what was recorded."""

    def __init__(self, message: str, deployment: Deployment) -> None:
        super().__init__(message)
        self.deployment = deployment


@dataclass(frozen=True, slots=True)
class BaselineTarget:
    """Where a stack's drift job reads the baseline of the version the stack serves (`key`) and,
    when it measures skew and age, that version's artifact (`model_key`: its
    `MLPLAT_DRIFT_MODEL_KEY`), in `bucket`."""

    bucket: str
    key: str
    kms_key_arn: str | None = None
    model_key: str | None = None

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@dataclass(frozen=True, slots=True)
class Release:
    """How a version reaches a stack: `apply` makes the stack serve it; once the deployment is
    recorded, the version's baseline is published to `baseline`."""

    apply: ApplyFn
    baseline: BaselineTarget


def group_of(package_arn: str) -> str:
    """The model package group of a version ARN (`.../model-package/<group>/<version>`)."""
    match = re.fullmatch(PACKAGE_ARN_PATTERN, package_arn)
    if match is None:
        raise DeployError(
            f"{package_arn!r} is not a model package version ARN; expected "
            "arn:aws:sagemaker:<region>:<account>:model-package/<group>/<version>"
        )
    return match.group("group")


def _make(service: str, session: boto3.Session | None) -> Any:
    """A client of `session`, or of boto3's default session: one per process, so the service's
    model (the SageMaker one is megabytes of JSON) is parsed once, not per call."""
    import boto3

    if session is not None:
        return session.client(service)  # type: ignore[call-overload]
    return boto3.client(service)  # type: ignore[call-overload]


def _client(session: boto3.Session | None) -> SageMakerClient:
    return _make("sagemaker", session)


def _s3(session: boto3.Session | None) -> Any:
    return _make("s3", session)


def caller(session: boto3.Session | None = None) -> str:
    """Who is deploying: the caller's ARN (STS)."""
    return str(_make("sts", session).get_caller_identity()["Arn"])


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _error_message(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Message", exc))


def _describe(client: SageMakerClient, arn: str) -> dict[str, Any]:
    from botocore.exceptions import ClientError

    try:
        return dict(client.describe_model_package(ModelPackageName=arn))
    except ClientError as exc:
        raise DeployError(f"cannot read model package {arn}: {_error_message(exc)}") from exc


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


# --- what a deployable version carries ------------------------------------------------------------


def _require_approved(package: Mapping[str, Any]) -> None:
    status = package.get("ModelApprovalStatus", "unknown")
    if status != APPROVED:
        raise DeployError(
            f"model package {package['ModelPackageArn']} is {status}, not {APPROVED}: only an "
            "approved version is deployed (approve it after its evaluation gate passes)"
        )


def gate_refusal(report: object) -> str | None:
    """None when a gate report says `"passed": true`; else why not, in words: its `message`
    (the pipeline's report) or its failed checks (`ml.evaluate.GateReport.to_dict()`)."""
    if isinstance(report, Mapping) and report.get("passed") is True:
        return None
    if not isinstance(report, Mapping) or "passed" not in report:
        return 'it has no "passed" field'
    if report.get("message"):
        return str(report["message"])
    failed = [
        str(c.get("name"))
        for c in report.get("checks", [])
        if isinstance(c, Mapping) and not c.get("passed")
    ]
    return f"failed: {', '.join(failed)}" if failed else f"passed is {report['passed']!r}"


def _report_uri(package: Mapping[str, Any], section: str, kind: str) -> str | None:
    uri = package.get("ModelMetrics", {}).get(section, {}).get(kind, {}).get("S3Uri")
    return str(uri) if uri else None


def _baseline_uri(package: Mapping[str, Any]) -> str:
    uri = _report_uri(package, "ModelDataQuality", "Statistics")
    if uri is None or not uri.startswith("s3://"):
        raise DeployError(
            f"{package['ModelPackageArn']} was registered without a baseline (ModelMetrics."
            "ModelDataQuality.Statistics): the drift job would have nothing to compare traffic "
            "with; register the model again with its baseline.json"
        )
    return uri


def _read_json(s3: Any, uri: str, what: str) -> Any:
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not uri.startswith("s3://") or not bucket or not key:
        raise DeployError(f"{what} is at {uri!r}, not an s3://bucket/key URI")
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except (ClientError, BotoCoreError) as exc:
        raise DeployError(f"cannot read {what} at {uri}: {_error_message(exc)}") from exc
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DeployError(f"{what} at {uri} is not JSON ({exc})") from exc


def _require_deployable(package: Mapping[str, Any], s3: Any) -> None:
    """Approved, a gate report that says passed, a readable baseline: or a `DeployError` naming
    what is missing."""
    arn = package["ModelPackageArn"]
    _require_approved(package)
    gate_uri = _report_uri(package, "ModelQuality", "Constraints")
    if gate_uri is None:
        raise DeployError(
            f"{arn} has no gate report (ModelMetrics.ModelQuality.Constraints): only a version "
            "whose evaluation gate passed is deployed; register the model with its gate.json "
            "(`mlplat register`, or the pipeline's Register step)"
        )
    refusal = gate_refusal(_read_json(s3, gate_uri, f"the gate report of {arn}"))
    if refusal is not None:
        raise DeployError(
            f"the gate report {gate_uri} of {arn} does not say passed ({refusal}): a version "
            "the evaluation gate refused is not deployed"
        )
    baseline_uri = _baseline_uri(package)
    baseline = _read_json(s3, baseline_uri, f"the drift baseline of {arn}")
    if not isinstance(baseline, Mapping) or baseline.get("format") != BASELINE_FORMAT:
        raise DeployError(
            f"the drift baseline {baseline_uri} of {arn} is not a {BASELINE_FORMAT} baseline: "
            "the stack's drift job could not read it"
        )


# --- deploy and roll back -------------------------------------------------------------------------


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
    release: Release,
    *,
    session: boto3.Session | None = None,
    deployed_by: str | None = None,
) -> Deployment:
    """Promote an approved version whose gate passed to `stack`: check, apply, record, publish."""
    group = group_of(model_package_arn)
    client = _client(session)
    package = _describe(client, model_package_arn)
    _require_deployable(package, _s3(session))
    versions = _versions(client, group)
    history = _history(versions, stack)
    by = deployed_by or caller(session)
    release.apply(stack, model_package_arn)
    at = _now()
    seq = _next_seq(versions, stack)
    _record(client, package, _deployment_updates(stack, by, at, "deploy", seq))
    previous = history[0]["ModelPackageArn"] if history else None
    done = Deployment("deploy", stack, model_package_arn, previous, by, at, release.baseline.uri)
    _publish(done, release.baseline, session)
    return done


def rollback(
    stack: str,
    group: str,
    release: Release,
    *,
    session: boto3.Session | None = None,
    deployed_by: str | None = None,
) -> Deployment:
    """Return `stack` to the approved version deployed there before the current one: check,
    apply, record, publish."""
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
    try:
        _require_deployable(target, _s3(session))
    except DeployError as exc:
        raise DeployError(
            f"stack {stack!r} cannot roll back from {current['ModelPackageArn']} to "
            f"{target['ModelPackageArn']}: {exc}"
        ) from exc
    by = deployed_by or caller(session)
    release.apply(stack, target["ModelPackageArn"])
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
    done = Deployment(
        "rollback",
        stack,
        target["ModelPackageArn"],
        current["ModelPackageArn"],
        by,
        at,
        release.baseline.uri,
    )
    _publish(done, release.baseline, session)
    return done


def _publish(done: Deployment, target: BaselineTarget, session: boto3.Session | None) -> None:
    """The recorded deployment's baseline published; a failure says the deployment stands."""
    from botocore.exceptions import BotoCoreError, ClientError

    arn = done.model_package_arn
    where = target.uri
    try:
        publish_baseline(arn, target.bucket, target.key, target.kms_key_arn, session=session)
        if target.model_key is not None:
            where = f"s3://{target.bucket}/{target.model_key}"
            publish_model(arn, target.bucket, target.model_key, target.kms_key_arn, session=session)
    except (DeployError, ClientError, BotoCoreError) as exc:
        raise BaselineNotPublished(
            f"stack {done.stack!r} serves {arn} and the {done.action} is recorded, but the "
            f"version's drift baseline or artifact was not published to {where}: {exc}. Until it "
            "is, the drift job compares traffic with the version served before. To "
            f"retry, deploy the same version again (`mlplat deploy --stack {done.stack} "
            f"--model-package {arn}`): the stack does not change and both are published",
            done,
        ) from exc


def _versions(client: SageMakerClient, group: str) -> list[dict[str, Any]]:
    from botocore.exceptions import ClientError

    arns: list[str] = []
    try:
        paginator = client.get_paginator("list_model_packages")
        for page in paginator.paginate(ModelPackageGroupName=group):
            arns += [s["ModelPackageArn"] for s in page["ModelPackageSummaryList"]]
    except ClientError as exc:
        raise DeployError(
            f"cannot list model package group {group!r}: {_error_message(exc)}"
        ) from exc
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
    source = _baseline_uri(_describe(_client(session), model_package_arn))
    return _copy(source, bucket, key, kms_key_arn, "baseline", session)


def _copy(
    source: str,
    bucket: str,
    key: str,
    kms_key_arn: str | None,
    what: str,
    session: boto3.Session | None,
) -> str:
    """`source` (an S3 URI) copied to `bucket/key`, SSE-KMS with `kms_key_arn` when given;
    returns the new S3 URI. A refusal is a `DeployError` naming `what` and both places."""
    from botocore.exceptions import ClientError

    source_bucket, _, source_key = source.removeprefix("s3://").partition("/")
    encryption = (
        {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key_arn} if kms_key_arn else {}
    )
    try:
        _s3(session).copy_object(
            Bucket=bucket,
            Key=key,
            CopySource={"Bucket": source_bucket, "Key": source_key},
            **encryption,
        )
    except ClientError as exc:
        raise DeployError(
            f"cannot publish the {what} {source} to s3://{bucket}/{key}: {_error_message(exc)}"
        ) from exc
    return f"s3://{bucket}/{key}"


def publish_model(
    model_package_arn: str,
    bucket: str,
    key: str,
    kms_key_arn: str | None,
    *,
    session: boto3.Session | None = None,
) -> str:
    """Copy the version's artifact (its container's `ModelDataUrl`) to `bucket/key`, where the
    drift job reads the served model (skew re-scores through its estimator, age reads its
    lineage). Returns the new S3 URI."""
    package = _describe(_client(session), model_package_arn)
    containers = package.get("InferenceSpecification", {}).get("Containers", [])
    source = containers[0].get("ModelDataUrl", "") if containers else ""
    if not source.startswith("s3://"):
        raise DeployError(f"{model_package_arn} names no model artifact (ModelDataUrl) to publish")
    return _copy(source, bucket, key, kms_key_arn, "model", session)


MODELS_KEY = "ml-platform:models"


def pulumi_apply(
    stack: str, model_package_arn: str, *, model: str | None = None, cwd: Path | None = None
) -> None:
    """Set the model's package in the stack's config and `pulumi up` it (needs the Pulumi CLI).

    A stack with a `models` list gets the package on `model`'s own entry
    (`pulumi config set --path 'ml-platform:models[i].modelPackageArn'`), so deploying one model
    leaves the others' packages as they are; a stack without one (a single model) gets the
    stack-wide `modelPackageArn`."""
    key = CONFIG_KEY
    entries = _config_models(stack, cwd)
    if entries is not None:
        names = [e.get("name") if isinstance(e, dict) else None for e in entries]
        if model is None or model not in names:
            raise DeployError(
                f"stack {stack!r} lists the models {names} in {MODELS_KEY}; "
                f"{'name the model to deploy' if model is None else f'{model!r} is not one'}"
            )
        key = f"{MODELS_KEY}[{names.index(model)}].modelPackageArn"
    commands = [
        [
            "pulumi",
            "config",
            "set",
            *(["--path"] if entries is not None else []),
            key,
            model_package_arn,
            "-s",
            stack,
        ],
        ["pulumi", "config", "set", ENABLED_KEY, "true", "-s", stack],
        ["pulumi", "up", "-s", stack, "--yes"],
    ]
    for command in commands:
        _pulumi(command, cwd)


def _config_models(stack: str, cwd: Path | None) -> list[Any] | None:
    """The stack's `models` list (`pulumi config get --json`), or None when it sets none."""
    done = _pulumi(["pulumi", "config", "get", MODELS_KEY, "--json", "-s", stack], cwd, check=False)
    if done.returncode != 0:
        if "not found" in (done.stderr + done.stdout).lower():
            return None
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-20:])
        raise DeployError(f"`pulumi config get {MODELS_KEY}` failed ({done.returncode}):\n{tail}")
    try:
        data = json.loads(done.stdout)
        value = data.get("objectValue")
        if value is None:
            value = json.loads(data["value"])
    except (ValueError, KeyError, TypeError, AttributeError):
        raise DeployError(
            f"cannot read {MODELS_KEY} of stack {stack!r}: {done.stdout[:200]}"
        ) from None
    if not isinstance(value, list):
        raise DeployError(f"{MODELS_KEY} of stack {stack!r} is not a list: {value!r}")
    return value


def _pulumi(
    command: list[str], cwd: Path | None, *, check: bool = True
) -> subprocess.CompletedProcess[str]:
    try:
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise DeployError(
            "the Pulumi CLI is not installed: install it, or deploy in the sandbox "
            "(`mlplat sandbox`)"
        ) from exc
    if check and done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-20:])
        raise DeployError(f"`{' '.join(command)}` failed ({done.returncode}):\n{tail}")
    return done


def serving_version(group: str, stack: str, *, client: SageMakerClient) -> dict[str, Any] | None:
    """The version of `group` that serves `stack` now, as DescribeModelPackage returns it: the
    highest `deploy-seq.<stack>` not since rolled back from (what `rollback` reads; not the
    highest approved version). None when no deployment of `group` to `stack` is recorded."""
    history = _history(_versions(client, group), stack)
    return history[0] if history else None
