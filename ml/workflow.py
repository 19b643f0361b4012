"""A model's way from data to the registry, written once.

`mlplat train --local`, `mlplat evaluate` and `mlplat register` and the SageMaker training entry
point (`ml.train.run_training_job`) call these functions, so they run the same steps in the same
order. The model pipeline (`ml.pipeline`, which `mlplat sandbox` executes) runs the same stages
as separate steps: its train step `ml.train.train` and `ml.train.write_outputs`, its evaluate
step `ml.evaluate.check_gate` against the serving version:

Every function takes the model (`ml.model.Model`, from `ml.models.load(name)`) it works for.

* `train_candidate(model, features, hp, model_dir=..., approved=...)`: train, evaluate, apply the
  promotion gate against the metrics of the version the candidate would replace, write the model
  directory and, when the gate passes, package it. Returns a `Candidate`.
  `train_candidate_from_raw(model, raw, ...)` does the same from a raw table, whose invalid rows
  are dropped and counted first, and refused as a whole (`RejectedRowsError`) when their share is
  above `max_rejected_share` (default `MAX_REJECTED_SHARE`, as the pipeline's curate step's).
  `search=True` runs the hyperparameter search first (`ml.tuning`). Its stages are public:
  `ml.train.train` → `gate_candidate` → `package_candidate`, each taking what the one before
  returned, so they cannot run out of order.
* `evaluate_model(model, estimator, raw, approved=...)`: score an already trained estimator and
  gate it.
* `register(group, ArtifactUris(...), metrics=...)`: a new version of the model package group,
  with its metrics and lineage as metadata and the uploaded reports attached (`ModelMetrics`): its
  drift baseline and its gate report always, so that `ml.deploy` can check and serve it.
  `register_trained(group, read_reports(path), model_data_url, ...)` does it for a trained model
  (`mlplat register`): its reports, read from the model directory or `model.tar.gz` and refused
  without a baseline or a passed gate report, uploaded beside the model first.
* `pulumi_release(platform, baseline_key)`: how `ml.deploy.deploy` / `rollback` reach a stack with
  the Pulumi CLI (`pulumi up`; the version's drift baseline published, by `deploy`, once the
  deployment is recorded); the sandbox passes its own `ml.deploy.Release`.
* What the callers are handed: `raw_customers` (a file, or synthetic data), `read_metrics` (the
  approved version's `metrics.json`), `load_model` (a `model.tar.gz`, the model's artifact file or
  a directory holding it). They raise `InputError` naming the path; the caller names the option.

The model directory of a candidate the gate refused holds only `gate.json` and `metrics.json`
(why it was refused): no model a later step could ship by mistake.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ml.contracts import (
    BASELINE_FILE,
    BASELINE_FORMAT,
    GATE_FILE,
    LINEAGE_FILE,
    METRICS_FILE,
)
from ml.evaluate import (
    AnyMetrics,
    EvaluationReport,
    GateReport,
    check_gate,
    evaluate,
    fit_baselines,
)
from ml.features import ValidationReport
from ml.train import TrainingResult, train, write_outputs, write_report

if TYPE_CHECKING:
    import pandas as pd

    from ml.deploy import Release
    from ml.model import Model
    from ml.models import Framework
    from ml.outputs import PlatformOutputs
    from ml.registry import ModelVersion


# The largest share of a raw table's rows training may drop as invalid (the pipeline's curate step
# has the same default: `components.model_pipeline.ModelPipelineArgs.max_rejected_share`).
MAX_REJECTED_SHARE = 0.05


class InputError(ValueError):
    """A file the workflow is handed cannot be used; the message starts with its path."""


class RejectedRowsError(ValueError):
    """Too large a share of a raw table failed validation to train on what is left."""

    def __init__(self, report: ValidationReport, threshold: float) -> None:
        self.report = report
        self.threshold = threshold
        reasons = sorted(report.reasons.items(), key=lambda kv: (-kv[1], kv[0]))
        listed = ", ".join(f"{reason} ({count})" for reason, count in reasons) or "(none)"
        super().__init__(
            f"rejected {report.n_rejected} of {report.n_rows} raw rows "
            f"({rejected_share(report):.2%}), above the threshold of {threshold:.2%}: {listed}; "
            "fix the data, or raise the threshold if this share is expected"
        )


def rejected_share(report: ValidationReport) -> float:
    return report.n_rejected / report.n_rows if report.n_rows else 0.0


def check_rejected_share(report: ValidationReport, threshold: float) -> None:
    """Raise `RejectedRowsError` when the rows `report` rejected exceed `threshold` (a share)."""
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"max_rejected_share {threshold} must be between 0 and 1")
    if rejected_share(report) > threshold:
        raise RejectedRowsError(report, threshold)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A trained model, the gate's verdict on it, and where it was written."""

    training: TrainingResult
    gate: GateReport
    model_dir: Path
    # model.tar.gz, or the model directory when it is the package (SageMaker archives it); None
    # until packaged, and for a model the gate refused
    package: Path | None = None
    # the raw rows dropped before training (`train_candidate_from_raw`)
    rejected: ValidationReport | None = None

    @property
    def passed(self) -> bool:
        return self.gate.passed

    @property
    def metrics(self) -> AnyMetrics:
        return self.training.metrics

    def artifacts(self) -> dict[str, Path]:
        """What goes to the registry's prefix, by `ArtifactUris` field: the package and the reports
        attached to the version."""
        if self.package is None or not self.package.is_file():
            raise ValueError(f"no model.tar.gz for {self.model_dir}: refused, or not packaged")
        return {
            "model": self.package,
            "metrics": self.model_dir / METRICS_FILE,
            "baseline": self.model_dir / BASELINE_FILE,
            "gate": self.model_dir / GATE_FILE,
        }


