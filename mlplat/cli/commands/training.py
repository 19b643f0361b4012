"""Remote training for `mlplat train --on sagemaker|eks`: a SageMaker job or an EKS Job.

`train_remote(...)` builds the request (settings from `Pulumi.<stack>.yaml`, infrastructure from
the platform outputs) and, unless it is a dry run, sends it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

TARGETS = ("sagemaker", "eks")


def default_job_name(now: datetime | None = None) -> str:
    return "churn-" + (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")


def _outputs_mapping(outputs_file: Path | None, stack: str) -> Mapping[str, Any]:
    from ml.outputs import PlatformOutputs

    return PlatformOutputs.load(stack, outputs_file).to_json()


def train_remote(
    on: str,
    outputs_file: Path | None,
    stack: str,
    dry_run: bool,
    *,
    job_name: str | None = None,
    instance_type: str | None = None,
    image: str | None = None,
    gpus: int = 1,
    project_dir: Path | None = None,
    hyperparameters: Mapping[str, Any] | None = None,
    echo: Callable[[str], None] = print,
    sagemaker_client: Any = None,
    s3_client: Any = None,
    lambda_client: Any = None,
    wait: bool = False,
    poll_seconds: float = 15.0,
) -> dict[str, Any]:
    """Build (and unless `dry_run`, send) one remote training run; returns the request or Job.

    Settings (instance type, spot, run time) come from `Pulumi.<stack>.yaml`; the infrastructure
    from the platform outputs (`outputs_file`, else `pulumi stack output`). Raises
    `RemoteTrainingError`, `OutputsError` or `SettingsError` with a clear message.
    """
    from ml import remote_training as rt
    from mlplat.plan.preview import find_project_dir, load_stack

    if on not in TARGETS:
        raise rt.RemoteTrainingError(f"--on {on!r}: expected one of {', '.join(TARGETS)}")
    settings, _ = load_stack(stack, project_dir or find_project_dir())
    target = rt.TrainingTarget.from_mapping(_outputs_mapping(outputs_file, stack))
    name = rt.check_job_name(job_name or default_job_name())

    if on == "sagemaker":
        request = rt.sagemaker_training_request(
            target,
            job_name=name,
            instance_type=instance_type or settings.training.instance_type,
            use_spot=settings.training.use_spot,
            max_runtime_seconds=settings.training.max_runtime_seconds,
            max_wait_seconds=settings.training.max_wait_seconds,
            hyperparameters=hyperparameters,
            tags=settings.tags,
        )
        if dry_run:
            echo(json.dumps(request, indent=2))
            return request
        code = rt.upload_source(target, name, s3_client=s3_client)
        arn = rt.submit_sagemaker_training(request, sagemaker_client)
        echo(f"submitted {arn} (code {code})")
        return request

    if not target.training_cluster_name or not target.training_jobs_function_name:
        raise rt.RemoteTrainingError(
            f"stack {stack!r} has no training cluster (eksEnabled is false, or its outputs lack "
            "training_cluster_name and training_jobs_function_name); use --on sagemaker"
        )
    job = rt.kubernetes_training_job(
        target,
        job_name=name,
        image=image or rt.sklearn_training_image(target.region),
        gpus=gpus,
        active_deadline_seconds=settings.training.max_runtime_seconds,
    )
    if dry_run:
        echo(rt.job_yaml(job))
        return job
    rt.upload_source(target, name, s3_client=s3_client)
    if lambda_client is None:
        import boto3

        # the cluster API is private: the jobs gateway inside the VPC creates the Job (invoking it
        # needs lambda:InvokeFunction on it, which the stack's submitter role has)
        lambda_client = boto3.client("lambda", region_name=target.region)
    function = target.training_jobs_function_name
    summary = rt.submit_kubernetes_job(job, function, lambda_client)
    where = f"{target.training_namespace}/{summary['name']}"
    echo(f"created job {where} on {target.training_cluster_name} ({summary['state']})")
    if wait:
        state = follow_kubernetes_job(
            summary["name"], function, lambda_client, echo=echo, poll_seconds=poll_seconds
        )
        if state != "Complete":
            raise rt.TrainingRunFailed(f"job {where} ended {state}")
    return job


def follow_kubernetes_job(
    name: str,
    function_name: str,
    lambda_client: Any,
    *,
    echo: Callable[[str], None] = print,
    poll_seconds: float = 15.0,
    sleep: Callable[[float], None] | None = None,
) -> str:
    """Poll the Job through the jobs gateway until it completes or fails; report each change."""
    import time

    from ml import remote_training as rt

    pause = sleep or time.sleep
    last = None
    while True:
        status = rt.kubernetes_job_status(name, function_name, lambda_client)
        state = status["job"]["state"]
        pods = ", ".join(f"{p['name']} {p['phase']}" for p in status["pods"]) or "no pod yet"
        line = f"{name}: {state} ({pods})"
        if line != last:
            echo(line)
            last = line
        if state in ("Complete", "Failed"):
            return str(state)
        pause(poll_seconds)
