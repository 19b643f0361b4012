"""The least-privilege step: what the stack's roles' policies do not grant is refused.

The steps a role performs in AWS already ran with its credentials while moto enforced IAM (every
pipeline step reads and writes the lake as its step role; data capture is written as the endpoint's
execution role): each is recorded as `allowed`. This step tries what those roles must not do, for
every model of the run, and records an AccessDenied each:

* within a model: write the raw zone, write another step's zone, write outside their prefixes,
  register a model from the evaluation step; the monitor (drift) job write the labels or replace
  the served model it reads;
* across models, both ways for every pair of the stack's models (one of them in the run): model A's
  endpoint execution role cannot read B's artifacts nor write B's capture prefix; A's pipeline step
  roles and its training role cannot read B's features table nor write B's artifacts prefix; A's
  monitor job role cannot read B's capture, served model or quality reports, nor write B's quality
  reports, nor describe or update B's registry versions (those judged by IAM policy evaluation:
  see `limits`). Real objects of B are used where B's steps made them (its deployed artifact, its
  features, its capture files, its served model, its quality reports, its deployed version), so a
  denial is the policy's, not a missing key's; and A's endpoint and monitor roles reaching A's own
  (artifact, capture, served model, labels, quality reports, its own version's metadata) are shown
  `allowed` beside them, so the denials are not a role that can reach nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mlplat.sandbox.context import SandboxContext, StepFailed
from mlplat.sandbox.steps.common import (
    assume,
    check,
    drift_environment,
    model_outputs,
    platform_outputs,
    record_check,
    runtime,
    s3_client,
    sse,
)

DENIED = "AccessDenied"
INJECTED = "dt=2025-01-01/injected.parquet"


@dataclass(frozen=True, slots=True)
class _Objects:
    """One model's objects another model's roles reach for: bucket and key each."""

    artifact: tuple[str, str]  # its deployed model.tar.gz (or a key under its artifacts prefix)
    artifacts_prefix: str  # its prefix of the models bucket
    features: tuple[str, str]  # an object of its features table
    capture: tuple[str, str]  # one of its capture files (or a key under its capture prefix)
    capture_prefix: str
    # what its monitor job reads and writes beside drift's: the served artifact it re-scores
    # through, one of its quality report files, its prefix of quality reports, its deployed version
    served: tuple[str, str] | None
    quality_report: tuple[str, str]
    quality_prefix: str
    package_arn: str | None
    label: tuple[str, str] | None  # an object of the outcomes dataset (every model's labels)


def _first_key(ctx: SandboxContext, bucket: str, prefix: str) -> str | None:
    """An object under `prefix`, a data file rather than a manifest where there is one (as the
    sandbox: it may list everything)."""
    found = ctx.client("s3").list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=100)
    keys = [str(o["Key"]) for o in found.get("Contents", [])]
    data = [k for k in keys if k.endswith((".parquet", ".tar.gz", ".jsonl"))]
    return next(iter(data or keys), None)


def _objects(ctx: SandboxContext, model: str) -> _Objects:
    outputs = platform_outputs(ctx)
    mine = model_outputs(ctx, model)
    state = ctx.state.model(model)
    artifacts = mine.model_artifacts_prefix.strip("/")
    if state.serving is not None:
        bucket, key = state.serving.model_data_url.removeprefix("s3://").split("/", 1)
        artifact = (bucket, key)
    else:
        found = _first_key(ctx, outputs.models_bucket, f"{artifacts}/")
        artifact = (outputs.models_bucket, found or f"{artifacts}/injected/model.tar.gz")
    table = runtime(ctx, model).spec.features.prefix
    features = _first_key(ctx, outputs.features_bucket, f"{table}/") or f"{table}/{INJECTED}"
    capture_prefix = (mine.capture_prefix or f"capture/{mine.endpoint_name}").strip("/")
    if state.captured is not None and state.captured.keys:
        capture = (state.captured.bucket, state.captured.keys[0])
    else:
        capture = (outputs.predictions_bucket, f"{capture_prefix}/primary/injected.jsonl")
    from ml.contracts import QUALITY_PREFIX
    from ml.drift.job import DriftJobConfig

    config = DriftJobConfig.from_env(drift_environment(ctx, model))
    served = (config.models_bucket, config.model_key) if config.model_key else None
    quality_prefix = f"{QUALITY_PREFIX}/{mine.endpoint_name}"
    report = _first_key(ctx, outputs.predictions_bucket, f"{quality_prefix}/")
    label = _first_key(ctx, outputs.raw_bucket, f"{_labels_prefix()}/")
    return _Objects(
        artifact=artifact,
        artifacts_prefix=artifacts,
        features=(outputs.features_bucket, features),
        capture=capture,
        capture_prefix=capture_prefix,
        served=served,
        quality_report=(outputs.predictions_bucket, report or f"{quality_prefix}/{INJECTED}"),
        quality_prefix=quality_prefix,
        package_arn=state.version.arn if state.version is not None else None,
        label=(outputs.raw_bucket, label) if label is not None else None,
    )


def _roles(ctx: SandboxContext, model: str) -> dict[str, str]:
    """The model's roles by label: its training role, its endpoint's execution role, its drift
    job's role and its pipeline's step roles (`pipeline <Step>`, from the realized definition)."""
    mine = model_outputs(ctx, model)
    drift_environment(ctx, model)  # reads the drift job's role from its state machine, once
    roles = {
        "training": mine.training_role_arn,
        "endpoint": mine.endpoint_execution_role_arn or "",
        "drift": ctx.state.model(model).drift_role or "",
    }
    missing = [label for label, arn in roles.items() if not arn]
    if missing:
        raise StepFailed(f"the platform names no {' or '.join(missing)} role for {model}")
    if not mine.pipeline_name:
        raise StepFailed(f"the stack has no pipeline for {model} (pipelineEnabled is false)")
    described = ctx.client("sagemaker").describe_pipeline(PipelineName=mine.pipeline_name)
    for step in json.loads(described["PipelineDefinition"])["Steps"]:
        if step["Type"] in ("Processing", "Training"):
            roles[f"pipeline {step['Name']}"] = str(step["Arguments"]["RoleArn"])
    return roles


class _Role:
    """Checks made as one role of one model, with that role's credentials."""

    def __init__(
        self, ctx: SandboxContext, model: str, role: str, credentials: dict[str, str]
    ) -> None:
        self.ctx, self.model, self.role = ctx, model, role
        self.credentials = credentials
        self.s3 = s3_client(ctx, credentials)

    def put(self, bucket: str, key: str, expected: str = DENIED, other: str | None = None) -> None:
        outputs = platform_outputs(self.ctx)
        self.check(
            "s3:PutObject",
            f"s3://{bucket}/{key}",
            lambda: self.s3.put_object(Bucket=bucket, Key=key, Body=b"x", **sse(outputs)),
            expected,
            other,
        )

    def get(self, bucket: str, key: str, expected: str = DENIED, other: str | None = None) -> None:
        self.check(
            "s3:GetObject",
            f"s3://{bucket}/{key}",
            lambda: self.s3.get_object(Bucket=bucket, Key=key)["Body"].read(),
            expected,
            other,
        )

    def list(self, bucket: str, prefix: str, expected: str = DENIED) -> None:
        self.check(
            "s3:ListBucket",
            f"s3://{bucket}/{prefix}",
            lambda: self.s3.list_objects_v2(Bucket=bucket, Prefix=prefix),
            expected,
        )

    def check(
        self,
        action: str,
        resource: str,
        call: Callable[[], Any],
        expected: str = DENIED,
        other: str | None = None,
    ) -> None:
        check(self.ctx, self.role, action, resource, expected, call, model=self.model, other=other)


