from __future__ import annotations

import inspect
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pandas as pd
import pytest
import typer
from moto import mock_aws
from typer.testing import CliRunner

from mlplat.cli.commands import ml as ml_commands
from tests.ml.test_registry_source import FILES, commit_all, git


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    app = typer.Typer()
    ml_commands.register(app)
    return app


runner = CliRunner()


@pytest.fixture(scope="module")
def trained_dir(app: typer.Typer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "run"
    result = runner.invoke(app, ["train", "--local", "--output", str(out), "--rows", "3000"])
    assert result.exit_code == 0, result.output
    return out


def test_train_writes_the_tarball_and_companions(trained_dir: Path) -> None:
    names = {p.name for p in trained_dir.iterdir()}
    assert {
        "model.tar.gz",
        "model.joblib",
        "metrics.json",
        "baseline.json",
        "lineage.json",
        "gate.json",
    } <= names
    with tarfile.open(trained_dir / "model.tar.gz") as tar:
        assert "code/inference.py" in tar.getnames()
    assert json.loads((trained_dir / "lineage.json").read_text())["model"] == "churn"


def test_a_trained_artifact_names_its_model(trained_dir: Path, tmp_path: Path) -> None:
    from mlplat.cli.commands.ml import _model_of

    assert _model_of(trained_dir / "model.tar.gz") == "churn"  # its code/ml/models/churn
    assert _model_of(trained_dir) == "churn"  # its lineage.json
    (tmp_path / "lineage.json").write_text(json.dumps({"model": "spend"}))
    assert _model_of(tmp_path) == "spend"


def test_train_from_a_data_file_rejects_bad_rows(
    app: typer.Typer, raw: pd.DataFrame, tmp_path: Path
) -> None:
    bad = raw.copy()
    bad.loc[bad.index[0], "region"] = "mars"
    bad.to_parquet(tmp_path / "raw.parquet")
    result = runner.invoke(
        app,
        [
            "train",
            "--local",
            "--output",
            str(tmp_path / "o"),
            "--data",
            str(tmp_path / "raw.parquet"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "rejected 1 of 4000 rows" in result.output


def test_train_refuses_data_above_the_rejected_share_and_can_search(
    app: typer.Typer, raw: pd.DataFrame, tmp_path: Path
) -> None:
    from ml.workflow import MAX_REJECTED_SHARE

    bad = raw.copy()
    bad.loc[bad.index[:2], "region"] = "mars"  # 2 of 4,000 rows: 0.05%
    bad.to_parquet(tmp_path / "raw.parquet")
    args = [
        "train",
        "--local",
        "--output",
        str(tmp_path / "o"),
        "--data",
        str(tmp_path / "raw.parquet"),
    ]
    refused = runner.invoke(app, [*args, "--max-rejected-share", "0.0001"])
    assert refused.exit_code == 2
    assert "above the threshold of 0.01%" in refused.output
    searched = runner.invoke(app, [*args, "--search"])
    assert searched.exit_code == 0, searched.output
    lineage = json.loads((tmp_path / "o" / "lineage.json").read_text())
    assert lineage["search"]["chosen"] and lineage["search"]["trials"]
    # the option's default is the workflow's (the CLI does not import it at start-up)
    default = inspect.signature(ml_commands.train).parameters["max_rejected_share"].default
    assert default == MAX_REJECTED_SHARE


def test_evaluate_and_gate_against_approved(
    app: typer.Typer, trained_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "eval.json"
    ok = runner.invoke(
        app,
        [
            "evaluate",
            "--model",
            str(trained_dir / "model.tar.gz"),
            "--rows",
            "3000",
            "--json",
            str(out),
        ],
    )
    assert ok.exit_code == 0, ok.output
    assert json.loads(out.read_text())["gate"]["passed"] is True
    perfect = {
        "overall": {
            "n": 1,
            "positive_rate": 0.3,
            "roc_auc": 0.99,
            "pr_auc": 0.99,
            "log_loss": 0.01,
            "brier": 0.01,
            "ece": 0.0,
        }
    }
    (tmp_path / "approved.json").write_text(json.dumps(perfect))
    failed = runner.invoke(
        app,
        [
            "evaluate",
            "--model",
            str(trained_dir),
            "--rows",
            "3000",
            "--approved-metrics",
            str(tmp_path / "approved.json"),
        ],
    )
    assert failed.exit_code == 1
    assert "roc_auc vs approved" in failed.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--local"], "--output DIR is required to train locally"),
        (["train", "--local", "--output", "x", "--data", "/no/such.parquet"], "no such file"),
        (["train", "--local", "--output", "x", "--estimator", "svm"], "estimator='svm'"),
        (
            ["train", "--local", "--output", "x", "--model", "fraud"],
            "--model 'fraud': no such model; the models: churn, spend",
        ),
        (["evaluate", "--model", "/no/model.tar.gz"], "no such file"),
    ],
)
def test_bad_usage_exits_2_with_a_message(
    app: typer.Typer, args: list[str], message: str, tmp_path: Path
) -> None:
    result = runner.invoke(
        app, [a.replace("x", str(tmp_path / "x")) if a == "x" else a for a in args]
    )
    assert result.exit_code == 2
    assert message in result.output


@pytest.fixture
def aws(trained_dir: Path) -> Iterator[Any]:
    """moto, with the trained model uploaded to s3://models-b/model.tar.gz."""
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="models-b")
        s3.put_object(
            Bucket="models-b", Key="model.tar.gz", Body=(trained_dir / "model.tar.gz").read_bytes()
        )
        yield boto3.client("sagemaker", region_name="us-east-1")


def test_register_then_approve(app: typer.Typer, trained_dir: Path, aws: Any) -> None:
    args = [
        "register",
        "--group",
        "churn",
        "--model",
        str(trained_dir),
        "--model-data-url",
        "s3://models-b/model.tar.gz",
        "--region",
        "us-east-1",
        "--allow-dirty",  # this checkout: the source check has its own tests below
    ]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["status"] == "PendingManualApproval"
    # the version carries its baseline and its gate report, uploaded beside the model
    described = aws.describe_model_package(ModelPackageName=json.loads(first.stdout)["arn"])
    reports = described["ModelMetrics"]
    assert reports["ModelDataQuality"]["Statistics"]["S3Uri"] == "s3://models-b/baseline.json"
    assert reports["ModelQuality"]["Constraints"]["S3Uri"] == "s3://models-b/gate.json"
    s3 = boto3.client("s3", region_name="us-east-1")
    gate = s3.get_object(Bucket="models-b", Key="gate.json")["Body"].read()
    assert gate == (trained_dir / "gate.json").read_bytes()
    assert described["CustomerMetadataProperties"]["data.uri"] == "synthetic"
    runner.invoke(app, args)
    approved = runner.invoke(
        app, ["approve", "--group", "churn", "--version", "1", "--region", "us-east-1"]
    )
    assert approved.exit_code == 0, approved.output
    assert json.loads(approved.output) == {
        "arn": "arn:aws:sagemaker:us-east-1:123456789012:model-package/churn/1",
        "version": 1,
        "status": "Approved",
    }
    rejected = runner.invoke(
        app, ["approve", "--group", "churn", "--reject", "--region", "us-east-1"]
    )
    assert json.loads(rejected.output)["version"] == 2
    assert json.loads(rejected.output)["status"] == "Rejected"
    missing = runner.invoke(
        app, ["approve", "--group", "churn", "--version", "7", "--region", "us-east-1"]
    )
    assert missing.exit_code == 2
    assert "has no version 7; versions: [1, 2]" in missing.output


def test_approve_an_empty_group_exits_2(app: typer.Typer, aws: Any) -> None:
    result = runner.invoke(app, ["approve", "--group", "ghost", "--region", "us-east-1"])
    assert result.exit_code == 2
    assert "group 'ghost' has no versions" in result.output


def test_group_and_region_come_from_the_platform_outputs(
    app: typer.Typer, trained_dir: Path, aws: Any, tmp_path: Path
) -> None:
    from tests.ml.conftest import platform_with

    outputs = tmp_path / "outputs.json"
    platform = platform_with(outputs={"region": "us-east-1"}, model_package_group_name="churn-dev")
    outputs.write_text(json.dumps(platform.to_json()))
    registered = runner.invoke(
        app,
        [
            "register",
            "--outputs",
            str(outputs),
            "--model",
            str(trained_dir / "model.tar.gz"),
            "--model-data-url",
            "s3://models-b/model.tar.gz",
            "--metrics",
            str(trained_dir / "metrics.json"),
            "--allow-dirty",
        ],
    )
    assert registered.exit_code == 0, registered.output
    # encrypted with the lake key the bucket policy demands
    baseline = boto3.client("s3").head_object(Bucket="models-b", Key="baseline.json")
    assert baseline["SSEKMSKeyId"] == "test-lake-kms-key-arn"
    approved = runner.invoke(app, ["approve", "--outputs", str(outputs)])
    assert approved.exit_code == 0, approved.output
    assert json.loads(approved.output)["arn"] == (
        "arn:aws:sagemaker:us-east-1:123456789012:model-package/churn-dev/1"
    )
    nothing = runner.invoke(app, ["approve"])
    assert nothing.exit_code == 2
    assert "--group NAME, or --stack S / --outputs FILE" in nothing.output


@pytest.mark.parametrize(
    ("remove", "gate", "message"),
    [
        ("baseline.json", None, "no baseline.json (the drift baseline)"),
        ("gate.json", None, "no gate.json (the evaluation gate's report)"),
        (None, {"passed": False, "checks": [{"name": "ece"}]}, "does not say passed (failed: ece)"),
    ],
)
def test_register_refuses_a_model_without_its_baseline_or_a_passed_gate(
    app: typer.Typer,
    trained_dir: Path,
    aws: Any,
    tmp_path: Path,
    remove: str | None,
    gate: dict[str, Any] | None,
    message: str,
) -> None:
    model = tmp_path / "model"
    model.mkdir()
    for name in ("metrics.json", "baseline.json", "gate.json", "lineage.json"):
        if name != remove:
            (model / name).write_bytes((trained_dir / name).read_bytes())
    if gate is not None:
        (model / "gate.json").write_text(json.dumps(gate))
    result = runner.invoke(
        app,
        [
            "register",
            "--group",
            "churn",
            "--model",
            str(model),
            "--model-data-url",
            "s3://models-b/model.tar.gz",
            "--region",
            "us-east-1",
        ],
    )
    assert result.exit_code == 2
    assert message in result.output and str(model) in result.output
    assert aws.list_model_package_groups()["ModelPackageGroupSummaryList"] == []


def test_register_refuses_a_model_that_is_not_uploaded(
    app: typer.Typer, trained_dir: Path, aws: Any
) -> None:
    result = runner.invoke(
        app,
        [
            "register",
            "--group",
            "churn",
            "--model",
            str(trained_dir),
            "--model-data-url",
            "s3://models-b/elsewhere/model.tar.gz",
            "--region",
            "us-east-1",
            "--allow-dirty",
        ],
    )
    assert result.exit_code == 2
    assert "upload the model.tar.gz there first" in result.output


@pytest.fixture
def checkout(trained_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git checkout (main, no remote) that `mlplat register` checks, and a copy of the trained
    model whose lineage says it was trained at its HEAD."""
    from ml import registry

    repo = tmp_path / "repo"
    for name, text in FILES.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    git(repo, "init", "-q", "-b", "main")
    head = commit_all(repo, "first")
    monkeypatch.setattr(registry, "default_package_dir", lambda: repo / "ml")
    model = tmp_path / "model"
    model.mkdir()
    for name in ("metrics.json", "baseline.json", "gate.json", "lineage.json"):
        (model / name).write_bytes((trained_dir / name).read_bytes())
    lineage = json.loads((model / "lineage.json").read_text())
    lineage["code"] = {
        "git_commit": head,
        "ml_sources_sha256": registry.commit_sources_sha256(repo / "ml", head, "churn"),
    }
    (model / "lineage.json").write_text(json.dumps(lineage))
    return repo


def _register_from(model: Path, *extra: str) -> Any:
    app = typer.Typer()
    ml_commands.register(app)
    args = ["register", "--group", "churn", "--model", str(model), "--region", "us-east-1"]
    return runner.invoke(app, [*args, "--model-data-url", "s3://models-b/model.tar.gz", *extra])


def test_register_records_a_verified_source(checkout: Path, aws: Any) -> None:
    done = _register_from(checkout.parent / "model")
    assert done.exit_code == 0, done.output
    props = aws.describe_model_package(ModelPackageName=json.loads(done.stdout)["arn"])[
        "CustomerMetadataProperties"
    ]
    assert props["code.source_check"] == "verified: clean tree, HEAD on main, sources match"
    assert props["code.ml_sources_sha256"] == props["code.commit_sources_sha256"]


def test_register_refuses_a_dirty_tree_unless_allowed(checkout: Path, aws: Any) -> None:
    (checkout / "ml" / "train.py").write_text("VERSION = 2\n")
    refused = _register_from(checkout.parent / "model")
    assert refused.exit_code == 1
    assert "registration refused: the working tree has 1 uncommitted change(s) (ml/train.py)" in (
        refused.output
    )
    assert aws.list_model_package_groups()["ModelPackageGroupSummaryList"] == []
    allowed = _register_from(checkout.parent / "model", "--allow-dirty")
    assert allowed.exit_code == 0, allowed.output
    assert "warning: registering unverified code: the working tree" in allowed.stderr
    props = aws.describe_model_package(ModelPackageName=json.loads(allowed.stdout)["arn"])[
        "CustomerMetadataProperties"
    ]
    assert props["code.source_check"].startswith("unverified (--allow-dirty)")


def test_register_refuses_a_model_trained_elsewhere(checkout: Path, aws: Any) -> None:
    (checkout / "README.md").write_text("changed\n")
    git_head = commit_all(checkout, "next")
    refused = _register_from(checkout.parent / "model")
    assert refused.exit_code == 1
    assert f"but HEAD is {git_head[:12]}" in refused.output


def test_every_command_has_help(app: typer.Typer) -> None:
    for command in ("train", "evaluate", "register", "approve"):
        result = runner.invoke(app, [command, "--help"])
        assert result.exit_code == 0
        assert "--" in result.output
