"""Deploy / rollback of model package versions, against moto's SageMaker."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator

import boto3
import pytest
import typer
from moto import mock_aws
from typer.testing import CliRunner

from ml.deploy import (
    CONFIG_KEY,
    DeployError,
    Deployment,
    deploy,
    group_of,
    pulumi_apply,
    rollback,
)
from tests.conftest import make_outputs

GROUP = "ml-platform-prod-churn"
WHO = "arn:aws:iam::123456789012:user/release-bot"


@pytest.fixture(scope="module")
def aws() -> Iterator[boto3.Session]:
    """One moto backend for the module (fast); each test works in a group of its own."""
    with mock_aws():
        yield boto3.Session(region_name="us-east-1")


_GROUPS = itertools.count(1)


@pytest.fixture
def session(aws: boto3.Session) -> boto3.Session:
    return aws


@pytest.fixture
def group(aws: boto3.Session) -> str:
    name = f"{GROUP}-{next(_GROUPS)}"
    aws.client("sagemaker").create_model_package_group(ModelPackageGroupName=name)
    return name


def add_version(session: boto3.Session, group: str, status: str = "Approved") -> str:
    response = session.client("sagemaker").create_model_package(
        ModelPackageGroupName=group,
        ModelPackageDescription="churn model",
        ModelApprovalStatus=status,
        InferenceSpecification={
            "Containers": [
                {
                    "Image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/"
                    "sagemaker-scikit-learn:1.9-0-cpu-py3",
                    "ModelDataUrl": f"s3://models/models/{group}/v/model.tar.gz",
                }
            ],
            "SupportedContentTypes": ["application/json", "text/csv"],
            "SupportedResponseMIMETypes": ["application/json", "text/csv"],
        },
    )
    return str(response["ModelPackageArn"])


def metadata(session: boto3.Session, arn: str) -> dict[str, str]:
    described = session.client("sagemaker").describe_model_package(ModelPackageName=arn)
    return dict(described.get("CustomerMetadataProperties", {}))


def status_of(session: boto3.Session, arn: str) -> str:
    described = session.client("sagemaker").describe_model_package(ModelPackageName=arn)
    return str(described["ModelApprovalStatus"])


class Recorder:
    """The pluggable apply step: remembers what it was asked to apply."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def __call__(self, stack: str, arn: str) -> None:
        self.calls.append((stack, arn))


# --- deploy -------------------------------------------------------------------------------------


def test_deploy_applies_an_approved_version_and_records_who_what_when(session, group):
    v1 = add_version(session, group)
    apply = Recorder()
    result = deploy("prod", v1, apply, session=session, deployed_by=WHO)
    assert apply.calls == [("prod", v1)]
    assert isinstance(result, Deployment)
    assert (result.action, result.stack, result.model_package_arn, result.previous_arn) == (
        "deploy",
        "prod",
        v1,
        None,
    )
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", result.deployed_at)
    assert metadata(session, v1) == {
        "deployed-to": "prod",
        "deployed-by": WHO,
        "deployed-at": result.deployed_at,
        "deploy-action": "deploy",
        "deploy-seq.prod": "1",
    }
    assert status_of(session, v1) == "Approved"  # recording never changes the approval


def test_deploy_names_the_version_it_replaces(session, group):
    v1, v2 = add_version(session, group), add_version(session, group)
    deploy("prod", v1, Recorder(), session=session, deployed_by=WHO)
    result = deploy("prod", v2, Recorder(), session=session, deployed_by=WHO)
    assert result.previous_arn == v1


def test_deployed_by_defaults_to_the_callers_identity(session, group):
    v1 = add_version(session, group)
    result = deploy("prod", v1, Recorder(), session=session)
    assert result.deployed_by.startswith("arn:aws:")
    assert metadata(session, v1)["deployed-by"] == result.deployed_by


@pytest.mark.parametrize("status", ["PendingManualApproval", "Rejected"])
def test_deploy_refuses_an_unapproved_version_and_says_so(session, group, status):
    v1 = add_version(session, group, status)
    apply = Recorder()
    with pytest.raises(DeployError, match=f"is {status}, not Approved"):
        deploy("prod", v1, apply, session=session, deployed_by=WHO)
    assert apply.calls == []
    assert metadata(session, v1) == {}


def test_deploy_refuses_an_unknown_version(session, group):
    missing = f"arn:aws:sagemaker:us-east-1:123456789012:model-package/{group}/99"
    with pytest.raises(DeployError, match="cannot read model package"):
        deploy("prod", missing, Recorder(), session=session, deployed_by=WHO)


@pytest.mark.parametrize(
    "bad",
    [
        "churn",
        "arn:aws:sagemaker:us-east-1:123456789012:model-package-group/x",
        "arn:aws:sagemaker:us-east-1:123456789012:model-package/x",
    ],
)
def test_deploy_refuses_what_is_not_a_version_arn(session, group, bad):
    with pytest.raises(DeployError, match="is not a model package version ARN"):
        deploy("prod", bad, Recorder(), session=session, deployed_by=WHO)


