"""The settings table: every config key of a stack, its type, bounds, default and where it goes.

`SPEC` is the single table that maps config keys (camelCase, under `ml-platform:`) to `Settings`
fields (`section.field`, snake_case), and that the README table and the `Pulumi.yaml` config
schema are generated from (`mlplat.plan.project_schema`). The Pulumi CLI applies that schema
before the program runs (required keys, declared defaults, types); `mlplat.plan.project_config`
applies it the same way offline, and the parser keeps every rule the schema cannot say (ranges,
choices, patterns, cross-field rules).
"""

from __future__ import annotations

from typing import Literal

from components.limits import KMS_DELETION_WINDOW_DAYS, LOG_RETENTION_DAYS
from components.problems import MAX_ZONES, MIN_ZONES, PROTOCOLS
from ml.models import names as model_names
from ml.schema import SHARED_DATASETS
from stacks.settings.model_list import (
    DEFAULT_LEGACY_MODEL,
    DEFAULT_MODELS,
    MODEL_OVERRIDES,
    MODEL_SECTIONS,
    PACKAGE_ARN_PATTERN,
    ModelEntry,
    default_max_model_age_days,
    default_model_key,
    retraining_schedule,
    schedule_days,
)
from stacks.settings.rows import Default, GpuNodeGroup, Kind, Spec, Subscription, by_env

PROJECT = "ml-platform"
ENVIRONMENTS = ("dev", "staging", "prod", "local")
Environment = Literal["dev", "staging", "prod", "local"]

# GPU instance families a node group or training job may use.
DEFAULT_GPU_FAMILIES = ("g4dn", "g5", "g6", "g6e", "p4d", "p5")
DEPLOYMENT_STRATEGIES = ("canary", "linear", "all-at-once")
SUBSCRIPTION_PROTOCOLS = PROTOCOLS  # what the on-call topic subscribes
SECRET_PLACEHOLDER = "[secret]"
# The raw datasets a Firehose stream may collect; the first is the steady feed (always streamed).
STREAMABLE: tuple[str, ...] = tuple(d.name for d in SHARED_DATASETS if d.zone == "raw")
# An EventBridge schedule expression (the drift job, the pipeline's retraining).
SCHEDULE_PATTERN = r"^(rate\(\d+ (minute|minutes|hour|hours|day|days)\)|cron\(.+\))$"


