"""Typed, validated stack settings.

One frozen `Settings` object per stack, parsed from the stack's config in one place. The parser
(`parse_settings`) is pure: a mapping of config keys (`ml-platform:rawIaDays`, `aws:region`, ...)
in, settings or a `SettingsError` listing *every* problem out. `load()` is the only code that reads
`pulumi.Config`-land.

Config keys are camelCase; Python fields are snake_case; `SPEC` is the single table that maps one to
the other, and that the README table and the `Pulumi.yaml` config schema are generated from
(`mlplat.plan.project_schema`). The Pulumi CLI applies that schema before the program runs
(required keys, declared defaults, types); `mlplat.plan.project_config` applies it the same way
offline, and the parser keeps every rule the schema cannot say (ranges, choices, patterns,
cross-field rules).
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from components.limits import LOG_RETENTION_DAYS

PROJECT = "ml-platform"
ENVIRONMENTS = ("dev", "staging", "prod", "local")
Environment = Literal["dev", "staging", "prod", "local"]

# GPU instance families a node group or training job may use.
DEFAULT_GPU_FAMILIES = ("g4dn", "g5", "g6", "g6e", "p4d", "p5")
DEPLOYMENT_STRATEGIES = ("canary", "linear", "all-at-once")
SUBSCRIPTION_PROTOCOLS = ("email", "https", "sqs")
CAPACITY_TYPES = ("ON_DEMAND", "SPOT")
SECRET_PLACEHOLDER = "[secret]"


class SettingsError(ValueError):
    """Every problem found in a stack's configuration, one line each."""

    def __init__(self, stack: str, problems: Sequence[str]) -> None:
        self.stack = stack
        self.problems = tuple(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(
            f"stack {stack!r}: {len(self.problems)} configuration problem(s):\n{lines}"
        )


@dataclass(frozen=True, slots=True)
class GpuNodeGroup:
    name: str
    instance_types: tuple[str, ...]
    capacity_type: Literal["ON_DEMAND", "SPOT"] = "ON_DEMAND"
    max_size: int = 2
    disk_gb: int = 200


@dataclass(frozen=True, slots=True)
class Subscription:
    protocol: Literal["email", "https", "sqs"]
    endpoint: str


@dataclass(frozen=True, slots=True)
class Settings:
    stack: str
    environment: Environment
    region: str
    account_id: str
    owner: str
    cost_center: str
    # data lake
    kms_deletion_window_days: int
    force_destroy: bool
    raw_ia_days: int
    raw_archive_days: int
    noncurrent_version_days: int
    raw_object_lock: bool
    athena_bytes_scanned_cutoff: int
    log_retention_days: int
    # ingestion
    firehose_buffer_seconds: int
    firehose_buffer_mb: int
    # network
    vpc_cidr: str
    az_count: int
    nat_gateway: bool
    # training cluster
    eks_enabled: bool
    eks_version: str
    eks_public_access_cidrs: tuple[str, ...]
    system_node_instance_type: str
    gpu_node_groups: tuple[GpuNodeGroup, ...]
    gpu_instance_families: tuple[str, ...]
    training_instance_type: str
    training_use_spot: bool
    training_max_runtime_seconds: int
    training_max_wait_seconds: int
    # serving
    endpoint_enabled: bool
    model_package_arn: str | None
    model_key: str
    endpoint_instance_type: str
    endpoint_min_instances: int
    endpoint_max_instances: int
    endpoint_serverless: bool
    serverless_memory_mb: int
    serverless_max_concurrency: int
    data_capture_enabled: bool
    data_capture_percent: int
    network_isolation: bool
    endpoint_in_vpc: bool
    deployment_strategy: Literal["canary", "linear", "all-at-once"]
    traffic_step_percent: int
    traffic_wait_seconds: int
    termination_wait_seconds: int
    autoscaling_target_invocations: int
    # monitoring
    alarm_subscriptions: tuple[Subscription, ...]
    latency_p99_ms: int
    error_5xx_threshold: int
    error_4xx_rate_percent: int
    cpu_threshold_percent: int
    memory_threshold_percent: int
    drift_psi_threshold: float
    freshness_hours: int
    drift_schedule: str
    platform_image_tag: str
    cloudtrail_data_events: bool
    # cost usage assumptions (per month)
    usage_endpoint_hours: int
    usage_gpu_node_hours: int
    usage_storage_gb: int
    usage_stream_gb: int
    # raw config keys that were secrets (shown, never decrypted)
    secret_keys: tuple[str, ...] = field(default=())

    @property
    def is_prod(self) -> bool:
        return self.environment == "prod"

    @property
    def tags(self) -> dict[str, str]:
        """The tags every taggable resource carries."""
        return {
            "owner": self.owner,
            "environment": self.environment,
            "cost-center": self.cost_center,
            "project": PROJECT,
            "stack": self.stack,
        }

    @property
    def availability_zones(self) -> tuple[str, ...]:
        """The zone names the offline engines answer `getAvailabilityZones` with."""
        return tuple(f"{self.region}{chr(ord('a') + i)}" for i in range(max(self.az_count, 3)))


# --- the spec table --------------------------------------------------------------------------

Kind = Literal["str", "int", "float", "bool", "strlist", "cidrlist", "gpugroups", "subscriptions"]
Default = Any | Callable[[str], Any]  # a value, or a function of the environment


@dataclass(frozen=True, slots=True)
class Spec:
    key: str  # camelCase config key under `ml-platform:` (or the full key, for `aws:region`)
    field: str  # Settings field
    kind: Kind
    description: str
    default: Default = None
    required: bool = False
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[Any, ...] | None = None
    pattern: str | None = None

    @property
    def allowed(self) -> str:
        if self.choices is not None:
            return "one of " + ", ".join(str(c) for c in self.choices)
        if self.pattern is not None:
            return f"a string matching {self.pattern}"
        bounds = []
        if self.minimum is not None:
            bounds.append(f">= {self.minimum:g}")
        if self.maximum is not None:
            bounds.append(f"<= {self.maximum:g}")
        noun = {
            "int": "an integer",
            "float": "a number",
            "bool": "true or false",
            "str": "a string",
            "strlist": "a list of strings",
            "cidrlist": "a list of CIDR blocks",
            "gpugroups": "a list of {name, instanceTypes, capacityType, maxSize, diskGb}",
            "subscriptions": "a list of {protocol: email|https|sqs, endpoint}",
        }[self.kind]
        return noun + (" " + " and ".join(bounds) if bounds else "")


def _by_env(**values: Any) -> Callable[[str], Any]:
    def pick(env: str) -> Any:
        return values.get(env, values.get("other"))

    return pick


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
        "region",
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
    # data lake
    Spec(
        "kmsDeletionWindowDays",
        "kms_deletion_window_days",
        "int",
        "Waiting period before a scheduled key deletion",
        default=30,
        minimum=7,
        maximum=30,
    ),
    Spec(
        "forceDestroy",
        "force_destroy",
        "bool",
        "Let `pulumi destroy` delete non-empty lake buckets (refused in prod)",
        default=False,
    ),
    Spec(
        "rawIaDays",
        "raw_ia_days",
        "int",
        "Days before raw objects move to Standard-IA",
        default=30,
        minimum=30,
        maximum=3650,
    ),
    Spec(
        "rawArchiveDays",
        "raw_archive_days",
        "int",
        "Days before raw objects move to Glacier Flexible Retrieval (>= rawIaDays + 30)",
        default=90,
        minimum=60,
        maximum=36500,
    ),
    Spec(
        "noncurrentVersionDays",
        "noncurrent_version_days",
        "int",
        "Days before noncurrent object versions expire",
        default=90,
        minimum=1,
        maximum=3650,
    ),
    Spec(
        "rawObjectLock",
        "raw_object_lock",
        "bool",
        "Object Lock (governance mode) on the raw zone",
        default=_by_env(prod=True, other=False),
    ),
    Spec(
        "athenaBytesScannedCutoff",
        "athena_bytes_scanned_cutoff",
        "int",
        "Most bytes one Athena query may scan",
        default=10 * 1024**3,
        minimum=10_000_000,
    ),
    Spec(
        "logRetentionDays",
        "log_retention_days",
        "int",
        "Retention of every log group",
        default=_by_env(prod=365, staging=90, other=30),
        choices=LOG_RETENTION_DAYS,
    ),
    # ingestion
    Spec(
        "firehoseBufferSeconds",
        "firehose_buffer_seconds",
        "int",
        "Firehose buffering interval",
        default=300,
        minimum=60,
        maximum=900,
    ),
    Spec(
        "firehoseBufferMb",
        "firehose_buffer_mb",
        "int",
        "Firehose buffer size (Parquet conversion needs >= 64)",
        default=128,
        minimum=64,
        maximum=128,
    ),
    # network
    Spec("vpcCidr", "vpc_cidr", "str", "VPC CIDR block (/16 to /20)", default="10.40.0.0/16"),
    Spec(
        "azCount",
        "az_count",
        "int",
        "Availability zones the network spans",
        default=_by_env(prod=3, other=2),
        minimum=2,
        maximum=6,
    ),
    Spec(
        "natGateway",
        "nat_gateway",
        "bool",
        "One NAT gateway per zone for outbound internet (VPC endpoints cover AWS services)",
        default=False,
    ),
    # training cluster
    Spec(
        "eksEnabled",
        "eks_enabled",
        "bool",
        "Stand up the EKS GPU training cluster",
        default=_by_env(dev=False, local=False, other=True),
    ),
    Spec(
        "eksVersion",
        "eks_version",
        "str",
        "Kubernetes version of the training cluster",
        default="1.33",
        pattern=r"^1\.(2[89]|3[0-9])$",
    ),
    Spec(
        "eksPublicAccessCidrs",
        "eks_public_access_cidrs",
        "cidrlist",
        "CIDRs allowed to reach the cluster API publicly; empty = private only (required in prod)",
        default=(),
    ),
    Spec(
        "systemNodeInstanceType",
        "system_node_instance_type",
        "str",
        "Instance type of the small CPU system node group",
        default="m6i.large",
    ),
    Spec(
        "gpuNodeGroups",
        "gpu_node_groups",
        "gpugroups",
        "GPU node groups (scale from zero)",
        default=(GpuNodeGroup("gpu", ("g5.xlarge", "g5.2xlarge"), "SPOT", 2),),
    ),
    Spec(
        "gpuInstanceFamilies",
        "gpu_instance_families",
        "strlist",
        "Allow-list of GPU instance families",
        default=DEFAULT_GPU_FAMILIES,
    ),
    Spec(
        "trainingInstanceType",
        "training_instance_type",
        "str",
        "SageMaker training instance type",
        default="ml.m5.xlarge",
        pattern=r"^ml\.[a-z0-9]+\.[a-z0-9]+$",
    ),
    Spec(
        "trainingUseSpot",
        "training_use_spot",
        "bool",
        "Managed spot training (with checkpoints)",
        default=True,
    ),
    Spec(
        "trainingMaxRuntimeSeconds",
        "training_max_runtime_seconds",
        "int",
        "Longest a training job may run",
        default=4 * 3600,
        minimum=60,
        maximum=28 * 86400,
    ),
    Spec(
        "trainingMaxWaitSeconds",
        "training_max_wait_seconds",
        "int",
        "Longest a spot training job may wait plus run (>= trainingMaxRuntimeSeconds)",
        default=8 * 3600,
        minimum=60,
        maximum=28 * 86400,
    ),
    # serving
    Spec("endpointEnabled", "endpoint_enabled", "bool", "Deploy the model endpoint", default=True),
    Spec(
        "modelPackageArn",
        "model_package_arn",
        "str",
        "Approved model package the endpoint serves (set by `mlplat deploy`)",
        default=None,
        pattern=r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:model-package/[A-Za-z0-9-]+/\d+$",
    ),
    Spec(
        "modelKey",
        "model_key",
        "str",
        "Artifact key in the models bucket, used while no model package is set",
        default="churn/current/model.tar.gz",
        pattern=r"^[A-Za-z0-9._/-]+\.tar\.gz$",
    ),
    Spec(
        "endpointInstanceType",
        "endpoint_instance_type",
        "str",
        "Endpoint instance type",
        default="ml.m5.large",
        pattern=r"^ml\.[a-z0-9]+\.[a-z0-9]+$",
    ),
    Spec(
        "endpointMinInstances",
        "endpoint_min_instances",
        "int",
        "Autoscaling minimum (prod >= 2, across zones)",
        default=_by_env(prod=2, other=1),
        minimum=1,
        maximum=100,
    ),
    Spec(
        "endpointMaxInstances",
        "endpoint_max_instances",
        "int",
        "Autoscaling maximum",
        default=_by_env(prod=6, other=2),
        minimum=1,
        maximum=100,
    ),
    Spec(
        "endpointServerless",
        "endpoint_serverless",
        "bool",
        "Serverless variant instead of instances (dev only; no capture, VPC or isolation)",
        default=_by_env(dev=True, other=False),
    ),
    Spec(
        "serverlessMemoryMb",
        "serverless_memory_mb",
        "int",
        "Serverless variant memory",
        default=2048,
        choices=(1024, 2048, 3072, 4096, 5120, 6144),
    ),
    Spec(
        "serverlessMaxConcurrency",
        "serverless_max_concurrency",
        "int",
        "Serverless variant max concurrency",
        default=5,
        minimum=1,
        maximum=200,
    ),
    Spec(
        "dataCaptureEnabled",
        "data_capture_enabled",
        "bool",
        "Capture endpoint requests and responses into the predictions zone",
        default=_by_env(dev=False, other=True),
    ),
    Spec(
        "dataCapturePercent",
        "data_capture_percent",
        "int",
        "Share of requests captured",
        default=100,
        minimum=1,
        maximum=100,
    ),
    Spec(
        "networkIsolation",
        "network_isolation",
        "bool",
        "Model containers run without network access",
        default=_by_env(prod=True, other=False),
    ),
    Spec(
        "endpointInVpc",
        "endpoint_in_vpc",
        "bool",
        "Model containers run in the private subnets",
        default=_by_env(prod=True, other=False),
    ),
    Spec(
        "deploymentStrategy",
        "deployment_strategy",
        "str",
        "How a new model takes traffic (blue/green)",
        default="canary",
        choices=DEPLOYMENT_STRATEGIES,
    ),
    Spec(
        "trafficStepPercent",
        "traffic_step_percent",
        "int",
        "Canary size or linear step, percent of capacity",
        default=10,
        minimum=1,
        maximum=50,
    ),
    Spec(
        "trafficWaitSeconds",
        "traffic_wait_seconds",
        "int",
        "Wait between traffic shifts (alarms watched meanwhile)",
        default=600,
        minimum=0,
        maximum=3600,
    ),
    Spec(
        "terminationWaitSeconds",
        "termination_wait_seconds",
        "int",
        "Keep the old fleet this long after full shift",
        default=300,
        minimum=0,
        maximum=3600,
    ),
    Spec(
        "autoscalingTargetInvocations",
        "autoscaling_target_invocations",
        "int",
        "Target invocations per instance per minute",
        default=200,
        minimum=1,
        maximum=100_000,
    ),
    # monitoring
    Spec(
        "alarmSubscriptions",
        "alarm_subscriptions",
        "subscriptions",
        "Who the on-call topic notifies",
        default=(),
    ),
    Spec(
        "latencyP99Ms",
        "latency_p99_ms",
        "int",
        "p99 model latency alarm threshold",
        default=250,
        minimum=1,
        maximum=60_000,
    ),
    Spec(
        "error5xxThreshold",
        "error_5xx_threshold",
        "int",
        "5XX errors per minute that alarm",
        default=1,
        minimum=1,
        maximum=100_000,
    ),
    Spec(
        "error4xxRatePercent",
        "error_4xx_rate_percent",
        "int",
        "Share of invocations answered 4XX that alarms",
        default=5,
        minimum=1,
        maximum=100,
    ),
    Spec(
        "cpuThresholdPercent",
        "cpu_threshold_percent",
        "int",
        "CPU utilization alarm threshold (per instance, can exceed 100)",
        default=80,
        minimum=1,
        maximum=9600,
    ),
    Spec(
        "memoryThresholdPercent",
        "memory_threshold_percent",
        "int",
        "Memory utilization alarm threshold",
        default=85,
        minimum=1,
        maximum=100,
    ),
    Spec(
        "driftPsiThreshold",
        "drift_psi_threshold",
        "float",
        "Population stability index that counts as drift",
        default=0.2,
        minimum=0.01,
        maximum=10,
    ),
    Spec(
        "freshnessHours",
        "freshness_hours",
        "int",
        "Alarm when nothing new lands in the raw zone for this long",
        default=24,
        minimum=1,
        maximum=168,
    ),
    Spec(
        "driftSchedule",
        "drift_schedule",
        "str",
        "EventBridge schedule of the drift job",
        default="rate(1 hour)",
        pattern=r"^(rate\(\d+ (minute|minutes|hour|hours|day|days)\)|cron\(.+\))$",
    ),
    Spec(
        "platformImageTag",
        "platform_image_tag",
        "str",
        "Tag of the platform image (this package's ml code) the drift job runs",
        default="0.1.0",
        pattern=r"^[A-Za-z0-9._-]{1,128}$",
    ),
    Spec(
        "cloudtrailDataEvents",
        "cloudtrail_data_events",
        "bool",
        "CloudTrail S3 data events for the lake buckets (always on in prod)",
        default=_by_env(prod=True, other=False),
    ),
    # cost usage assumptions
    Spec(
        "usageEndpointHours",
        "usage_endpoint_hours",
        "int",
        "Endpoint instance hours per month per instance (cost estimate)",
        default=730,
        minimum=0,
        maximum=744,
    ),
    Spec(
        "usageGpuNodeHours",
        "usage_gpu_node_hours",
        "int",
        "GPU node hours per month (cost estimate)",
        default=_by_env(prod=200, other=40),
        minimum=0,
        maximum=100_000,
    ),
    Spec(
        "usageStorageGb",
        "usage_storage_gb",
        "int",
        "Lake storage, GB-month (cost estimate)",
        default=_by_env(prod=2000, other=100),
        minimum=0,
        maximum=10_000_000,
    ),
    Spec(
        "usageStreamGb",
        "usage_stream_gb",
        "int",
        "Firehose ingest per month, GB (cost estimate)",
        default=_by_env(prod=500, other=10),
        minimum=0,
        maximum=10_000_000,
    ),
)

