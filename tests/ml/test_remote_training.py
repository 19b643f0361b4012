"""Remote training: the SageMaker request (accepted by moto), the Kubernetes Job (schema-valid),
the code bundle, the pod runner (`ml.training_pod`) and `mlplat train --on sagemaker|eks`, for a
scikit-learn model (churn) and an XGBoost one (spend: the XGBoost image on a GPU instance, the
platform image on EKS)."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import boto3
import kubernetes_validate
import pandas as pd
import pytest
import yaml
from moto import mock_aws

from ml import remote_training as rt
from ml import training_pod
from tests.conftest import make_outputs
from tests.ml.conftest import model_outputs

REGION = "us-east-1"
TRAINING_ROLE = "arn:aws:iam::123456789012:role/train-role-abc"
SPEND_ROLE = "arn:aws:iam::123456789012:role/spend-train-role-def"
PLATFORM_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/ml-platform-dev-platform:3f2a1c0"
# Each model's training role writes its own artifacts prefix only: runs keep their files there.
CHURN_TRAINING = "models/ml-platform-dev-churn/training"
SPEND_TRAINING = "models/ml-platform-dev-spend/training"
OUTPUTS = make_outputs(
    stack="dev",
    region=REGION,
    features_bucket="lake-features",
    models_bucket="lake-models",
    lake_kms_key_arn="arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-5555",
    models={
        "churn": model_outputs(
            training_role_arn=TRAINING_ROLE,
            model_artifacts_prefix="models/ml-platform-dev-churn",
        ),
        "spend": model_outputs(
            training_role_arn=SPEND_ROLE,
            model_artifacts_prefix="models/ml-platform-dev-spend",
        ),
    },
    training_subnet_ids=["subnet-0a", "subnet-0b"],
    training_security_group_ids=["sg-0c"],
    training_cluster_name="ml-platform-dev-training",
    training_jobs_function_name="gpu-gateway-jobs-fn-1a2b3c4",
    training_namespace="training",
    training_service_account="trainer",
    platform_image_uri=PLATFORM_IMAGE,
).to_json()
# an image a run names itself (`--image`)
OTHER_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/trainer:1"


@pytest.fixture
def target() -> rt.TrainingTarget:
    return rt.TrainingTarget.from_mapping(OUTPUTS, "churn")


@pytest.fixture
def spend() -> rt.TrainingTarget:
    return rt.TrainingTarget.from_mapping(OUTPUTS, "spend")


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
    assert target.models_prefix == CHURN_TRAINING
    assert target.platform_image_uri == PLATFORM_IMAGE


def test_each_model_gets_its_own_role_and_prefix(target, spend):
    assert (spend.model, spend.training_role_arn, spend.models_prefix) == (
        "spend",
        SPEND_ROLE,
        SPEND_TRAINING,
    )
    assert target.training_role_arn != spend.training_role_arn


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"models": {"churn": {"training_role_arn": None, "model_artifacts_prefix": "m/c"}}},
            "lack training_role_arn",
        ),
        (
            {"models": {"churn": {"training_role_arn": TRAINING_ROLE}}},
            "lack model_artifacts_prefix",
        ),
        ({"models": {"spend": {}}}, "hold no model 'churn' \\(its models: spend\\)"),
        ({"training_subnet_ids": []}, "lack training_subnet_ids"),
        ({"training_security_group_ids": "sg-1"}, "expected a list of ids"),
    ],
)
def test_target_refuses_incomplete_outputs(change, message):
    with pytest.raises(rt.RemoteTrainingError, match=message):
        rt.TrainingTarget.from_mapping({**OUTPUTS, **change}, "churn")


# --- the image -------------------------------------------------------------------------------


def test_every_remote_run_trains_in_the_platform_image(target, spend):
    # The SageMaker framework containers run Python 3.10 (aws/sagemaker-xgboost-container,
    # docker/3.0-5/base/Dockerfile.cpu: PYTHON_VERSION=3.10); the bundle needs 3.11.
    assert rt.platform_image(target) == rt.platform_image(spend) == PLATFORM_IMAGE
    bare = rt.TrainingTarget.from_mapping({**OUTPUTS, "platform_image_uri": ""}, "spend")
    with pytest.raises(
        rt.RemoteTrainingError, match="model 'spend' runs in the platform image, but the platform"
    ):
        rt.platform_image(bare)
    assert (rt.model_framework("churn"), rt.model_framework("spend")) == ("sklearn", "xgboost")


def test_gpu_instances_only_for_frameworks_with_a_cuda_build(target, spend):
    for instance in ("ml.m5.xlarge", "ml.g4dn.xlarge", "ml.g5.xlarge", "ml.p3.2xlarge"):
        assert rt.check_instance_type(spend, instance) == instance
    assert rt.check_instance_type(target, "ml.m5.xlarge") == "ml.m5.xlarge"
    with pytest.raises(rt.RemoteTrainingError, match=r"cpu instances only, not ml\.g5\.xlarge"):
        rt.check_instance_type(target, "ml.g5.xlarge")
    with pytest.raises(rt.RemoteTrainingError, match=r"expected ml\.<family>\.<size>"):
        rt.check_instance_type(spend, "g5.xlarge")


def test_the_sagemaker_entrypoint_unpacks_the_bundle_and_trains(
    tmp_path: Path, features: pd.DataFrame
) -> None:
    """The job's entry point, run as SageMaker runs it (the code channel's archive, the
    container's directories), with only the channel's path moved to a temporary directory."""
    (*shell, script) = rt.SAGEMAKER_ENTRYPOINT
    assert shell == ["/bin/sh", "-c"] and all(len(part) <= 256 for part in rt.SAGEMAKER_ENTRYPOINT)
    code = tmp_path / "input" / "data" / "code"
    code.mkdir(parents=True)
    (code / rt.SOURCE_ARCHIVE).write_bytes(rt.package_source("churn"))
    train = tmp_path / "input" / "data" / "train"
    train.mkdir()
    features.to_parquet(train / "part-0.parquet", index=False)
    env = {
        "PATH": os.environ["PATH"],
        "TMPDIR": str(tmp_path),
        "MLPLAT_MODEL": "churn",
        "SM_INPUT_DIR": str(tmp_path / "input"),
        "SM_MODEL_DIR": str(tmp_path / "model"),
        "SM_OUTPUT_DIR": str(tmp_path / "output"),
        "SM_CHANNEL_TRAIN": str(train),
    }
    python = Path(sys.executable).parent  # `python3` on the PATH, as in the image
    env["PATH"] = f"{python}{os.pathsep}{env['PATH']}"
    done = subprocess.run(
        [*shell, script.replace("/opt/ml/input", str(tmp_path / "input"))],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "model" / "model.joblib").is_file()
    assert (tmp_path / "model" / "code").is_dir()  # servable as is
    broken = subprocess.run(
        [*shell, script.replace("/opt/ml/input", str(tmp_path / "missing"))],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert broken.returncode != 0  # `set -e`: no archive, no training of whatever is there


# --- the bundle ------------------------------------------------------------------------------


def test_bundle_holds_entry_point_and_ml_package_reproducibly(tmp_path):
    data = rt.package_source("churn")
    assert data == rt.package_source("churn")  # equal code, equal bytes
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = tar.getnames()
        entry = tar.extractfile(rt.ENTRY_POINT).read().decode()
    assert names[0] == "mlplatform_train.py"
    assert {"ml/train.py", "ml/features.py", "ml/schema.py", "ml/training_pod.py"} <= set(names)
    assert {"ml/models/__init__.py", "ml/models/churn/model.py"} <= set(names)
    assert not any(n.startswith("ml/models/spend/") for n in names)
    assert "from ml.train import main" in entry and "SystemExit(main())" in entry
    assert 'logging.getLogger("ml").setLevel(logging.INFO)' in entry  # the device log shows
    compile(entry, rt.ENTRY_POINT, "exec")


def test_the_spend_bundle_holds_spend_only():
    with tarfile.open(fileobj=io.BytesIO(rt.package_source("spend"))) as tar:
        names = set(tar.getnames())
    assert {"ml/models/spend/model.py", "ml/models/spend/estimator.py", "ml/train.py"} <= names
    assert not any(n.startswith("ml/models/churn/") for n in names)


def test_the_entry_script_refuses_an_old_python_clearly(tmp_path):
    (tmp_path / "ml").mkdir()
    (tmp_path / "ml" / "__init__.py").write_text("")
    (tmp_path / "ml" / "train.py").write_text("def main():\n    return 0\n")
    script = rt._ENTRY_SCRIPT.replace("(3, 11)", "(99, 0)")  # as on an older interpreter
    (tmp_path / rt.ENTRY_POINT).write_text(script)
    done = subprocess.run(
        [sys.executable, rt.ENTRY_POINT], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert "the ml-platform bundle needs Python >= 3.11, not " in done.stderr
    (tmp_path / rt.ENTRY_POINT).write_text(rt._ENTRY_SCRIPT)
    ok = subprocess.run(
        [sys.executable, rt.ENTRY_POINT], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert ok.returncode == 0, ok.stderr


@mock_aws
def test_upload_source_encrypts_with_the_lake_key(target):
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="lake-models")
    uri = rt.upload_source(target, "churn-1", s3_client=s3)
    assert uri == f"s3://lake-models/{CHURN_TRAINING}/code/churn-1/sourcedir.tar.gz"
    head = s3.head_object(
        Bucket="lake-models", Key=f"{CHURN_TRAINING}/code/churn-1/sourcedir.tar.gz"
    )
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"] == OUTPUTS["lake_kms_key_arn"]


# --- SageMaker -------------------------------------------------------------------------------


def test_request_fields(target):
    r = request(target)
    assert r["TrainingJobName"] == "churn-1"
    assert r["AlgorithmSpecification"] == {
        "TrainingImage": PLATFORM_IMAGE,
        "TrainingInputMode": "File",
        "ContainerEntrypoint": list(rt.SAGEMAKER_ENTRYPOINT),
    }
    assert r["RoleArn"] == TRAINING_ROLE
    assert r["Environment"] == {"MLPLAT_MODEL": "churn"}
    assert r["HyperParameters"] == {}
    channels = {c["ChannelName"]: c for c in r["InputDataConfig"]}
    assert set(channels) == {"train", "code"}
    assert (
        channels["train"]["DataSource"]["S3DataSource"]["S3Uri"]
        == "s3://lake-features/customer_features/"
    )
    assert (
        channels["code"]["DataSource"]["S3DataSource"]["S3Uri"]
        == f"s3://lake-models/{CHURN_TRAINING}/code/churn-1/sourcedir.tar.gz"
    )
    assert r["OutputDataConfig"] == {
        "S3OutputPath": f"s3://lake-models/{CHURN_TRAINING}/output/",
        "KmsKeyId": OUTPUTS["lake_kms_key_arn"],
    }
    assert r["ResourceConfig"]["VolumeKmsKeyId"] == OUTPUTS["lake_kms_key_arn"]
    assert r["ResourceConfig"]["InstanceType"] == "ml.m5.xlarge"
    assert r["VpcConfig"] == {"SecurityGroupIds": ["sg-0c"], "Subnets": ["subnet-0a", "subnet-0b"]}
    assert r["EnableManagedSpotTraining"] is True
    assert r["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 7200}
    assert (
        r["CheckpointConfig"]["S3Uri"] == f"s3://lake-models/{CHURN_TRAINING}/checkpoints/churn-1/"
    )
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
    # the bundle comes as a channel either way: the entry point unpacks it from there
    assert [c["ChannelName"] for c in r["InputDataConfig"]] == ["train", "code"]
    # as `ml.train.read_hyperparameters` parses them: strings unquoted, numbers as JSON
    assert r["HyperParameters"] == {"estimator": "hist_gradient_boosting", "c": "0.5"}
    from ml.models import load

    parsed = load("churn").hyperparameters.from_mapping(r["HyperParameters"])
    assert (parsed.estimator, parsed.c) == ("hist_gradient_boosting", 0.5)
    assert r["EnableInterContainerTrafficEncryption"] is True


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"job_name": "Bad_Name"}, "job name 'Bad_Name'"),
        ({"max_wait_seconds": 60}, "max_wait_seconds 60 must be >= max_runtime_seconds"),
        ({"max_runtime_seconds": 10}, "max_runtime_seconds 10"),
        ({"instance_count": 0}, "instance_count 0"),
        ({"features_prefix": "/"}, "features prefix '/'"),
        (
            {"instance_type": "ml.p4d.24xlarge"},
            "model 'churn' \\(sklearn\\) trains on cpu instances only, not ml.p4d.24xlarge",
        ),
        ({"models_prefix": "a b"}, "models prefix 'a b'"),
    ],
)
def test_request_refuses_bad_input(target, override, message):
    with pytest.raises(rt.RemoteTrainingError, match=message):
        request(target, **override)


@pytest.mark.parametrize("instance_type", ["ml.g5.xlarge", "ml.g4dn.xlarge", "ml.m5.xlarge"])
def test_the_spend_request_trains_in_the_platform_image(spend, instance_type):
    r = request(spend, job_name="spend-1", instance_type=instance_type)
    assert r["AlgorithmSpecification"] == {
        "TrainingImage": PLATFORM_IMAGE,  # the CUDA build of xgboost, on CPU and GPU instances
        "TrainingInputMode": "File",
        "ContainerEntrypoint": list(rt.SAGEMAKER_ENTRYPOINT),
    }
    assert r["ResourceConfig"]["InstanceType"] == instance_type
    assert r["Environment"] == {"MLPLAT_MODEL": "spend"}
    assert r["RoleArn"] == SPEND_ROLE
    channels = {
        c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in r["InputDataConfig"]
    }
    assert channels == {
        "train": "s3://lake-features/spend_features/",
        "code": f"s3://lake-models/{SPEND_TRAINING}/code/spend-1/sourcedir.tar.gz",
    }
    assert r["OutputDataConfig"]["S3OutputPath"] == f"s3://lake-models/{SPEND_TRAINING}/output/"
    assert (
        r["CheckpointConfig"]["S3Uri"] == f"s3://lake-models/{SPEND_TRAINING}/checkpoints/spend-1/"
    )
    assert r["EnableNetworkIsolation"] is True


@mock_aws
def test_moto_accepts_the_spend_gpu_request(spend):
    sm = boto3.client("sagemaker", region_name=REGION)
    r = request(spend, job_name="spend-2", instance_type="ml.g5.xlarge")
    rt.submit_sagemaker_training(r, sm)
    described = sm.describe_training_job(TrainingJobName="spend-2")
    assert described["AlgorithmSpecification"]["TrainingImage"] == PLATFORM_IMAGE
    assert described["ResourceConfig"]["InstanceType"] == "ml.g5.xlarge"


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
    job = rt.kubernetes_training_job(target, job_name="churn-1", image=PLATFORM_IMAGE, gpus=2)
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
        f"s3://lake-models/{CHURN_TRAINING}/code/churn-1/sourcedir.tar.gz",
        "s3://lake-features/customer_features/",
        f"s3://lake-models/{CHURN_TRAINING}/output/churn-1/",
    )
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["MLPLAT_MODEL"] == "churn"
    assert env["NVIDIA_DRIVER_CAPABILITIES"] == "compute,utility"  # libcuda.so, nvidia-smi
    compile(container["command"][2], "<bootstrap>", "exec")
    assert yaml.safe_load(rt.job_yaml(job)) == job


def test_the_spend_job_runs_the_platform_image_on_a_gpu(spend):
    image = rt.platform_image(spend)
    job = rt.kubernetes_training_job(spend, job_name="spend-1", image=image)
    assert kubernetes_validate.validate(job, "1.33.0", strict=True) == "1.33"
    pod = job["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"nvidia.com/gpu": "true"}
    assert pod["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]
    (container,) = pod["containers"]
    assert container["image"] == PLATFORM_IMAGE
    assert container["resources"]["requests"]["nvidia.com/gpu"] == "1"
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["MLPLAT_MODEL"] == "spend"
    assert env["NVIDIA_DRIVER_CAPABILITIES"] == "compute,utility"
    assert rt.pod_command_uris(job) == (
        f"s3://lake-models/{SPEND_TRAINING}/code/spend-1/sourcedir.tar.gz",
        "s3://lake-features/spend_features/",
        f"s3://lake-models/{SPEND_TRAINING}/output/spend-1/",
    )
    bootstrap = container["command"][2]
    compile(bootstrap, "<bootstrap>", "exec")
    assert 'logging.getLogger("ml").setLevel(logging.INFO)' in bootstrap


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
    args = {"job_name": "churn-1", "image": OTHER_IMAGE, **override}
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
    job = rt.kubernetes_training_job(target, job_name="churn-1", image=OTHER_IMAGE)
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
    job = rt.kubernetes_training_job(target, job_name="churn-1", image=OTHER_IMAGE)
    elsewhere = {**job, "metadata": {**job["metadata"], "namespace": "kube-system"}}
    with pytest.raises(rt.RemoteTrainingError, match="refused: job: namespace 'kube-system'"):
        rt.submit_kubernetes_job(elsewhere, "fn", client)


def test_follow_reports_each_change_until_the_job_ends(target, gateway):
    api, client = gateway
    job = rt.kubernetes_training_job(target, job_name="churn-2", image=OTHER_IMAGE)
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

    code = training_pod.run_pod_training(
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
        training_pod.run_pod_training(
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
        training_pod.run_pod_training(
            "s3://lake-features/f/",
            "s3://lake-models/x/",
            s3_client=s3,
            train=failing,
            workdir=str(tmp_path / "2"),
        )
        == 1
    )
    assert "training failed: bad table" in capsys.readouterr().err
    with pytest.raises(training_pod.PodTrainingError, match="expected s3://bucket/prefix/"):
        training_pod.run_pod_training("lake-features/f/", "s3://x/y/", s3_client=s3, train=failing)


@pytest.fixture
def no_nvidia_smi(tmp_path, monkeypatch):
    """A PATH without nvidia-smi, as in a pod without the NVIDIA runtime's utilities."""
    empty = tmp_path / "no-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


