"""The least-privilege step: what the stack's roles' policies do not grant is refused.

The steps a role performs in AWS already ran with its credentials while moto enforced IAM (training
reads the features zone and uploads the model as the training role; data capture is written as the
endpoint's execution role): each call is recorded as `allowed`. This step tries what those roles
must not do — write the raw zone, write outside their prefixes — and records an AccessDenied each.
"""

from __future__ import annotations

from mlplat.sandbox.context import SandboxContext
from mlplat.sandbox.steps.common import as_role, check, platform_outputs, s3_client, sse


def least_privilege(ctx: SandboxContext) -> str:
    """What the roles' policies do not grant is refused."""
    outputs = platform_outputs(ctx)
    serving = ctx.state.need_serving()
    denied = "AccessDenied"
    with as_role(ctx, outputs.training_role_arn, "sandbox-negative") as credentials:
        s3 = s3_client(ctx, credentials)
        for bucket, key in (
            (outputs.raw_bucket, "customers/dt=2025-01-01/injected.parquet"),
            (outputs.models_bucket, "churn/current/model.tar.gz"),
            (outputs.predictions_bucket, "predictions/dt=2025-01-01/injected.parquet"),
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
    role_arn = outputs.endpoint_execution_role_arn or ""
    with as_role(ctx, role_arn, "sandbox-negative") as credentials:
        s3 = s3_client(ctx, credentials)
        for bucket, key in (
            (outputs.predictions_bucket, f"capture/another-endpoint/{serving.variant}/x.jsonl"),
            (outputs.predictions_bucket, "predictions/dt=2025-01-01/injected.parquet"),
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
                "non-S3 actions are authorized against resource '*' only",
            ],
        }
    )
    denied_n = sum(1 for c in checks if c["expected"] == denied)
    return f"{len(checks)} checks as expected ({denied_n} AccessDenied, the rest allowed)"