SPEC_BY_KEY: dict[str, Spec] = {s.key: s for s in SPEC}
# Provider keys the program does not read but a stack file may set (the local stack points the
# provider at moto). Anything else under `aws:` is passed to the provider untouched.
_NOT_PROJECT_NAMESPACES = ("aws", "kubernetes", "pulumi")


def full_key(spec: Spec) -> str:
    return spec.key if ":" in spec.key else f"{PROJECT}:{spec.key}"


# --- parsing -----------------------------------------------------------------------------------

_TRUE = {"true", "yes", "1"}
_FALSE = {"false", "no", "0"}


def _maybe_json(value: Any) -> Any:
    """The real engine hands structured values over as JSON strings."""
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _convert(spec: Spec, value: Any, problems: list[str]) -> Any:
    key = full_key(spec)

    def bad(why: str = "") -> None:
        shown = json.dumps(value) if not isinstance(value, str) else repr(value)
        problems.append(f"{key}: {shown} is not allowed{why}; expected {spec.allowed}")

    if spec.kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
        return bad()
    if spec.kind in ("int", "float"):
        if isinstance(value, bool):
            return bad()
        number: float
        if isinstance(value, int | float):
            number = value
        elif isinstance(value, str):
            try:
                number = float(value) if spec.kind == "float" else int(value)
            except ValueError:
                return bad()
        else:
            return bad()
        if spec.kind == "int" and (isinstance(number, float) and not number.is_integer()):
            return bad()
        result: float = int(number) if spec.kind == "int" else float(number)
        if spec.minimum is not None and result < spec.minimum:
            return bad(" (too small)")
        if spec.maximum is not None and result > spec.maximum:
            return bad(" (too large)")
        if spec.choices is not None and result not in spec.choices:
            return bad()
        return result
    if spec.kind == "str":
        if not isinstance(value, str) or not value.strip():
            return bad()
        if spec.choices is not None and value not in spec.choices:
            hint = difflib.get_close_matches(value, [str(c) for c in spec.choices], n=1)
            return bad(f" (did you mean {hint[0]!r}?)" if hint else "")
        if spec.pattern is not None and not re.fullmatch(spec.pattern, value):
            return bad()
        return value
    value = _maybe_json(value)
    if spec.kind in ("strlist", "cidrlist"):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return bad()
        if spec.kind == "cidrlist":
            for v in value:
                try:
                    ipaddress.ip_network(v, strict=True)
                except ValueError:
                    problems.append(f"{key}: {v!r} is not a CIDR block (e.g. 203.0.113.0/24)")
        return tuple(value)
    if spec.kind == "subscriptions":
        if not isinstance(value, list):
            return bad()
        subs = []
        for i, item in enumerate(value):
            if (
                not isinstance(item, dict)
                or set(item) != {"protocol", "endpoint"}
                or item["protocol"] not in SUBSCRIPTION_PROTOCOLS
                or not isinstance(item["endpoint"], str)
                or not item["endpoint"]
            ):
                problems.append(
                    f"{key}[{i}]: {json.dumps(item)} is not allowed; expected "
                    "{protocol: email|https|sqs, endpoint: <address, URL or queue ARN>}"
                )
                continue
            subs.append(Subscription(item["protocol"], item["endpoint"]))
        return tuple(subs)
    if spec.kind == "gpugroups":
        if not isinstance(value, list):
            return bad()
        groups = []
        allowed_keys = {"name", "instanceTypes", "capacityType", "maxSize", "diskGb"}
        for i, item in enumerate(value):
            where = f"{key}[{i}]"
            if not isinstance(item, dict):
                problems.append(f"{where}: expected an object with {sorted(allowed_keys)}")
                continue
            unknown = set(item) - allowed_keys
            if unknown:
                problems.append(
                    f"{where}: unknown field(s) {sorted(unknown)}; allowed: {sorted(allowed_keys)}"
                )
            name = item.get("name")
            types = item.get("instanceTypes")
            capacity = item.get("capacityType", "ON_DEMAND")
            max_size = item.get("maxSize", 2)
            disk = item.get("diskGb", 200)
            ok = True
            if not isinstance(name, str) or not re.fullmatch(r"[a-z][a-z0-9-]{0,30}", name):
                problems.append(f"{where}.name: {name!r} must be lowercase letters, digits, '-'")
                ok = False
            if (
                not isinstance(types, list)
                or not types
                or not all(isinstance(t, str) for t in types)
            ):
                problems.append(f"{where}.instanceTypes: expected a non-empty list of strings")
                ok = False
            if capacity not in CAPACITY_TYPES:
                problems.append(
                    f"{where}.capacityType: {capacity!r} is not one of {', '.join(CAPACITY_TYPES)}"
                )
                ok = False
            if (
                isinstance(max_size, bool)
                or not isinstance(max_size, int)
                or not 1 <= max_size <= 100
            ):
                problems.append(f"{where}.maxSize: {max_size!r} must be an integer from 1 to 100")
                ok = False
            if isinstance(disk, bool) or not isinstance(disk, int) or not 20 <= disk <= 16384:
                problems.append(f"{where}.diskGb: {disk!r} must be an integer from 20 to 16384")
                ok = False
            if ok:
                groups.append(
                    GpuNodeGroup(str(name), tuple(cast(list[str], types)), capacity, max_size, disk)
                )
        return tuple(groups)
    raise AssertionError(spec.kind)


