"""Training away from the laptop: a SageMaker training job, or a Kubernetes Job on the EKS GPU
cluster. Both run the same code bundle, `ml.train`'s container entry point, for any model.

* `package_source(model)` packs the `ml` package (its modules, the model contract and the model's
  own package) and a short entry script (`mlplatform_train.py`, which calls `ml.train.main`) as
  `sourcedir.tar.gz`; `upload_source()` puts it under the model's training prefix of the models
  bucket (`<its artifacts prefix>/training`: the only prefix its training role may write).
  The run names its model in the container's environment (`MLPLAT_MODEL`, `ml.contracts`).
* `sagemaker_training_request(...)` builds a `CreateTrainingJob` request: the platform image
  (`PlatformOutputs.platform_image_uri`: Python 3.11 and exactly the libraries the bundle was
  tested with, the CUDA build of XGBoost among them; the SageMaker framework containers run
  Python 3.10, which the bundle's code does not support), the bundle as the `code` channel and a
  short shell entry point that unpacks it and runs its entry script, the model's table in the
  features zone as the `train` channel, artifacts to the training prefix, VPC, KMS for volume and
  output, managed spot with S3 checkpoints, network isolation, inter-container encryption when
  several instances train together. XGBoost models may take GPU instances (the same code trains
  on the GPU it finds); scikit-learn models CPU instances only. `submit_sagemaker_training` sends
  it.
* `kubernetes_training_job(...)` renders a `batch/v1` Job for the training namespace: one GPU
  requested (and the driver's CUDA libraries), the GPU taint tolerated, GPU nodes selected, the
  IRSA service account, bounded retries and run time, cleaned up after a day. Its image is the
  platform image (`platform_image`), as for SageMaker. Its
  container fetches the same bundle and runs `ml.training_pod.run_pod_training`, which mirrors
  the SageMaker contract (features in, `model.tar.gz` out) and logs the GPUs the pod sees and the
  device the model trained on (its lineage's `device`). `submit_kubernetes_job` hands the Job to the
  stack's jobs gateway, a Lambda function inside the VPC (the cluster API is private), which
  creates it; `kubernetes_job_status` follows it; `job_yaml` prints it (`--dry-run`);
  `follow_kubernetes_job` reports its state until it ends.
* `train_remote(on, target, run)` does one run end to end (`mlplat train --on sagemaker|eks`).

Infrastructure comes from the platform outputs (`TrainingTarget.from_mapping`, the model's own
training role and artifacts prefix among them); the run's knobs (`RemoteRun`) from the stack's
settings, which the caller reads. No pulumi here.
"""

from __future__ import annotations

import io
import json
import re
import tarfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ml import images
from ml.contracts import MODEL_ENV
from ml.training_pod import TRAIN_CHANNEL

if TYPE_CHECKING:
    from ml.models import Framework

SKLEARN_VERSION = images.SKLEARN_VERSION
ENTRY_POINT = "mlplatform_train.py"
SOURCE_ARCHIVE = "sourcedir.tar.gz"
CODE_CHANNEL = "code"
TARGETS = ("sagemaker", "eks")
# The folder of a model's runs under its artifacts prefix (the only prefix of the models bucket its
# training role may write); the whole prefix of a target built without platform outputs.
DEFAULT_MODELS_PREFIX = "training"
# Frameworks whose library the platform image installs in its CUDA build (`Dockerfile`, `--group
# cuda`): their models may train on GPU instances; the others on CPU instances only (scikit-learn
# has no GPU code path to use).
CUDA_FRAMEWORKS: frozenset[str] = frozenset({"xgboost"})
# The values the cluster's node groups carry (components.cluster_addons; a test keeps them equal).
GPU_RESOURCE = "nvidia.com/gpu"
GPU_LABEL = "nvidia.com/gpu"
GPU_TAINT_KEY = "nvidia.com/gpu"
TRAINING_NAMESPACE = "training"
TRAINING_SERVICE_ACCOUNT = "trainer"