@dataclass(frozen=True, slots=True)
class ArtifactUris:
    """Where a version's files are in S3: the package, and the reports attached to the version
    (the drift baseline and the gate report always; the metrics when uploaded)."""

    model: str
    baseline: str
    gate: str
    metrics: str | None = None


@dataclass(frozen=True, slots=True)
class Reports:
    """A trained model's reports, as registered beside it (`read_reports`): the files as written,
    and the headline metrics and lineage the version's metadata carries."""

    metrics: bytes
    baseline: bytes
    gate: bytes
    overall: dict[str, Any]
    lineage: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Evaluation:
    """An already trained model scored on labelled data, and the gate's verdict."""

    report: EvaluationReport
    gate: GateReport

    def to_dict(self) -> dict[str, Any]:
        return {"evaluation": self.report.to_dict(), "gate": self.gate.to_dict()}


# --- train → evaluate → gate → package ----------------------------------------------------------


def train_candidate(
    model: Model,
    features: pd.DataFrame,
    hp: Any = None,
    *,
    model_dir: Path,
    approved: AnyMetrics | EvaluationReport | None = None,
    validation: pd.DataFrame | None = None,
    data_uri: str = "",
    package: Path | None = None,
    gate_config: Any = None,
    search: bool = False,
) -> Candidate:
    """Train on a labelled feature table, gate against `approved` (the metrics of the version the
    candidate would replace; None: only the baselines and calibration), write `model_dir`.

    With `package`, a passing model is packaged there as `model.tar.gz` (handler code inside).
    Without, the directory itself is the package — SageMaker archives `SM_MODEL_DIR` — and gets
    `code/`. `gate_config` overrides `model.gate`; `search` runs the hyperparameter search
    (`ml.train.train`). Raises `ValueError` on data that cannot be trained on and on a fit that
    does not converge; a refusal is not an error: see `Candidate.passed`.
    """
    result = train(model, features, hp, validation=validation, data_uri=data_uri, search=search)
    candidate = gate_candidate(result, model_dir=model_dir, approved=approved, config=gate_config)
    if not candidate.passed:
        return candidate
    return package_candidate(candidate, package=package)


def gate_candidate(
    result: TrainingResult,
    *,
    model_dir: Path,
    approved: AnyMetrics | EvaluationReport | None = None,
    config: Any = None,
) -> Candidate:
    """The gate's verdict on a trained model, against `approved`; writes `gate.json` to
    `model_dir` (and, for a refused model, the `metrics.json` that explains it)."""
    gate = check_gate(result.model, result.evaluation, approved=approved, config=config)
    model_dir.mkdir(parents=True, exist_ok=True)
    write_report(model_dir / GATE_FILE, gate.to_dict())
    if not gate.passed:
        write_report(model_dir / METRICS_FILE, result.evaluation.to_dict())
    return Candidate(result, gate, model_dir)


