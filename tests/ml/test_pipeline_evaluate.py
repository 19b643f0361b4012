"""`python -m ml.pipeline evaluate`: the gate against the version that serves, on moto."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from moto import mock_aws

from ml.contracts import (
    BASELINE_FILE,
    GATE_FILE,
    LINEAGE_FILE,
    METRICS_FILE,
    MODEL_ENV,
    PROCESSING_MESSAGE_FILE,
    register_metadata,
)
from ml.deploy import serving_version
from ml.models import load
from ml.package import build_model_tarball
from ml.pipeline.__main__ import main
from ml.train import TrainingResult, write_outputs

REGION = "us-east-1"
MODELS = "models-bucket"
STACK = "prod"
_GROUPS = itertools.count(1)


@pytest.fixture(scope="module")
def candidate(trained: TrainingResult, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The training step's output as the evaluate step gets it: a directory with model.tar.gz."""
    model_dir = write_outputs(trained, tmp_path_factory.mktemp("trained"))
    target = tmp_path_factory.mktemp("input") / "model"
    build_model_tarball(trained.model, model_dir, target / "model.tar.gz")
    return target


@pytest.fixture
def aws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SimpleNamespace]:
    monkeypatch.setenv("SM_OUTPUT_DIR", str(tmp_path / "opt-ml-output"))
    monkeypatch.setenv(MODEL_ENV, "churn")
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=MODELS)
        sagemaker = boto3.client("sagemaker", region_name=REGION)
        group = f"churn-{next(_GROUPS)}"
        sagemaker.create_model_package_group(ModelPackageGroupName=group)
        yield SimpleNamespace(s3=s3, sagemaker=sagemaker, group=group, root=tmp_path, keys={})


def metrics_of(trained: TrainingResult, shift: float) -> dict[str, Any]:
    """The candidate's evaluation with its overall metrics moved: > 0 better, < 0 worse."""
    report = trained.evaluation.to_dict()
    overall = report["overall"]
    overall["roc_auc"] = min(overall["roc_auc"] + shift, 1.0)
    overall["pr_auc"] = min(overall["pr_auc"] + shift, 1.0)
    overall["log_loss"] = max(overall["log_loss"] - shift, 0.01)
    return report


