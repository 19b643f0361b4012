"""Training away from the laptop: a SageMaker training job, or a Kubernetes Job on the EKS GPU
cluster. Both run the same code bundle, `ml.train`'s container entry point.

* `package_source(model)` packs the `ml` package (its modules, the model contract and the model's
  own package) and a one-line entry script (`mlplatform_train.py`, which calls `ml.train.main`) as
  `sourcedir.tar.gz`; `upload_source()` puts it under the training prefix of the models bucket.
  The run names its model in the container's environment (`MLPLAT_MODEL`, `ml.contracts`).
* `sagemaker_training_request(...)` builds a `CreateTrainingJob` request: the scikit-learn 1.9-0
  training image of the region (resolved offline from the SageMaker SDK's own image table, without
  importing the SDK), the bundle in script mode (`sagemaker_program`, `sagemaker_submit_directory`),
  the model's table in the features zone as the `train` channel, artifacts to the training prefix,
  VPC, KMS for volume and output, managed spot with S3 checkpoints, network isolation (the bundle
  then travels as the `code` channel, since an isolated container cannot fetch it),
  inter-container encryption when several instances train together. `submit_sagemaker_training`
  sends it.
* `kubernetes_training_job(...)` renders a `batch/v1` Job for the training namespace: one GPU
  requested, the GPU taint tolerated, GPU nodes selected, the IRSA service account, bounded
  retries and run time, cleaned up after a day. Its container fetches the same bundle and runs
  `run_pod_training`, which mirrors the SageMaker contract (features in, `model.tar.gz` out).
  `submit_kubernetes_job` hands it to the stack's jobs gateway, a Lambda function inside the VPC
  (the cluster API is private), which creates it; `kubernetes_job_status` follows it; `job_yaml`
  prints it (`--dry-run`); `follow_kubernetes_job` reports its state until it ends.
* `train_remote(on, target, run)` does one run end to end (`mlplat train --on sagemaker|eks`).

Infrastructure comes from the platform outputs (`TrainingTarget.from_mapping`, the model's own
training role among them); the run's knobs (`RemoteRun`) from the stack's settings, which the
caller reads. No pulumi here.
"""

from __future__ import annotations

import io
import json
import os
import re
import sys
import tarfile
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ml import images
from ml.contracts import MODEL_ENV

SKLEARN_VERSION = images.SKLEARN_VERSION
ENTRY_POINT = "mlplatform_train.py"
SOURCE_ARCHIVE = "sourcedir.tar.gz"
CODE_CHANNEL = "code"
TRAIN_CHANNEL = "train"
TARGETS = ("sagemaker", "eks")
DEFAULT_MODELS_PREFIX = "training"
# The values the cluster's node groups carry (components.cluster_addons; a test keeps them equal).
GPU_RESOURCE = "nvidia.com/gpu"
GPU_LABEL = "nvidia.com/gpu"
GPU_TAINT_KEY = "nvidia.com/gpu"
TRAINING_NAMESPACE = "training"
TRAINING_SERVICE_ACCOUNT = "trainer"

_ENTRY_SCRIPT = (
    '"""SageMaker script-mode entry point of the ml-platform bundle."""\n'
    "from ml.train import main\n\nraise SystemExit(main())\n"
)
_JOB_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_INSTANCE = re.compile(r"^ml\.([a-z0-9]+)\.[a-z0-9]+$")
_ML_DIR = Path(__file__).resolve().parent


class RemoteTrainingError(ValueError):
    """A training request cannot be built or sent as asked."""


class TrainingRunFailed(RuntimeError):
    """A followed training run ended without a model."""