def test_visible_gpus_asks_nvidia_smi(tmp_path, monkeypatch, no_nvidia_smi):
    assert training_pod.visible_gpus() == []
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    smi = bin_dir / "nvidia-smi"
    smi.write_text("#!/bin/sh\nprintf 'NVIDIA A10G\\n'\n")
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    assert training_pod.visible_gpus() == ["NVIDIA A10G"]
    smi.write_text("#!/bin/sh\necho 'NVIDIA-SMI has failed' >&2\nexit 9\n")
    assert training_pod.visible_gpus() == []


@pytest.mark.parametrize("cuda_build", [False, True], ids=["cpu-build", "cuda-build"])
def test_the_spend_pod_trains_on_cpu_here_and_says_so(
    tmp_path, monkeypatch, caplog, no_nvidia_smi, cuda_build
):
    """What the spend Job's pod runs, on this GPU-less machine: the real training, the device
    decision in the log, the device in the lineage of the model.tar.gz it writes."""
    import xgboost

    from ml.models import load
    from ml.models.spend import estimator
    from ml.sample_data import generate_customers

    model = load("spend")
    table = model.features.build_features(generate_customers(3_000, seed=5))
    parquet = io.BytesIO()
    table.to_parquet(parquet, index=False)
    if cuda_build:  # the platform image's CUDA build, on a node whose GPU it cannot see
        monkeypatch.setattr(xgboost, "build_info", lambda: {"USE_CUDA": True})
    monkeypatch.setenv("MLPLAT_MODEL", "spend")
    estimator.device.cache_clear()  # decided once per process: decide it in this "pod"
    try:
        with mock_aws():
            s3 = boto3.client("s3", region_name=REGION)
            for bucket in ("lake-features", "lake-models"):
                s3.create_bucket(Bucket=bucket)
            s3.put_object(
                Bucket="lake-features",
                Key="spend_features/dt=2025-01-01/part-0.parquet",
                Body=parquet.getvalue(),
            )
            with caplog.at_level(logging.INFO, logger="ml"):
                code = training_pod.run_pod_training(
                    "s3://lake-features/spend_features/",
                    f"s3://lake-models/{SPEND_TRAINING}/output/spend-3/",
                    s3_client=s3,
                    workdir=str(tmp_path / "pod"),
                )
            body = s3.get_object(
                Bucket="lake-models", Key=f"{SPEND_TRAINING}/output/spend-3/model.tar.gz"
            )["Body"].read()
    finally:
        estimator.device.cache_clear()
    assert code == 0, caplog.text
    assert "no GPU visible to this pod" in caplog.text
    why = "no GPU is visible to xgboost" if cuda_build else "is built without CUDA"
    decision = next(r.getMessage() for r in caplog.records if "training on" in r.getMessage())
    assert why in decision and "training on cpu" in decision
    assert "trained spend on cpu" in caplog.text
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        names = set(tar.getnames())
        lineage = json.loads(tar.extractfile("lineage.json").read())
    assert {"model.ubj", "metrics.json", "baseline.json", "gate.json"} <= names
    assert "code/ml/models/spend/model.py" in names
    assert lineage["model"] == "spend"
    assert lineage["device"] == "cpu"
    assert lineage["xgboost"] == xgboost.__version__


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
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["image"] == PLATFORM_IMAGE  # churn too: the bundle needs Python 3.11


