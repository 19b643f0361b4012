"""The model commands: `train`, `evaluate`, `register`, `approve`.

Each parses its options, calls one function of `ml/` — `ml.workflow` (train → evaluate → gate →
package, evaluate, register), `ml.remote_training.train_remote`, `ml.registry.review` — and prints
the result. The model is `--model NAME` (`train`, `approve`; default: the stack's first model, else
the first package of `ml/models/`) or, where `--model` is a trained artifact (`evaluate`,
`register`), the model that artifact was built for. pandas, scikit-learn and boto3 are imported
inside the commands so that `mlplat --help` stays fast. Exit codes: 0 done, 1 the gate refused the
model (or a followed training job failed), 2 bad input or usage (message on stderr).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mlplat.cli import options
from mlplat.cli.errors import ExitCode, fail, usage_errors
from mlplat.cli.inputs import model_name, platform_outputs, stack_settings

if TYPE_CHECKING:
    from ml.outputs import PlatformOutputs

DEFAULT_ROWS = 50_000
TARGETS = ("local", "sagemaker", "eks")


def register(app: typer.Typer) -> None:
    app.command("train")(train)
    app.command("evaluate")(evaluate)
    app.command("register")(register_version)
    app.command("approve")(approve)


def train(
    output: Annotated[
        Path | None,
        typer.Option("--output", help="Local: directory for model.tar.gz and its JSON reports."),
    ] = None,
    on: Annotated[
        str, typer.Option("--on", help="Where to train: local, sagemaker or eks.")
    ] = "local",
    local: Annotated[bool, typer.Option("--local", help="Same as --on local.")] = False,
    data: options.Data = None,
    rows: options.Rows = DEFAULT_ROWS,
    seed: options.Seed = 0,
    drift: options.Drift = 0.0,
    estimator: Annotated[
        str | None,
        typer.Option(
            "--estimator",
            help="The model's estimator hyperparameter, when it has one (churn: "
            "logistic_regression or hist_gradient_boosting; default: the model's).",
        ),
    ] = None,
    approved_metrics: options.ApprovedMetrics = None,
    search: Annotated[
        bool,
        typer.Option(
            "--search",
            help="Local: cross-validate the model's search space first (ml.tuning); "
            "lineage.json records every trial and the choice.",
        ),
    ] = False,
    max_rejected_share: Annotated[
        float,
        typer.Option(
            "--max-rejected-share",
            help="Local: refuse the data when more than this share of its rows breaks the "
            "schema (0-1); below it they are dropped and counted.",
        ),
    ] = 0.05,
    model: options.Model = None,
    stack: options.Stack = None,
    outputs: options.Outputs = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Remote: print the request or Job YAML; send nothing.")
    ] = False,
    job_name: Annotated[
        str | None,
        typer.Option("--job-name", help="Remote: job name (default: <model>-<time>)."),
    ] = None,
    instance_type: Annotated[
        str | None,
        typer.Option(
            "--instance-type",
            help="SageMaker: instance type (default: the stack's). XGBoost models also train on "
            "GPU instances (ml.g5.xlarge ...); scikit-learn models on CPU instances only.",
        ),
    ] = None,
    image: Annotated[
        str | None,
        typer.Option(
            "--image",
            help="Remote training image (default: the stack's platform image: Python 3.11, "
            "the bundle's libraries, XGBoost's CUDA build).",
        ),
    ] = None,
    gpus: Annotated[int, typer.Option("--gpus", help="EKS: GPUs the Job requests.")] = 1,
    wait: Annotated[
        bool,
        typer.Option("--wait", help="EKS: follow the Job until it ends (exit 1 if it fails)."),
    ] = False,
) -> None:
    """Train a model: locally (gated, writes DIR/model.tar.gz), on SageMaker or on EKS.

    Both run the bundled code in the stack's platform image (Python 3.11, the bundle's libraries,
    XGBoost's CUDA build). `--on sagemaker`: a training job (scikit-learn models on CPU instances;
    XGBoost models on CPU or GPU instances; managed spot with checkpoints, in the VPC, KMS);
    `--on eks` renders a Kubernetes Job for a GPU node of the cluster and hands it to
    the stack's jobs gateway inside the VPC (`--dry-run` prints it; `--wait` follows it). Remote
    training needs `--stack` (its settings and platform outputs).
    Exit 1: the gate refused the model, or the followed Job failed.
    """
    target = "local" if local else on
    if target not in TARGETS:
        fail(f"--on {target!r}: expected one of {', '.join(TARGETS)}")
    if target != "local":
        _train_remote(
            target,
            model,
            stack,
            outputs,
            dry_run=dry_run,
            wait=wait,
            job_name=job_name,
            instance_type=instance_type,
            image=image,
            gpus=gpus,
        )
        return
    if output is None:
        fail("--output DIR is required to train locally")
    _train_local(
        model_name(model),
        output,
        data,
        rows,
        seed,
        drift,
        estimator,
        approved_metrics,
        search=search,
        max_rejected_share=max_rejected_share,
    )


def _train_local(
    name: str,
    output: Path,
    data: Path | None,
    rows: int,
    seed: int,
    drift: float,
    estimator: str | None,
    approved_metrics: Path | None,
    *,
    search: bool = False,
    max_rejected_share: float = 0.05,
) -> None:
    from ml.evaluate import GateFailed
    from ml.models import load
    from ml.workflow import InputError, raw_customers, read_metrics, train_candidate_from_raw

    model = load(name)
    with usage_errors(ValueError, FileNotFoundError):  # FeatureValidationError is a ValueError
        knobs = {"seed": str(seed), **({"estimator": estimator} if estimator is not None else {})}
        hp = model.hyperparameters.from_mapping(knobs)
        with usage_errors(InputError, prefix="--approved-metrics "):
            approved = read_metrics(approved_metrics) if approved_metrics else None
        with usage_errors(InputError, prefix="--data "):
            raw = raw_customers(data, rows=rows, seed=seed, drift=drift)
        candidate = train_candidate_from_raw(
            model,
            raw,
            hp,
            model_dir=output,
            approved=approved,
            data_uri=str(data) if data else "synthetic",
            package=output / "model.tar.gz",
            search=search,
            max_rejected_share=max_rejected_share,
        )
    rejected = candidate.rejected
    if rejected is not None and rejected.n_rejected:
        typer.echo(f"rejected {rejected.n_rejected} of {rejected.n_rows} rows: {rejected.reasons}")
    if not candidate.passed:
        fail(GateFailed(candidate.gate), ExitCode.FAILED_CHECK)
    trained = {"model": str(candidate.package), "metrics": candidate.metrics.to_dict()}
    typer.echo(json.dumps(trained, indent=2))


def _train_remote(
    on: str,
    model: str | None,
    stack: str | None,
    outputs: Path | None,
    *,
    dry_run: bool,
    wait: bool,
    job_name: str | None,
    instance_type: str | None,
    image: str | None,
    gpus: int,
) -> None:
    """The run's knobs from the stack's settings and the options; the platform from its outputs."""
    from ml import remote_training as rt

    if stack is None:
        fail(f"--on {on} needs --stack (its settings and platform outputs)")
    settings, _ = stack_settings(stack, None)
    platform = platform_outputs(stack, outputs)
    name = model_name(model, platform)
    training = settings.training
    run = rt.RemoteRun(
        job_name=job_name or rt.default_job_name(name),
        instance_type=instance_type or training.instance_type,
        use_spot=training.use_spot,
        max_runtime_seconds=training.max_runtime_seconds,
        max_wait_seconds=training.max_wait_seconds,
        tags=settings.tags,
        image=image,
        gpus=gpus,
    )
    try:
        target = rt.TrainingTarget.from_mapping(platform.to_json(), name)
        rt.train_remote(on, target, run, dry_run=dry_run, wait=wait, echo=typer.echo)
    except rt.TrainingRunFailed as exc:
        fail(exc, ExitCode.FAILED_CHECK)
    except rt.RemoteTrainingError as exc:
        fail(exc)


def evaluate(
    model: Annotated[
        Path, typer.Option("--model", help="model.tar.gz, model.joblib or a directory holding it.")
    ],
    data: options.Data = None,
    rows: options.Rows = 20_000,
    seed: options.Seed = 1,
    drift: options.Drift = 0.0,
    approved_metrics: options.ApprovedMetrics = None,
    json_path: Annotated[Path | None, options.json_file("the evaluation and the gate")] = None,
) -> None:
    """Evaluate a trained model on labelled data (overall, per slice, vs baselines) and gate it.

    The model is the one the artifact was built for (its `code/`), else the first model."""
    from ml.models import load
    from ml.workflow import InputError, evaluate_model, load_model, raw_customers, read_metrics

    runtime = load(_model_of(model))
    with usage_errors(ValueError, OSError):  # FeatureValidationError is a ValueError
        with usage_errors(InputError, prefix="--approved-metrics "):
            approved = read_metrics(approved_metrics) if approved_metrics else None
        with usage_errors(InputError, prefix="--model "):
            fitted = load_model(runtime, model)
        with usage_errors(InputError, prefix="--data "):
            raw = raw_customers(data, rows=rows, seed=seed, drift=drift)
        evaluation = evaluate_model(runtime, fitted, raw, approved=approved, seed=seed)
    if json_path is not None:
        json_path.write_text(json.dumps(evaluation.to_dict(), indent=2) + "\n")
    typer.echo(json.dumps({"metrics": evaluation.report.overall.to_dict()}, indent=2))
    if not evaluation.gate.passed:
        fail(evaluation.gate.summary(), ExitCode.FAILED_CHECK)
    typer.echo(evaluation.gate.summary())


def _model_of(artifact: Path) -> str:
    """The model a trained artifact (a model directory or its model.tar.gz) was built for: the
    package in its `code/`, else the `model` its lineage names, else the first model."""
    from ml.package import model_name_of

    found = model_name_of(artifact)
    if found is None and (artifact / "lineage.json").is_file():
        try:
            found = json.loads((artifact / "lineage.json").read_text()).get("model")
        except (OSError, ValueError, AttributeError):
            found = None
    return model_name(found if isinstance(found, str) else None)


def _group_and_region(
    group: str | None,
    model: str | None,
    stack: str | None,
    outputs: Path | None,
    region: str | None,
) -> tuple[str, str | None, PlatformOutputs | None]:
    """The group and region given, else the platform outputs' (`--stack` or `--outputs`; the
    group of `model`, default the stack's first); and those outputs, when named."""
    if stack is None and outputs is None:
        if group is None:
            fail("name the model package group: --group NAME, or --stack S / --outputs FILE")
        return group, region, None
    platform = platform_outputs(stack, outputs)
    if group is None:
        group = platform.model(model_name(model, platform)).model_package_group_name
    return group, region or platform.region, platform


