"""The stack's settings, one frozen section per component, each giving its component's Args.

A section holds every value its component reads from the stack's config (a value that several
components read is in each of their sections, as `SPEC` says) and the stack it belongs to (names,
tags, protection). `args(...)` takes only what the component needs from other components (Outputs)
and returns the component's Args, so the composition root wires outputs and copies no field.

The sections here are the stack's shared ones; each model of `models` has its own sections
(`stacks.settings.models`: registry, pipeline, endpoint, drift job, alarms).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:  # the component modules load Pulumi: `args()` imports each one when called
    import pulumi

    from components.audit import AuditTrailArgs
    from components.data_lake import DataLakeArgs
    from components.ingestion import IngestionArgs
    from components.monitoring import ModelPanel, MonitoringArgs
    from components.network import NetworkArgs
    from components.on_call import OnCallArgs
    from components.platform_image import PlatformImageArgs
    from components.training_cluster import TrainingClusterArgs
    from components.training_role import TrainingJobRoleArgs
    from ml.schema import Dataset
    from stacks.settings.models import ModelInfo, ModelSettings
from ml.schema import CUSTOMERS_RAW, SHARED_DATASETS
from stacks.settings.spec import PROJECT, Environment, GpuNodeGroup, Subscription

# The lake buckets whose object-level events the audit trail records (not query results, not logs).
AUDITED_ZONES = ("raw", "curated", "features", "models", "predictions")


def stack_tags(stack: str, environment: str, owner: str, cost_center: str) -> dict[str, str]:
    """The tags every taggable resource carries."""
    return {
        "owner": owner,
        "environment": environment,
        "cost-center": cost_center,
        "project": PROJECT,
        "stack": stack,
    }


@dataclass(frozen=True, slots=True)
class StackInfo:
    """What every section knows of its stack: the name (physical names), tags, prod or not."""

    name: str
    environment: Environment
    owner: str
    cost_center: str

    @property
    def tags(self) -> dict[str, str]:
        return stack_tags(self.name, self.environment, self.owner, self.cost_center)

    @property
    def is_prod(self) -> bool:
        return self.environment == "prod"


@dataclass(frozen=True, slots=True)
class Section:
    """A component's settings: `stack` names, tags and protects what the component creates."""

    stack: StackInfo


@dataclass(frozen=True, slots=True)
class LakeSettings(Section):
    kms_deletion_window_days: int
    force_destroy: bool
    raw_ia_days: int
    raw_archive_days: int
    noncurrent_version_days: int
    raw_object_lock: bool
    athena_bytes_scanned_cutoff: int

    @property
    def database_name(self) -> str:
        """The Glue database: the stack name folded into lowercase letters, digits and `_`."""
        return re.sub(r"[^a-z0-9_]", "_", f"ml_platform_{self.stack.name}".lower())

    def args(self, *, models: Sequence[ModelInfo]) -> DataLakeArgs:
        """The shared datasets' tables and each model's own (its features and predictions)."""
        from components.data_lake import DataLakeArgs

        datasets: list[Dataset] = list(SHARED_DATASETS)
        for model in models:
            datasets += [d for d in model.spec.datasets if d not in datasets]
        return DataLakeArgs(
            database_name=self.database_name,
            datasets=tuple(datasets),
            kms_deletion_window_days=self.kms_deletion_window_days,
            force_destroy=self.force_destroy,
            raw_ia_days=self.raw_ia_days,
            raw_archive_days=self.raw_archive_days,
            noncurrent_version_days=self.noncurrent_version_days,
            raw_object_lock=self.raw_object_lock,
            athena_bytes_scanned_cutoff=self.athena_bytes_scanned_cutoff,
            tags=self.stack.tags,
            protect=self.stack.is_prod,
        )