# --- what the platform outputs tell ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TrainingTarget:
    """The platform outputs remote training of one model reads (a subset of
    `ml.outputs.PlatformOutputs`, and the model's `ModelOutputs`)."""

    model: str  # the model to train (a package of `ml.models`)
    region: str
    features_bucket: str
    models_bucket: str
    lake_kms_key_arn: str
    training_role_arn: str
    training_subnet_ids: tuple[str, ...]
    training_security_group_ids: tuple[str, ...]
    training_cluster_name: str | None = None
    training_jobs_function_name: str | None = None
    training_namespace: str = TRAINING_NAMESPACE
    training_service_account: str = TRAINING_SERVICE_ACCOUNT
    stack: str = ""  # the stack these outputs belong to (for messages)

    REQUIRED = (
        "region",
        "features_bucket",
        "models_bucket",
        "lake_kms_key_arn",
        "training_role_arn",
        "training_subnet_ids",
        "training_security_group_ids",
    )

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], model: str) -> TrainingTarget:
        """From the platform outputs' JSON (`PlatformOutputs.to_json()`), for `model`."""
        models = data.get("models")
        if not isinstance(models, Mapping) or not isinstance(models.get(model), Mapping):
            known = ", ".join(sorted(models)) if isinstance(models, Mapping) else "none"
            raise RemoteTrainingError(
                f"platform outputs hold no model {model!r} (its models: {known}); is it in the "
                "stack's `models` and the stack up to date (`pulumi up`)?"
            )
        data = {**data, "training_role_arn": models[model].get("training_role_arn")}
        missing = [k for k in cls.REQUIRED if data.get(k) in (None, "", [], ())]
        if missing:
            raise RemoteTrainingError(
                f"platform outputs lack {', '.join(missing)}; is the stack up to date "
                "(`pulumi up`) and does it export the training fields?"
            )
        for key in ("training_subnet_ids", "training_security_group_ids"):
            value = data[key]
            if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
                raise RemoteTrainingError(
                    f"platform output {key}: expected a list of ids, got {value!r}"
                )
        return cls(
            model=model,
            region=str(data["region"]),
            features_bucket=str(data["features_bucket"]),
            models_bucket=str(data["models_bucket"]),
            lake_kms_key_arn=str(data["lake_kms_key_arn"]),
            training_role_arn=str(data["training_role_arn"]),
            training_subnet_ids=tuple(data["training_subnet_ids"]),
            training_security_group_ids=tuple(data["training_security_group_ids"]),
            training_cluster_name=data.get("training_cluster_name") or None,
            training_jobs_function_name=data.get("training_jobs_function_name") or None,
            training_namespace=str(data.get("training_namespace") or TRAINING_NAMESPACE),
            training_service_account=str(
                data.get("training_service_account") or TRAINING_SERVICE_ACCOUNT
            ),
            stack=str(data.get("stack") or ""),
        )


def check_job_name(name: str) -> str:
    """Valid as a SageMaker training job name and a Kubernetes Job name (DNS label)."""
    if not _JOB_NAME.fullmatch(name):
        raise RemoteTrainingError(
            f"job name {name!r}: use 1-63 lowercase letters, digits and '-', starting and ending "
            "with a letter or digit"
        )
    return name


def _clean_prefix(prefix: str, what: str) -> str:
    clean = prefix.strip("/")
    if not clean or not re.fullmatch(r"[A-Za-z0-9._/=-]+", clean):
        raise RemoteTrainingError(
            f"{what} {prefix!r}: expected an S3 key prefix such as '{DEFAULT_MODELS_PREFIX}'"
        )
    return clean


# --- the training image ------------------------------------------------------------------------


def processor_of(instance_type: str) -> str:
    match = _INSTANCE.fullmatch(instance_type)
    if not match:
        raise RemoteTrainingError(f"instance type {instance_type!r}: expected ml.<family>.<size>")
    return "gpu" if match.group(1)[0] in ("g", "p") else "cpu"


def sklearn_training_image(
    region: str, instance_type: str = "ml.m5.xlarge", version: str = SKLEARN_VERSION
) -> str:
    """`<registry>.dkr.ecr.<region>.amazonaws.com/sagemaker-scikit-learn:1.9-0-cpu-py3`."""
    if processor_of(instance_type) != "cpu":
        raise RemoteTrainingError(
            f"the scikit-learn {version} training image runs on cpu instances only, not "
            f"{instance_type}; pick a CPU instance type or train on the EKS GPU cluster"
        )
    try:
        return images.sklearn_image_uri(region, version=version, scope="training")
    except images.ImageUriError as exc:
        raise RemoteTrainingError(str(exc)) from exc