SPEC: tuple[Spec, ...] = (
    Spec(
        "environment",
        "environment",
        "str",
        "Which environment this stack is",
        required=True,
        choices=ENVIRONMENTS,
    ),
    Spec(
        "aws:region",
        ("region", "pipeline.region"),
        "str",
        "AWS region (the provider's own key)",
        required=True,
        pattern=r"^[a-z]{2}(-gov)?-[a-z]+-\d$",
    ),
    Spec(
        "accountId",
        "account_id",
        "str",
        "Account id the offline engines answer `getCallerIdentity` with (the real engine asks AWS)",
        default="123456789012",
        pattern=r"^\d{12}$",
    ),
    Spec("owner", "owner", "str", "Team that owns the stack (the `owner` tag)", required=True),
    Spec("costCenter", "cost_center", "str", "Cost center (the `cost-center` tag)", required=True),
    # the models the stack hosts
    Spec(
        "models",
        "models",
        "models",
        "Models the stack hosts, each with its own registry group, training role, pipeline, "
        "endpoint, drift job and alarms (`model` tag) on the shared lake, network, cluster, "
        "on-call topic and audit trail; an entry may set `modelKey` and override the settings "
        "listed, which otherwise apply to every model",
        default=DEFAULT_MODELS,
        allowed_text=(
            "a list of {name: a package under ml/models/ ("
            + ", ".join(model_names())
            + "), modelKey, "
            + ", ".join(k for k in MODEL_OVERRIDES)
            + "}"
        ),
    ),
    Spec(
        "legacyModel",
        "legacy_model",
        "str",
        "The model a stack deployed before `models` existed served: it keeps that stack's names "
        "(endpoint `ml-platform-<stack>`; through aliases its `registry`, `training`, `serving` "
        "and `drift` components and `monitoring-*` alarms), so the stack upgrades in place; "
        "empty = none",
        default=DEFAULT_LEGACY_MODEL,
        choices=(*model_names(), ""),
        allowed_text="a name of `models`, or empty",
    ),
    # data lake
    Spec(
        "kmsDeletionWindowDays",
        (
            "lake.kms_deletion_window_days",
            "cluster.kms_deletion_window_days",
            "on_call.kms_deletion_window_days",
            "audit.kms_deletion_window_days",
        ),
        "int",
        "Waiting period before a scheduled key deletion",
        default=30,
        minimum=KMS_DELETION_WINDOW_DAYS[0],
        maximum=KMS_DELETION_WINDOW_DAYS[1],
    ),
    Spec(
        "forceDestroy",
        ("lake.force_destroy", "image.force_delete", "audit.force_destroy"),
        "bool",
        "Let `pulumi destroy` delete non-empty lake buckets (refused in prod)",
        default=False,
    ),
    Spec(
        "rawIaDays",
        "lake.raw_ia_days",
        "int",
        "Days before raw objects move to Standard-IA",
        default=30,
        minimum=30,
        maximum=3650,
    ),
    Spec(
        "rawArchiveDays",
        "lake.raw_archive_days",
        "int",
        "Days before raw objects move to Glacier Flexible Retrieval (>= rawIaDays + 30)",
        default=90,
        minimum=60,
        maximum=36500,
    ),
    Spec(
        "noncurrentVersionDays",
        ("lake.noncurrent_version_days", "audit.noncurrent_version_days"),
        "int",
        "Days before noncurrent object versions expire",
        default=90,
        minimum=1,
        maximum=3650,
    ),
    Spec(
        "rawObjectLock",
        "lake.raw_object_lock",
        "bool",
        "Object Lock (governance mode) on the raw zone",
        default=by_env(prod=True, other=False),
    ),
    Spec(
        "athenaBytesScannedCutoff",
        "lake.athena_bytes_scanned_cutoff",
        "int",
        "Most bytes one Athena query may scan",
        default=10 * 1024**3,
        minimum=10_000_000,
    ),
    Spec(
        "logRetentionDays",
        (
            "ingestion.log_retention_days",
            "network.log_retention_days",
            "cluster.log_retention_days",
            "endpoint.log_retention_days",
            "drift.log_retention_days",
            "audit.log_retention_days",
        ),
        "int",
        "Retention of every log group",
        default=by_env(prod=365, staging=90, other=30),
        choices=LOG_RETENTION_DAYS,
    ),
    # audit
    Spec(
        "auditObjectLockDays",
        "audit.object_lock_days",
        "int",
        "Object Lock (governance mode) retention of audit log files; 0 = no Object Lock",
        default=by_env(prod=365, other=0),
        minimum=0,
        maximum=36500,
    ),
    Spec(
        "auditArchiveBucketArn",
        "audit.archive_bucket_arn",
        "str",
        "Log-archive bucket (another account's) every audit log file is replicated to; empty = "
        "no replication",
        default="",
        pattern=r"^arn:aws[a-z-]*:s3:::[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$",
    ),
    Spec(
        "auditArchiveKmsKeyArn",
        "audit.archive_kms_key_arn",
        "str",
        "KMS key of the log-archive bucket (the replicas are encrypted with it); set with "
        "auditArchiveBucketArn",
        default="",
        pattern=r"^arn:aws[a-z-]*:kms:[a-z]{2}(-gov)?-[a-z]+-\d:\d{12}:key/[0-9a-f-]{36}$",
    ),
    # ingestion
    Spec(
        "streamDatasets",
        "ingestion.datasets",
        "strlist",
        "Raw datasets collected through a Firehose stream each (JSON records in, Parquet in the "
        "dataset's partitions out): the customer snapshots (the steady feed the freshness alarm "
        "watches) and the outcomes that come back after a prediction (the labels)",
        default=STREAMABLE,
        choices=STREAMABLE,
        allowed_text="a list of raw datasets (" + ", ".join(STREAMABLE) + f"), with "
        f"{STREAMABLE[0]}",
    ),
    Spec(
        "firehoseBufferSeconds",
        "ingestion.buffer_seconds",
        "int",
        "Firehose buffering interval",
        default=300,
        minimum=60,
        maximum=900,
    ),
    Spec(
        "firehoseBufferMb",
        "ingestion.buffer_mb",
        "int",
        "Firehose buffer size (Parquet conversion needs >= 64)",
        default=128,
        minimum=64,
        maximum=128,
    ),
    # network
    Spec(
        "vpcCidr", "network.vpc_cidr", "str", "VPC CIDR block (/16 to /20)", default="10.40.0.0/16"
    ),
    Spec(
        "azCount",
        "network.az_count",
        "int",
        "Availability zones the network spans",
        default=by_env(prod=3, other=2),
        minimum=MIN_ZONES,
        maximum=MAX_ZONES,
    ),
    Spec(
        "natGateway",
        "network.nat_gateway",
        "bool",
        "One NAT gateway per zone for outbound internet (VPC endpoints cover AWS services)",
        default=False,
    ),
    # training cluster
    Spec(
        "eksEnabled",
        ("cluster.enabled", "network.eks_cluster"),
        "bool",
        "Stand up the EKS GPU training cluster",
        default=by_env(dev=False, local=False, other=True),
    ),
    Spec(
        "eksVersion",
        "cluster.eks_version",
        "str",
        "Kubernetes version of the training cluster",
        default="1.33",
        pattern=r"^1\.(2[89]|3[0-9])$",
    ),
    Spec(
        "autoscalerImageDigest",
        "cluster.autoscaler_image_digest",
        "str",
        "Digest (sha256:...) of the cluster autoscaler image for eksVersion, to pull it by digest; "
        "empty = by tag",
        default="",
        pattern=r"^sha256:[0-9a-f]{64}$",
    ),
    Spec(
        "eksPublicAccessCidrs",
        "cluster.public_access_cidrs",
        "cidrlist",
        "CIDRs allowed to reach the cluster API publicly; empty = private only (required in prod)",
        default=(),
    ),
    Spec(
        "eksJobSubmitters",
        "cluster.job_submitter_arns",
        "strlist",
        "IAM roles or users that may submit training Jobs (assume the submitter role); empty = "
        "no submitter role",
        default=(),
    ),
    Spec(
        "systemNodeInstanceType",
        "cluster.system_node_instance_type",
        "str",
        "Instance type of the small CPU system node group",
        default="m6i.large",
    ),
    Spec(
        "gpuNodeGroups",
        "cluster.gpu_node_groups",
        "gpugroups",
        "GPU node groups (scale from zero)",
        default=(GpuNodeGroup("gpu", ("g5.xlarge", "g5.2xlarge"), "SPOT", 2),),
    ),
    Spec(
        "gpuInstanceFamilies",
        ("cluster.gpu_instance_families", "alarms.gpu_instance_families"),
        "strlist",
        "Allow-list of GPU instance families",
        default=DEFAULT_GPU_FAMILIES,
    ),
    Spec(
        "trainingInstanceType",
        ("training.instance_type", "pipeline.training_instance_type"),
        "str",
        "SageMaker training instance type",
        default="ml.m5.xlarge",
        pattern=r"^ml\.[a-z0-9]+\.[a-z0-9]+$",
    ),
    Spec(
        "trainingUseSpot",
        ("training.use_spot", "pipeline.training_use_spot"),
        "bool",
        "Managed spot training (with checkpoints)",
        default=True,
    ),
    Spec(
        "trainingMaxRuntimeSeconds",
        ("training.max_runtime_seconds", "pipeline.training_max_runtime_seconds"),
        "int",
        "Longest a training job may run",
        default=4 * 3600,
        minimum=60,
        maximum=28 * 86400,
    ),
    Spec(
        "trainingMaxWaitSeconds",
        ("training.max_wait_seconds", "pipeline.training_max_wait_seconds"),
        "int",
        "Longest a spot training job may wait plus run (>= trainingMaxRuntimeSeconds)",
        default=8 * 3600,
        minimum=60,
        maximum=28 * 86400,
    ),
    # the model pipeline (retraining)
    Spec(
        "pipelineEnabled",
        ("pipeline.enabled", "on_call.pipeline_enabled"),
        "bool",
        "Deploy each model's SageMaker Pipeline (curate, features, train, evaluate, register), "
        "its schedule and its failure page",
        default=True,
    ),
    Spec(
        "pipelineSchedule",
        "pipeline.schedule",
        "str",
        "EventBridge schedule that retrains the model (starts the pipeline); unset = every half "
        "of the model's maxModelAgeDays (`rate(N days)`, N = max(1, maxModelAgeDays // 2)), so "
        "that one failed or refused retraining still leaves a version younger than the age alarm",
        default=None,
        pattern=SCHEDULE_PATTERN,
        default_text="per model: rate(maxModelAgeDays // 2 days)",
    ),
    Spec(
        "pipelineWindowDays",
        "pipeline.window_days",
        "int",
        "Days of raw data a pipeline run curates and trains on (up to the day it starts)",
        default=30,
        minimum=1,
        maximum=3650,
    ),
    Spec(
        "pipelineInstanceType",
        "pipeline.instance_type",
        "str",
        "Instance type of the pipeline's Processing steps",
        default="ml.m5.xlarge",
        pattern=r"^ml\.[a-z0-9]+\.[a-z0-9]+$",
    ),
    Spec(
        "pipelineInstanceCount",
        "pipeline.instance_count",
        "int",
        "Instances the curate and features steps shard the window's partitions across",
        default=by_env(prod=2, staging=2, other=1),
        minimum=1,
        maximum=100,
    ),
    Spec(
        "pipelineAutoApprove",
        "pipeline.auto_approve",
        "bool",
        "Register versions that pass the gate as Approved (else PendingManualApproval; refused "
        "in prod)",
        default=by_env(dev=True, local=True, other=False),
    ),
    Spec(
        "pipelineMaxRejectedShare",
        "pipeline.max_rejected_share",
        "float",
        "Share of a window's raw rows the curate step may reject before the run fails (and pages)",
        default=0.05,
        minimum=0,
        maximum=1,
    ),
    # serving
    Spec(
        "endpointEnabled",
        "endpoint.enabled",
        "bool",
        "Deploy each model's endpoint (with its drift job and alarms)",
        default=True,
    ),
    Spec(
        "modelPackageArn",
        "model_package_arn",
        "str",
        "Approved model package an endpoint serves (set by `mlplat deploy`): the model whose "
        "registry group the ARN names serves it (a `models` entry may set its own)",
        default=None,
        pattern=PACKAGE_ARN_PATTERN,
    ),
    Spec(
        "endpointInstanceType",
        ("endpoint.instance_type", "alarms.endpoint_instance_type"),
        "str",
        "Endpoint instance type",
        default="ml.m5.large",
        pattern=r"^ml\.[a-z0-9]+\.[a-z0-9]+$",
    ),
    Spec(
        "endpointMinInstances",
        "endpoint.min_instances",
        "int",
        "Autoscaling minimum (prod >= 2, across zones)",
        default=by_env(prod=2, other=1),
        minimum=1,
        maximum=100,
    ),
    Spec(
        "endpointMaxInstances",
        "endpoint.max_instances",
        "int",
        "Autoscaling maximum",
        default=by_env(prod=6, other=2),
        minimum=1,
        maximum=100,
    ),
    Spec(
        "endpointServerless",
        ("endpoint.serverless", "alarms.serverless"),
        "bool",
        "Serverless variant instead of instances (dev only; no capture, VPC or isolation)",
        default=by_env(dev=True, other=False),
    ),
    Spec(
        "serverlessMemoryMb",
        "endpoint.serverless_memory_mb",
        "int",
        "Serverless variant memory",
        default=2048,
        choices=(1024, 2048, 3072, 4096, 5120, 6144),
    ),
    Spec(
        "serverlessMaxConcurrency",
        "endpoint.serverless_max_concurrency",
        "int",
        "Serverless variant max concurrency",
        default=5,
        minimum=1,
        maximum=200,
    ),
    Spec(
        "dataCaptureEnabled",
        "endpoint.data_capture_enabled",
        "bool",
        "Capture endpoint requests and responses into the predictions zone",
        default=by_env(dev=False, other=True),
    ),
    Spec(
        "dataCapturePercent",
        "endpoint.data_capture_percent",
        "int",
        "Share of requests captured",
        default=100,
        minimum=1,
        maximum=100,
    ),
    Spec(
        "networkIsolation",
        "endpoint.network_isolation",
        "bool",
        "Model containers run without network access",
        default=by_env(prod=True, other=False),
    ),
    Spec(
        "endpointInVpc",
        "endpoint.in_vpc",
        "bool",
        "Model containers run in the private subnets",
        default=by_env(prod=True, other=False),
    ),
    Spec(
        "deploymentStrategy",
        "endpoint.deployment_strategy",
        "str",
        "How a new model takes traffic (blue/green)",
        default="canary",
        choices=DEPLOYMENT_STRATEGIES,
    ),
    Spec(
        "trafficStepPercent",
        "endpoint.traffic_step_percent",
        "int",
        "Canary size or linear step, percent of capacity",
        default=10,
        minimum=1,
        maximum=50,
    ),
    Spec(
        "trafficWaitSeconds",
        "endpoint.traffic_wait_seconds",
        "int",
        "Wait between traffic shifts (alarms watched meanwhile)",
        default=600,
        minimum=0,
        maximum=3600,
    ),
    Spec(
        "terminationWaitSeconds",
        "endpoint.termination_wait_seconds",
        "int",
        "Keep the old fleet this long after full shift",
        default=300,
        minimum=0,
        maximum=3600,
    ),
    Spec(
        "autoscalingTargetInvocations",
        "endpoint.autoscaling_target_invocations",
        "int",
        "Target invocations per instance per minute",
        default=200,
        minimum=1,
        maximum=100_000,
    ),
    # monitoring
    Spec(
        "alarmSubscriptions",
        "on_call.subscriptions",
        "subscriptions",
        "Who the on-call topic notifies",
        default=(),
    ),
    Spec(
        "latencyP99Ms",
        ("endpoint.latency_p99_ms", "alarms.latency_p99_ms"),
        "int",
        "p99 model latency alarm threshold",
        default=250,
        minimum=1,
        maximum=60_000,
    ),
    Spec(
        "error5xxThreshold",
        ("endpoint.error_5xx_threshold", "alarms.error_5xx_threshold"),
        "int",
        "5XX errors per minute that alarm",
        default=1,
        minimum=1,
        maximum=100_000,
    ),
    Spec(
        "error4xxRatePercent",
        "alarms.error_4xx_rate_percent",
        "int",
        "Share of invocations answered 4XX that alarms",
        default=5,
        minimum=1,
        maximum=100,
    ),
    Spec(
        "cpuThresholdPercent",
        "alarms.cpu_threshold_percent",
        "int",
        "CPU utilization alarm threshold (per instance, can exceed 100)",
        default=80,
        minimum=1,
        maximum=9600,
    ),
    Spec(
        "memoryThresholdPercent",
        "alarms.memory_threshold_percent",
        "int",
        "Memory utilization alarm threshold",
        default=85,
        minimum=1,
        maximum=100,
    ),
    Spec(
        "driftPsiThreshold",
        ("drift.drift_psi_threshold", "alarms.drift_psi_threshold"),
        "float",
        "Population stability index that counts as drift",
        default=0.2,
        minimum=0.01,
        maximum=10,
    ),
    Spec(
        "qualityMargin",
        ("drift.quality_margin", "alarms.quality_margin"),
        "float",
        "How far online quality (predictions joined with the labels that came back) may fall "
        "below the serving version's registered offline figure before the quality alarm pages: "
        "`QualityShortfall`, in the task's headline metric's unit, > 0 worse (ROC AUC points; "
        "RMSE relative to the offline RMSE)",
        default=0.05,
        minimum=0.001,
        maximum=1,
    ),
    Spec(
        "skewShareThreshold",
        "alarms.skew_share_threshold",
        "float",
        "Share of captured requests whose score, re-computed through the training path, differs "
        "from what the endpoint answered (training-serving skew, `SkewShare`) above which the "
        "skew alarm pages",
        default=0.01,
        minimum=0,
        maximum=0.5,
    ),
    Spec(
        "maxModelAgeDays",
        "alarms.max_model_age_days",
        "int",
        "Days since the serving version was trained (`ModelAgeDays`) above which the model-age "
        "alarm pages; unset = the model's backtest recommendation (how long its quality holds, "
        "`ml/models/<name>/staleness.json`)",
        default=None,
        minimum=1,
        maximum=3650,
        default_text="per model: its backtest's recommendation",
    ),
    Spec(
        "freshnessHours",
        "monitoring.freshness_hours",
        "int",
        "Alarm when nothing new lands in the raw zone for this long",
        default=24,
        minimum=1,
        maximum=168,
    ),
    Spec(
        "driftSchedule",
        ("drift.schedule", "alarms.drift_schedule"),
        "str",
        "EventBridge schedule of the drift job",
        default="rate(1 hour)",
        pattern=SCHEDULE_PATTERN,
    ),
    Spec(
        "platformImageTag",
        "image.tag",
        "str",
        "Tag of the platform image (this package's ml code) the drift job runs",
        default="0.1.0",
        pattern=r"^[A-Za-z0-9._-]{1,128}$",
    ),
    Spec(
        "cloudtrailDataEvents",
        "audit.data_events",
        "bool",
        "CloudTrail S3 data events for the lake buckets (always on in prod)",
        default=by_env(prod=True, other=False),
    ),
    # cost usage assumptions
    Spec(
        "usageEndpointHours",
        "usage.endpoint_hours",
        "int",
        "Endpoint instance hours per month per instance (cost estimate)",
        default=730,
        minimum=0,
        maximum=744,
    ),
    Spec(
        "usageGpuNodeHours",
        "usage.gpu_node_hours",
        "int",
        "GPU node hours per month (cost estimate)",
        default=by_env(prod=200, other=40),
        minimum=0,
        maximum=100_000,
    ),
    Spec(
        "usageStorageGb",
        "usage.storage_gb",
        "int",
        "Lake storage, GB-month (cost estimate)",
        default=by_env(prod=2000, other=100),
        minimum=0,
        maximum=10_000_000,
    ),
    Spec(
        "usageStreamGb",
        "usage.stream_gb",
        "int",
        "Firehose ingest per month, GB (cost estimate)",
        default=by_env(prod=500, other=10),
        minimum=0,
        maximum=10_000_000,
    ),
)