def _unknown_key_problem(key: str) -> str:
    known = [full_key(s) for s in SPEC if s.key != "aws:region"]
    hint = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
    return f"{key}: unknown setting{suggestion}; see the settings table in README.md"


def parse_settings(
    stack: str, config: Mapping[str, Any], secret_keys: Sequence[str] = ()
) -> Settings:
    """Parse a stack's config (full keys) into `Settings`.

    Raises `SettingsError` listing every problem, not just the first.
    """
    problems: list[str] = []
    if stack not in ENVIRONMENTS and not re.fullmatch(r"[a-zA-Z0-9_.-]+", stack):
        problems.append(f"stack name {stack!r}: use letters, digits, '-', '_' or '.'")

    for key in config:
        namespace, sep, _ = key.partition(":")
        if not sep:
            problems.append(f"{key}: config keys are namespaced, e.g. '{PROJECT}:{key}'")
        elif namespace == PROJECT and key not in {full_key(s) for s in SPEC}:
            problems.append(_unknown_key_problem(key))
        elif namespace not in (PROJECT, *_NOT_PROJECT_NAMESPACES):
            problems.append(
                f"{key}: unknown namespace {namespace!r}; settings live under "
                f"'{PROJECT}:' (provider keys under 'aws:')"
            )

    # The environment decides defaults, so it is read first.
    env_spec = SPEC_BY_KEY["environment"]
    raw_env = config.get(full_key(env_spec))
    environment = _convert(env_spec, raw_env, problems) if raw_env is not None else None
    if raw_env is None:
        problems.append(f"{full_key(env_spec)}: required; expected {env_spec.allowed}")

    values: dict[str, Any] = {}
    for spec in SPEC:
        key = full_key(spec)
        if spec is env_spec:
            values[spec.field] = environment
            continue
        if key in config and config[key] is not None:
            raw = config[key]
            if key in secret_keys and spec.kind != "str":
                problems.append(f"{key}: is a secret, but only string settings may be secret")
                continue
            values[spec.field] = _convert(spec, raw, problems)
        elif spec.required:
            problems.append(f"{key}: required; expected {spec.allowed}")
        else:
            default = spec.default
            values[spec.field] = default(environment or "dev") if callable(default) else default

    if not problems:
        _check_cross_field(values, problems)
    if problems:
        raise SettingsError(stack, problems)
    return Settings(stack=stack, secret_keys=tuple(secret_keys), **values)