# --- the code bundle ---------------------------------------------------------------------------


def package_source(model: str, ml_dir: Path = _ML_DIR) -> bytes:
    """`sourcedir.tar.gz`: the entry script, the `ml` package's modules, the model contract and
    `model`'s own package (reproducible bytes)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=9) as tar:

        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))

        add(ENTRY_POINT, _ENTRY_SCRIPT.encode())
        package = ml_dir / "models" / model
        files = [
            *ml_dir.glob("*.py"),
            ml_dir / "models" / "__init__.py",
            *(p for p in package.rglob("*.py") if "__pycache__" not in p.parts),
        ]
        for path in sorted(files):
            add(f"ml/{path.relative_to(ml_dir).as_posix()}", path.read_bytes())
    # gzip stamps the time in its header: zero it so equal code gives equal bytes.
    raw = bytearray(buffer.getvalue())
    raw[4:8] = b"\0\0\0\0"
    return bytes(raw)


def source_key(job_name: str, models_prefix: str = DEFAULT_MODELS_PREFIX) -> str:
    return f"{_clean_prefix(models_prefix, 'models prefix')}/code/{job_name}/{SOURCE_ARCHIVE}"


def upload_source(
    target: TrainingTarget,
    job_name: str,
    *,
    s3_client: Any = None,
    models_prefix: str = DEFAULT_MODELS_PREFIX,
) -> str:
    """Upload the bundle (SSE-KMS with the lake key); returns its `s3://` URI."""
    import boto3

    s3 = s3_client or boto3.client("s3", region_name=target.region)
    key = source_key(check_job_name(job_name), models_prefix)
    s3.put_object(
        Bucket=target.models_bucket,
        Key=key,
        Body=package_source(target.model),
        ServerSideEncryption="aws:kms",
        SSEKMSKeyId=target.lake_kms_key_arn,
    )
    return f"s3://{target.models_bucket}/{key}"


# --- SageMaker ---------------------------------------------------------------------------------


def sagemaker_training_request(
    target: TrainingTarget,
    *,
    job_name: str,
    instance_type: str,
    use_spot: bool,
    max_runtime_seconds: int,
    max_wait_seconds: int,
    hyperparameters: Mapping[str, Any] | None = None,
    features_prefix: str | None = None,
    models_prefix: str = DEFAULT_MODELS_PREFIX,
    instance_count: int = 1,
    volume_gb: int = 30,
    network_isolation: bool = True,
    tags: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The `CreateTrainingJob` request (boto3 keyword arguments) of one training run of
    `target.model` (on its features table unless `features_prefix` says otherwise)."""
    check_job_name(job_name)
    features = _clean_prefix(features_prefix or _features_prefix(target.model), "features prefix")
    models = _clean_prefix(models_prefix, "models prefix")
    problems = []
    if not 60 <= max_runtime_seconds <= 28 * 86400:
        problems.append(f"max_runtime_seconds {max_runtime_seconds}: expected 60 to 2419200")
    if use_spot and max_wait_seconds < max_runtime_seconds:
        problems.append(
            f"max_wait_seconds {max_wait_seconds} must be >= max_runtime_seconds "
            f"({max_runtime_seconds}) for spot training"
        )
    if not 1 <= instance_count <= 100:
        problems.append(f"instance_count {instance_count}: expected 1 to 100")
    if not 1 <= volume_gb <= 16384:
        problems.append(f"volume_gb {volume_gb}: expected 1 to 16384")
    if problems:
        raise RemoteTrainingError("; ".join(problems))
    image = sklearn_training_image(target.region, instance_type)
    base = f"s3://{target.models_bucket}/{models}"
    code_uri = f"s3://{target.models_bucket}/{source_key(job_name, models)}"
    # Script mode reads these (JSON-encoded, as the SageMaker SDK sends them).
    submit_dir = (
        f"/opt/ml/input/data/{CODE_CHANNEL}/{SOURCE_ARCHIVE}" if network_isolation else code_uri
    )
    hp: dict[str, str] = {k: json.dumps(v) for k, v in (hyperparameters or {}).items()}
    hp.update(
        {
            "sagemaker_program": json.dumps(ENTRY_POINT),
            "sagemaker_submit_directory": json.dumps(submit_dir),
            "sagemaker_region": json.dumps(target.region),
            "sagemaker_job_name": json.dumps(job_name),
        }
    )

    def channel(name: str, uri: str, content_type: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "ChannelName": name,
            "DataSource": {
                "S3DataSource": {
                    "S3DataType": "S3Prefix",
                    "S3Uri": uri,
                    "S3DataDistributionType": "FullyReplicated",
                }
            },
            "InputMode": "File",
            "CompressionType": "None",
        }
        if content_type:
            out["ContentType"] = content_type
        return out

    inputs = [
        channel(
            TRAIN_CHANNEL, f"s3://{target.features_bucket}/{features}/", "application/x-parquet"
        )
    ]
    if network_isolation:
        # An isolated container cannot download its code: SageMaker brings it as a channel.
        inputs.append(channel(CODE_CHANNEL, code_uri))
    request: dict[str, Any] = {
        "TrainingJobName": job_name,
        "AlgorithmSpecification": {"TrainingImage": image, "TrainingInputMode": "File"},
        "RoleArn": target.training_role_arn,
        "HyperParameters": hp,
        "Environment": {MODEL_ENV: target.model},
        "InputDataConfig": inputs,
        "OutputDataConfig": {
            "S3OutputPath": f"{base}/output/",
            "KmsKeyId": target.lake_kms_key_arn,
        },
        "ResourceConfig": {
            "InstanceType": instance_type,
            "InstanceCount": instance_count,
            "VolumeSizeInGB": volume_gb,
            "VolumeKmsKeyId": target.lake_kms_key_arn,
        },
        "VpcConfig": {
            "SecurityGroupIds": list(target.training_security_group_ids),
            "Subnets": list(target.training_subnet_ids),
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": max_runtime_seconds},
        "EnableNetworkIsolation": network_isolation,
        "EnableInterContainerTrafficEncryption": instance_count > 1,
        "EnableManagedSpotTraining": use_spot,
        "Tags": [{"Key": k, "Value": v} for k, v in sorted((tags or {}).items())],
    }
    if use_spot:
        request["StoppingCondition"]["MaxWaitTimeInSeconds"] = max_wait_seconds
        request["CheckpointConfig"] = {
            "S3Uri": f"{base}/checkpoints/{job_name}/",
            "LocalPath": "/opt/ml/checkpoints",
        }
    return request


def submit_sagemaker_training(request: Mapping[str, Any], client: Any = None) -> str:
    """`CreateTrainingJob`; returns the job's ARN."""
    import boto3

    sm = client or boto3.client("sagemaker")
    response = sm.create_training_job(**request)
    return str(response["TrainingJobArn"])


# --- Kubernetes --------------------------------------------------------------------------------

# The pod's bootstrap: fetch the bundle, then run the SageMaker-shaped training in the pod.
_POD_BOOTSTRAP = """\
import os, sys, tarfile, tempfile
import boto3
code, features, output = sys.argv[1:4]
bucket, key = code.removeprefix("s3://").split("/", 1)
root = tempfile.mkdtemp()
archive = os.path.join(root, "sourcedir.tar.gz")
boto3.client("s3").download_file(bucket, key, archive)
with tarfile.open(archive) as tar:
    tar.extractall(root, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
sys.path.insert(0, root)
from ml.remote_training import run_pod_training
sys.exit(run_pod_training(features, output))
"""


def kubernetes_training_job(
    target: TrainingTarget,
    *,
    job_name: str,
    image: str,
    gpus: int = 1,
    cpu: str = "4",
    memory: str = "16Gi",
    features_prefix: str | None = None,
    models_prefix: str = DEFAULT_MODELS_PREFIX,
    backoff_limit: int = 1,
    active_deadline_seconds: int = 4 * 3600,
    ttl_seconds_after_finished: int = 86400,
) -> dict[str, Any]:
    """A `batch/v1` Job that trains `target.model` on one GPU node of the training cluster."""
    check_job_name(job_name)
    features = _clean_prefix(features_prefix or _features_prefix(target.model), "features prefix")
    models = _clean_prefix(models_prefix, "models prefix")
    problems = []
    if not image or any(c.isspace() for c in image):
        problems.append(f"image {image!r}: expected a container image reference")
    if not 1 <= gpus <= 8:
        problems.append(f"gpus {gpus}: expected 1 to 8 (one node)")
    if not 0 <= backoff_limit <= 10:
        problems.append(f"backoff_limit {backoff_limit}: expected 0 to 10")
    if active_deadline_seconds < 60:
        problems.append(f"active_deadline_seconds {active_deadline_seconds}: expected >= 60")
    if ttl_seconds_after_finished < 0:
        problems.append(f"ttl_seconds_after_finished {ttl_seconds_after_finished}: expected >= 0")
    if problems:
        raise RemoteTrainingError("; ".join(problems))
    code_uri = f"s3://{target.models_bucket}/{source_key(job_name, models)}"
    output_uri = f"s3://{target.models_bucket}/{models}/output/{job_name}/"
    labels = {
        "app.kubernetes.io/name": "training",
        "app.kubernetes.io/part-of": "ml-platform",
        "mlplatform.io/job": job_name,
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": job_name, "namespace": target.training_namespace, "labels": labels},
        "spec": {
            "backoffLimit": backoff_limit,
            "activeDeadlineSeconds": active_deadline_seconds,
            "ttlSecondsAfterFinished": ttl_seconds_after_finished,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "serviceAccountName": target.training_service_account,
                    "nodeSelector": {GPU_LABEL: "true"},
                    "tolerations": [
                        {"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}
                    ],
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 1000,
                        "runAsGroup": 1000,
                        "fsGroup": 1000,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [
                        {
                            "name": "train",
                            "image": image,
                            "command": [
                                "python",
                                "-c",
                                _POD_BOOTSTRAP,
                                code_uri,
                                f"s3://{target.features_bucket}/{features}/",
                                output_uri,
                            ],
                            "env": [
                                {"name": MODEL_ENV, "value": target.model},
                                {"name": "AWS_REGION", "value": target.region},
                                {"name": "AWS_DEFAULT_REGION", "value": target.region},
                                {"name": "HOME", "value": "/tmp"},
                            ],
                            "resources": {
                                "requests": {"cpu": cpu, "memory": memory, GPU_RESOURCE: str(gpus)},
                                "limits": {"memory": memory, GPU_RESOURCE: str(gpus)},
                            },
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "capabilities": {"drop": ["ALL"]},
                            },
                        }
                    ],
                },
            },
        },
    }


