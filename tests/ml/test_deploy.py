"""Deploy / rollback of model package versions, against moto's SageMaker."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import typer
from moto import mock_aws
from typer.testing import CliRunner

from ml.contracts import BASELINE_FORMAT
from ml.deploy import (
    CONFIG_KEY,
    BaselineNotPublished,
    BaselineTarget,
    DeployError,
    Deployment,
    Release,
    deploy,
    group_of,
    pulumi_apply,
    rollback,
)
from tests.ml.conftest import platform_with

GROUP = "ml-platform-prod-churn"
WHO = "arn:aws:iam::123456789012:user/release-bot"
BUCKET = "models"
KMS = "arn:aws:kms:us-east-1:123456789012:key/k"
TARGET = BaselineTarget(BUCKET, "churn/current/baseline.json", KMS)
BASELINE = {"format": BASELINE_FORMAT, "n_rows": 10, "features": {}, "score": {}}
PASSED = {"passed": True, "checks": [{"name": "roc_auc vs baseline", "passed": True}]}


@pytest.fixture(scope="module")
def aws() -> Iterator[boto3.Session]:
    """One moto backend for the module (fast); each test works in a group of its own."""
    with mock_aws():
        session = boto3.Session(region_name="us-east-1")
        session.client("s3").create_bucket(Bucket=BUCKET)
        yield session


_GROUPS = itertools.count(1)


@pytest.fixture
def session(aws: boto3.Session) -> boto3.Session:
    return aws


@pytest.fixture
def group(aws: boto3.Session) -> str:
    name = f"{GROUP}-{next(_GROUPS)}"
    aws.client("sagemaker").create_model_package_group(ModelPackageGroupName=name)
    return name


_VERSIONS = itertools.count(1)
ABSENT = object()  # a report not attached to the version


def add_version(
    session: boto3.Session,
    group: str,
    status: str = "Approved",
    *,
    gate: object = PASSED,
    baseline: object = BASELINE,
    artifact: bytes | None = b"model.tar.gz",
) -> str:
    """A version as `mlplat register` or the pipeline leaves it: its artifact and reports in S3,
    attached. A report given as None is attached but never uploaded; ABSENT is not attached; an
    artifact given as None is named but never uploaded."""
    s3 = session.client("s3")
    prefix = f"models/{group}/v{next(_VERSIONS)}"
    if artifact is not None:
        s3.put_object(Bucket=BUCKET, Key=f"{prefix}/model.tar.gz", Body=artifact)
    metrics: dict[str, object] = {}
    for name, section, kind, body in (
        ("gate.json", "ModelQuality", "Constraints", gate),
        ("baseline.json", "ModelDataQuality", "Statistics", baseline),
    ):
        if body is ABSENT:
            continue
        if body is not None:
            text = body if isinstance(body, bytes) else json.dumps(body).encode()
            s3.put_object(Bucket=BUCKET, Key=f"{prefix}/{name}", Body=text)
        uri = f"s3://{BUCKET}/{prefix}/{name}"
        metrics[section] = {kind: {"ContentType": "application/json", "S3Uri": uri}}
    response = session.client("sagemaker").create_model_package(
        ModelPackageGroupName=group,
        ModelPackageDescription="churn model",
        ModelApprovalStatus=status,
        InferenceSpecification={
            "Containers": [
                {
                    "Image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/"
                    "sagemaker-scikit-learn:1.9-0-cpu-py3",
                    "ModelDataUrl": f"s3://{BUCKET}/{prefix}/model.tar.gz",
                }
            ],
            "SupportedContentTypes": ["application/json", "text/csv"],
            "SupportedResponseMIMETypes": ["application/json", "text/csv"],
        },
        **({"ModelMetrics": metrics} if metrics else {}),
    )
    return str(response["ModelPackageArn"])


def metadata(session: boto3.Session, arn: str) -> dict[str, str]:
    described = session.client("sagemaker").describe_model_package(ModelPackageName=arn)
    return dict(described.get("CustomerMetadataProperties", {}))


def status_of(session: boto3.Session, arn: str) -> str:
    described = session.client("sagemaker").describe_model_package(ModelPackageName=arn)
    return str(described["ModelApprovalStatus"])


class Recorder(Release):
    """A release whose apply step remembers what it was asked to apply; baselines go to
    TARGET (or `target`)."""

    calls: list[tuple[str, str]]

    def __init__(self, target: BaselineTarget = TARGET) -> None:
        calls: list[tuple[str, str]] = []
        super().__init__(lambda stack, arn: calls.append((stack, arn)), target)
        object.__setattr__(self, "calls", calls)  # Release is frozen


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
    # the version's baseline, where the stack's drift job reads it
    assert result.baseline_uri == TARGET.uri
    published = session.client("s3").get_object(Bucket=BUCKET, Key=TARGET.key)
    assert json.loads(published["Body"].read()) == BASELINE
    assert published["ServerSideEncryption"] == "aws:kms"


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


@pytest.mark.parametrize(
    ("reports", "reason"),
    [
        ({"gate": ABSENT}, r"has no gate report \(ModelMetrics\.ModelQuality\.Constraints\)"),
        ({"gate": None}, r"cannot read the gate report of .* at s3://models/.*/gate\.json"),
        ({"gate": b"not json"}, r"the gate report of .* is not JSON"),
        (
            {"gate": {"passed": False, "checks": [{"name": "roc_auc vs approved"}]}},
            r"does not say passed \(failed: roc_auc vs approved\)",
        ),
        (
            {"gate": {"passed": False, "message": "pr_auc 0.31 < 0.40 (serving version)"}},
            r"does not say passed \(pr_auc 0\.31 < 0\.40 \(serving version\)\)",
        ),
        ({"gate": {"passed": "yes"}}, r"does not say passed \(passed is 'yes'\)"),
        ({"gate": {"checks": []}}, r'does not say passed \(it has no "passed" field\)'),
        ({"baseline": ABSENT}, r"was registered without a baseline"),
        ({"baseline": None}, r"cannot read the drift baseline of .* at s3://.*baseline\.json"),
        ({"baseline": {"features": {}}}, r"is not a mlplat-baseline/1 baseline"),
    ],
    ids=[
        "no-gate",
        "gate-unreadable",
        "gate-not-json",
        "gate-failed-checks",
        "gate-failed-message",
        "gate-passed-not-true",
        "gate-without-passed",
        "no-baseline",
        "baseline-unreadable",
        "baseline-wrong-format",
    ],
)
def test_deploy_refuses_a_version_without_a_passed_gate_or_a_readable_baseline(
    session, group, reports, reason
):
    v1 = add_version(session, group, **reports)
    release = Recorder()
    with pytest.raises(DeployError, match=reason):
        deploy("prod", v1, release, session=session, deployed_by=WHO)
    assert release.calls == []  # nothing applied
    assert metadata(session, v1) == {}  # nothing recorded


def test_failed_apply_records_nothing(session, group):
    v1 = add_version(session, group)

    def failing(stack: str, arn: str) -> None:
        raise DeployError("pulumi up failed")

    with pytest.raises(DeployError, match="pulumi up failed"):
        deploy("prod", v1, Release(failing, TARGET), session=session, deployed_by=WHO)
    assert metadata(session, v1) == {}


def test_a_publish_failure_leaves_the_deployment_applied_and_recorded(session, group):
    v1 = add_version(session, group)
    release = Recorder(BaselineTarget("no-such-bucket", "churn/current/baseline.json", KMS))
    with pytest.raises(BaselineNotPublished) as failed:
        deploy("prod", v1, release, session=session, deployed_by=WHO)
    assert release.calls == [("prod", v1)]
    assert metadata(session, v1)["deploy-seq.prod"] == "1"
    message = str(failed.value)
    assert f"stack 'prod' serves {v1} and the deploy is recorded" in message
    assert "not published to s3://no-such-bucket/churn/current/baseline.json" in message
    assert f"`mlplat deploy --stack prod --model-package {v1}`" in message
    assert isinstance(failed.value, DeployError)
    assert failed.value.deployment.model_package_arn == v1
    # the retry it names: the same version again, recorded as the current deployment
    again = deploy("prod", v1, Recorder(), session=session, deployed_by=WHO)
    assert again.previous_arn == v1
    assert metadata(session, v1)["deploy-seq.prod"] == "2"


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


def test_rollback_publishes_the_baseline_of_the_version_it_returns_to(session, group):
    first, second = {**BASELINE, "n_rows": 1}, {**BASELINE, "n_rows": 2}
    v1, v2 = (
        add_version(session, group, baseline=first),
        add_version(session, group, baseline=second),
    )
    target = BaselineTarget(BUCKET, f"{group}/current/baseline.json", KMS)
    for v in (v1, v2):
        deploy("prod", v, Recorder(target), session=session, deployed_by=WHO)
    published = session.client("s3").get_object(Bucket=BUCKET, Key=target.key)
    assert json.loads(published["Body"].read()) == second
    result = rollback("prod", group, Recorder(target), session=session, deployed_by=WHO)
    assert result.baseline_uri == target.uri
    published = session.client("s3").get_object(Bucket=BUCKET, Key=target.key)
    assert json.loads(published["Body"].read()) == first


def test_rollback_refuses_a_version_whose_gate_report_is_gone(session, group):
    v1, v2 = add_version(session, group), add_version(session, group)
    for v in (v1, v2):
        deploy("prod", v, Recorder(), session=session, deployed_by=WHO)
    described = session.client("sagemaker").describe_model_package(ModelPackageName=v1)
    gate = described["ModelMetrics"]["ModelQuality"]["Constraints"]["S3Uri"]
    session.client("s3").delete_object(Bucket=BUCKET, Key=gate.split("/", 3)[3])
    before = metadata(session, v1), metadata(session, v2)
    release = Recorder()
    with pytest.raises(DeployError, match=rf"cannot roll back from {v2} to {v1}: cannot read"):
        rollback("prod", group, release, session=session, deployed_by=WHO)
    assert release.calls == []
    assert (metadata(session, v1), metadata(session, v2)) == before


def test_a_rollback_whose_publish_fails_is_recorded(session, group):
    v1, v2 = add_version(session, group), add_version(session, group)
    for v in (v1, v2):
        deploy("prod", v, Recorder(), session=session, deployed_by=WHO)
    release = Recorder(BaselineTarget("no-such-bucket", "b.json", None))
    with pytest.raises(BaselineNotPublished, match=f"serves {v1} and the rollback is recorded"):
        rollback("prod", group, release, session=session, deployed_by=WHO)
    assert release.calls == [("prod", v1)]
    assert metadata(session, v1)["rolled-back-from"] == v2
    assert metadata(session, v2)["rolled-back-seq.prod"] == "3"


# --- the Pulumi CLI apply step -----------------------------------------------------------------


def _fake_pulumi(monkeypatch, models: str | None):
    """subprocess.run for the Pulumi CLI: `config get ml-platform:models` answers `models`
    (None: the stack sets no such key); every other command succeeds. Returns the calls."""
    import subprocess

    seen: list[tuple[list[str], object]] = []

    def fake_run(command, cwd=None, **_):
        seen.append((command, cwd))
        if command[:3] == ["pulumi", "config", "get"]:
            if models is None:
                return subprocess.CompletedProcess(
                    command, 255, "", "error: configuration key 'ml-platform:models' not found"
                )
            return subprocess.CompletedProcess(command, 0, models, "")
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(subprocess, "run", fake_run)
    return seen


def test_pulumi_apply_sets_the_models_own_entry_and_runs_up(monkeypatch, tmp_path):
    """Deploying one model must leave the others' packages where they are."""
    listed = '[{"name": "churn"}, {"name": "spend", "endpointMinInstances": 2}]'
    seen = _fake_pulumi(
        monkeypatch,
        json.dumps({"value": listed, "objectValue": json.loads(listed), "secret": False}),
    )
    arn = "arn:aws:sagemaker:us-east-1:123456789012:model-package/ml-platform-prod-spend/2"
    pulumi_apply("prod", arn, model="spend", cwd=tmp_path)
    assert [c for c, _ in seen] == [
        ["pulumi", "config", "get", "ml-platform:models", "--json", "-s", "prod"],
        [
            "pulumi",
            "config",
            "set",
            "--path",
            "ml-platform:models[1].modelPackageArn",
            arn,
            "-s",
            "prod",
        ],
        ["pulumi", "config", "set", "ml-platform:endpointEnabled", "true", "-s", "prod"],
        ["pulumi", "up", "-s", "prod", "--yes"],
    ]
    assert {cwd for _, cwd in seen} == {tmp_path}
    # a stack whose list does not hold the model is refused before anything is set
    seen.clear()
    with pytest.raises(
        DeployError, match=r"lists the models \['churn', 'spend'\].*'demo' is not one"
    ):
        pulumi_apply("prod", arn, model="demo")
    assert len(seen) == 1


