"""The evaluate step: the promotion gate, against the baselines and the version that serves now.

Reads the candidate's reports from the training step's model.tar.gz (metrics.json: its
evaluation on held-out rows, with the baselines; baseline.json; lineage.json), finds the version
of the model package group that serves the stack from the registry's deploy history
(`ml.deploy.serving_version`: the latest deployment not rolled back, not the highest approved
version), reads that version's metrics (its ModelQuality statistics in S3), and runs
`ml.evaluate.check_gate` (the model's gate) against them: the baselines, the serving version's
overall figures, every slice on its own and against the serving version's same slice, and the
gaps between the groups of each sensitive attribute (a metrics.json written before slices,
groups or importance existed is read as such: what it lacks is not compared). Writes to the
evaluation output:

* `gate.json`, the pipeline's property file (format in `ml.contracts`): `passed`, `message` (each
  failed rule with its figures, which the Fail step shows), `failed`, `servingVersion`,
  `metadata` (the register step's metric.* properties), and every check;
* `metrics.json`, `baseline.json`, `lineage.json`: the candidate's, attached when registered.

A refusal is a result, not an error: the step exits 0 and the pipeline's Condition decides.
"""

from __future__ import annotations

import json
import tarfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ml.contracts import (
    BASELINE_FILE,
    GATE_FILE,
    LINEAGE_FILE,
    METRICS_FILE,
    register_metadata,
)
from ml.evaluate import EvaluationReport, GateReport, check_gate
from ml.model import Model
from ml.pipeline.common import StepError
from ml.train import write_report

CANDIDATE_FILES: tuple[str, ...] = (METRICS_FILE, BASELINE_FILE, LINEAGE_FILE)


def read_candidate(model: Path) -> dict[str, bytes]:
    """The candidate's reports from its model.tar.gz (`model`: the archive or its directory)."""
    if model.is_dir():
        archives = sorted(model.glob("*.tar.gz"))
        if len(archives) != 1:
            raise StepError(
                f"expected one model.tar.gz in {model}, found "
                f"{', '.join(a.name for a in archives) or 'none'}"
            )
        model = archives[0]
    if not model.is_file():
        raise StepError(f"no model archive at {model}: is the training step's output mapped?")
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(model) as tar:
            for member in tar.getmembers():
                name = member.name.removeprefix("./")
                if name in CANDIDATE_FILES and member.isfile():
                    data = tar.extractfile(member)
                    if data is not None:
                        found[name] = data.read()
    except (tarfile.TarError, OSError) as exc:
        raise StepError(f"{model} is not a readable model archive: {exc}") from None
    missing = [n for n in CANDIDATE_FILES if n not in found]
    if missing:
        raise StepError(f"{model} lacks {', '.join(missing)}: not written by the training step")
    return found


def serving_metrics(
    group: str, stack: str, *, sagemaker: Any, s3: Any
) -> tuple[str | None, EvaluationReport | None]:
    """(ARN, evaluation report) of the version that serves `stack`, or (None, None)."""
    from ml.deploy import DeployError, serving_version

    try:
        package = serving_version(group, stack, client=sagemaker)
    except DeployError as exc:
        raise StepError(str(exc)) from None
    if package is None:
        return None, None
    arn = str(package["ModelPackageArn"])
    statistics = package.get("ModelMetrics", {}).get("ModelQuality", {}).get("Statistics", {})
    uri = str(statistics.get("S3Uri") or "")
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not uri.startswith("s3://") or not bucket or not key:
        raise StepError(
            f"{arn} serves {stack!r} but has no metrics (ModelMetrics.ModelQuality.Statistics "
            f"is {uri or 'absent'}): the candidate cannot be compared with it"
        )
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        report = EvaluationReport.from_dict(json.loads(body))
    except (ValueError, KeyError, TypeError) as exc:
        raise StepError(
            f"the metrics of {arn} at {uri} are not an evaluation report: {exc}"
        ) from None
    except Exception as exc:  # botocore's errors: the reason is what matters here
        raise StepError(f"cannot read the metrics of {arn} at {uri}: {exc}") from None
    return arn, report


def gate_file(
    gate: GateReport,
    candidate: EvaluationReport,
    lineage: dict[str, Any],
    *,
    serving: str | None,
    stack: str,
    metrics: tuple[str, ...],
) -> dict[str, Any]:
    """The property file (`GATE_PROPERTY_FILE`): what the Condition, Fail and Register read;
    `metrics`: the model's task metrics, registered as `metric.<name>` metadata."""
    if serving:
        against = f"the version serving {stack!r} ({serving})"
    else:
        against = f"the baselines only: no version serves {stack!r}"
    if gate.passed:
        message = f"gate passed ({len(gate.checks)} checks) against {against}"
    else:
        rules = " | ".join(f"{c.name}: {c.detail}" for c in gate.failures)
        message = f"gate refused: {rules} (against {against})"
    values = {**candidate.overall.to_dict(), "data_version": lineage.get("data", {}).get("version")}
    metadata = {key: _property(values.get(key)) for key in register_metadata(metrics).values()}
    return {
        "passed": gate.passed,
        "message": message,
        "failed": [c.name for c in gate.failures],
        "servingVersion": serving,
        "metadata": metadata,
        "checks": [asdict(c) for c in gate.checks],
    }


def _property(value: Any) -> str:
    """A metadata property value (a non-empty string)."""
    if value is None:
        return "none"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def run_evaluate(
    model: Model,
    *,
    group: str,
    stack: str,
    archive: Path,
    out: Path,
    sagemaker: Any,
    s3: Any,
) -> dict[str, Any]:
    """Gate the candidate of `model` in `archive` (its model.tar.gz, or the directory holding it)
    and write the evaluation output to `out` (see the module docstring). Returns the property
    file."""
    files = read_candidate(archive)
    try:
        candidate = EvaluationReport.from_dict(json.loads(files[METRICS_FILE]))
        lineage = json.loads(files[LINEAGE_FILE])
        json.loads(files[BASELINE_FILE])
    except (ValueError, KeyError, TypeError) as exc:
        raise StepError(f"the candidate's reports are not readable: {exc}") from None
    serving, approved = serving_metrics(group, stack, sagemaker=sagemaker, s3=s3)
    gate = check_gate(model, candidate, approved=approved)
    report = gate_file(
        gate, candidate, lineage, serving=serving, stack=stack, metrics=model.spec.metrics
    )
    out.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (out / name).write_bytes(data)
    write_report(out / GATE_FILE, report)
    return report
