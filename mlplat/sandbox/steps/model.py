"""The model steps: train → evaluate (the gate) → package, one step per stage of
`ml.workflow.train_candidate` (what `mlplat train --local` and the SageMaker training job run in one
call); then the artifact uploaded as the training role, registered (`ml.workflow.register`) and
approved.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from mlplat.sandbox.context import SandboxContext, StepFailed
from mlplat.sandbox.steps.common import (
    as_role,
    check,
    platform_outputs,
    record,
    s3_client,
    sse,
)

if TYPE_CHECKING:
    import pandas as pd


def train(ctx: SandboxContext) -> str:
    """Local training on the features zone, read as the training role (as a SageMaker training
    job would read its channel)."""
    from ml.lake import read_dataset
    from ml.schema import CUSTOMER_FEATURES
    from ml.train import Hyperparameters
    from ml.train import train as train_model

    outputs = platform_outputs(ctx)
    uri = f"s3://{outputs.features_bucket}/{CUSTOMER_FEATURES.prefix}/"
    read: list[pd.DataFrame] = []
    with as_role(ctx, outputs.training_role_arn, "sandbox-train") as credentials:
        s3 = s3_client(ctx, credentials)
        check(
            ctx,
            "training",
            "s3:ListBucket, s3:GetObject",
            uri,
            "allowed",
            lambda: read.append(read_dataset(CUSTOMER_FEATURES, outputs.features_bucket, s3=s3)),
        )
    [table] = read
    result = train_model(table, Hyperparameters(seed=0), data_uri=uri)
    ctx.state.training = result
    metrics = result.metrics.to_dict()
    ctx.report.metrics = {k: float(v) for k, v in metrics.items() if v is not None}
    return (
        f"{result.lineage['data']['rows_train']:,} train / "
        f"{result.lineage['data']['rows_validation']:,} validation rows: "
        f"ROC AUC {metrics['roc_auc']:.3f}, log loss {metrics['log_loss']:.3f}"
    )


def evaluate(ctx: SandboxContext) -> str:
    """The promotion gate, against the group's approved version; a refusal fails the step."""
    from ml import registry
    from ml.evaluate import Metrics
    from ml.workflow import gate_candidate

    outputs = platform_outputs(ctx)
    result = ctx.state.need_training()
    approved = registry.latest_approved(
        outputs.model_package_group_name, client=ctx.client("sagemaker")
    )
    candidate = gate_candidate(
        result,
        model_dir=ctx.scratch / "model",
        approved=Metrics.from_dict(approved.metrics) if approved else None,
    )
    ctx.state.candidate = candidate
    gate = candidate.gate
    record(
        ctx,
        "evaluate",
        passed=gate.passed,
        checks=[c.name for c in gate.checks],
        againstApproved=approved.arn if approved else None,
    )
    if not gate.passed:
        raise StepFailed(gate.summary())
    return gate.summary() + (f" against {approved.arn}" if approved else "")


def package(ctx: SandboxContext) -> str:
    """The passing candidate written and packaged: model.tar.gz with the handler and reports."""
    from ml.workflow import package_candidate

    candidate = package_candidate(ctx.state.need_candidate(), package=ctx.scratch / "model.tar.gz")
    ctx.state.candidate = candidate
    tarball = ctx.state.tarball = candidate.artifacts()["model"]
    return f"{tarball.name}, {tarball.stat().st_size / 1024:.0f} KiB (model, code/, reports)"


def upload(ctx: SandboxContext) -> str:
    """The artifact and its reports into the registry's prefix, as the training role."""
    from ml.workflow import ArtifactUris

    outputs = platform_outputs(ctx)
    ctx.state.need_tarball()
    files = ctx.state.need_candidate().artifacts()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    prefix = f"{outputs.model_artifacts_prefix}/{stamp}"
    uris: dict[str, str] = {}
    with as_role(ctx, outputs.training_role_arn, "sandbox-upload") as credentials:
        s3 = s3_client(ctx, credentials)
        for name, path in files.items():
            key = f"{prefix}/{path.name}"
            check(
                ctx,
                "training",
                "s3:PutObject",
                f"s3://{outputs.models_bucket}/{key}",
                "allowed",
                lambda key=key, path=path: s3.put_object(  # type: ignore[misc]
                    Bucket=outputs.models_bucket,
                    Key=key,
                    Body=path.read_bytes(),
                    **sse(outputs),
                ),
            )
            uris[name] = f"s3://{outputs.models_bucket}/{key}"
    uploaded = ArtifactUris(**uris)
    ctx.state.uploaded = uploaded
    record(ctx, "upload", **asdict(uploaded))
    return f"{uploaded.model} (as the training role)"


def register(ctx: SandboxContext) -> str:
    """A version in the model package group, its metrics and baseline attached."""
    from ml.workflow import register as register_version

    outputs = platform_outputs(ctx)
    result = ctx.state.need_training()
    version = register_version(
        outputs.model_package_group_name,
        ctx.state.need_uploaded(),
        metrics=result.metrics.to_dict(),
        lineage=result.lineage,
        client=ctx.client("sagemaker"),
    )
    ctx.state.version = version
    ctx.report.model_version = f"{version.group}/{version.version}"
    return f"{version.arn} ({version.status})"


def approve(ctx: SandboxContext) -> str:
    from ml import registry

    version = ctx.state.need_version("register")
    checks = ctx.state.need_candidate().gate.checks
    approved = registry.approve(
        version.arn,
        description=f"sandbox: evaluation gate passed ({len(checks)} checks)",
        client=ctx.client("sagemaker"),
    )
    ctx.state.version = approved
    return f"{approved.group}/{approved.version}: {approved.status}"