def package_candidate(candidate: Candidate, *, package: Path | None = None) -> Candidate:
    """Write a passing candidate's model and reports to its directory and package them: as
    `package` (a model.tar.gz with the handler), or the directory itself with `code/`."""
    from dataclasses import replace

    from ml.package import build_model_tarball

    if not candidate.passed:
        raise ValueError(f"the gate refused the model in {candidate.model_dir}: not packaged")
    model_dir = write_outputs(candidate.training, candidate.model_dir, with_code=package is None)
    packaged = (
        build_model_tarball(candidate.training.model, model_dir, package)
        if package is not None
        else model_dir
    )
    return replace(candidate, package=packaged)


def train_candidate_from_raw(
    model: Model,
    raw: pd.DataFrame,
    hp: Any = None,
    *,
    model_dir: Path,
    approved: AnyMetrics | EvaluationReport | None = None,
    data_uri: str = "",
    package: Path | None = None,
    search: bool = False,
    max_rejected_share: float = MAX_REJECTED_SHARE,
) -> Candidate:
    """`train_candidate` on the features of a raw table; rows the schema refuses are dropped and
    counted (`Candidate.rejected`) while their share is at most `max_rejected_share`. Raises
    `RejectedRowsError` (a `ValueError`: the share, the threshold and the reasons) above it, and
    `FeatureValidationError` when no row could be used (a missing column, a wrong dtype)."""
    from dataclasses import replace

    valid, report = model.features.validate_frame(raw, on_invalid="reject")
    check_rejected_share(report, max_rejected_share)
    candidate = train_candidate(
        model,
        model.features.build_features(valid),
        hp,
        model_dir=model_dir,
        approved=approved,
        data_uri=data_uri,
        package=package,
        search=search,
    )
    return replace(candidate, rejected=report)


def evaluate_model(
    model: Model,
    estimator: Any,
    raw: pd.DataFrame,
    *,
    approved: AnyMetrics | EvaluationReport | None = None,
    seed: int = 0,
) -> Evaluation:
    """Score a trained estimator of `model` on a labelled raw table — overall, per slice, next to
    baselines fitted on the same rows — and gate it against `approved`."""
    features = model.features.build_features(raw)
    report = evaluate(
        model, estimator, features, baselines=fit_baselines(model, features, seed=seed)
    )
    return Evaluation(report, check_gate(model, report, approved=approved))


# --- register -------------------------------------------------------------------------------------


def register(
    group: str,
    uris: ArtifactUris,
    *,
    metrics: Mapping[str, Any],
    lineage: Mapping[str, Any] | None = None,
    image_uri: str | None = None,
    framework: Framework = "sklearn",
    create_group: bool = False,
    client: Any,
) -> ModelVersion:
    """A new `PendingManualApproval` version of `group` serving `uris.model`: its headline
    `metrics` and `lineage` as metadata; `uris.baseline` as its data quality statistics (the drift
    baseline), `uris.gate` as its model quality constraints (the gate report) and `uris.metrics`
    (when uploaded) as its model quality statistics. The image defaults to the SageMaker serving
    image of the model's `framework` (`ModelSpec.framework`) in the client's region;
    `create_group` creates the group when absent. Raises `ml.registry.RegistryError` with the
    reason."""
    from ml import registry

    image = image_uri or registry.serving_image_uri(client.meta.region_name, framework)
    if create_group:
        registry.ensure_group(group, client=client)
    return registry.register_model(
        group,
        model_data_url=uris.model,
        image_uri=image,
        metrics=metrics,
        lineage=lineage,
        baseline_s3_uri=uris.baseline,
        gate_s3_uri=uris.gate,
        metrics_s3_uri=uris.metrics,
        client=client,
    )