def _check_cross_field(v: dict[str, Any], problems: list[str]) -> None:
    def key(f: str) -> str:
        return next(full_key(s) for s in SPEC if s.field == f)

    prod = v["environment"] == "prod"
    if v["endpoint_min_instances"] > v["endpoint_max_instances"]:
        problems.append(
            f"{key('endpoint_min_instances')}: {v['endpoint_min_instances']} is greater "
            f"than {key('endpoint_max_instances')} ({v['endpoint_max_instances']}); "
            "min must be <= max"
        )
    if v["raw_archive_days"] < v["raw_ia_days"] + 30:
        problems.append(
            f"{key('raw_archive_days')}: {v['raw_archive_days']} must be at least "
            f"{key('raw_ia_days')} + 30 = {v['raw_ia_days'] + 30} (S3 keeps objects in "
            "Standard-IA for 30 days before archiving)"
        )
    if v["training_max_wait_seconds"] < v["training_max_runtime_seconds"]:
        problems.append(
            f"{key('training_max_wait_seconds')}: {v['training_max_wait_seconds']} must "
            f"be >= {key('training_max_runtime_seconds')} "
            f"({v['training_max_runtime_seconds']})"
        )
    try:
        net = ipaddress.ip_network(v["vpc_cidr"], strict=True)
        if net.version != 4 or not 16 <= net.prefixlen <= 20 or not net.is_private:
            raise ValueError
    except ValueError:
        problems.append(
            f"{key('vpc_cidr')}: {v['vpc_cidr']!r} is not allowed; expected a private "
            "IPv4 CIDR from /16 to /20, e.g. 10.40.0.0/16"
        )
    families = set(v["gpu_instance_families"])
    for group in v["gpu_node_groups"]:
        for itype in group.instance_types:
            if itype.split(".")[0] not in families:
                problems.append(
                    f"{key('gpu_node_groups')}: node group {group.name!r} instance type "
                    f"{itype!r} is not a GPU family in {key('gpu_instance_families')} "
                    f"({', '.join(sorted(families))})"
                )
    if len({g.name for g in v["gpu_node_groups"]}) != len(v["gpu_node_groups"]):
        problems.append(f"{key('gpu_node_groups')}: node group names must be unique")
    for cidr in v["eks_public_access_cidrs"]:
        if cidr in ("0.0.0.0/0", "::/0"):
            problems.append(
                f"{key('eks_public_access_cidrs')}: {cidr} opens the cluster API to the "
                "internet; list your own CIDRs"
            )
    if v["endpoint_serverless"]:
        clashes = [
            (v["data_capture_enabled"], "data_capture_enabled", "data capture"),
            (v["endpoint_in_vpc"], "endpoint_in_vpc", "VPC config"),
            (v["network_isolation"], "network_isolation", "network isolation"),
        ]
        for on, f, what in clashes:
            if on:
                problems.append(
                    f"{key('endpoint_serverless')}: serverless endpoints support no "
                    f"{what}; set {key(f)}: false or {key('endpoint_serverless')}: false"
                )
        if v["endpoint_instance_type"].split(".")[1].startswith(("g", "p", "inf", "trn")):
            problems.append(
                f"{key('endpoint_serverless')}: serverless endpoints support no GPU or "
                f"accelerator instances ({v['endpoint_instance_type']})"
            )
    if v["endpoint_in_vpc"] and v["environment"] == "local":
        problems.append(
            f"{key('endpoint_in_vpc')}: the local stack has no private network to "
            "place the endpoint in"
        )
    if prod:
        prod_rules = [
            (
                v["force_destroy"],
                "force_destroy",
                "true",
                "prod lake buckets are never force-destroyed",
            ),
            (
                v["endpoint_serverless"],
                "endpoint_serverless",
                "true",
                "prod endpoints run on instances with data capture",
            ),
            (not v["network_isolation"], "network_isolation", "false", "prod models run isolated"),
            (not v["endpoint_in_vpc"], "endpoint_in_vpc", "false", "prod models run in the VPC"),
            (
                not v["data_capture_enabled"],
                "data_capture_enabled",
                "false",
                "prod endpoints capture their traffic for monitoring",
            ),
            (
                not v["cloudtrail_data_events"],
                "cloudtrail_data_events",
                "false",
                "prod audits lake data access",
            ),
            (
                bool(v["eks_public_access_cidrs"]),
                "eks_public_access_cidrs",
                "non-empty",
                "the prod cluster API is private only",
            ),
        ]
        for bad, f, shown, why in prod_rules:
            if bad:
                problems.append(f"{key(f)}: {shown} is not allowed in prod ({why})")
        if v["endpoint_min_instances"] < 2:
            problems.append(
                f"{key('endpoint_min_instances')}: {v['endpoint_min_instances']} is not "
                "allowed in prod; expected >= 2 (one instance per zone at least)"
            )
        if v["az_count"] < 2:
            problems.append(f"{key('az_count')}: prod spans at least 2 zones")