@dataclass(frozen=True, slots=True)
class IngestionSettings(Section):
    """One Firehose stream per raw dataset of `datasets`: the customer snapshots (the steady
    feed: the freshness alarm watches it, and the platform outputs name it) and, by default, the
    outcomes that come back after a prediction (the labels)."""

    buffer_seconds: int
    buffer_mb: int
    log_retention_days: int
    datasets: tuple[str, ...]

    # The steady feed's dataset: its stream keeps the name it always had (`ingest`).
    main_dataset: ClassVar[str] = CUSTOMERS_RAW.name

    @classmethod
    def component_name(cls, dataset: str) -> str:
        """`ingest` for the steady feed, `ingest-<dataset>` (dashes) for each other stream."""
        return "ingest" if dataset == cls.main_dataset else "ingest-" + dataset.replace("_", "-")

    def args(
        self,
        *,
        raw_bucket_arn: pulumi.Input[str],
        kms_key_arn: pulumi.Input[str],
        glue_database_name: pulumi.Input[str],
        glue_table_names: Mapping[str, pulumi.Input[str]],
        dataset: str = CUSTOMERS_RAW.name,
    ) -> IngestionArgs:
        """`dataset`'s stream; `glue_table_names`: the lake's tables by dataset (the stream
        converts through its dataset's)."""
        from components.ingestion import IngestionArgs

        return IngestionArgs(
            raw_bucket_arn=raw_bucket_arn,
            kms_key_arn=kms_key_arn,
            glue_database_name=glue_database_name,
            glue_table_name=glue_table_names[dataset],
            dataset=dataset,
            buffer_seconds=self.buffer_seconds,
            buffer_mb=self.buffer_mb,
            log_retention_days=self.log_retention_days,
            tags=self.stack.tags,
        )


@dataclass(frozen=True, slots=True)
class NetworkSettings(Section):
    vpc_cidr: str
    az_count: int
    nat_gateway: bool
    log_retention_days: int
    eks_cluster: bool

    def args(self, *, kms_key_arn: pulumi.Input[str]) -> NetworkArgs:
        from components.network import NetworkArgs

        return NetworkArgs(
            kms_key_arn=kms_key_arn,
            vpc_cidr=self.vpc_cidr,
            az_count=self.az_count,
            nat_gateway=self.nat_gateway,
            log_retention_days=self.log_retention_days,
            eks_cluster=self.eks_cluster,
            tags=self.stack.tags,
            protect=self.stack.is_prod,
        )


@dataclass(frozen=True, slots=True)
class TrainingSettings(Section):
    """SageMaker training jobs (`mlplat train`) and the role each model's jobs run as."""

    instance_type: str
    use_spot: bool
    max_runtime_seconds: int
    max_wait_seconds: int

    def args(
        self,
        *,
        lake_kms_key_arn: pulumi.Input[str],
        features_bucket_arn: pulumi.Input[str],
        models_bucket_arn: pulumi.Input[str],
        vpc_id: pulumi.Input[str],
        security_group_ids: Sequence[pulumi.Input[str]],
        model: ModelInfo,
        image_repository_arn: pulumi.Input[str] | None = None,
    ) -> TrainingJobRoleArgs:
        """`model`'s role: its features table in, its artifacts prefix out, the platform image
        (`image_repository_arn`) pulled."""
        from components.training_role import TrainingJobRoleArgs

        return TrainingJobRoleArgs(
            lake_kms_key_arn=lake_kms_key_arn,
            features_bucket_arn=features_bucket_arn,
            models_bucket_arn=models_bucket_arn,
            vpc_id=vpc_id,
            security_group_ids=security_group_ids,
            features_prefix=model.spec.features.prefix,
            models_prefix=model.artifacts_prefix,
            tags=model.tags,
            image_repository_arn=image_repository_arn,
        )