def test_pulumi_apply_sets_the_stack_wide_model_without_a_models_list(monkeypatch, tmp_path):
    seen = _fake_pulumi(monkeypatch, None)
    arn = f"arn:aws:sagemaker:us-east-1:123456789012:model-package/{GROUP}/2"
    pulumi_apply("prod", arn, cwd=tmp_path)
    assert [c for c, _ in seen][1:] == [
        ["pulumi", "config", "set", CONFIG_KEY, arn, "-s", "prod"],
        ["pulumi", "config", "set", "ml-platform:endpointEnabled", "true", "-s", "prod"],
        ["pulumi", "up", "-s", "prod", "--yes"],
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
    without = add_version(session, group, baseline=ABSENT)
    with pytest.raises(DeployError, match="was registered without a baseline"):
        publish_baseline(without, "models", "churn/current/baseline.json", key, session=session)


# --- the commands -------------------------------------------------------------------------


@pytest.fixture
def cli(monkeypatch, group, tmp_path) -> tuple[typer.Typer, list[tuple[str, str]], Path]:
    """The commands with the Pulumi CLI's release, `pulumi up` replaced by a recorder; the prod
    stack's outputs in a file."""
    import ml.deploy
    from mlplat.cli.commands import serving

    calls: list[tuple[str, str]] = []
    monkeypatch.setattr(
        ml.deploy,
        "pulumi_apply",
        lambda stack, arn, model=None, cwd=None: calls.append((stack, arn)),
    )
    outputs = tmp_path / "outputs.json"
    platform = platform_with(
        outputs={"stack": "prod", "models_bucket": BUCKET, "lake_kms_key_arn": KMS},
        model_package_group_name=group,
    )
    outputs.write_text(json.dumps(platform.to_json()))
    app = typer.Typer()
    serving.register(app)
    return app, calls, outputs


def test_cli_deploy_and_rollback(session, group, cli):
    app, calls, outputs = cli
    first, second = {**BASELINE, "n_rows": 1}, {**BASELINE, "n_rows": 2}
    v1, v2 = (
        add_version(session, group, baseline=first),
        add_version(session, group, baseline=second),
    )
    runner = CliRunner()
    for v in (v1, v2):
        result = runner.invoke(
            app, ["deploy", "--stack", "prod", "--model-package", v, "--outputs", str(outputs)]
        )
        assert result.exit_code == 0, result.output
    deployed = json.loads(result.output)
    assert deployed["model_package_arn"] == v2
    # where the prod stack's settings put the drift job's baseline, in its models bucket
    assert deployed["baseline_uri"] == f"s3://{BUCKET}/churn/current/baseline.json"
    baseline = session.client("s3").get_object(Bucket=BUCKET, Key="churn/current/baseline.json")
    assert json.loads(baseline["Body"].read()) == second
    result = runner.invoke(app, ["rollback", "--stack", "prod", "--outputs", str(outputs)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["model_package_arn"] == v1
    assert calls == [("prod", v1), ("prod", v2), ("prod", v1)]
    baseline = session.client("s3").get_object(Bucket=BUCKET, Key="churn/current/baseline.json")
    assert json.loads(baseline["Body"].read()) == first


@pytest.mark.parametrize(
    ("status", "reports", "reason"),
    [
        ("PendingManualApproval", {}, "is PendingManualApproval, not Approved"),
        ("Approved", {"gate": ABSENT}, "has no gate report"),
        ("Approved", {"gate": {"passed": False}}, "does not say passed"),
        ("Approved", {"baseline": ABSENT}, "was registered without a baseline"),
    ],
)
def test_cli_deploy_refusal_exits_2_with_the_reason(session, group, cli, status, reports, reason):
    app, calls, outputs = cli
    v1 = add_version(session, group, status, **reports)
    result = CliRunner().invoke(
        app, ["deploy", "--stack", "prod", "--model-package", v1, "--outputs", str(outputs)]
    )
    assert result.exit_code == 2
    assert reason in result.output
    assert calls == []
    assert metadata(session, v1) == {}


def test_cli_deploy_refuses_the_outputs_of_another_stack(session, group, cli):
    app, calls, outputs = cli
    v1 = add_version(session, group)
    result = CliRunner().invoke(
        app, ["deploy", "--stack", "staging", "--model-package", v1, "--outputs", str(outputs)]
    )
    assert result.exit_code == 2
    assert "the platform outputs of stack 'prod', not 'staging'" in result.output
    assert calls == []


def test_cli_rollback_without_a_group_source_is_clear(session, group, cli, tmp_path):
    app, _, _ = cli
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps({"stack": "prod"}))
    result = CliRunner().invoke(app, ["rollback", "--stack", "prod", "--outputs", str(outputs)])
    assert result.exit_code == 2
    assert "platform outputs lack" in result.output and "models" in result.output


def test_cli_rollback_of_a_model_the_stack_does_not_host_is_clear(session, group, cli):
    app, _, outputs = cli
    result = CliRunner().invoke(
        app, ["rollback", "--stack", "prod", "--model", "spend", "--outputs", str(outputs)]
    )
    assert result.exit_code == 2
    assert "--model 'spend': stack 'prod' hosts no such model; its models: churn" in result.output


# --- the served artifact, where the monitor job reads it -----------------------------------------


def test_deploy_and_rollback_publish_the_served_artifact_for_the_monitor_job(session, group):
    """Skew and age read the served model at the job's `MLPLAT_DRIFT_MODEL_KEY`: every deploy
    and rollback copies the version's artifact there, beside its baseline."""
    s3 = session.client("s3")
    v1 = add_version(session, group, artifact=b"model one")
    v2 = add_version(session, group, artifact=b"model two")
    target = BaselineTarget(
        BUCKET, f"{group}/current/baseline.json", KMS, f"{group}/current/model.tar.gz"
    )

    def served() -> bytes:
        return bytes(s3.get_object(Bucket=BUCKET, Key=target.model_key)["Body"].read())

    deploy("prod", v1, Recorder(target), session=session, deployed_by=WHO)
    assert served() == b"model one"
    deploy("prod", v2, Recorder(target), session=session, deployed_by=WHO)
    assert served() == b"model two"
    head = s3.head_object(Bucket=BUCKET, Key=target.model_key)
    assert head["ServerSideEncryption"] == "aws:kms" and head["SSEKMSKeyId"] == KMS
    rollback("prod", group, Recorder(target), session=session, deployed_by=WHO)
    assert served() == b"model one"


def test_a_version_whose_artifact_cannot_be_published_is_deployed_and_says_so(session, group):
    v1 = add_version(session, group, artifact=None)  # its model.tar.gz was never uploaded
    target = BaselineTarget(BUCKET, f"{group}/b.json", KMS, f"{group}/current/model.tar.gz")
    with pytest.raises(BaselineNotPublished, match=r"baseline or artifact was not published to"):
        deploy("prod", v1, Recorder(target), session=session, deployed_by=WHO)
    assert metadata(session, v1)["deploy-seq.prod"] == "1"  # the deployment stands, recorded