def _training(role: _Role, others: dict[str, _Objects], *, own: bool) -> None:
    """The training role: nothing outside its features table and its artifacts prefix."""
    ctx, model = role.ctx, role.model
    outputs = platform_outputs(ctx)
    if own:
        predictions = runtime(ctx, model).spec.predictions.prefix
        role.put(outputs.raw_bucket, f"customers/{INJECTED}")
        role.put(outputs.models_bucket, f"{model}/current/model.tar.gz")
        role.put(outputs.predictions_bucket, f"{predictions}/{INJECTED}")
        role.list(outputs.raw_bucket, "customers/")
    for other, theirs in others.items():
        role.get(*theirs.features, other=other)
        role.put(
            outputs.models_bucket, f"{theirs.artifacts_prefix}/injected/model.tar.gz", other=other
        )


def _endpoint(role: _Role, mine: _Objects, others: dict[str, _Objects], *, own: bool) -> None:
    """The endpoint's execution role: its own artifact and capture prefix, nothing else."""
    ctx, model = role.ctx, role.model
    outputs = platform_outputs(ctx)
    if own:
        predictions = runtime(ctx, model).spec.predictions.prefix
        variant = ctx.state.model(model).need_serving().variant
        role.get(*mine.artifact, expected="allowed")
        role.put(outputs.predictions_bucket, f"capture/another-endpoint/{variant}/x.jsonl")
        role.put(outputs.predictions_bucket, f"{predictions}/{INJECTED}")
        role.put(outputs.raw_bucket, f"customers/{INJECTED}")
    for other, theirs in others.items():
        role.get(*theirs.artifact, other=other)
        capture = f"{theirs.capture_prefix}/primary/injected.jsonl"
        role.put(outputs.predictions_bucket, capture, other=other)


