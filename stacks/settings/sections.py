"""The stack's settings, one frozen section per component, each giving its component's Args.

A section holds every value its component reads from the stack's config (a value that several
components read is in each of their sections, as `SPEC` says) and the stack it belongs to (names,
tags, protection). `args(...)` takes only what the component needs from other components (Outputs)
and returns the component's Args, so the composition root wires outputs and copies no field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

if TYPE_CHECKING:  # the component modules load Pulumi: `args()` imports each one when called
    import pulumi

    from components.audit import AuditTrailArgs
    from components.data_lake import DataLakeArgs
    from components.drift_job import DriftJobArgs
    from components.ingestion import IngestionArgs
    from components.model_endpoint import ModelEndpointArgs
    from components.model_pipeline import ModelPipelineArgs
    from components.model_registry import ModelRegistryArgs
    from components.monitoring import MonitoringArgs
    from components.network import NetworkArgs
    from components.on_call import OnCallArgs
    from components.platform_image import PlatformImageArgs
    from components.training_cluster import TrainingClusterArgs
    from components.training_role import TrainingJobRoleArgs
from ml.contracts import baseline_key_for
from ml.schema import CUSTOMERS_RAW, FEATURE_NAMES
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

    def args(self) -> DataLakeArgs:
        from components.data_lake import DataLakeArgs

        return DataLakeArgs(
            database_name=self.database_name,
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
    buffer_seconds: int
    buffer_mb: int
    log_retention_days: int

    # The raw dataset the stream delivers.
    dataset: ClassVar[str] = CUSTOMERS_RAW.name

    def args(
        self,
        *,
        raw_bucket_arn: pulumi.Input[str],
        kms_key_arn: pulumi.Input[str],
        glue_database_name: pulumi.Input[str],
        glue_table_names: Mapping[str, pulumi.Input[str]],
    ) -> IngestionArgs:
        """`glue_table_names`: the lake's tables by dataset (the stream converts through one)."""
        from components.ingestion import IngestionArgs

        return IngestionArgs(
            raw_bucket_arn=raw_bucket_arn,
            kms_key_arn=kms_key_arn,
            glue_database_name=glue_database_name,
            glue_table_name=glue_table_names[self.dataset],
            dataset=self.dataset,
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
    """SageMaker training jobs (`mlplat train`) and the role they run as."""

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
    ) -> TrainingJobRoleArgs:
        from components.training_role import TrainingJobRoleArgs

        return TrainingJobRoleArgs(
            lake_kms_key_arn=lake_kms_key_arn,
            features_bucket_arn=features_bucket_arn,
            models_bucket_arn=models_bucket_arn,
            vpc_id=vpc_id,
            security_group_ids=security_group_ids,
            tags=self.stack.tags,
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
    ) -> TrainingClusterArgs:
        from components.training_cluster import TrainingClusterArgs

        return TrainingClusterArgs(
            cluster_name=f"ml-platform-{self.stack.name}-training",
            vpc_id=vpc_id,
            subnet_ids=subnet_ids,
            node_security_group_id=node_security_group_id,
            lake_kms_key_arn=lake_kms_key_arn,
            features_bucket_arn=features_bucket_arn,
            models_bucket_arn=models_bucket_arn,
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
    # the model pipeline's failure rule pages through the topic
    pipeline_enabled: bool

    def args(self) -> OnCallArgs:
        """EventBridge may publish for the pipeline's failure rule: its name is fixed, so the
        topic's policy names it before the pipeline (which needs the topic) exists."""
        from components.model_pipeline import default_pipeline_name, failure_rule_name
        from components.on_call import OnCallArgs

        rules = (failure_rule_name(default_pipeline_name(self.stack.name)),)
        return OnCallArgs(
            subscriptions=self.subscriptions,
            event_rule_names=rules if self.pipeline_enabled else (),
            kms_deletion_window_days=self.kms_deletion_window_days,
            tags=self.stack.tags,
            protect=self.stack.is_prod,
        )


@dataclass(frozen=True, slots=True)
class RegistrySettings(Section):
    """The model package group (no knob of its own: its name follows the stack)."""

    def args(
        self,
        *,
        models_bucket_arn: pulumi.Input[str],
        kms_key_arn: pulumi.Input[str],
        writer_role_names: Mapping[str, pulumi.Input[str]],
    ) -> ModelRegistryArgs:
        from components.model_registry import ModelRegistryArgs, default_group_name

        return ModelRegistryArgs(
            group_name=default_group_name(self.stack.name),
            models_bucket_arn=models_bucket_arn,
            kms_key_arn=kms_key_arn,
            writer_role_names=writer_role_names,
            tags=self.stack.tags,
            protect=self.stack.is_prod,
        )


@dataclass(frozen=True, slots=True)
class PipelineSettings(Section):
    """The model's SageMaker Pipeline (only when `enabled`): its steps, schedule and gate."""

    enabled: bool
    region: str
    schedule: str
    window_days: int
    instance_type: str
    instance_count: int
    auto_approve: bool
    max_rejected_share: float
    # the training step runs as `mlplat train` jobs do
    training_instance_type: str
    training_use_spot: bool
    training_max_runtime_seconds: int
    training_max_wait_seconds: int

    @property
    def approval_status(self) -> str:
        """What a version that passes the gate is registered as."""
        return "Approved" if self.auto_approve else "PendingManualApproval"

    def args(
        self,
        *,
        image_uri: pulumi.Input[str],
        image_repository_arn: pulumi.Input[str],
        lake_bucket_names: Mapping[str, pulumi.Input[str]],
        lake_bucket_arns: Mapping[str, pulumi.Input[str]],
        kms_key_arn: pulumi.Input[str],
        vpc_id: pulumi.Input[str],
        subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]],
        security_group_ids: Sequence[pulumi.Input[str]],
        group_name: pulumi.Input[str],
        artifacts_prefix: str,
        topic_arn: pulumi.Input[str],
    ) -> ModelPipelineArgs:
        """`lake_bucket_names` / `lake_bucket_arns`: the lake's buckets by zone."""
        from components.model_pipeline import ModelPipelineArgs, default_pipeline_name

        names, arns = lake_bucket_names, lake_bucket_arns
        return ModelPipelineArgs(
            pipeline_name=default_pipeline_name(self.stack.name),
            stack=self.stack.name,
            region=self.region,
            schedule=self.schedule,
            image_uri=image_uri,
            image_repository_arn=image_repository_arn,
            raw_bucket_name=names["raw"],
            raw_bucket_arn=arns["raw"],
            curated_bucket_name=names["curated"],
            curated_bucket_arn=arns["curated"],
            features_bucket_name=names["features"],
            features_bucket_arn=arns["features"],
            models_bucket_name=names["models"],
            models_bucket_arn=arns["models"],
            kms_key_arn=kms_key_arn,
            vpc_id=vpc_id,
            subnet_ids=subnet_ids,
            security_group_ids=security_group_ids,
            group_name=group_name,
            artifacts_prefix=artifacts_prefix,
            topic_arn=topic_arn,
            window_days=self.window_days,
            approval_status=self.approval_status,
            max_rejected_share=self.max_rejected_share,
            processing_instance_type=self.instance_type,
            processing_instance_count=self.instance_count,
            training_instance_type=self.training_instance_type,
            training_use_spot=self.training_use_spot,
            training_max_runtime_seconds=self.training_max_runtime_seconds,
            training_max_wait_seconds=self.training_max_wait_seconds,
            tags=self.stack.tags,
        )