SPEC_BY_KEY: dict[str, Spec] = {s.key: s for s in SPEC}

__all__ = [
    "DEFAULT_LEGACY_MODEL",
    "DEFAULT_MODELS",
    "MODEL_OVERRIDES",
    "MODEL_SECTIONS",
    "PACKAGE_ARN_PATTERN",
    "Default",
    "GpuNodeGroup",
    "Kind",
    "ModelEntry",
    "Spec",
    "Subscription",
    "default_max_model_age_days",
    "default_model_key",
    "retraining_schedule",
    "schedule_days",
]

# A `models` entry's own key (no stack-wide one: each model serves its own artifact).
MODEL_KEY_SPEC = Spec(
    "modelKey",
    ("endpoint.model_key", "drift.model_key"),
    "str",
    "Artifact key in the models bucket a model serves while no model package is set",
    default=None,  # `default_model_key(name)`
    pattern=r"^[A-Za-z0-9._/-]+\.tar\.gz$",
)


def full_key(spec: Spec) -> str:
    return spec.key if ":" in spec.key else f"{PROJECT}:{spec.key}"


# `Settings` field (`section.field`, or a stack-wide field) -> the full config key it comes from.
KEY_OF_FIELD: dict[str, str] = {path: full_key(spec) for spec in SPEC for path in spec.fields}


def keys_of(section: str) -> dict[str, str]:
    """A section's fields -> the full config keys they come from."""
    prefix = section + "."
    return {
        path.removeprefix(prefix): key
        for path, key in KEY_OF_FIELD.items()
        if path.startswith(prefix)
    }