# --- loading -----------------------------------------------------------------------------------


def stack_file(project_dir: str, stack: str) -> str:
    import os

    return os.path.join(project_dir, f"Pulumi.{stack}.yaml")


def read_stack_document(
    path: str, stack: str, load: Callable[[str], Any] | None = None
) -> dict[Any, Any]:
    """The `config:` mapping of `Pulumi.<stack>.yaml` as `load` (`yaml.safe_load`) builds it.

    A missing file, invalid YAML or a document of the wrong shape is a `SettingsError` naming the
    file. `mlplat.plan.project_config` passes its own `load` to read the file as the Pulumi CLI
    does.
    """
    import os

    import yaml

    name = os.path.basename(path)
    if not os.path.exists(path):
        raise SettingsError(
            stack,
            [
                f"no stack file {name} (stacks: {', '.join(ENVIRONMENTS)}; create one with "
                f"`pulumi stack init {stack}`)"
            ],
        )
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        document = (load or yaml.safe_load)(text) or {}
    except yaml.YAMLError as exc:
        raise SettingsError(stack, [not_valid_yaml(path, exc)]) from exc
    if not isinstance(document, dict):
        raise SettingsError(stack, [f"{name}: expected a mapping at the top"])
    raw = document.get("config") or {}
    if not isinstance(raw, dict):
        raise SettingsError(stack, [f"{name}: `config` must be a mapping"])
    return raw