def register_trained(
    group: str,
    reports: Reports,
    model_data_url: str,
    *,
    sagemaker: Any,
    s3: Any,
    kms_key_arn: str | None = None,
    image_uri: str | None = None,
    framework: Framework = "sklearn",
    create_group: bool = False,
) -> ModelVersion:
    """Register the model uploaded at `model_data_url` (`s3://bucket/.../model.tar.gz`): its
    `reports` (`read_reports`) are uploaded beside it (SSE-KMS with `kms_key_arn` when given: the
    lake's buckets refuse other puts), then attached to the new version (`register`). Raises
    `ml.registry.RegistryError` when the model is not there or a report cannot be uploaded."""
    import posixpath

    from botocore.exceptions import BotoCoreError, ClientError

    from ml.registry import RegistryError

    bucket, _, key = model_data_url.removeprefix("s3://").partition("/")
    if not model_data_url.startswith("s3://") or not bucket or not key or key.endswith("/"):
        raise RegistryError(
            f"model_data_url must be the s3://bucket/key of the uploaded model.tar.gz, got "
            f"{model_data_url!r}"
        )
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except (ClientError, BotoCoreError) as err:
        raise RegistryError(
            f"cannot read {model_data_url} ({err}): upload the model.tar.gz there first"
        ) from None
    sse = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key_arn} if kms_key_arn else {}
    uris: dict[str, str] = {}
    files = {
        "baseline": (BASELINE_FILE, reports.baseline),
        "gate": (GATE_FILE, reports.gate),
        "metrics": (METRICS_FILE, reports.metrics),
    }
    for field_name, (name, body) in files.items():
        beside = posixpath.join(posixpath.dirname(key), name)
        try:
            s3.put_object(
                Bucket=bucket, Key=beside, Body=body, ContentType="application/json", **sse
            )
        except (ClientError, BotoCoreError) as err:
            raise RegistryError(f"cannot upload {name} to s3://{bucket}/{beside}: {err}") from None
        uris[field_name] = f"s3://{bucket}/{beside}"
    return register(
        group,
        ArtifactUris(model=model_data_url, **uris),
        metrics=reports.overall,
        lineage=reports.lineage,
        image_uri=image_uri,
        framework=framework,
        create_group=create_group,
        client=sagemaker,
    )


# --- deploy ---------------------------------------------------------------------------------------


def pulumi_release(
    platform: PlatformOutputs,
    baseline_key: str,
    *,
    model: str | None = None,
    cwd: Path | None = None,
    model_key: str | None = None,
) -> Release:
    """How `ml.deploy.deploy` / `rollback` reach the stack of `platform` with the Pulumi CLI: the
    apply sets the stack's model and `pulumi up`s it (`ml.deploy.pulumi_apply`, nothing more); once
    the deployment is recorded, `deploy` publishes the version's drift baseline to `baseline_key`
    and its artifact to `model_key` in the stack's models bucket (encrypted with the lake key),
    where its drift job reads them."""
    from ml.deploy import BaselineTarget, Release, pulumi_apply

    def apply(stack: str, model_package_arn: str) -> None:
        pulumi_apply(stack, model_package_arn, model=model, cwd=cwd)

    target = BaselineTarget(
        platform.models_bucket, baseline_key, platform.lake_kms_key_arn or None, model_key
    )
    return Release(apply, target)


# --- what the callers are handed ------------------------------------------------------------------


def raw_customers(
    path: Path | None, *, rows: int = 50_000, seed: int = 0, drift: float = 0.0
) -> pd.DataFrame:
    """The raw customers table at `path` (parquet file or directory, or CSV); without a path,
    `rows` synthetic customers (`ml.sample_data.generate_customers`)."""
    if path is not None:
        return read_raw_customers(path)
    from ml.sample_data import generate_customers

    return generate_customers(rows, seed=seed, drift=drift)


def read_raw_customers(path: Path) -> pd.DataFrame:
    """A raw customers table from a parquet file or directory, or a CSV file."""
    import pandas as pd

    from ml.schema import CUSTOMERS_RAW

    if not path.exists():
        raise InputError(f"{path}: no such file or directory")
    if path.is_dir() or path.suffix == ".parquet":
        frame = pd.read_parquet(path)
    elif path.suffix == ".csv":
        frame = pd.read_csv(path)
        if "event_time" in frame.columns:
            frame["event_time"] = pd.to_datetime(frame["event_time"], utc=True)
    else:
        raise InputError(
            f"{path}: expected a .parquet file, a directory of parquet files or a .csv"
        )
    dtypes = {c.name: c.pandas_dtype for c in CUSTOMERS_RAW.columns if c.name in frame.columns}
    try:
        return frame.astype(dtypes)
    except (TypeError, ValueError) as err:
        raise InputError(f"{path}: columns do not match the customers schema: {err}") from None


def read_metrics(path: Path) -> EvaluationReport:
    """The evaluation a `metrics.json` written by training holds (overall, slices, groups: the
    gate holds a candidate to all of it)."""
    try:
        return EvaluationReport.from_dict(json.loads(path.read_text()))
    except (OSError, json.JSONDecodeError, ValueError) as err:
        raise InputError(f"{path}: not a metrics.json written by training ({err})") from None


