"""Remote training: the SageMaker request (accepted by moto), the Kubernetes Job (schema-valid),
the code bundle, the pod runner and `mlplat train --on sagemaker|eks`."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile

import boto3
import kubernetes_validate
import pytest
import yaml
from moto import mock_aws

from ml import remote_training as rt
from tests.conftest import make_outputs
from tests.ml.conftest import model_outputs

REGION = "us-east-1"
TRAINING_ROLE = "arn:aws:iam::123456789012:role/train-role-abc"
OUTPUTS = make_outputs(
    stack="dev",
    region=REGION,
    features_bucket="lake-features",
    models_bucket="lake-models",
    lake_kms_key_arn="arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-5555",
    models={"churn": model_outputs(training_role_arn=TRAINING_ROLE)},
    training_subnet_ids=["subnet-0a", "subnet-0b"],
    training_security_group_ids=["sg-0c"],
    training_cluster_name="ml-platform-dev-training",
    training_jobs_function_name="gpu-gateway-jobs-fn-1a2b3c4",
    training_namespace="training",
    training_service_account="trainer",
).to_json()
SKLEARN_US_EAST_1 = (
    "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.9-0-cpu-py3"
)


@pytest.fixture
def target() -> rt.TrainingTarget:
    return rt.TrainingTarget.from_mapping(OUTPUTS, "churn")


def request(target, **overrides):
    args = {
        "job_name": "churn-1",
        "instance_type": "ml.m5.xlarge",
        "use_spot": True,
        "max_runtime_seconds": 3600,
        "max_wait_seconds": 7200,
        **overrides,
    }
    return rt.sagemaker_training_request(target, **args)


# --- outputs ---------------------------------------------------------------------------------


def test_target_from_outputs(target):
    assert target.training_subnet_ids == ("subnet-0a", "subnet-0b")
    assert target.training_cluster_name == "ml-platform-dev-training"
    bare = {k: v for k, v in OUTPUTS.items() if not k.startswith("training_cluster")}
    assert rt.TrainingTarget.from_mapping(bare, "churn").training_cluster_name is None
    assert target.model == "churn" and target.training_role_arn == TRAINING_ROLE


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"models": {"churn": {"training_role_arn": None}}}, "lack training_role_arn"),
        ({"models": {"spend": {}}}, "hold no model 'churn' \\(its models: spend\\)"),
        ({"training_subnet_ids": []}, "lack training_subnet_ids"),
        ({"training_security_group_ids": "sg-1"}, "expected a list of ids"),
    ],
)
def test_target_refuses_incomplete_outputs(change, message):
    with pytest.raises(rt.RemoteTrainingError, match=message):
        rt.TrainingTarget.from_mapping({**OUTPUTS, **change}, "churn")


# --- the image -------------------------------------------------------------------------------


def test_sklearn_image_resolved_offline_without_importing_sagemaker():
    code = (
        "import sys; from ml.remote_training import sklearn_training_image as f; "
        "print(f('us-east-1')); print(f('cn-north-1')); print('sagemaker' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    assert out == [
        SKLEARN_US_EAST_1,
        "450853457545.dkr.ecr.cn-north-1.amazonaws.com.cn/sagemaker-scikit-learn:1.9-0-cpu-py3",
        "False",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("us-east-1", "ml.g5.xlarge"), "runs on cpu instances only, not ml.g5.xlarge"),
        (("mars-north-1", "ml.m5.xlarge"), "no scikit-learn 1.9-0 training image in region"),
        (("us-east-1", "m5.xlarge"), "expected ml.<family>.<size>"),
        (
            ("us-east-1", "ml.m5.xlarge", "0.1-0"),
            "scikit-learn container '0.1-0' is not in the SDK's image table",
        ),
    ],
)
def test_image_refuses_bad_input(args, message):
    with pytest.raises(rt.RemoteTrainingError, match=message):
        rt.sklearn_training_image(*args)


# --- the bundle ------------------------------------------------------------------------------


def test_bundle_holds_entry_point_and_ml_package_reproducibly(tmp_path):
    data = rt.package_source("churn")
    assert data == rt.package_source("churn")  # equal code, equal bytes
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = tar.getnames()
        entry = tar.extractfile(rt.ENTRY_POINT).read().decode()
    assert names[0] == "mlplatform_train.py"
    assert {"ml/train.py", "ml/features.py", "ml/schema.py", "ml/remote_training.py"} <= set(names)
    assert {"ml/models/__init__.py", "ml/models/churn/model.py"} <= set(names)
    assert not any(n.startswith("ml/models/spend/") for n in names)
    assert "from ml.train import main" in entry and "SystemExit(main())" in entry
    compile(entry, rt.ENTRY_POINT, "exec")


@mock_aws
def test_upload_source_encrypts_with_the_lake_key(target):
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="lake-models")
    uri = rt.upload_source(target, "churn-1", s3_client=s3)
    assert uri == "s3://lake-models/training/code/churn-1/sourcedir.tar.gz"
    head = s3.head_object(Bucket="lake-models", Key="training/code/churn-1/sourcedir.tar.gz")
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"] == OUTPUTS["lake_kms_key_arn"]


# --- SageMaker -------------------------------------------------------------------------------


def test_request_fields(target):
    r = request(target)
    assert r["TrainingJobName"] == "churn-1"
    assert r["AlgorithmSpecification"] == {
        "TrainingImage": SKLEARN_US_EAST_1,
        "TrainingInputMode": "File",
    }
    assert r["RoleArn"] == TRAINING_ROLE
    assert r["Environment"] == {"MLPLAT_MODEL": "churn"}
    hp = r["HyperParameters"]
    assert json.loads(hp["sagemaker_program"]) == "mlplatform_train.py"
    assert (
        json.loads(hp["sagemaker_submit_directory"]) == "/opt/ml/input/data/code/sourcedir.tar.gz"
    )
    channels = {c["ChannelName"]: c for c in r["InputDataConfig"]}
    assert set(channels) == {"train", "code"}
    assert (
        channels["train"]["DataSource"]["S3DataSource"]["S3Uri"]
        == "s3://lake-features/customer_features/"
    )
    assert (
        channels["code"]["DataSource"]["S3DataSource"]["S3Uri"]
        == "s3://lake-models/training/code/churn-1/sourcedir.tar.gz"
    )
    assert r["OutputDataConfig"] == {
        "S3OutputPath": "s3://lake-models/training/output/",
        "KmsKeyId": OUTPUTS["lake_kms_key_arn"],
    }
    assert r["ResourceConfig"]["VolumeKmsKeyId"] == OUTPUTS["lake_kms_key_arn"]
    assert r["ResourceConfig"]["InstanceType"] == "ml.m5.xlarge"
    assert r["VpcConfig"] == {"SecurityGroupIds": ["sg-0c"], "Subnets": ["subnet-0a", "subnet-0b"]}
    assert r["EnableManagedSpotTraining"] is True
    assert r["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 7200}
    assert r["CheckpointConfig"]["S3Uri"] == "s3://lake-models/training/checkpoints/churn-1/"
    assert r["EnableNetworkIsolation"] is True
    assert r["EnableInterContainerTrafficEncryption"] is False


def test_request_without_spot_or_isolation(target):
    r = request(
        target,
        use_spot=False,
        network_isolation=False,
        instance_count=2,
        hyperparameters={"estimator": "hist_gradient_boosting", "c": 0.5},
    )
    assert r["EnableManagedSpotTraining"] is False
    assert "CheckpointConfig" not in r and "MaxWaitTimeInSeconds" not in r["StoppingCondition"]
    assert [c["ChannelName"] for c in r["InputDataConfig"]] == ["train"]
    assert (
        json.loads(r["HyperParameters"]["sagemaker_submit_directory"])
        == "s3://lake-models/training/code/churn-1/sourcedir.tar.gz"
    )
    assert r["HyperParameters"]["c"] == "0.5"
    assert json.loads(r["HyperParameters"]["estimator"]) == "hist_gradient_boosting"
    assert r["EnableInterContainerTrafficEncryption"] is True


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"job_name": "Bad_Name"}, "job name 'Bad_Name'"),
        ({"max_wait_seconds": 60}, "max_wait_seconds 60 must be >= max_runtime_seconds"),
        ({"max_runtime_seconds": 10}, "max_runtime_seconds 10"),
        ({"instance_count": 0}, "instance_count 0"),
        ({"features_prefix": "/"}, "features prefix '/'"),
        ({"instance_type": "ml.p4d.24xlarge"}, "cpu instances only"),
    ],
)
def test_request_refuses_bad_input(target, override, message):
    with pytest.raises(rt.RemoteTrainingError, match=message):
        request(target, **override)


@mock_aws
def test_moto_accepts_the_request(target):
    sm = boto3.client("sagemaker", region_name=REGION)
    r = request(target, tags={"owner": "ml-team"})
    arn = rt.submit_sagemaker_training(r, sm)
    assert arn == "arn:aws:sagemaker:us-east-1:123456789012:training-job/churn-1"
    described = sm.describe_training_job(TrainingJobName="churn-1")
    for key in (
        "AlgorithmSpecification",
        "RoleArn",
        "HyperParameters",
        "InputDataConfig",
        "OutputDataConfig",
        "ResourceConfig",
        "VpcConfig",
        "StoppingCondition",
        "CheckpointConfig",
    ):
        sent = r[key]
        if isinstance(sent, dict):  # moto adds defaults (e.g. MetricDefinitions): what we sent
            assert {k: described[key].get(k) for k in sent} == sent, key
        else:
            assert described[key] == sent, key
    assert described["EnableManagedSpotTraining"] is True
    assert described["EnableNetworkIsolation"] is True


# --- Kubernetes ------------------------------------------------------------------------------


def test_job_manifest_validates_and_asks_for_a_gpu_node(target):
    job = rt.kubernetes_training_job(target, job_name="churn-1", image=SKLEARN_US_EAST_1, gpus=2)
    assert kubernetes_validate.validate(job, "1.33.0", strict=True) == "1.33"
    typo = json.loads(json.dumps(job))
    typo["spec"]["template"]["spec"]["nodeSelectr"] = typo["spec"]["template"]["spec"].pop(
        "nodeSelector"
    )
    with pytest.raises(kubernetes_validate.ValidationError, match="nodeSelectr"):
        kubernetes_validate.validate(typo, "1.33.0", strict=True)
    assert job["apiVersion"] == "batch/v1" and job["kind"] == "Job"
    assert job["metadata"]["namespace"] == "training"
    spec = job["spec"]
    assert (
        spec["backoffLimit"],
        spec["activeDeadlineSeconds"],
        spec["ttlSecondsAfterFinished"],
    ) == (1, 4 * 3600, 86400)
    pod = spec["template"]["spec"]
    assert pod["serviceAccountName"] == "trainer"
    assert pod["nodeSelector"] == {"nvidia.com/gpu": "true"}
    assert pod["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]
    (container,) = pod["containers"]
    assert container["resources"]["requests"]["nvidia.com/gpu"] == "2"
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "2"
    assert rt.pod_command_uris(job) == (
        "s3://lake-models/training/code/churn-1/sourcedir.tar.gz",
        "s3://lake-features/customer_features/",
        "s3://lake-models/training/output/churn-1/",
    )
    compile(container["command"][2], "<bootstrap>", "exec")
    assert yaml.safe_load(rt.job_yaml(job)) == job


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"gpus": 0}, "gpus 0"),
        ({"image": "two words"}, "image 'two words'"),
        ({"backoff_limit": 11}, "backoff_limit 11"),
        ({"active_deadline_seconds": 5}, "active_deadline_seconds 5"),
        ({"job_name": "x" * 64}, "job name"),
    ],
)
def test_job_refuses_bad_input(target, override, message):
    args = {"job_name": "churn-1", "image": SKLEARN_US_EAST_1, **override}
    with pytest.raises(rt.RemoteTrainingError, match=message):
        rt.kubernetes_training_job(target, **args)


class GatewayLambda:
    """`lambda.invoke` of the stack's jobs gateway, run in-process: the real handler, the
    response shape boto3 returns (`Payload`, `FunctionError` on an uncaught error)."""

    def __init__(self, api_client, monkeypatch) -> None:
        self.api = api_client
        self.calls: list[dict] = []
        monkeypatch.setenv("GATEWAY_ROLE", "jobs")
        monkeypatch.setenv("JOBS_NAMESPACE", "training")

    def invoke(self, FunctionName: str, Payload: bytes) -> dict:
        from components.lambdas import cluster_gateway as gw

        event = json.loads(Payload)
        self.calls.append({"function": FunctionName, **event})
        try:
            body, error = gw.handler(event, api=self.api), None
        except gw.GatewayError as exc:
            body, error = {"errorMessage": str(exc), "errorType": "GatewayError"}, "Unhandled"
        response = {"StatusCode": 200, "Payload": io.BytesIO(json.dumps(body).encode())}
        if error:
            response["FunctionError"] = error
        return response


@pytest.fixture
def gateway(tmp_path, monkeypatch):
    from components.lambdas import cluster_gateway as gw
    from tests.fake_k8s import TOKEN, running_api

    with running_api(tmp_path) as (api, endpoint, ca):
        yield api, GatewayLambda(gw.ClusterApi(endpoint, ca, lambda: TOKEN, timeout=5), monkeypatch)


def test_submit_goes_through_the_jobs_gateway(target, gateway):
    api, client = gateway
    job = rt.kubernetes_training_job(target, job_name="churn-1", image=SKLEARN_US_EAST_1)
    summary = rt.submit_kubernetes_job(job, "gpu-gateway-jobs-fn-1a2b3c4", client)
    assert summary["name"] == "churn-1" and summary["state"] == "Running"
    (call,) = client.calls
    assert call == {"function": "gpu-gateway-jobs-fn-1a2b3c4", "action": "submit", "job": job}
    created = api.requests[-1]
    assert (created["method"], created["path"]) == (
        "POST",
        "/apis/batch/v1/namespaces/training/jobs",
    )
    assert created["body"] == job


def test_gateway_refusals_become_clear_errors(target, gateway):
    _, client = gateway
    job = rt.kubernetes_training_job(target, job_name="churn-1", image=SKLEARN_US_EAST_1)
    elsewhere = {**job, "metadata": {**job["metadata"], "namespace": "kube-system"}}
    with pytest.raises(rt.RemoteTrainingError, match="refused: job: namespace 'kube-system'"):
        rt.submit_kubernetes_job(elsewhere, "fn", client)


def test_follow_reports_each_change_until_the_job_ends(target, gateway):
    api, client = gateway
    job = rt.kubernetes_training_job(target, job_name="churn-2", image=SKLEARN_US_EAST_1)
    rt.submit_kubernetes_job(job, "fn", client)
    stored = api.objects["/apis/batch/v1/namespaces/training/jobs/churn-2"]
    pod = {"metadata": {"name": "churn-2-x"}, "spec": {}, "status": {"phase": "Pending"}}
    api.pods["churn-2"] = [pod]
    ticks = iter(
        [
            lambda: None,  # still pending
            lambda: pod["status"].update(phase="Running"),
            lambda: stored.update(
                status={"failed": 1, "conditions": [{"type": "Failed", "status": "True"}]}
            ),
        ]
    )
    printed: list[str] = []
    state = rt.follow_kubernetes_job(
        "churn-2", "fn", client, echo=printed.append, poll_seconds=0, sleep=lambda _: next(ticks)()
    )
    assert state == "Failed"
    assert printed == [
        "churn-2: Running (churn-2-x Pending)",
        "churn-2: Running (churn-2-x Running)",
        "churn-2: Failed (churn-2-x Running)",
    ]


# --- in the pod ------------------------------------------------------------------------------


@mock_aws
def test_pod_training_moves_features_in_and_model_out(tmp_path):
    s3 = boto3.client("s3", region_name=REGION)
    for bucket in ("lake-features", "lake-models"):
        s3.create_bucket(Bucket=bucket)
    s3.put_object(
        Bucket="lake-features", Key="customer_features/dt=2025-01-01/part-0.parquet", Body=b"PAR1"
    )
    calls = []

    def fake_train(env):
        calls.append(dict(env))
        files = sorted(
            p.relative_to(env["SM_CHANNEL_TRAIN"]).as_posix()
            for p in __import__("pathlib").Path(env["SM_CHANNEL_TRAIN"]).rglob("*")
            if p.is_file()
        )
        assert files == ["dt=2025-01-01/part-0.parquet"]
        model = __import__("pathlib").Path(env["SM_MODEL_DIR"])
        model.mkdir(parents=True)
        (model / "model.joblib").write_bytes(b"model")

    code = rt.run_pod_training(
        "s3://lake-features/customer_features/",
        "s3://lake-models/training/output/churn-1/",
        s3_client=s3,
        train=fake_train,
        workdir=str(tmp_path),
    )
    assert code == 0 and len(calls) == 1
    body = s3.get_object(Bucket="lake-models", Key="training/output/churn-1/model.tar.gz")[
        "Body"
    ].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        assert tar.getnames() == ["model.joblib"]


@mock_aws
def test_pod_training_fails_clearly(tmp_path, capsys):
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="lake-features")
    assert (
        rt.run_pod_training(
            "s3://lake-features/none/",
            "s3://lake-models/x/",
            s3_client=s3,
            train=lambda env: None,
            workdir=str(tmp_path),
        )
        == 1
    )
    assert "no objects under s3://lake-features/none/" in capsys.readouterr().err
    s3.put_object(Bucket="lake-features", Key="f/a.parquet", Body=b"x")

    def failing(env):
        raise ValueError("bad table")

    assert (
        rt.run_pod_training(
            "s3://lake-features/f/",
            "s3://lake-models/x/",
            s3_client=s3,
            train=failing,
            workdir=str(tmp_path / "2"),
        )
        == 1
    )
    assert "training failed: bad table" in capsys.readouterr().err
    with pytest.raises(rt.RemoteTrainingError, match="expected s3://bucket/prefix/"):
        rt.run_pod_training("lake-features/f/", "s3://x/y/", s3_client=s3, train=failing)


# --- the command -----------------------------------------------------------------------------


@pytest.fixture
def outputs_file(tmp_path):
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(OUTPUTS))
    return path


def dev_run(job_name: str, **overrides) -> rt.RemoteRun:
    """The run `mlplat train -s dev` builds: its knobs from Pulumi.dev.yaml."""
    from mlplat.plan.preview import load_stack
    from tests.conftest import ROOT

    settings, _ = load_stack("dev", ROOT)
    training = settings.training
    return rt.RemoteRun(
        job_name=job_name,
        instance_type=training.instance_type,
        use_spot=training.use_spot,
        max_runtime_seconds=training.max_runtime_seconds,
        max_wait_seconds=training.max_wait_seconds,
        tags=settings.tags,
        **overrides,
    )


def test_train_remote_dry_run_sagemaker(target):
    printed: list[str] = []
    req = rt.train_remote(
        "sagemaker", target, dev_run("churn-7"), dry_run=True, echo=printed.append
    )
    assert json.loads(printed[0]) == req
    assert req["ResourceConfig"]["InstanceType"] == "ml.m5.xlarge"  # dev's trainingInstanceType
    assert req["EnableManagedSpotTraining"] is True


def test_train_remote_dry_run_eks_prints_the_job(target):
    printed: list[str] = []
    job = rt.train_remote(
        "eks", target, dev_run("churn-7", gpus=1), dry_run=True, echo=printed.append
    )
    assert yaml.safe_load(printed[0]) == job
    assert job["spec"]["activeDeadlineSeconds"] == 4 * 3600


@mock_aws
def test_train_remote_submits_to_sagemaker(target):
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="lake-models")
    sm = boto3.client("sagemaker", region_name=REGION)
    printed: list[str] = []
    rt.train_remote(
        "sagemaker",
        target,
        dev_run("churn-8"),
        echo=printed.append,
        sagemaker_client=sm,
        s3_client=s3,
    )
    assert sm.describe_training_job(TrainingJobName="churn-8")["TrainingJobStatus"]
    assert s3.head_object(Bucket="lake-models", Key="training/code/churn-8/sourcedir.tar.gz")
    assert printed[0].startswith("submitted arn:aws:sagemaker:us-east-1:123456789012:")


def test_train_remote_submits_to_eks_through_the_gateway(target, gateway):
    api, client = gateway
    printed: list[str] = []
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket="lake-models")
        job = rt.train_remote(
            "eks",
            target,
            dev_run("churn-11"),
            echo=printed.append,
            s3_client=s3,
            lambda_client=client,
        )
        assert s3.head_object(Bucket="lake-models", Key="training/code/churn-11/sourcedir.tar.gz")
    assert api.objects["/apis/batch/v1/namespaces/training/jobs/churn-11"]["spec"] == job["spec"]
    assert printed == ["created job training/churn-11 on ml-platform-dev-training (Running)"]


def test_command_errors_exit_2(outputs_file, tmp_path):
    from typer.testing import CliRunner

    from mlplat.cli.app import app

    runner = CliRunner()
    base = ["train", "-s", "dev", "--outputs", str(outputs_file), "--dry-run"]
    ok = runner.invoke(app, [*base, "--on", "sagemaker", "--job-name", "churn-9"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["TrainingJobName"] == "churn-9"
    named = runner.invoke(app, [*base, "--on", "sagemaker", "--model", "churn"])
    assert json.loads(named.stdout)["TrainingJobName"].startswith("churn-")
    hosted = runner.invoke(app, [*base, "--on", "sagemaker", "--model", "spend"])
    assert hosted.exit_code == 2
    assert "stack 'dev' hosts no such model; its models: churn" in hosted.stderr
    cases = [
        (["--on", "tpu"], "--on 'tpu': expected one of local, sagemaker, eks"),
        (["--on", "sagemaker", "--job-name", "Bad"], "job name 'Bad'"),
        (["--on", "sagemaker", "--instance-type", "ml.g5.xlarge"], "cpu instances only"),
    ]
    for extra, message in cases:
        result = runner.invoke(app, [*base, *extra])
        assert result.exit_code == 2 and message in result.stderr, (extra, result.output)
    no_stack = runner.invoke(app, ["train", "--on", "eks", "--dry-run"])
    assert no_stack.exit_code == 2 and "--on eks needs --stack" in no_stack.stderr
    no_cluster = tmp_path / "no-cluster.json"
    no_cluster.write_text(json.dumps({**OUTPUTS, "training_cluster_name": None}))
    eks = ["train", "--on", "eks", "--outputs", str(no_cluster), "--dry-run"]
    result = runner.invoke(app, [*eks, "-s", "dev"])
    assert result.exit_code == 2 and "has no training cluster" in result.stderr
    result = runner.invoke(app, [*eks, "-s", "nope"])
    assert result.exit_code == 2 and "no stack file Pulumi.nope.yaml" in result.stderr
    absent = ["train", "--on", "eks", "-s", "dev", "--outputs", str(tmp_path / "absent.json")]
    missing = runner.invoke(app, [*absent, "--dry-run"])
    assert missing.exit_code == 2 and "cannot read platform outputs" in missing.stderr