@dataclass(frozen=True, slots=True)
class ClusterSettings(Section):
    """The EKS GPU training cluster (only when `enabled`)."""

    enabled: bool
    eks_version: str
    autoscaler_image_digest: str
    public_access_cidrs: tuple[str, ...]
    job_submitter_arns: tuple[str, ...]
    system_node_instance_type: str
    gpu_node_groups: tuple[GpuNodeGroup, ...]
    gpu_instance_families: tuple[str, ...]
    log_retention_days: int
    kms_deletion_window_days: int

    def args(
        self,
        *,
        vpc_id: pulumi.Input[str],
        subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]],
        node_security_group_id: pulumi.Input[str],
        lake_kms_key_arn: pulumi.Input[str],
        features_bucket_arn: pulumi.Input[str],
        models_bucket_arn: pulumi.Input[str],
        models: Sequence[ModelInfo],
    ) -> TrainingClusterArgs:
        """The cluster's training pods read and write what every model's training role does."""
        from components.training_cluster import TrainingClusterArgs

        return TrainingClusterArgs(
            cluster_name=f"ml-platform-{self.stack.name}-training",
            vpc_id=vpc_id,
            subnet_ids=subnet_ids,
            node_security_group_id=node_security_group_id,
            lake_kms_key_arn=lake_kms_key_arn,
            features_bucket_arn=features_bucket_arn,
            models_bucket_arn=models_bucket_arn,
            features_prefixes=tuple(m.spec.features.prefix for m in models),
            models_prefixes=tuple(m.artifacts_prefix for m in models),
            gpu_node_groups=self.gpu_node_groups,
            gpu_instance_families=self.gpu_instance_families,
            image_cache_prefix=f"mlp-{self.stack.name}/k8s",
            eks_version=self.eks_version,
            autoscaler_image_digest=self.autoscaler_image_digest,
            public_access_cidrs=self.public_access_cidrs,
            job_submitter_arns=self.job_submitter_arns,
            system_node_instance_type=self.system_node_instance_type,
            log_retention_days=self.log_retention_days,
            kms_deletion_window_days=self.kms_deletion_window_days,
            tags=self.stack.tags,
            protect=self.stack.is_prod,
        )


@dataclass(frozen=True, slots=True)
class ImageSettings(Section):
    tag: str
    force_delete: bool

    def args(self, *, kms_key_arn: pulumi.Input[str]) -> PlatformImageArgs:
        from components.platform_image import PlatformImageArgs

        return PlatformImageArgs(
            kms_key_arn=kms_key_arn,
            tag=self.tag,
            force_delete=self.force_delete,
            tags=self.stack.tags,
            protect=self.stack.is_prod,
        )


@dataclass(frozen=True, slots=True)
class OnCallSettings(Section):
    subscriptions: tuple[Subscription, ...]
    kms_deletion_window_days: int
    # each model pipeline's failure rule pages through the topic
    pipeline_enabled: bool

    def args(self, *, models: Sequence[ModelInfo]) -> OnCallArgs:
        """EventBridge may publish for each model pipeline's failure rule: its name is fixed, so
        the topic's policy names it before the pipeline (which needs the topic) exists."""
        from components.names import failure_rule_name
        from components.on_call import OnCallArgs

        rules = tuple(failure_rule_name(m.pipeline_name) for m in models)
        return OnCallArgs(
            subscriptions=self.subscriptions,
            event_rule_names=rules if self.pipeline_enabled else (),
            kms_deletion_window_days=self.kms_deletion_window_days,
            tags=self.stack.tags,
            protect=self.stack.is_prod,
        )


@dataclass(frozen=True, slots=True)
class MonitoringSettings(Section):
    """The stack's freshness alarm and its dashboard (each model's alarms are its own)."""

    freshness_hours: int

    @property
    def dashboard_name(self) -> str:
        return f"ml-platform-{self.stack.name}"

    def args(
        self,
        *,
        topic_arn: pulumi.Input[str],
        ingest_stream_name: pulumi.Input[str] | None,
        lake_bucket_names: Mapping[str, pulumi.Input[str]],
        panels: Sequence[ModelPanel],
        other_stream_names: Mapping[str, pulumi.Input[str]] | None = None,
    ) -> MonitoringArgs:
        """`panels`: each model's section of the dashboard (`AlarmSettings.panel`);
        `other_stream_names`: the streams besides the steady feed, by dataset (charted)."""
        from components.monitoring import MonitoringArgs

        return MonitoringArgs(
            topic_arn=topic_arn,
            dashboard_name=self.dashboard_name,
            models=tuple(panels),
            ingest_stream_name=ingest_stream_name,
            other_stream_names=dict(other_stream_names or {}),
            lake_bucket_names=lake_bucket_names,
            freshness_hours=self.freshness_hours,
            tags=self.stack.tags,
        )