def job_yaml(job: Mapping[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(dict(job), sort_keys=False, width=100)


def invoke_jobs_gateway(
    function_name: str, payload: Mapping[str, Any], lambda_client: Any
) -> dict[str, Any]:
    """One request to the jobs gateway; its refusals become `RemoteTrainingError`."""
    response = lambda_client.invoke(
        FunctionName=function_name, Payload=json.dumps(dict(payload)).encode()
    )
    raw = response["Payload"].read()
    try:
        body: dict[str, Any] = json.loads(raw or b"{}")
    except json.JSONDecodeError as exc:
        raise RemoteTrainingError(f"jobs gateway {function_name}: not JSON: {raw[:200]!r}") from exc
    if response.get("FunctionError"):
        reason = body.get("errorMessage") if isinstance(body, dict) else body
        raise RemoteTrainingError(f"jobs gateway {function_name} refused: {reason}")
    return body


def submit_kubernetes_job(
    job: Mapping[str, Any], function_name: str, lambda_client: Any
) -> dict[str, Any]:
    """Create the Job through the jobs gateway; returns its summary (name, uid, state)."""
    result = invoke_jobs_gateway(
        function_name, {"action": "submit", "job": dict(job)}, lambda_client
    )
    summary: dict[str, Any] = result["job"]
    return summary


def kubernetes_job_status(name: str, function_name: str, lambda_client: Any) -> dict[str, Any]:
    """The Job's state and its pods' phases, through the jobs gateway."""
    return invoke_jobs_gateway(function_name, {"action": "status", "name": name}, lambda_client)


# --- one run, end to end ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RemoteRun:
    """What one remote training run is, in plain values: the caller reads them from the stack's
    settings (`Pulumi.<stack>.yaml`) and its own options."""

    job_name: str
    instance_type: str  # SageMaker
    use_spot: bool  # SageMaker
    max_runtime_seconds: int
    max_wait_seconds: int  # SageMaker, with spot
    tags: Mapping[str, str] = field(default_factory=dict)
    image: str | None = None  # EKS (default: the region's scikit-learn training image)
    gpus: int = 1  # EKS
    hyperparameters: Mapping[str, Any] | None = None


def default_job_name(model: str, now: datetime | None = None) -> str:
    return f"{model}-" + (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")


def _features_prefix(model: str) -> str:
    """The key prefix of `model`'s features table in the features bucket."""
    from ml.models import ModelSpecError, spec

    try:
        return spec(model).features.prefix
    except ModelSpecError as exc:
        raise RemoteTrainingError(str(exc)) from None


def train_remote(
    on: str,
    target: TrainingTarget,
    run: RemoteRun,
    *,
    dry_run: bool = False,
    wait: bool = False,
    echo: Callable[[str], None] = print,
    sagemaker_client: Any = None,
    s3_client: Any = None,
    lambda_client: Any = None,
    poll_seconds: float = 15.0,
) -> dict[str, Any]:
    """Build (and unless `dry_run`, send) one training run `on` SageMaker or EKS; returns the
    `CreateTrainingJob` request or the Job. A dry run echoes the request (JSON) or the Job (YAML).

    EKS goes through the stack's jobs gateway; `wait` follows the Job until it ends and raises
    `TrainingRunFailed` unless it completed. Raises `RemoteTrainingError` with a clear message.
    """
    if on not in TARGETS:
        raise RemoteTrainingError(f"--on {on!r}: expected one of {', '.join(TARGETS)}")
    name = check_job_name(run.job_name)
    if on == "sagemaker":
        request = sagemaker_training_request(
            target,
            job_name=name,
            instance_type=run.instance_type,
            use_spot=run.use_spot,
            max_runtime_seconds=run.max_runtime_seconds,
            max_wait_seconds=run.max_wait_seconds,
            hyperparameters=run.hyperparameters,
            tags=run.tags,
        )
        if dry_run:
            echo(json.dumps(request, indent=2))
            return request
        code = upload_source(target, name, s3_client=s3_client)
        arn = submit_sagemaker_training(request, sagemaker_client)
        echo(f"submitted {arn} (code {code})")
        return request

    if not target.training_cluster_name or not target.training_jobs_function_name:
        raise RemoteTrainingError(
            f"stack {target.stack!r} has no training cluster (eksEnabled is false, or its outputs "
            "lack training_cluster_name and training_jobs_function_name); use --on sagemaker"
        )
    job = kubernetes_training_job(
        target,
        job_name=name,
        image=run.image or sklearn_training_image(target.region),
        gpus=run.gpus,
        active_deadline_seconds=run.max_runtime_seconds,
    )
    if dry_run:
        echo(job_yaml(job))
        return job
    upload_source(target, name, s3_client=s3_client)
    if lambda_client is None:
        import boto3

        # the cluster API is private: the jobs gateway inside the VPC creates the Job (invoking it
        # needs lambda:InvokeFunction on it, which the stack's submitter role has)
        lambda_client = boto3.client("lambda", region_name=target.region)
    function = target.training_jobs_function_name
    summary = submit_kubernetes_job(job, function, lambda_client)
    where = f"{target.training_namespace}/{summary['name']}"
    echo(f"created job {where} on {target.training_cluster_name} ({summary['state']})")
    if wait:
        state = follow_kubernetes_job(
            summary["name"], function, lambda_client, echo=echo, poll_seconds=poll_seconds
        )
        if state != "Complete":
            raise TrainingRunFailed(f"job {where} ended {state}")
    return job


def follow_kubernetes_job(
    name: str,
    function_name: str,
    lambda_client: Any,
    *,
    echo: Callable[[str], None] = print,
    poll_seconds: float = 15.0,
    sleep: Callable[[float], None] | None = None,
) -> str:
    """Poll the Job through the jobs gateway until it completes or fails; echo each change.
    Returns the final state (`Complete` or `Failed`)."""
    import time

    pause = sleep or time.sleep
    last = None
    while True:
        status = kubernetes_job_status(name, function_name, lambda_client)
        state = status["job"]["state"]
        pods = ", ".join(f"{p['name']} {p['phase']}" for p in status["pods"]) or "no pod yet"
        line = f"{name}: {state} ({pods})"
        if line != last:
            echo(line)
            last = line
        if state in ("Complete", "Failed"):
            return str(state)
        pause(poll_seconds)


def _split_s3(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://") or "/" not in uri[5:]:
        raise RemoteTrainingError(f"{uri!r}: expected s3://bucket/prefix/")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


def run_pod_training(
    features_uri: str,
    output_uri: str,
    *,
    s3_client: Any = None,
    train: Callable[[Mapping[str, str]], object] | None = None,
    workdir: str | None = None,
) -> int:
    """In the pod: features from S3 into a `train` channel, `ml.train` in SageMaker's layout, the
    model directory to `<output_uri>model.tar.gz`. Returns the process exit code."""
    import boto3

    failures: tuple[type[Exception], ...] = (ValueError, FileNotFoundError)
    run: Callable[[Mapping[str, str]], object]
    if train is None:
        from ml.evaluate import GateFailed
        from ml.train import run_training_job

        run, failures = run_training_job, (*failures, GateFailed)
    else:
        run = train
    s3 = s3_client or boto3.client("s3")
    root = Path(workdir or tempfile.mkdtemp(prefix="training-"))
    channel, model_dir, out_dir = root / "data" / TRAIN_CHANNEL, root / "model", root / "output"
    bucket, prefix = _split_s3(features_uri)
    count = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            relative = obj["Key"][len(prefix) :].lstrip("/")
            if not relative or relative.endswith("/"):
                continue
            local = channel / relative
            if not local.resolve().is_relative_to(channel.resolve()):
                raise RemoteTrainingError(f"object key {obj['Key']!r} escapes the channel")
            local.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, obj["Key"], str(local))
            count += 1
    if count == 0:
        print(f"training failed: no objects under {features_uri}", file=sys.stderr)
        return 1
    env = {
        MODEL_ENV: os.environ.get(MODEL_ENV, ""),
        "SM_CHANNEL_TRAIN": str(channel),
        "SM_MODEL_DIR": str(model_dir),
        "SM_OUTPUT_DIR": str(out_dir),
        "SM_INPUT_CONFIG_DIR": str(root / "config"),
    }
    try:
        run(env)
    except failures as err:
        print(f"training failed: {err}", file=sys.stderr)
        return 1
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        for path in sorted(model_dir.rglob("*")):
            tar.add(path, arcname=os.path.relpath(path, model_dir), recursive=False)
    out_bucket, out_prefix = _split_s3(output_uri)
    s3.put_object(
        Bucket=out_bucket, Key=f"{out_prefix.rstrip('/')}/model.tar.gz", Body=archive.getvalue()
    )
    return 0


def pod_command_uris(job: Mapping[str, Any]) -> Sequence[str]:
    """(code, features, output) URIs a rendered Job's container was given."""
    command = job["spec"]["template"]["spec"]["containers"][0]["command"]
    return tuple(command[3:6])