def read_reports(
    path: Path, *, metrics: Path | None = None, lineage: Path | None = None
) -> Reports:
    """The reports of the trained model at `path` (the directory `mlplat train --local` wrote, or
    its `model.tar.gz`): `baseline.json` and a `gate.json` that says passed are required, as is
    `metrics.json` (or `metrics`); `lineage.json` (or `lineage`) when present. Raises
    `InputError` naming the path and what is missing or wrong."""
    from ml.deploy import gate_refusal

    files = _model_files(path)
    gate = _required(files, GATE_FILE, path, "the evaluation gate's report")
    refusal = gate_refusal(_json(gate, f"{path}: {GATE_FILE}"))
    if refusal is not None:
        raise InputError(
            f"{path}: its {GATE_FILE} does not say passed ({refusal}): a model the evaluation "
            "gate refused is not registered"
        )
    baseline_text = _required(files, BASELINE_FILE, path, "the drift baseline")
    baseline = _json(baseline_text, f"{path}: {BASELINE_FILE}")
    if not isinstance(baseline, dict) or baseline.get("format") != BASELINE_FORMAT:
        raise InputError(f"{path}: its {BASELINE_FILE} is not a {BASELINE_FORMAT} baseline")
    metrics_text = _read_bytes(metrics) if metrics else files.get(METRICS_FILE)
    if metrics_text is None:
        raise InputError(f"{path}: no {METRICS_FILE}; pass the metrics.json training wrote")
    report = _json(metrics_text, str(metrics or f"{path}: {METRICS_FILE}"))
    overall = report.get("overall", report) if isinstance(report, dict) else None
    if not isinstance(overall, dict):
        raise InputError(f"{metrics or path}: expected the metrics.json written by training")
    lineage_text = _read_bytes(lineage) if lineage else files.get(LINEAGE_FILE)
    lineage_data = _json(lineage_text, str(lineage or path)) if lineage_text else {}
    if not isinstance(lineage_data, dict):
        raise InputError(f"{lineage or path}: expected the lineage.json written by training")
    return Reports(
        metrics=metrics_text,
        baseline=baseline_text,
        gate=gate,
        overall=overall,
        lineage=lineage_data,
    )


def _required(files: Mapping[str, bytes], name: str, path: Path, what: str) -> bytes:
    if name not in files:
        raise InputError(
            f"{path}: no {name} ({what}): register the directory `mlplat train --local --output "
            "DIR` wrote, or its model.tar.gz"
        )
    return files[name]


def _model_files(path: Path) -> dict[str, bytes]:
    """The report files of a model directory or at the root of its model.tar.gz."""
    import tarfile

    from ml.contracts import COMPANION_FILES

    if path.is_dir():
        return {n: (path / n).read_bytes() for n in COMPANION_FILES if (path / n).is_file()}
    if not path.exists():
        raise InputError(f"{path}: no such file or directory")
    try:
        with tarfile.open(path) as tar:
            names = set(tar.getnames())
            members = {n: tar.extractfile(n) for n in COMPANION_FILES if n in names}
            return {n: f.read() for n, f in members.items() if f is not None}
    except tarfile.TarError:
        raise InputError(
            f"{path}: expected a model directory (`mlplat train --local --output DIR`) or its "
            "model.tar.gz"
        ) from None


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise InputError(f"{path}: {err.strerror or err}") from None


def _json(text: bytes, where: str) -> Any:
    try:
        return json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(f"{where}: not JSON ({err})") from None


def load_model(model: Model, path: Path) -> Any:
    """The fitted estimator of `model` in a `model.tar.gz`, its artifact file (`model.joblib` for
    a scikit-learn model) or a directory holding it (`model.load`)."""
    import shutil
    import tarfile
    import tempfile

    name = model.artifact_file
    if path.is_dir():
        path = path / name
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.name == name:
        return model.load(path.parent)
    with tempfile.TemporaryDirectory() as tmp:
        if path.name.endswith(".tar.gz"):
            with tarfile.open(path) as tar:
                try:
                    tar.extract(name, tmp, filter="data")
                except KeyError:
                    raise InputError(f"{path}: the archive has no {name} at its root") from None
        else:
            shutil.copyfile(path, Path(tmp) / name)
        return model.load(Path(tmp))