def add_version(aws: SimpleNamespace, metrics: dict[str, Any], **properties: str) -> str:
    """An approved version whose metrics.json is in S3 (ModelQuality statistics)."""
    key = f"{aws.group}/v{next(_GROUPS)}/metrics.json"
    aws.s3.put_object(Bucket=MODELS, Key=key, Body=json.dumps(metrics).encode())
    arn = aws.sagemaker.create_model_package(
        ModelPackageGroupName=aws.group,
        ModelApprovalStatus="Approved",
        InferenceSpecification={
            "Containers": [{"Image": "sklearn:1.9", "ModelDataUrl": f"s3://{MODELS}/m.tar.gz"}],
            "SupportedContentTypes": ["application/json"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
        ModelMetrics={
            "ModelQuality": {
                "Statistics": {
                    "ContentType": "application/json",
                    "S3Uri": f"s3://{MODELS}/{key}",
                }
            }
        },
        **({"CustomerMetadataProperties": properties} if properties else {}),
    )["ModelPackageArn"]
    aws.keys[arn] = key
    return str(arn)


def evaluate(aws: SimpleNamespace, candidate: Path) -> dict[str, Any]:
    out = aws.root / "evaluation"
    code = main(
        [
            "evaluate",
            "--group",
            aws.group,
            "--stack",
            STACK,
            "--region",
            REGION,
            "--model",
            str(candidate),
            "--out",
            str(out),
        ]
    )
    assert code == 0  # a refusal included: the Condition step decides
    report: dict[str, Any] = json.loads((out / GATE_FILE).read_text())
    return report


@pytest.fixture
def history(aws: SimpleNamespace, trained: TrainingResult) -> SimpleNamespace:
    """Three approved versions. `rolled_back` was deployed after `serving` and rolled back (so
    `serving` serves again, deploy-seq 3); `newest`, the highest approved, went to staging only.
    The two that do not serve are much better than the candidate."""
    better = metrics_of(trained, +0.04)
    rolled_back = add_version(aws, better, **{"deploy-seq.prod": "2", "rolled-back-seq.prod": "3"})
    serving = add_version(aws, metrics_of(trained, -0.04), **{"deploy-seq.prod": "3"})
    newest = add_version(aws, better, **{"deploy-seq.staging": "1"})
    return SimpleNamespace(serving=serving, rolled_back=rolled_back, newest=newest)


def test_the_serving_version_is_the_latest_deployment_not_rolled_back(
    aws: SimpleNamespace, history: SimpleNamespace
) -> None:
    found = serving_version(aws.group, STACK, client=aws.sagemaker)
    assert found is not None and found["ModelPackageArn"] == history.serving
    assert serving_version(aws.group, "dev", client=aws.sagemaker) is None


def test_a_better_candidate_passes_against_the_serving_version_not_the_highest_approved(
    aws: SimpleNamespace, history: SimpleNamespace, candidate: Path, trained: TrainingResult
) -> None:
    report = evaluate(aws, candidate)
    assert report["passed"] is True
    assert report["failed"] == []
    assert report["servingVersion"] == history.serving
    assert report["message"].startswith("gate passed (")
    assert f"against the version serving 'prod' ({history.serving})" in report["message"]
    names = {c["name"] for c in report["checks"]}
    assert {"roc_auc vs approved", "pr_auc vs approved", "log_loss vs approved"} <= names
    # and per slice, against the serving version's same slices
    sliced = {
        f"roc_auc vs approved [{col}={value}]"
        for col, values in trained.evaluation.slices.items()
        for value in values
    }
    assert sliced and sliced <= names

    overall = trained.evaluation.overall
    assert set(report["metadata"]) == set(register_metadata(load("churn").spec.metrics).values())
    assert report["metadata"]["roc_auc"] == repr(overall.roc_auc)
    assert report["metadata"]["log_loss"] == repr(overall.log_loss)
    assert report["metadata"]["data_version"] == trained.lineage["data"]["version"]
    assert all(isinstance(v, str) and v for v in report["metadata"].values())

    out = aws.root / "evaluation"
    assert json.loads((out / METRICS_FILE).read_text()) == json.loads(
        json.dumps(trained.evaluation.to_dict())
    )
    assert json.loads((out / BASELINE_FILE).read_text())["format"] == "mlplat-baseline/1"
    assert (
        json.loads((out / LINEAGE_FILE).read_text())["data"]["version"]
        == (trained.lineage["data"]["version"])
    )


def test_a_worse_candidate_is_refused_naming_each_failed_rule(
    aws: SimpleNamespace, candidate: Path, trained: TrainingResult
) -> None:
    add_version(aws, metrics_of(trained, -0.04), **{"deploy-seq.prod": "1"})
    serving = add_version(aws, metrics_of(trained, +0.04), **{"deploy-seq.prod": "2"})
    report = evaluate(aws, candidate)
    assert report["passed"] is False
    assert report["servingVersion"] == serving
    assert report["failed"] == ["roc_auc vs approved", "pr_auc vs approved", "log_loss vs approved"]
    message = report["message"]
    assert message.startswith("gate refused: roc_auc vs approved: candidate ")
    assert " | log_loss vs approved: candidate " in message
    overall = trained.evaluation.overall
    assert f"candidate {overall.log_loss:.4f} vs approved {overall.log_loss - 0.04:.4f}" in message
    assert message.endswith(f"(against the version serving 'prod' ({serving}))")


def test_without_a_deployment_the_gate_runs_against_the_baselines_only(
    aws: SimpleNamespace, candidate: Path, trained: TrainingResult
) -> None:
    add_version(aws, metrics_of(trained, +0.04))  # approved, never deployed
    report = evaluate(aws, candidate)
    assert report["passed"] is True
    assert report["servingVersion"] is None
    assert report["message"].endswith("against the baselines only: no version serves 'prod'")
    assert not any("vs approved" in c["name"] for c in report["checks"])


def test_a_serving_version_without_metrics_fails_the_step(
    aws: SimpleNamespace,
    candidate: Path,
    trained: TrainingResult,
    capsys: pytest.CaptureFixture[str],
) -> None:
    arn = add_version(aws, metrics_of(trained, 0.0), **{"deploy-seq.prod": "1"})
    aws.s3.delete_object(Bucket=MODELS, Key=aws.keys[arn])
    args = ["--group", aws.group, "--stack", STACK, "--region", REGION]
    code = main(["evaluate", *args, "--model", str(candidate), "--out", str(aws.root / "e")])
    err = capsys.readouterr().err.splitlines()
    assert code == 1
    assert err[-1].startswith(f"evaluate failed: cannot read the metrics of {arn} at s3://")
    assert (aws.root / "opt-ml-output" / PROCESSING_MESSAGE_FILE).read_text() == err[-1]


def test_a_model_input_without_an_archive_fails_the_step(
    aws: SimpleNamespace, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = aws.root / "model"
    empty.mkdir()
    args = ["--group", aws.group, "--stack", STACK, "--region", REGION]
    assert main(["evaluate", *args, "--model", str(empty), "--out", str(aws.root / "e")]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"evaluate failed: expected one model.tar.gz in {empty}, found none"
    ]


def test_a_candidate_worse_on_one_slice_than_the_serving_version_is_refused_naming_it(
    aws: SimpleNamespace, candidate: Path, trained: TrainingResult
) -> None:
    column, value, slice_metrics = max(
        (
            (column, value, m)
            for column, values in trained.evaluation.slices.items()
            for value, m in values.items()
        ),
        key=lambda found: found[2].n,
    )
    assert slice_metrics.n >= load("churn").gate.min_slice_rows
    serving = metrics_of(trained, 0.0)  # the same overall figures...
    serving["slices"][column][value]["roc_auc"] = min(slice_metrics.roc_auc + 0.1, 1.0)
    add_version(aws, serving, **{"deploy-seq.prod": "1"})  # ...but better on that slice
    report = evaluate(aws, candidate)
    assert report["passed"] is False
    assert report["failed"] == [f"roc_auc vs approved [{column}={value}]"]
    assert report["message"].startswith(f"gate refused: roc_auc vs approved [{column}={value}]")


def test_a_serving_version_from_before_groups_and_importance_still_gates(
    aws: SimpleNamespace, candidate: Path, trained: TrainingResult
) -> None:
    old = {k: v for k, v in metrics_of(trained, -0.04).items() if k in ("overall", "slices")}
    old["baselines"] = trained.evaluation.to_dict()["baselines"]
    add_version(aws, old, **{"deploy-seq.prod": "1"})
    report = evaluate(aws, candidate)
    assert report["passed"] is True
    checks = {c["name"]: c for c in report["checks"]}
    # every slice value of the candidate is held to the floor, measured or not
    floors = {name for name in checks if name.startswith("roc_auc floor [")}
    assert floors == {
        f"roc_auc floor [{column}={value}]"
        for column in (*trained.evaluation.slices, *trained.evaluation.unjudged)
        for value in (
            *trained.evaluation.slices.get(column, {}),
            *trained.evaluation.unjudged.get(column, {}),
        )
    }
    # the group gaps are listed, judged or said not to be
    gaps = [checks[f"{m} gap [is_senior]"] for m in ("calibration", "fpr", "fnr")]
    assert all(c["passed"] for c in gaps)
    # the decision about the sensitive attribute travels in the package's metrics.json
    metrics = json.loads((aws.root / "evaluation" / METRICS_FILE).read_text())
    assert metrics["groups"]["is_senior"]["use"] == "feature"
    assert metrics["groups"]["is_senior"]["reason"] == load("churn").spec.sensitive[0].reason