@dataclass(frozen=True, slots=True)
class EndpointSettings(Section):
    """The model endpoint (only when `enabled`)."""

    enabled: bool
    model_package_arn: str | None
    model_key: str
    instance_type: str
    min_instances: int
    max_instances: int
    serverless: bool
    serverless_memory_mb: int
    serverless_max_concurrency: int
    data_capture_enabled: bool
    data_capture_percent: int
    network_isolation: bool
    in_vpc: bool
    deployment_strategy: Literal["canary", "linear", "all-at-once"]
    traffic_step_percent: int
    traffic_wait_seconds: int
    termination_wait_seconds: int
    autoscaling_target_invocations: int
    latency_p99_ms: int
    error_5xx_threshold: int
    log_retention_days: int

    def args(
        self,
        *,
        models_bucket_name: pulumi.Input[str],
        models_bucket_arn: pulumi.Input[str],
        predictions_bucket_name: pulumi.Input[str],
        predictions_bucket_arn: pulumi.Input[str],
        kms_key_arn: pulumi.Input[str],
        model_prefix: str,
        alarm_topic_arn: pulumi.Input[str],
        vpc_id: pulumi.Input[str],
        subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]],
        security_group_id: pulumi.Input[str],
    ) -> ModelEndpointArgs:
        """The network's VPC, private subnets and compute group serve only `in_vpc`."""
        in_vpc = self.in_vpc
        from components.model_endpoint import ModelEndpointArgs, default_endpoint_name

        return ModelEndpointArgs(
            endpoint_name=default_endpoint_name(self.stack.name),
            models_bucket_name=models_bucket_name,
            models_bucket_arn=models_bucket_arn,
            predictions_bucket_name=predictions_bucket_name,
            predictions_bucket_arn=predictions_bucket_arn,
            kms_key_arn=kms_key_arn,
            model_prefix=model_prefix,
            alarm_topic_arn=alarm_topic_arn,
            model_package_arn=self.model_package_arn,
            model_key=self.model_key,
            instance_type=self.instance_type,
            min_instances=self.min_instances,
            max_instances=self.max_instances,
            serverless=self.serverless,
            serverless_memory_mb=self.serverless_memory_mb,
            serverless_max_concurrency=self.serverless_max_concurrency,
            data_capture_enabled=self.data_capture_enabled,
            data_capture_percent=self.data_capture_percent,
            network_isolation=self.network_isolation,
            in_vpc=in_vpc,
            vpc_id=vpc_id if in_vpc else None,
            subnet_ids=subnet_ids if in_vpc else None,
            security_group_ids=[security_group_id] if in_vpc else [],
            deployment_strategy=self.deployment_strategy,
            traffic_step_percent=self.traffic_step_percent,
            traffic_wait_seconds=self.traffic_wait_seconds,
            termination_wait_seconds=self.termination_wait_seconds,
            autoscaling_target_invocations=self.autoscaling_target_invocations,
            latency_p99_ms=self.latency_p99_ms,
            error_5xx_threshold=self.error_5xx_threshold,
            log_retention_days=self.log_retention_days,
            tags=self.stack.tags,
            protect=self.stack.is_prod,
        )


