"""ML commands: `train`, `evaluate`, `register`, `approve`.

They work from local paths (`--stack`, reading the platform outputs, comes later). pandas,
scikit-learn and boto3 are imported inside the commands so that `mlplat --help` stays fast.
Exit codes: 0 done, 1 the evaluation gate refused the model, 2 bad input or usage (message on
stderr).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_ROWS = 50_000


def register(app: typer.Typer) -> None:
    app.command("train")(train)
    app.command("evaluate")(evaluate)
    app.command("register")(register_version)
    app.command("approve")(approve)


def _fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _read_raw(path: Path) -> pd.DataFrame:
    """A raw customers table from a parquet file or directory, or a CSV file."""
    import pandas as pd

    from ml.schema import CUSTOMERS_RAW

    if not path.exists():
        _fail(f"--data {path}: no such file or directory")
    if path.is_dir() or path.suffix == ".parquet":
        frame = pd.read_parquet(path)
    elif path.suffix == ".csv":
        frame = pd.read_csv(path)
        if "event_time" in frame.columns:
            frame["event_time"] = pd.to_datetime(frame["event_time"], utc=True)
    else:
        _fail(f"--data {path}: expected a .parquet file, a directory of parquet files or a .csv")
    dtypes = {c.name: c.pandas_dtype for c in CUSTOMERS_RAW.columns if c.name in frame.columns}
    try:
        return frame.astype(dtypes)
    except (TypeError, ValueError) as err:
        _fail(f"--data {path}: columns do not match the customers schema: {err}")


def _raw_data(data: Path | None, rows: int, seed: int, drift: float) -> pd.DataFrame:
    if data is not None:
        return _read_raw(data)
    from ml.sample_data import generate_customers

    return generate_customers(rows, seed=seed, drift=drift)


def _load_model(path: Path) -> Any:
    import tarfile
    import tempfile

    import joblib

    from ml.contracts import MODEL_FILE

    if path.is_dir():
        path = path / MODEL_FILE
    if not path.exists():
        _fail(f"--model {path}: no such file")
    if path.name.endswith(".tar.gz"):
        with tarfile.open(path) as tar, tempfile.TemporaryDirectory() as tmp:
            try:
                tar.extract(MODEL_FILE, tmp, filter="data")
            except KeyError:
                _fail(f"--model {path}: the archive has no {MODEL_FILE} at its root")
            return joblib.load(Path(tmp) / MODEL_FILE)
    return joblib.load(path)


def _approved_metrics(path: Path | None) -> Any:
    if path is None:
        return None
    from ml.evaluate import EvaluationReport

    try:
        return EvaluationReport.from_dict(json.loads(path.read_text())).overall
    except (OSError, json.JSONDecodeError, ValueError) as err:
        _fail(f"--approved-metrics {path}: not a metrics.json written by training ({err})")


RowsOpt = Annotated[
    int, typer.Option("--rows", min=100, help="Rows of synthetic data when --data is not given.")
]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of the data generator and the model.")]
DriftOpt = Annotated[
    float,
    typer.Option("--drift", min=0.0, max=5.0, help="Drift of the synthetic data (0 = none)."),
]
DataOpt = Annotated[
    Path | None,
    typer.Option(
        "--data", help="Raw customers data (parquet file/dir or CSV); default: synthetic data."
    ),
]
ApprovedOpt = Annotated[
    Path | None,
    typer.Option(
        "--approved-metrics",
        help="metrics.json of the approved model: the candidate must not regress against it.",
    ),
]


def train(
    output: Annotated[
        Path | None,
        typer.Option("--output", help="Local: directory for model.tar.gz and its JSON reports."),
    ] = None,
    on: Annotated[
        str, typer.Option("--on", help="Where to train: local, sagemaker or eks.")
    ] = "local",
    local: Annotated[bool, typer.Option("--local", help="Same as --on local.")] = False,
    data: DataOpt = None,
    rows: RowsOpt = DEFAULT_ROWS,
    seed: SeedOpt = 0,
    drift: DriftOpt = 0.0,
    estimator: Annotated[
        str,
        typer.Option("--estimator", help="logistic_regression or hist_gradient_boosting."),
    ] = "logistic_regression",
    approved_metrics: ApprovedOpt = None,
    stack: Annotated[
        str | None, typer.Option("--stack", "-s", help="Remote: the stack whose platform to use.")
    ] = None,
    outputs: Annotated[
        Path | None,
        typer.Option(
            "--outputs", help="Remote: platform outputs JSON (default: pulumi stack output)."
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Remote: print the request or Job YAML; send nothing.")
    ] = False,
    job_name: Annotated[
        str | None, typer.Option("--job-name", help="Remote: job name (default: churn-<time>).")
    ] = None,
    instance_type: Annotated[
        str | None, typer.Option("--instance-type", help="SageMaker: instance type override.")
    ] = None,
    image: Annotated[
        str | None, typer.Option("--image", help="EKS: training image (default: sklearn 1.9-0).")
    ] = None,
    gpus: Annotated[int, typer.Option("--gpus", help="EKS: GPUs the Job requests.")] = 1,
    wait: Annotated[
        bool,
        typer.Option("--wait", help="EKS: follow the Job until it ends (exit 1 if it fails)."),
    ] = False,
) -> None:
    """Train a churn model: locally (gated, writes DIR/model.tar.gz), on SageMaker or on EKS.

    `--on sagemaker` runs the bundled entry point in the scikit-learn 1.9-0 training image
    (managed spot with checkpoints, in the VPC, KMS); `--on eks` renders a Kubernetes Job for the
    GPU cluster and hands it to the stack's jobs gateway inside the VPC (`--dry-run` prints it;
    `--wait` follows it). Exit 1: the gate refused the model, or the followed Job failed.
    """
    target = "local" if local else on
    if target not in ("local", "sagemaker", "eks"):
        _fail(f"--on {target!r}: expected one of local, sagemaker, eks")
    if target != "local":
        _train_remote(target, stack, outputs, dry_run, job_name, instance_type, image, gpus, wait)
        return
    if output is None:
        _fail("--output DIR is required to train locally")
    from ml.evaluate import GateFailed, check_gate
    from ml.features import FeatureValidationError, build_features, validate_frame
    from ml.package import build_model_tarball
    from ml.train import Hyperparameters, write_outputs
    from ml.train import train as train_model

    try:
        hp = Hyperparameters(estimator=estimator, seed=seed)  # type: ignore[arg-type]
        approved = _approved_metrics(approved_metrics)
        raw = _raw_data(data, rows, seed, drift)
        valid, report = validate_frame(raw, on_invalid="reject")
        if report.n_rejected:
            typer.echo(f"rejected {report.n_rejected} of {report.n_rows} rows: {report.reasons}")
        features = build_features(valid)
        result = train_model(features, hp, data_uri=str(data) if data else "synthetic")
    except (ValueError, FeatureValidationError, FileNotFoundError) as err:
        _fail(str(err))
    gate = check_gate(result.evaluation, approved=approved)
    output.mkdir(parents=True, exist_ok=True)
    (output / "gate.json").write_text(json.dumps(gate.to_dict(), indent=2) + "\n")
    if not gate.passed:
        (output / "metrics.json").write_text(
            json.dumps(result.evaluation.to_dict(), indent=2) + "\n"
        )
        typer.echo(str(GateFailed(gate)), err=True)
        raise typer.Exit(1)
    write_outputs(result, output, with_code=False)
    tarball = build_model_tarball(output, output / "model.tar.gz")
    typer.echo(json.dumps({"model": str(tarball), "metrics": result.metrics.to_dict()}, indent=2))


def _train_remote(
    on: str,
    stack: str | None,
    outputs: Path | None,
    dry_run: bool,
    job_name: str | None,
    instance_type: str | None,
    image: str | None,
    gpus: int,
    wait: bool,
) -> None:
    from ml.outputs import OutputsError
    from ml.remote_training import RemoteTrainingError, TrainingRunFailed
    from mlplat.cli.commands.training import train_remote
    from stacks.settings import SettingsError

    if stack is None:
        _fail(f"--on {on} needs --stack (its settings and platform outputs)")
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
            wait=wait,
            echo=typer.echo,
        )
    except TrainingRunFailed as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    except (RemoteTrainingError, OutputsError, SettingsError) as exc:
        _fail(str(exc))


def evaluate(
    model: Annotated[
        Path, typer.Option("--model", help="model.tar.gz, model.joblib or a directory holding it.")
    ],
    data: DataOpt = None,
    rows: RowsOpt = 20_000,
    seed: SeedOpt = 1,
    drift: DriftOpt = 0.0,
    approved_metrics: ApprovedOpt = None,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Write the evaluation and gate to this file.")
    ] = None,
) -> None:
    """Evaluate a trained model on labelled data (overall, per slice, vs baselines) and gate it."""
    from ml.evaluate import check_gate, fit_baselines
    from ml.evaluate import evaluate as evaluate_model
    from ml.features import FeatureValidationError, build_features

    try:
        approved = _approved_metrics(approved_metrics)
        fitted = _load_model(model)
        features = build_features(_raw_data(data, rows, seed, drift))
        report = evaluate_model(fitted, features, baselines=fit_baselines(features, seed=seed))
    except (ValueError, FeatureValidationError, FileNotFoundError, OSError) as err:
        _fail(str(err))
    gate = check_gate(report, approved=approved)
    document = {"evaluation": report.to_dict(), "gate": gate.to_dict()}
    if json_path is not None:
        json_path.write_text(json.dumps(document, indent=2) + "\n")
    typer.echo(json.dumps({"metrics": report.overall.to_dict()}, indent=2))
    typer.echo(gate.summary(), err=not gate.passed)
    if not gate.passed:
        raise typer.Exit(1)


GroupOpt = Annotated[
    str | None,
    typer.Option("--group", help="Model package group (default: the stack's, with --stack)."),
]
RegionOpt = Annotated[
    str | None, typer.Option("--region", help="AWS region (default: the credential chain's).")
]
StackOpt = Annotated[
    str | None,
    typer.Option("--stack", "-s", help="Take the group and region from this stack's outputs."),
]
OutputsOpt = Annotated[
    Path | None,
    typer.Option("--outputs", help="Platform outputs JSON (instead of `pulumi stack output`)."),
]


def _group_and_region(
    group: str | None, stack: str | None, outputs: Path | None, region: str | None
) -> tuple[str, str | None]:
    """The group and region given, else the platform outputs' (`--stack` or `--outputs`)."""
    if group is not None:
        return group, region
    if stack is None and outputs is None:
        _fail("name the model package group: --group NAME, or --stack S / --outputs FILE")
    from ml.outputs import OutputsError, PlatformOutputs

    try:
        platform = PlatformOutputs.load(stack, outputs)
    except OutputsError as exc:
        _fail(str(exc))
    return platform.model_package_group_name, region or platform.region