# What both entry points run first: a clear failure on a Python older than the bundle's code
# (pyproject's requires-python), and the `ml` loggers' INFO records (e.g. the device an XGBoost
# model trains on, `ml.models.spend.estimator.device`) on stderr, which the job's logs keep.
_PRELUDE = """\
import logging, sys
if sys.version_info < (3, 11):
    sys.exit("the ml-platform bundle needs Python >= 3.11, not " + sys.version.split()[0])
logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")
logging.getLogger("ml").setLevel(logging.INFO)
"""
_ENTRY_SCRIPT = (
    '"""SageMaker script-mode entry point of the ml-platform bundle."""\n'
    + _PRELUDE
    + "from ml.train import main\n\nraise SystemExit(main())\n"
)
# The SageMaker job's entry point in the platform image: unpack the bundle of the `code` channel
# and run its entry script from there (the script's directory first on the path: the bundle's `ml`
# shadows the image's). Each entry point string must stay within CreateTrainingJob's 256 chars.
SAGEMAKER_ENTRYPOINT: tuple[str, ...] = (
    "/bin/sh",
    "-c",
    f'set -e; d="$(mktemp -d)"; '
    f'tar -xzf "/opt/ml/input/data/{CODE_CHANNEL}/{SOURCE_ARCHIVE}" -C "$d"; '
    f'cd "$d"; exec python3 {ENTRY_POINT}',
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
    # where the model's runs keep code, checkpoints and output in the models bucket: from the
    # outputs, `<model_artifacts_prefix>/training` (what the model's training role may write)
    models_prefix: str = DEFAULT_MODELS_PREFIX
    # the platform image (ml package + CUDA build of XGBoost): EKS Jobs of CUDA frameworks
    platform_image_uri: str | None = None

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
        own = models[model]
        data = {
            **data,
            "training_role_arn": own.get("training_role_arn"),
            "model_artifacts_prefix": own.get("model_artifacts_prefix"),
        }
        needed = (*cls.REQUIRED, "model_artifacts_prefix")
        missing = [k for k in needed if data.get(k) in (None, "", [], ())]
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
            models_prefix=_clean_prefix(
                f"{str(data['model_artifacts_prefix']).strip('/')}/{DEFAULT_MODELS_PREFIX}",
                f"models.{model}.model_artifacts_prefix",
            ),
            platform_image_uri=data.get("platform_image_uri") or None,
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


def platform_image(target: TrainingTarget) -> str:
    """The image every remote training run of `target` runs in: the platform image (Python 3.11
    and the bundle's pinned libraries, the CUDA build of XGBoost among them; the bundle's code
    runs on top of it, shadowing the image's own copy of `ml`)."""
    if not target.platform_image_uri:
        raise RemoteTrainingError(
            f"remote training of model {target.model!r} runs in the platform image, but the "
            f"platform outputs of stack {target.stack!r} lack platform_image_uri; is the stack up "
            "to date (`pulumi up`)? Or name an image: --image"
        )
    return target.platform_image_uri


def check_instance_type(target: TrainingTarget, instance_type: str) -> str:
    """`instance_type` if `target.model`'s framework can use it: GPU instances (g*, p*) only for
    the frameworks the platform image holds in their CUDA build."""
    framework = model_framework(target.model)
    if processor_of(instance_type) == "gpu" and framework not in CUDA_FRAMEWORKS:
        raise RemoteTrainingError(
            f"model {target.model!r} ({framework}) trains on cpu instances only, not "
            f"{instance_type}; pick a CPU instance type such as ml.m5.xlarge ({framework} has no "
            "GPU code path to use)"
        )
    return instance_type


def model_framework(model: str) -> Framework:
    """The framework `model` trains with (`ModelSpec.framework`)."""
    from ml.models import ModelSpecError, spec

    try:
        return spec(model).framework
    except ModelSpecError as exc:
        raise RemoteTrainingError(str(exc)) from None


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
            *package.glob("*.json"),  # its data: the committed backtest (`staleness.json`)
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
    models_prefix: str | None = None,
) -> str:
    """Upload the bundle (SSE-KMS with the lake key) under `models_prefix` (default: the
    target's); returns its `s3://` URI."""
    import boto3

    s3 = s3_client or boto3.client("s3", region_name=target.region)
    key = source_key(check_job_name(job_name), models_prefix or target.models_prefix)
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
    models_prefix: str | None = None,
    instance_count: int = 1,
    volume_gb: int = 30,
    network_isolation: bool = True,
    tags: Mapping[str, str] | None = None,
    image: str | None = None,
) -> dict[str, Any]:
    """The `CreateTrainingJob` request (boto3 keyword arguments) of one training run of
    `target.model` in `image` (default: the platform image) (on its features table unless
    `features_prefix` says otherwise; under the target's models prefix unless `models_prefix`
    does)."""
    check_job_name(job_name)
    features = _clean_prefix(features_prefix or _features_prefix(target.model), "features prefix")
    models = _clean_prefix(models_prefix or target.models_prefix, "models prefix")
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
    check_instance_type(target, instance_type)
    image = image or platform_image(target)
    base = f"s3://{target.models_bucket}/{models}"
    code_uri = f"s3://{target.models_bucket}/{source_key(job_name, models)}"

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
        ),
        # the bundle travels as a channel (an isolated container cannot download it)
        channel(CODE_CHANNEL, code_uri),
    ]
    request: dict[str, Any] = {
        "TrainingJobName": job_name,
        "AlgorithmSpecification": {
            "TrainingImage": image,
            "TrainingInputMode": "File",
            "ContainerEntrypoint": list(SAGEMAKER_ENTRYPOINT),
        },
        "RoleArn": target.training_role_arn,
        "HyperParameters": {k: _hyperparameter(v) for k, v in (hyperparameters or {}).items()},
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


def _hyperparameter(value: Any) -> str:
    """A hyperparameter as the job's `hyperparameters.json` carries it (a string, which
    `ml.train.read_hyperparameters` parses by the field's type): strings as they are (not
    JSON-quoted), anything else as JSON (`0.5`, `500`)."""
    return value if isinstance(value, str) else json.dumps(value)


def submit_sagemaker_training(request: Mapping[str, Any], client: Any = None) -> str:
    """`CreateTrainingJob`; returns the job's ARN."""
    import boto3

    sm = client or boto3.client("sagemaker")
    response = sm.create_training_job(**request)
    return str(response["TrainingJobArn"])


# --- Kubernetes --------------------------------------------------------------------------------

# The pod's bootstrap: fetch the bundle, then run the SageMaker-shaped training in the pod. The
# bundle's `ml` goes first on the path: in the platform image it shadows the image's own copy, so
# the pod runs the code that was submitted (and its lineage hashes that code).
_POD_BOOTSTRAP = (
    _PRELUDE
    + """\
import os, tarfile, tempfile
import boto3
code, features, output = sys.argv[1:4]
bucket, key = code.removeprefix("s3://").split("/", 1)
root = tempfile.mkdtemp()
archive = os.path.join(root, "sourcedir.tar.gz")
boto3.client("s3").download_file(bucket, key, archive)
with tarfile.open(archive) as tar:
    tar.extractall(root, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
sys.path.insert(0, root)
from ml.training_pod import run_pod_training
sys.exit(run_pod_training(features, output))
"""
)


def kubernetes_training_job(
    target: TrainingTarget,
    *,
    job_name: str,
    image: str,
    gpus: int = 1,
    cpu: str = "4",
    memory: str = "16Gi",
    features_prefix: str | None = None,
    models_prefix: str | None = None,
    backoff_limit: int = 1,
    active_deadline_seconds: int = 4 * 3600,
    ttl_seconds_after_finished: int = 86400,
) -> dict[str, Any]:
    """A `batch/v1` Job that trains `target.model` in `image` on one GPU node of the training
    cluster (`platform_image` gives the default)."""
    check_job_name(job_name)
    features = _clean_prefix(features_prefix or _features_prefix(target.model), "features prefix")
    models = _clean_prefix(models_prefix or target.models_prefix, "models prefix")
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
                                # The NVIDIA runtime mounts only `utility` (nvidia-smi) when this
                                # is unset, and the platform image, unlike NVIDIA's CUDA images,
                                # does not set it: `compute` brings the driver's libcuda.so.
                                {"name": "NVIDIA_DRIVER_CAPABILITIES", "value": "compute,utility"},
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
    image: str | None = None  # the image to train in (default: `platform_image`)
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
            image=run.image,
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
        image=run.image or platform_image(target),
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


def pod_command_uris(job: Mapping[str, Any]) -> Sequence[str]:
    """(code, features, output) URIs a rendered Job's container was given."""
    command = job["spec"]["template"]["spec"]["containers"][0]["command"]
    return tuple(command[3:6])