@dataclass(frozen=True, slots=True)
class AuditSettings(Section):
    data_events: bool
    kms_deletion_window_days: int
    noncurrent_version_days: int
    force_destroy: bool
    log_retention_days: int
    object_lock_days: int
    archive_bucket_arn: str
    archive_kms_key_arn: str

    def args(
        self,
        *,
        lake_bucket_arns: Mapping[str, pulumi.Input[str]],
        alarm_topic_arn: pulumi.Input[str],
        watched_bucket_names: Sequence[pulumi.Input[str]],
        watched_role_names: Sequence[pulumi.Input[str]],
    ) -> AuditTrailArgs:
        """`lake_bucket_arns`: the lake's buckets by zone (the audited zones are picked here);
        the watched names are the platform's buckets and roles whose control changes page."""
        from components.audit import AuditTrailArgs

        return AuditTrailArgs(
            trail_name=f"ml-platform-{self.stack.name}",
            lake_bucket_arns=[lake_bucket_arns[z] for z in AUDITED_ZONES],
            data_events=self.data_events,
            kms_deletion_window_days=self.kms_deletion_window_days,
            noncurrent_version_days=self.noncurrent_version_days,
            force_destroy=self.force_destroy,
            tags=self.stack.tags,
            protect=self.stack.is_prod,
            log_retention_days=self.log_retention_days,
            alarm_topic_arn=alarm_topic_arn,
            watched_bucket_names=watched_bucket_names,
            watched_role_names=watched_role_names,
            object_lock_days=self.object_lock_days,
            archive_bucket_arn=self.archive_bucket_arn,
            archive_kms_key_arn=self.archive_kms_key_arn,
        )


@dataclass(frozen=True, slots=True)
class UsageSettings:
    """Monthly usage the cost estimate assumes (no component: `mlplat.plan.cost` reads it)."""

    endpoint_hours: int
    gpu_node_hours: int
    storage_gb: int
    stream_gb: int


@dataclass(frozen=True, slots=True)
class Settings:
    stack: str
    environment: Environment
    region: str
    account_id: str
    owner: str
    cost_center: str
    lake: LakeSettings
    ingestion: IngestionSettings
    network: NetworkSettings
    training: TrainingSettings
    cluster: ClusterSettings
    image: ImageSettings
    on_call: OnCallSettings
    monitoring: MonitoringSettings
    audit: AuditSettings
    usage: UsageSettings
    # The models the stack hosts, in the order `models` lists them, each with its own sections.
    models: tuple[ModelSettings, ...]
    # `legacyModel`: the model that keeps the names of a stack deployed before `models` ("": none)
    legacy_model: str
    # `modelPackageArn`: the package the model whose group it names serves (None: unset)
    model_package_arn: str | None
    # raw config keys that were secrets (shown, never decrypted)
    secret_keys: tuple[str, ...] = ()

    @property
    def is_prod(self) -> bool:
        return self.environment == "prod"

    def model(self, name: str) -> ModelSettings:
        """The settings of model `name`; a clear error when the stack does not host it."""
        for m in self.models:
            if m.name == name:
                return m
        hosted = ", ".join(m.name for m in self.models)
        raise KeyError(f"stack {self.stack!r} hosts no model {name!r}; its models: {hosted}")

    @property
    def tags(self) -> dict[str, str]:
        """The tags every taggable resource carries."""
        return stack_tags(self.stack, self.environment, self.owner, self.cost_center)

    @property
    def availability_zones(self) -> tuple[str, ...]:
        """The zone names the offline engines answer `getAvailabilityZones` with."""
        return tuple(
            f"{self.region}{chr(ord('a') + i)}" for i in range(max(self.network.az_count, 3))
        )


# The stack-wide sections of `Settings`, by field name: what the parser builds from `SPEC`'s
# `section.field`s (`stacks.settings.models.MODEL_SECTIONS` are built once per model).
SECTIONS: Mapping[str, type] = {
    "lake": LakeSettings,
    "ingestion": IngestionSettings,
    "network": NetworkSettings,
    "training": TrainingSettings,
    "cluster": ClusterSettings,
    "image": ImageSettings,
    "on_call": OnCallSettings,
    "monitoring": MonitoringSettings,
    "audit": AuditSettings,
    "usage": UsageSettings,
}