def _drift(role: _Role, mine: _Objects, others: dict[str, _Objects], *, own: bool) -> None:
    """The monitor job's role: its own endpoint's capture, served model and quality reports, the
    labels (read, never written), not another model's."""
    ctx = role.ctx
    outputs = platform_outputs(ctx)
    if own:
        role.get(*mine.capture, expected="allowed")
        if mine.served is not None:
            role.get(*mine.served, expected="allowed")
            role.put(*mine.served)  # what serves is the deployment's to publish
        if mine.label is not None:
            role.get(*mine.label, expected="allowed")
        role.put(outputs.raw_bucket, f"{_labels_prefix()}/{INJECTED}")
        role.get(*mine.quality_report, expected="allowed")
    for other, theirs in others.items():
        role.get(*theirs.capture, other=other)
        if theirs.served is not None:
            role.get(*theirs.served, other=other)
        role.get(*theirs.quality_report, other=other)
        role.put(outputs.predictions_bucket, f"{theirs.quality_prefix}/{INJECTED}", other=other)


def _labels_prefix() -> str:
    from ml.schema import CUSTOMER_OUTCOMES

    return CUSTOMER_OUTCOMES.prefix


def _registry(
    ctx: SandboxContext,
    model: str,
    simulate: Callable[[str, str], str],
    mine: _Objects,
    others: dict[str, _Objects],
    *,
    own: bool,
) -> None:
    """The monitor job's registry grant, judged by IAM's evaluation of the role's policies
    (`_simulator`) with each request's real resource (moto checks a SageMaker call against `*`):
    its own versions' metadata, not another model's."""
    actions = ("sagemaker:DescribeModelPackage", "sagemaker:UpdateModelPackage")
    if own and mine.package_arn is not None:
        for action in actions:
            record_check(
                ctx,
                "drift",
                action,
                mine.package_arn,
                "allowed",
                simulate(action, mine.package_arn),
                model=model,
            )
    for other, theirs in others.items():
        if theirs.package_arn is None:
            continue
        for action in actions:
            record_check(
                ctx,
                "drift",
                action,
                theirs.package_arn,
                DENIED,
                simulate(action, theirs.package_arn),
                model=model,
                other=other,
            )


def _simulator(ctx: SandboxContext, role_arn: str) -> Callable[[str, str], str]:
    """`(action, resource) -> "allowed" | "AccessDenied"` by the role's inline policies as the
    realized role holds them, evaluated by moto's IAM policy engine with the resource given (an
    explicit Deny wins, else an Allow that matches, else denied)."""
    from moto.iam.access_control import IAMPolicy, PermissionResult

    iam = ctx.client("iam")
    name = role_arn.rsplit("/", 1)[-1]
    documents = [
        iam.get_role_policy(RoleName=name, PolicyName=p)["PolicyDocument"]
        for p in iam.list_role_policies(RoleName=name)["PolicyNames"]
    ]
    policies = [IAMPolicy(d if isinstance(d, str) else json.dumps(d)) for d in documents]

    def simulate(action: str, resource: str) -> str:
        results = [p.is_action_permitted(action, resource) for p in policies]
        if PermissionResult.DENIED in results or PermissionResult.PERMITTED not in results:
            return DENIED
        return "allowed"

    return simulate