def _sagemaker(region: str | None) -> Any:
    import boto3

    return boto3.client("sagemaker", region_name=region)


def _aws_errors() -> tuple[type[Exception], ...]:
    from botocore.exceptions import BotoCoreError, ClientError

    from ml.registry import RegistryError

    return (RegistryError, BotoCoreError, ClientError, ValueError)


def register_version(
    model_data_url: Annotated[
        str, typer.Option("--model-data-url", help="s3:// URI of the uploaded model.tar.gz.")
    ],
    metrics: Annotated[
        Path, typer.Option("--metrics", help="metrics.json written by `mlplat train`.")
    ],
    lineage: Annotated[
        Path | None, typer.Option("--lineage", help="lineage.json written by `mlplat train`.")
    ] = None,
    image_uri: Annotated[
        str | None,
        typer.Option("--image-uri", help="Serving image (default: SageMaker scikit-learn 1.9-0)."),
    ] = None,
    create_group: Annotated[
        bool, typer.Option("--create-group/--no-create-group", help="Create the group if absent.")
    ] = True,
    region: RegionOpt = None,
    group: GroupOpt = None,
    stack: StackOpt = None,
    outputs: OutputsOpt = None,
) -> None:
    """Register a trained model as a new PendingManualApproval version of a model package group."""
    from ml import registry

    group, region = _group_and_region(group, stack, outputs, region)

    try:
        report = json.loads(metrics.read_text())
        overall = report.get("overall", report) if isinstance(report, dict) else None
        if not isinstance(overall, dict):
            _fail(f"--metrics {metrics}: expected the metrics.json written by training")
        lineage_data = json.loads(lineage.read_text()) if lineage else {}
    except (OSError, json.JSONDecodeError) as err:
        _fail(f"cannot read metrics/lineage: {err}")
    try:
        sm = _sagemaker(region)
        image = image_uri or registry.sklearn_image_uri(sm.meta.region_name)
        if create_group:
            registry.ensure_group(group, client=sm)
        version = registry.register_model(
            group,
            model_data_url=model_data_url,
            image_uri=image,
            metrics=overall,
            lineage=lineage_data,
            client=sm,
        )
    except _aws_errors() as err:
        _fail(str(err))
    typer.echo(
        json.dumps({"arn": version.arn, "version": version.version, "status": version.status})
    )


def approve(
    group: GroupOpt = None,
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
    region: RegionOpt = None,
    stack: StackOpt = None,
    outputs: OutputsOpt = None,
) -> None:
    """Approve (or --reject) a version of a model package group."""
    from ml import registry

    group, region = _group_and_region(group, stack, outputs, region)

    try:
        sm = _sagemaker(region)
        versions = registry.list_versions(group, client=sm)
        if not versions:
            _fail(f"group {group!r} has no versions: register one first")
        if version is None:
            chosen = versions[0]
        else:
            matches = [v for v in versions if v.version == version]
            if not matches:
                known = sorted(v.version for v in versions)
                _fail(f"group {group!r} has no version {version}; versions: {known}")
            chosen = matches[0]
        if reject:
            done = registry.reject(chosen.arn, description=description, client=sm)
        else:
            done = registry.approve(chosen.arn, description=description, client=sm)
    except _aws_errors() as err:
        _fail(str(err))
    typer.echo(json.dumps({"arn": done.arn, "version": done.version, "status": done.status}))
