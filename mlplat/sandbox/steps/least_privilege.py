"""The least-privilege step: what the stack's roles' policies do not grant is refused.

The steps a role performs in AWS already ran with its credentials while moto enforced IAM (every
pipeline step reads and writes the lake as its step role; data capture is written as the endpoint's
execution role): each is recorded as `allowed`. This step tries what those roles must not do —
write the raw zone, write another step's zone, write outside their prefixes, register a model
from the evaluation step — and records an AccessDenied each.
"""

from __future__ import annotations

import json

from mlplat.sandbox.context import SandboxContext, StepFailed
from mlplat.sandbox.steps.common import (
    as_role,
    check,
    lifecycle_model,
    model_outputs,
    platform_outputs,
    s3_client,
    sse,
)


def _step_roles(ctx: SandboxContext) -> dict[str, str]:
    """Step name -> role ARN of the pipeline's container steps, from its realized definition."""
    name = model_outputs(ctx).pipeline_name
    if not name:
        raise StepFailed("the stack has no model pipeline (pipelineEnabled is false)")
    described = ctx.client("sagemaker").describe_pipeline(PipelineName=name)
    definition = json.loads(described["PipelineDefinition"])
    return {
        str(step["Name"]): str(step["Arguments"]["RoleArn"])
        for step in definition["Steps"]
        if step["Type"] in ("Processing", "Training")
    }


def _pipeline_roles_stay_in_their_zones(ctx: SandboxContext) -> None:
    """Each step role writes only its own zone: a write into the zone of another step, and a
    registration by a step that only evaluates, are refused."""
    from ml.contracts import STEP_CURATE, STEP_EVALUATE, STEP_FEATURES, STEP_TRAIN, STEP_WINDOW

    outputs = platform_outputs(ctx)
    spec = lifecycle_model(ctx).spec
    group = model_outputs(ctx).model_package_group_name
    roles = _step_roles(ctx)
    day = "dt=2025-01-01/injected.parquet"
    writes = (
        (STEP_WINDOW, outputs.raw_bucket, f"{spec.raw.prefix}/{day}"),
        (STEP_CURATE, outputs.features_bucket, f"{spec.features.prefix}/{day}"),
        (STEP_FEATURES, outputs.raw_bucket, f"{spec.raw.prefix}/{day}"),
        (STEP_TRAIN, outputs.curated_bucket, f"{spec.curated.prefix}/{day}"),
        (STEP_EVALUATE, outputs.features_bucket, f"{spec.features.prefix}/{day}"),
    )
    for step, bucket, key in writes:
        with as_role(ctx, roles[step], "sandbox-negative") as credentials:
            s3 = s3_client(ctx, credentials)
            check(
                ctx,
                f"pipeline {step}",
                "s3:PutObject",
                f"s3://{bucket}/{key}",
                "AccessDenied",
                lambda s3=s3, bucket=bucket, key=key: s3.put_object(  # type: ignore[misc]
                    Bucket=bucket, Key=key, Body=b"x", **sse(outputs)
                ),
            )
    with as_role(ctx, roles[STEP_EVALUATE], "sandbox-negative") as credentials:
        sm = ctx.client("sagemaker", **credentials)
        check(
            ctx,
            f"pipeline {STEP_EVALUATE}",
            "sagemaker:CreateModelPackage",
            group,
            "AccessDenied",
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
    """What the roles' policies do not grant is refused."""
    outputs = platform_outputs(ctx)
    model = lifecycle_model(ctx)
    mine = model_outputs(ctx)
    predictions = model.spec.predictions.prefix
    serving = ctx.state.need_serving()
    denied = "AccessDenied"
    with as_role(ctx, mine.training_role_arn, "sandbox-negative") as credentials:
        s3 = s3_client(ctx, credentials)
        for bucket, key in (
            (outputs.raw_bucket, "customers/dt=2025-01-01/injected.parquet"),
            (outputs.models_bucket, f"{model.name}/current/model.tar.gz"),
            (outputs.predictions_bucket, f"{predictions}/dt=2025-01-01/injected.parquet"),
        ):
            check(
                ctx,
                "training",
                "s3:PutObject",
                f"s3://{bucket}/{key}",
                denied,
                lambda bucket=bucket, key=key: s3.put_object(  # type: ignore[misc]
                    Bucket=bucket, Key=key, Body=b"x", **sse(outputs)
                ),
            )
        check(
            ctx,
            "training",
            "s3:ListBucket",
            f"s3://{outputs.raw_bucket}/customers/",
            denied,
            lambda: s3.list_objects_v2(Bucket=outputs.raw_bucket, Prefix="customers/"),
        )
    role_arn = mine.endpoint_execution_role_arn or ""
    with as_role(ctx, role_arn, "sandbox-negative") as credentials:
        s3 = s3_client(ctx, credentials)
        for bucket, key in (
            (outputs.predictions_bucket, f"capture/another-endpoint/{serving.variant}/x.jsonl"),
            (outputs.predictions_bucket, f"{predictions}/dt=2025-01-01/injected.parquet"),
            (outputs.raw_bucket, "customers/dt=2025-01-01/injected.parquet"),
        ):
            check(
                ctx,
                "endpoint",
                "s3:PutObject",
                f"s3://{bucket}/{key}",
                denied,
                lambda bucket=bucket, key=key: s3.put_object(  # type: ignore[misc]
                    Bucket=bucket, Key=key, Body=b"x"
                ),
            )
    _pipeline_roles_stay_in_their_zones(ctx)
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
                "non-S3 actions are authorized by action: moto does not know the resource of "
                "a non-S3 request, so the resources of a statement are not checked for them",
            ],
        }
    )
    denied_n = sum(1 for c in checks if c["expected"] == denied)
    return f"{len(checks)} checks as expected ({denied_n} AccessDenied, the rest allowed)"