def _pipeline_step(role: _Role, step: str, others: dict[str, _Objects], *, own: bool) -> None:
    """A step role writes only its own zone of its own model: a write into another step's zone,
    a registration by the step that only evaluates, a read of another model's features and a
    write into another model's artifacts prefix are refused."""
    from ml.contracts import STEP_CURATE, STEP_EVALUATE, STEP_FEATURES, STEP_TRAIN, STEP_WINDOW

    ctx, model = role.ctx, role.model
    outputs = platform_outputs(ctx)
    if own:
        spec = runtime(ctx, model).spec
        foreign = {
            STEP_WINDOW: (outputs.raw_bucket, f"{spec.raw.prefix}/{INJECTED}"),
            STEP_CURATE: (outputs.features_bucket, f"{spec.features.prefix}/{INJECTED}"),
            STEP_FEATURES: (outputs.raw_bucket, f"{spec.raw.prefix}/{INJECTED}"),
            STEP_TRAIN: (outputs.curated_bucket, f"{spec.curated.prefix}/{INJECTED}"),
            STEP_EVALUATE: (outputs.features_bucket, f"{spec.features.prefix}/{INJECTED}"),
        }
        if step in foreign:
            role.put(*foreign[step])
    for other, theirs in others.items():
        role.get(*theirs.features, other=other)
        work = f"{theirs.artifacts_prefix}/pipeline/injected/{step.lower()}/injected.json"
        role.put(outputs.models_bucket, work, other=other)
    if own and step == STEP_EVALUATE:
        group = model_outputs(ctx, model).model_package_group_name
        sm = ctx.client("sagemaker", **role.credentials)
        role.check(
            "sagemaker:CreateModelPackage",
            group,
            lambda: sm.create_model_package(
                ModelPackageGroupName=group,
                InferenceSpecification={
                    "Containers": [{"Image": "x", "ModelDataUrl": "s3://x/model.tar.gz"}],
                    "SupportedContentTypes": ["application/json"],
                    "SupportedResponseMIMETypes": ["application/json"],
                },
            ),
        )


def least_privilege(ctx: SandboxContext) -> str:
    """What the roles' policies do not grant is refused: within each model of the run, and
    across every pair of the stack's models of which one is in the run, both ways."""
    hosted = list(platform_outputs(ctx).models)
    if ctx.server is None:
        raise StepFailed("the sandbox server is not running (did start-server run?)")
    run = ctx.models
    # first, as the sandbox: what is reached for, and every role's credentials
    objects = {m: _objects(ctx, m) for m in hosted}
    # a model outside the run (`--models`) is checked only against those in it
    others = {
        m: {o: objects[o] for o in hosted if o != m and (m in run or o in run)} for m in hosted
    }
    checked = [m for m in hosted if m in run or others[m]]
    roles = {m: _roles(ctx, m) for m in checked}
    credentials = {
        arn: assume(ctx, arn, "sandbox-negative") for m in checked for arn in roles[m].values()
    }
    simulators = {m: _simulator(ctx, roles[m]["drift"]) for m in checked}
    # then every check, while moto enforces IAM
    with ctx.server.iam_enforced():
        for m in checked:
            own = m in run

            def acting(label: str, m: str = m) -> _Role:
                return _Role(ctx, m, label, credentials[roles[m][label]])

            _training(acting("training"), others[m], own=own)
            _endpoint(acting("endpoint"), objects[m], others[m], own=own)
            _drift(acting("drift"), objects[m], others[m], own=own)
            _registry(ctx, m, simulators[m], objects[m], others[m], own=own)
            for label in roles[m]:
                if label.startswith("pipeline "):
                    _pipeline_step(
                        acting(label), label.removeprefix("pipeline "), others[m], own=own
                    )
    checks = ctx.report.least_privilege["checks"]
    ctx.report.least_privilege.update(
        {
            "enforced": True,
            "how": (
                "moto's IAM authorization (POST /moto-api/reset-auth 0) while the role's steps "
                "ran: each request authenticated by its SigV4 signature and authorized against "
                "the policies of the role whose STS credentials signed it"
            ),
            "limits": [
                "bucket policies: moto applies their statements without conditions, so the "
                "sandbox stores no conditioned Deny (noted per bucket): the TLS-only and "
                "SSE-KMS-only denies are not enforced; KMS key policies and grants, permission "
                "boundaries and SCPs are not evaluated",
                "moto does not supply condition keys (s3:prefix, cloudwatch:namespace, "
                "kms:ViaService): calls governed by a conditioned statement are not run as the "
                "role (the drift job's PutMetricData, registry calls)",
                "non-S3 requests reach moto's authorization without their resource (it checks "
                "them against '*'), so the registry grants (the monitor job's SageMaker calls) "
                "are judged by moto's policy engine on the role's realized policies with each "
                "request's real resource instead: a simulation of IAM, not an enforcement",
            ],
        }
    )
    denied = sum(1 for c in checks if c["expected"] == DENIED)
    crossing = sum(1 for c in checks if c.get("otherModel"))
    pairs = sum(len(others[m]) for m in checked)
    return (
        f"{len(checks)} checks as expected ({denied} AccessDenied, the rest allowed); "
        f"{crossing} across models, {pairs} ordered pair(s)"
    )