def test_failed_apply_records_nothing(session, group):
    v1 = add_version(session, group)

    def failing(stack: str, arn: str) -> None:
        raise DeployError("pulumi up failed")

    with pytest.raises(DeployError, match="pulumi up failed"):
        deploy("prod", v1, failing, session=session, deployed_by=WHO)
    assert metadata(session, v1) == {}


def test_group_of():
    assert group_of(f"arn:aws:sagemaker:eu-west-1:123456789012:model-package/{GROUP}/7") == GROUP


# --- rollback ------------------------------------------------------------------------------------


def test_rollback_returns_to_the_previously_deployed_approved_version(session, group):
    v1, v2 = add_version(session, group), add_version(session, group)
    deploy("prod", v1, Recorder(), session=session, deployed_by=WHO)
    deploy("prod", v2, Recorder(), session=session, deployed_by=WHO)
    apply = Recorder()
    result = rollback("prod", group, apply, session=session, deployed_by="oncall")
    assert apply.calls == [("prod", v1)]
    assert (result.action, result.model_package_arn, result.previous_arn) == ("rollback", v1, v2)
    back = metadata(session, v1)
    assert back["deploy-action"] == "rollback"
    assert back["deployed-by"] == "oncall"
    assert back["rolled-back-from"] == v2
    assert back["deploy-seq.prod"] == "3"
    assert back["deployed-at"] == result.deployed_at
    left = metadata(session, v2)
    assert left["deploy-seq.prod"] == "2"
    assert left["rolled-back-seq.prod"] == "3"
    assert left["rolled-back-at"] == result.deployed_at
    assert left["rolled-back-by"] == "oncall"
    assert status_of(session, v1) == status_of(session, v2) == "Approved"


def test_rolling_back_twice_goes_two_deployments_back(session, group):
    v1, v2, v3 = (
        add_version(session, group),
        add_version(session, group),
        add_version(session, group),
    )
    for v in (v1, v2, v3):
        deploy("prod", v, Recorder(), session=session, deployed_by=WHO)
    assert (
        rollback("prod", group, Recorder(), session=session, deployed_by=WHO).model_package_arn
        == v2
    )
    assert (
        rollback("prod", group, Recorder(), session=session, deployed_by=WHO).model_package_arn
        == v1
    )
    with pytest.raises(DeployError, match="no earlier approved version"):
        rollback("prod", group, Recorder(), session=session, deployed_by=WHO)


def test_rollback_skips_versions_rejected_since(session, group):
    v1, v2, v3 = (
        add_version(session, group),
        add_version(session, group),
        add_version(session, group),
    )
    for v in (v1, v2, v3):
        deploy("prod", v, Recorder(), session=session, deployed_by=WHO)
    session.client("sagemaker").update_model_package(
        ModelPackageArn=v2,
        ModelApprovalStatus="Rejected",
        CustomerMetadataProperties=metadata(session, v2),
    )
    apply = Recorder()
    assert rollback("prod", group, apply, session=session, deployed_by=WHO).model_package_arn == v1
    assert apply.calls == [("prod", v1)]


def test_rollback_ignores_other_stacks_and_undeployed_versions(session, group):
    v1, v2, v3 = (
        add_version(session, group),
        add_version(session, group),
        add_version(session, group),
    )
    deploy("prod", v1, Recorder(), session=session, deployed_by=WHO)
    deploy("staging", v2, Recorder(), session=session, deployed_by=WHO)
    deploy("prod", v3, Recorder(), session=session, deployed_by=WHO)
    assert (
        rollback("prod", group, Recorder(), session=session, deployed_by=WHO).model_package_arn
        == v1
    )
    with pytest.raises(DeployError, match="no earlier approved version"):
        rollback("staging", group, Recorder(), session=session, deployed_by=WHO)


def test_rollback_with_nothing_deployed_is_a_clear_error(session, group):
    add_version(session, group)
    apply = Recorder()
    with pytest.raises(
        DeployError, match=r"no deployment of model package group .* to stack 'prod'"
    ):
        rollback("prod", group, apply, session=session, deployed_by=WHO)
    assert apply.calls == []


def test_rollback_of_an_unknown_group_is_a_clear_error(session, group):
    with pytest.raises(DeployError, match="no deployment of model package group 'nope'"):
        rollback("prod", "nope", Recorder(), session=session, deployed_by=WHO)


def test_redeploying_after_a_rollback_makes_it_current_again(session, group):
    v1, v2 = add_version(session, group), add_version(session, group)
    deploy("prod", v1, Recorder(), session=session, deployed_by=WHO)
    deploy("prod", v2, Recorder(), session=session, deployed_by=WHO)
    rollback("prod", group, Recorder(), session=session, deployed_by=WHO)
    # a fixed v2 goes out again, within the same second: the sequence, not the clock, orders it
    result = deploy("prod", v2, Recorder(), session=session, deployed_by=WHO)
    assert result.previous_arn == v1
    assert (
        rollback("prod", group, Recorder(), session=session, deployed_by=WHO).model_package_arn
        == v1
    )


