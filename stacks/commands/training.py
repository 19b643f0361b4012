"""`mlplat train-remote --on sagemaker|eks`: train on SageMaker or on the EKS GPU cluster.

`train_remote(...)` does the work and is what `mlplat train --on ...` calls; the command only maps
options and errors (message on stderr, exit 2).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

TARGETS = ("sagemaker", "eks")


def register(app: typer.Typer) -> None:
    app.command("train-remote")(train_remote_command)


def default_job_name(now: datetime | None = None) -> str:
    return "churn-" + (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")


def _outputs_mapping(outputs_file: Path | None, stack: str) -> Mapping[str, Any]:
    if outputs_file is not None:
        try:
            data = json.loads(outputs_file.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            from ml.remote_training import RemoteTrainingError

            raise RemoteTrainingError(
                f"cannot read platform outputs from {outputs_file}: {exc}"
            ) from exc
        if not isinstance(data, dict):
            from ml.remote_training import RemoteTrainingError

            raise RemoteTrainingError(f"{outputs_file}: expected a JSON object of outputs")
        return data
    import subprocess

    from ml.outputs import OutputsError

    try:
        done = subprocess.run(
            ["pulumi", "stack", "output", "--json", "-s", stack],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
    except FileNotFoundError as exc:
        raise OutputsError(
            "the Pulumi CLI is not installed; pass --outputs FILE (a `pulumi "
            "stack output --json` dump)"
        ) from exc
    except subprocess.CalledProcessError as exc:
        raise OutputsError(f"pulumi stack output -s {stack} failed: {exc.stderr.strip()}") from exc
    result: dict[str, Any] = json.loads(done.stdout)
    return result


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
    kube_api_client: Any = None,
) -> dict[str, Any]:
    """Build (and unless `dry_run`, send) one remote training run; returns the request or Job.

    Settings (instance type, spot, run time) come from `Pulumi.<stack>.yaml`; the infrastructure
    from the platform outputs (`outputs_file`, else `pulumi stack output`). Raises
    `RemoteTrainingError`, `OutputsError` or `SettingsError` with a clear message.
    """
    from ml import remote_training as rt
    from stacks.preview import find_project_dir, load_stack

    if on not in TARGETS:
        raise rt.RemoteTrainingError(f"--on {on!r}: expected one of {', '.join(TARGETS)}")
    settings, _ = load_stack(stack, project_dir or find_project_dir())
    target = rt.TrainingTarget.from_mapping(_outputs_mapping(outputs_file, stack))
    name = rt.check_job_name(job_name or default_job_name())

    if on == "sagemaker":
        request = rt.sagemaker_training_request(
            target,
            job_name=name,
            instance_type=instance_type or settings.training_instance_type,
            use_spot=settings.training_use_spot,
            max_runtime_seconds=settings.training_max_runtime_seconds,
            max_wait_seconds=settings.training_max_wait_seconds,
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

    if not target.training_cluster_name:
        raise rt.RemoteTrainingError(
            f"stack {stack!r} has no training cluster (eksEnabled is false, or its outputs lack "
            "training_cluster_name); use --on sagemaker"
        )
    job = rt.kubernetes_training_job(
        target,
        job_name=name,
        image=image or rt.sklearn_training_image(target.region),
        gpus=gpus,
        active_deadline_seconds=settings.training_max_runtime_seconds,
    )
    if dry_run:
        echo(rt.job_yaml(job))
        return job
    rt.upload_source(target, name, s3_client=s3_client)
    api = kube_api_client
    if api is None:
        from kubernetes import client, config

        # the kubeconfig of `aws eks update-kubeconfig --name <training_cluster_name>`
        config.load_kube_config()  # type: ignore[no-untyped-call]
        api = client.ApiClient()
    rt.apply_kubernetes_job(job, api)
    echo(f"created job {target.training_namespace}/{name} on {target.training_cluster_name}")
    return job


def train_remote_command(
    on: Annotated[str, typer.Option("--on", help="Where to train: sagemaker or eks.")],
    stack: Annotated[str, typer.Option("--stack", "-s", help="Stack whose platform to use.")],
    outputs: Annotated[
        Path | None,
        typer.Option("--outputs", help="Platform outputs JSON (default: `pulumi stack output`)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the request or Job manifest; send nothing.")
    ] = False,
    job_name: Annotated[
        str | None, typer.Option("--job-name", help="Default: churn-<time>.")
    ] = None,
    instance_type: Annotated[
        str | None, typer.Option("--instance-type", help="SageMaker instance type override.")
    ] = None,
    image: Annotated[
        str | None, typer.Option("--image", help="EKS: training image (default: sklearn 1.9-0).")
    ] = None,
    gpus: Annotated[int, typer.Option("--gpus", help="EKS: GPUs for the Job.")] = 1,
    project_dir: Annotated[
        Path | None, typer.Option("--project-dir", help="Directory holding Pulumi.yaml.")
    ] = None,
) -> None:
    """Train on SageMaker (managed spot, in the VPC) or as a Job on the EKS GPU cluster."""
    from ml.outputs import OutputsError
    from ml.remote_training import RemoteTrainingError
    from stacks.settings import SettingsError

    try:
        train_remote(
            on,
            outputs,
            stack,
            dry_run,
            job_name=job_name,
            instance_type=instance_type,
            image=image,
            gpus=gpus,
            project_dir=project_dir,
            echo=typer.echo,
        )
    except (RemoteTrainingError, OutputsError, SettingsError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        raise typer.Exit(2) from None