def _sagemaker(region: str | None) -> Any:
    import boto3

    return boto3.client("sagemaker", region_name=region)


def _aws_errors() -> tuple[type[Exception], ...]:
    from botocore.exceptions import BotoCoreError, ClientError

    from ml.registry import RegistryError

    return (RegistryError, BotoCoreError, ClientError, ValueError)


def register_version(
    model: Annotated[
        Path,
        typer.Option(
            "--model",
            help="The trained model: the directory `mlplat train --local` wrote, or its "
            "model.tar.gz. Its baseline.json and gate.json (which must say passed) are "
            "uploaded beside --model-data-url and attached to the version.",
        ),
    ],
    model_data_url: Annotated[
        str, typer.Option("--model-data-url", help="s3:// URI of the uploaded model.tar.gz.")
    ],
    metrics: Annotated[
        Path | None,
        typer.Option("--metrics", help="metrics.json (default: the one of --model)."),
    ] = None,
    lineage: Annotated[
        Path | None,
        typer.Option("--lineage", help="lineage.json (default: the one of --model, if any)."),
    ] = None,
    image_uri: Annotated[
        str | None,
        typer.Option(
            "--image-uri",
            help="Serving image (default: the SageMaker container of the model's framework).",
        ),
    ] = None,
    create_group: Annotated[
        bool, typer.Option("--create-group/--no-create-group", help="Create the group if absent.")
    ] = True,
    allow_dirty: Annotated[
        bool,
        typer.Option(
            "--allow-dirty",
            help="Register even when the git tree is dirty, HEAD is not on the main branch or the "
            "model was not trained from HEAD (the version is marked unverified).",
        ),
    ] = False,
    region: options.Region = None,
    group: options.Group = None,
    stack: options.Stack = None,
    outputs: options.Outputs = None,
) -> None:
    """Register a trained model as a new PendingManualApproval version of a model package group.

    Only the code of the main branch is registered: the git tree must be clean, HEAD an ancestor
    of origin/main (else of main, when there is no remote) and the model trained from HEAD (its
    lineage's commit and ml sources hash are HEAD's); `--allow-dirty` registers anyway, marked
    unverified. Its drift baseline, gate report and metrics are uploaded beside the model (SSE-KMS
    with the lake key of --stack/--outputs) and attached to the version: `mlplat deploy` needs
    them. The group and the serving image default to those of the model the artifact was built
    for. Exit 1: the source check refused it.
    """
    from dataclasses import replace

    import boto3

    from ml import registry
    from ml.models import spec
    from ml.workflow import InputError, read_reports, register_trained

    name = _model_of(model)
    group, region, platform = _group_and_region(group, name, stack, outputs, region)
    kms_key_arn = (platform.lake_kms_key_arn or None) if platform is not None else None
    with usage_errors(InputError):
        reports = read_reports(model, metrics=metrics, lineage=lineage)
    try:
        check = registry.check_source(
            {"model": name, **reports.lineage},
            allow_dirty=allow_dirty,
            package_dir=registry.default_package_dir(),
        )
    except registry.SourceCheckFailed as exc:
        fail(exc, ExitCode.FAILED_CHECK)
    except registry.RegistryError as exc:
        fail(exc)
    if not check.verified:
        typer.echo(f"warning: registering unverified code: {'; '.join(check.problems)}", err=True)
    recorded = {**reports.lineage, registry.SOURCE_CHECK_KEY: check.to_dict()}
    reports = replace(reports, lineage=recorded)
    with usage_errors(*_aws_errors()):
        version = register_trained(
            group,
            reports,
            model_data_url,
            sagemaker=_sagemaker(region),
            s3=boto3.client("s3", region_name=region),
            kms_key_arn=kms_key_arn,
            image_uri=image_uri,
            framework=spec(name).framework,
            create_group=create_group,
        )
    typer.echo(
        json.dumps({"arn": version.arn, "version": version.version, "status": version.status})
    )


def approve(
    group: options.Group = None,
    version: Annotated[
        int | None,
        typer.Option("--version", min=1, help="Version number (default: the latest version)."),
    ] = None,
    reject: Annotated[
        bool, typer.Option("--reject", help="Reject the version instead of approving it.")
    ] = False,
    description: Annotated[
        str, typer.Option("--description", help="Why it is approved or rejected.")
    ] = "",
    region: options.Region = None,
    model: options.Model = None,
    stack: options.Stack = None,
    outputs: options.Outputs = None,
) -> None:
    """Approve (or --reject) a version of a model package group (default: its latest)."""
    from ml import registry

    group, region, _ = _group_and_region(group, model, stack, outputs, region)
    with usage_errors(*_aws_errors()):
        done = registry.review(
            group,
            version=version,
            reject=reject,
            description=description,
            client=_sagemaker(region),
        )
    typer.echo(json.dumps({"arn": done.arn, "version": done.version, "status": done.status}))