def not_valid_yaml(path: str, exc: Exception) -> str:
    import os

    return f"{os.path.basename(path)} is not valid YAML: {exc}"


def read_stack_file(path: str, stack: str) -> tuple[dict[str, Any], list[str]]:
    """The `config:` map of `Pulumi.<stack>.yaml` with full keys and YAML-typed values.

    Secure values (`{secure: v1:...}`) are not decrypted: they come back as a placeholder and their
    keys are listed as secret. This is the stack file alone: `mlplat.plan.project_config` reads it
    as the Pulumi CLI does (scalars as text) and applies the defaults declared in `Pulumi.yaml`.
    """
    config: dict[str, Any] = {}
    secret: list[str] = []
    for key, value in read_stack_document(path, stack).items():
        full = key if ":" in str(key) else f"{PROJECT}:{key}"
        if isinstance(value, dict) and set(value) == {"secure"}:
            config[full] = SECRET_PLACEHOLDER
            secret.append(full)
        else:
            config[full] = value
    return config, secret


def load() -> Settings:
    """Settings of the running stack, read from the engine's config (the only `pulumi` reader)."""
    import pulumi
    from pulumi.runtime import config as runtime_config

    all_config: dict[str, Any] = dict(runtime_config.get_config_env())
    all_config.update(runtime_config.CONFIG.get())
    secrets = list(runtime_config.get_config_secret_keys_env()) + [
        k for k in all_config if runtime_config.is_config_secret(k)
    ]
    return parse_settings(pulumi.get_stack(), all_config, secrets)