@dataclass(frozen=True, slots=True)
class DriftSettings(Section):
    """The scheduled drift job of the served model (only with an endpoint)."""

    schedule: str
    drift_psi_threshold: float
    log_retention_days: int
    # The served artifact: the training baseline lies beside it.
    model_key: str

    def args(
        self,
        *,
        image_uri: pulumi.Input[str],
        image_repository_arn: pulumi.Input[str] | None,
        endpoint_name: pulumi.Input[str],
        predictions_bucket_name: pulumi.Input[str],
        predictions_bucket_arn: pulumi.Input[str],
        models_bucket_name: pulumi.Input[str],
        models_bucket_arn: pulumi.Input[str],
        kms_key_arn: pulumi.Input[str],
        topic_arn: pulumi.Input[str],
        vpc_id: pulumi.Input[str],
        subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]],
        security_group_ids: Sequence[pulumi.Input[str]],
    ) -> DriftJobArgs:
        from components.drift_job import DriftJobArgs

        return DriftJobArgs(
            schedule=self.schedule,
            image_uri=image_uri,
            image_repository_arn=image_repository_arn,
            endpoint_name=endpoint_name,
            predictions_bucket_name=predictions_bucket_name,
            predictions_bucket_arn=predictions_bucket_arn,
            models_bucket_name=models_bucket_name,
            models_bucket_arn=models_bucket_arn,
            baseline_key=baseline_key_for(self.model_key),
            kms_key_arn=kms_key_arn,
            topic_arn=topic_arn,
            drift_psi_threshold=self.drift_psi_threshold,
            log_retention_days=self.log_retention_days,
            vpc_id=vpc_id,
            subnet_ids=subnet_ids,
            security_group_ids=security_group_ids,
            tags=self.stack.tags,
        )