def test_train_remote_dry_run_eks_for_spend(spend):
    printed: list[str] = []
    job = rt.train_remote("eks", spend, dev_run("spend-7"), dry_run=True, echo=printed.append)
    assert yaml.safe_load(printed[0]) == job
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["image"] == PLATFORM_IMAGE
    override = rt.train_remote(
        "eks", spend, dev_run("spend-7", image="mine:1"), dry_run=True, echo=printed.append
    )
    assert override["spec"]["template"]["spec"]["containers"][0]["image"] == "mine:1"


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
    assert s3.head_object(
        Bucket="lake-models", Key=f"{CHURN_TRAINING}/code/churn-8/sourcedir.tar.gz"
    )
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
        assert s3.head_object(
            Bucket="lake-models", Key=f"{CHURN_TRAINING}/code/churn-11/sourcedir.tar.gz"
        )
    assert api.objects["/apis/batch/v1/namespaces/training/jobs/churn-11"]["spec"] == job["spec"]
    assert printed == ["created job training/churn-11 on ml-platform-dev-training (Running)"]


def test_command_prints_what_spend_runs(outputs_file):
    """`mlplat train --model spend --dry-run`: the XGBoost image on a GPU instance, the platform
    image on a GPU node."""
    from typer.testing import CliRunner

    from mlplat.cli.app import app

    runner = CliRunner()
    base = ["train", "-s", "dev", "--outputs", str(outputs_file), "--dry-run", "--model", "spend"]
    sm = runner.invoke(
        app, [*base, "--on", "sagemaker", "--instance-type", "ml.g5.xlarge", "--job-name", "sp-1"]
    )
    assert sm.exit_code == 0, sm.output
    r = json.loads(sm.stdout)
    assert r["AlgorithmSpecification"]["TrainingImage"] == PLATFORM_IMAGE
    assert r["ResourceConfig"]["InstanceType"] == "ml.g5.xlarge"
    assert r["Environment"] == {"MLPLAT_MODEL": "spend"}
    assert r["RoleArn"] == SPEND_ROLE
    assert r["EnableManagedSpotTraining"] is True  # dev's trainingUseSpot
    assert r["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] == (
        "s3://lake-features/spend_features/"
    )
    eks = runner.invoke(app, [*base, "--on", "eks", "--job-name", "sp-2"])
    assert eks.exit_code == 0, eks.output
    job = yaml.safe_load(eks.stdout)
    assert kubernetes_validate.validate(job, "1.33.0", strict=True) == "1.33"
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["image"] == PLATFORM_IMAGE
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert {"name": "MLPLAT_MODEL", "value": "spend"} in container["env"]
    assert job["spec"]["template"]["spec"]["tolerations"][0]["key"] == "nvidia.com/gpu"


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
    churn_only = tmp_path / "churn-only.json"
    churn_only.write_text(json.dumps({**OUTPUTS, "models": {"churn": OUTPUTS["models"]["churn"]}}))
    only_churn = ["train", "-s", "dev", "--outputs", str(churn_only), "--dry-run"]
    hosted = runner.invoke(app, [*only_churn, "--on", "sagemaker", "--model", "spend"])
    assert hosted.exit_code == 2
    assert "stack 'dev' hosts no such model; its models: churn" in hosted.stderr
    cases = [
        (["--on", "tpu"], "--on 'tpu': expected one of local, sagemaker, eks"),
        (["--on", "sagemaker", "--job-name", "Bad"], "job name 'Bad'"),
        (
            ["--on", "sagemaker", "--instance-type", "ml.g5.xlarge"],
            "model 'churn' (sklearn) trains on cpu instances only, not ml.g5.xlarge",
        ),
        (
            ["--on", "sagemaker", "--model", "spend", "--instance-type", "g5.xlarge"],
            "expected ml.<family>.<size>",
        ),
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