# --- the Pulumi CLI apply step -----------------------------------------------------------------


def test_pulumi_apply_sets_the_model_and_runs_up(monkeypatch, tmp_path):
    group = GROUP
    import subprocess

    seen: list[tuple[list[str], object]] = []

    def fake_run(command, cwd=None, **_):
        seen.append((command, cwd))
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(subprocess, "run", fake_run)
    arn = f"arn:aws:sagemaker:us-east-1:123456789012:model-package/{group}/2"
    pulumi_apply("prod", arn, cwd=tmp_path)
    assert seen == [
        (["pulumi", "config", "set", CONFIG_KEY, arn, "-s", "prod"], tmp_path),
        (
            ["pulumi", "config", "set", "ml-platform:endpointEnabled", "true", "-s", "prod"],
            tmp_path,
        ),
        (["pulumi", "up", "-s", "prod", "--yes"], tmp_path),
    ]
    assert CONFIG_KEY == "ml-platform:modelPackageArn"


def test_pulumi_apply_failure_and_missing_cli_are_clear(monkeypatch):
    import subprocess

    def failing(command, **_):
        return subprocess.CompletedProcess(command, 255, "", "error: no stack named 'prod'")

    monkeypatch.setattr(subprocess, "run", failing)
    with pytest.raises(DeployError, match="no stack named 'prod'"):
        pulumi_apply("prod", "arn")

    def missing(command, **_):
        raise FileNotFoundError("pulumi")

    monkeypatch.setattr(subprocess, "run", missing)
    with pytest.raises(DeployError, match="the Pulumi CLI is not installed"):
        pulumi_apply("prod", "arn")


def test_publish_baseline_copies_the_versions_baseline_where_the_drift_job_reads(session, group):
    from ml.deploy import publish_baseline

    s3 = session.client("s3")
    s3.create_bucket(Bucket="models")
    s3.put_object(Bucket="models", Key=f"models/{group}/v/baseline.json", Body=b'{"b": 1}')
    sm = session.client("sagemaker")
    arn = sm.create_model_package(
        ModelPackageGroupName=group,
        ModelApprovalStatus="Approved",
        InferenceSpecification={
            "Containers": [{"Image": "image", "ModelDataUrl": "s3://models/m.tar.gz"}],
            "SupportedContentTypes": ["application/json"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
        ModelMetrics={
            "ModelDataQuality": {
                "Statistics": {
                    "ContentType": "application/json",
                    "S3Uri": f"s3://models/models/{group}/v/baseline.json",
                }
            }
        },
    )["ModelPackageArn"]
    key = "arn:aws:kms:us-east-1:123456789012:key/k"
    uri = publish_baseline(arn, "models", "churn/current/baseline.json", key, session=session)
    assert uri == "s3://models/churn/current/baseline.json"
    copied = s3.get_object(Bucket="models", Key="churn/current/baseline.json")
    assert copied["Body"].read() == b'{"b": 1}'
    assert copied["ServerSideEncryption"] == "aws:kms"
    without = add_version(session, group)
    with pytest.raises(DeployError, match="was registered without a baseline"):
        publish_baseline(without, "models", "churn/current/baseline.json", key, session=session)


# --- the commands -------------------------------------------------------------------------


@pytest.fixture
def cli(monkeypatch) -> tuple[typer.Typer, Recorder]:
    from mlplat.cli.commands import serving

    apply = Recorder()
    monkeypatch.setattr(serving, "_apply_for", lambda stack, project_dir: apply)
    app = typer.Typer()
    serving.register(app)
    return app, apply


def test_cli_deploy_and_rollback(session, group, cli, tmp_path):
    app, apply = cli
    v1, v2 = add_version(session, group), add_version(session, group)
    runner = CliRunner()
    for v in (v1, v2):
        result = runner.invoke(app, ["deploy", "--stack", "prod", "--model-package", v])
        assert result.exit_code == 0, result.output
    assert json.loads(result.output)["model_package_arn"] == v2
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps(make_outputs(model_package_group_name=group).to_json()))
    result = runner.invoke(app, ["rollback", "--stack", "prod", "--outputs", str(outputs)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["model_package_arn"] == v1
    assert apply.calls == [("prod", v1), ("prod", v2), ("prod", v1)]


def test_cli_deploy_refusal_exits_2_with_the_reason(session, group, cli):
    app, apply = cli
    v1 = add_version(session, group, "PendingManualApproval")
    result = CliRunner().invoke(app, ["deploy", "--stack", "prod", "--model-package", v1])
    assert result.exit_code == 2
    assert "is PendingManualApproval, not Approved" in result.output
    assert apply.calls == []


def test_cli_rollback_without_a_group_source_is_clear(session, group, cli, tmp_path):
    app, _ = cli
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps({"stack": "prod"}))
    result = CliRunner().invoke(app, ["rollback", "--stack", "prod", "--outputs", str(outputs)])
    assert result.exit_code == 2
    assert "platform outputs lack" in result.output and "model_package_group_name" in result.output