@dataclass(frozen=True, slots=True)
class MonitoringSettings(Section):
    """Alarm thresholds and the dashboard, and what they watch of the endpoint."""

    latency_p99_ms: int
    error_5xx_threshold: int
    error_4xx_rate_percent: int
    cpu_threshold_percent: int
    memory_threshold_percent: int
    drift_psi_threshold: float
    freshness_hours: int
    serverless: bool
    endpoint_instance_type: str
    gpu_instance_families: tuple[str, ...]

    @property
    def gpu(self) -> bool:
        """The endpoint runs on GPU instances (GPU utilization is charted)."""
        return self.endpoint_instance_type.split(".")[1] in self.gpu_instance_families

    def args(
        self,
        *,
        topic_arn: pulumi.Input[str],
        endpoint_name: pulumi.Input[str] | None,
        ingest_stream_name: pulumi.Input[str] | None,
        lake_bucket_names: Mapping[str, pulumi.Input[str]],
        drift_state_machine_arn: pulumi.Input[str] | None,
    ) -> MonitoringArgs:
        """`endpoint_name` and `drift_state_machine_arn` are None in a stack without them."""
        from components.monitoring import MonitoringArgs

        return MonitoringArgs(
            topic_arn=topic_arn,
            dashboard_name=f"ml-platform-{self.stack.name}",
            features=FEATURE_NAMES,
            endpoint_name=endpoint_name,
            serverless=self.serverless,
            gpu=self.gpu,
            ingest_stream_name=ingest_stream_name,
            lake_bucket_names=lake_bucket_names,
            drift_state_machine_arn=drift_state_machine_arn,
            latency_p99_ms=self.latency_p99_ms,
            error_5xx_threshold=self.error_5xx_threshold,
            error_4xx_rate_percent=self.error_4xx_rate_percent,
            cpu_threshold_percent=self.cpu_threshold_percent,
            memory_threshold_percent=self.memory_threshold_percent,
            drift_psi_threshold=self.drift_psi_threshold,
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
    registry: RegistrySettings
    pipeline: PipelineSettings
    endpoint: EndpointSettings
    drift: DriftSettings
    monitoring: MonitoringSettings
    audit: AuditSettings
    usage: UsageSettings
    # raw config keys that were secrets (shown, never decrypted)
    secret_keys: tuple[str, ...] = ()

    @property
    def is_prod(self) -> bool:
        return self.environment == "prod"

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


# The sections of `Settings`, by field name: what the parser builds from `SPEC`'s `section.field`s.
SECTIONS: Mapping[str, type] = {
    "lake": LakeSettings,
    "ingestion": IngestionSettings,
    "network": NetworkSettings,
    "training": TrainingSettings,
    "cluster": ClusterSettings,
    "image": ImageSettings,
    "on_call": OnCallSettings,
    "registry": RegistrySettings,
    "pipeline": PipelineSettings,
    "endpoint": EndpointSettings,
    "drift": DriftSettings,
    "monitoring": MonitoringSettings,
    "audit": AuditSettings,
    "usage": UsageSettings,
}
