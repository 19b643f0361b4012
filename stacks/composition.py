"""The composition root: `build(settings)` wires the components into the platform.

It returns the platform outputs (exactly the fields of `ml.outputs.PlatformOutputs`) as Pulumi
inputs; `__main__` exports them. No config is read here: everything arrives through `settings`.
Component logical names ("lake", "ingest", ...) are API: renaming one replaces its resources.
"""

from __future__ import annotations

import re
from typing import Any

import pulumi
import pulumi_aws as aws

from components.audit import AuditTrail, AuditTrailArgs
from components.data_lake import DataLake, DataLakeArgs
from components.drift_job import DriftJob, DriftJobArgs
from components.ingestion import Ingestion, IngestionArgs
from components.model_endpoint import ModelEndpoint, ModelEndpointArgs, default_endpoint_name
from components.model_registry import ModelRegistry, ModelRegistryArgs, default_group_name
from components.monitoring import Monitoring, MonitoringArgs
from components.network import Network, NetworkArgs
from components.on_call import OnCall, OnCallArgs
from components.platform_image import PlatformImage, PlatformImageArgs
from components.training_cluster import (
    TrainingCluster,
    TrainingClusterArgs,
    TrainingJobRole,
    TrainingJobRoleArgs,
)
from ml.contracts import baseline_key_for
from ml.schema import CUSTOMERS_RAW, FEATURE_NAMES
from stacks.settings import Settings

LAKE_ZONES = ("raw", "curated", "features", "models", "predictions")


def database_name(settings: Settings) -> str:
    return re.sub(r"[^a-z0-9_]", "_", f"ml_platform_{settings.stack}".lower())


def build(settings: Settings) -> dict[str, Any]:
    tags = settings.tags
    protect = settings.is_prod
    identity = aws.get_caller_identity_output()

    # --- data lake and collection
    lake = DataLake(
        "lake",
        DataLakeArgs(
            database_name=database_name(settings),
            kms_deletion_window_days=settings.kms_deletion_window_days,
            force_destroy=settings.force_destroy,
            raw_ia_days=settings.raw_ia_days,
            raw_archive_days=settings.raw_archive_days,
            noncurrent_version_days=settings.noncurrent_version_days,
            raw_object_lock=settings.raw_object_lock,
            athena_bytes_scanned_cutoff=settings.athena_bytes_scanned_cutoff,
            tags=tags,
            protect=protect,
        ),
    )
    ingestion = Ingestion(
        "ingest",
        IngestionArgs(
            raw_bucket_arn=lake.bucket_arns["raw"],
            kms_key_arn=lake.key_arn,
            glue_database_name=lake.database_name,
            glue_table_name=lake.table_names[CUSTOMERS_RAW.name],
            dataset=CUSTOMERS_RAW.name,
            buffer_seconds=settings.firehose_buffer_seconds,
            buffer_mb=settings.firehose_buffer_mb,
            log_retention_days=settings.log_retention_days,
            tags=tags,
        ),
    )

    # --- private network and training compute
    network = Network(
        "network",
        NetworkArgs(
            kms_key_arn=lake.key_arn,
            vpc_cidr=settings.vpc_cidr,
            az_count=settings.az_count,
            nat_gateway=settings.nat_gateway,
            log_retention_days=settings.log_retention_days,
            eks_cluster=settings.eks_enabled,
            tags=tags,
            protect=protect,
        ),
    )
    training_role = TrainingJobRole(
        "training",
        TrainingJobRoleArgs(
            lake_kms_key_arn=lake.key_arn,
            features_bucket_arn=lake.bucket_arns["features"],
            models_bucket_arn=lake.bucket_arns["models"],
            tags=tags,
        ),
    )
    cluster: TrainingCluster | None = None
    if settings.eks_enabled:
        cluster = TrainingCluster(
            "gpu",
            TrainingClusterArgs(
                cluster_name=f"ml-platform-{settings.stack}-training",
                vpc_id=network.vpc_id,
                subnet_ids=network.private_subnet_ids,
                node_security_group_id=network.compute_security_group_id,
                lake_kms_key_arn=lake.key_arn,
                features_bucket_arn=lake.bucket_arns["features"],
                models_bucket_arn=lake.bucket_arns["models"],
                gpu_node_groups=settings.gpu_node_groups,
                gpu_instance_families=settings.gpu_instance_families,
                image_cache_prefix=f"mlp-{settings.stack}/k8s",
                eks_version=settings.eks_version,
                public_access_cidrs=settings.eks_public_access_cidrs,
                system_node_instance_type=settings.system_node_instance_type,
                log_retention_days=settings.log_retention_days,
                kms_deletion_window_days=settings.kms_deletion_window_days,
                tags=tags,
                protect=protect,
            ),
        )
    image = PlatformImage(
        "platform-image",
        PlatformImageArgs(
            kms_key_arn=lake.key_arn,
            tag=settings.platform_image_tag,
            force_delete=settings.force_destroy,
            tags=tags,
            protect=protect,
        ),
    )

    # --- on-call, registry and serving
    on_call = OnCall(
        "on-call",
        OnCallArgs(
            subscriptions=settings.alarm_subscriptions,
            kms_deletion_window_days=settings.kms_deletion_window_days,
            tags=tags,
            protect=protect,
        ),
    )
    registry = ModelRegistry(
        "registry",
        ModelRegistryArgs(
            group_name=default_group_name(settings.stack),
            models_bucket_arn=lake.bucket_arns["models"],
            kms_key_arn=lake.key_arn,
            writer_role_names={"training": training_role.role_name},
            tags=tags,
            protect=protect,
        ),
    )
    endpoint: ModelEndpoint | None = None
    if settings.endpoint_enabled:
        in_vpc = settings.endpoint_in_vpc
        endpoint = ModelEndpoint(
            "serving",
            ModelEndpointArgs(
                endpoint_name=default_endpoint_name(settings.stack),
                models_bucket_name=lake.bucket_names["models"],
                models_bucket_arn=lake.bucket_arns["models"],
                predictions_bucket_name=lake.bucket_names["predictions"],
                predictions_bucket_arn=lake.bucket_arns["predictions"],
                kms_key_arn=lake.key_arn,
                model_prefix=registry.artifacts_prefix,
                alarm_topic_arn=on_call.topic_arn,
                model_package_arn=settings.model_package_arn,
                model_key=settings.model_key,
                instance_type=settings.endpoint_instance_type,
                min_instances=settings.endpoint_min_instances,
                max_instances=settings.endpoint_max_instances,
                serverless=settings.endpoint_serverless,
                serverless_memory_mb=settings.serverless_memory_mb,
                serverless_max_concurrency=settings.serverless_max_concurrency,
                data_capture_enabled=settings.data_capture_enabled,
                data_capture_percent=settings.data_capture_percent,
                network_isolation=settings.network_isolation,
                in_vpc=in_vpc,
                vpc_id=network.vpc_id if in_vpc else None,
                subnet_ids=network.private_subnet_ids if in_vpc else None,
                security_group_ids=[network.compute_security_group_id] if in_vpc else [],
                deployment_strategy=settings.deployment_strategy,
                traffic_step_percent=settings.traffic_step_percent,
                traffic_wait_seconds=settings.traffic_wait_seconds,
                termination_wait_seconds=settings.termination_wait_seconds,
                autoscaling_target_invocations=settings.autoscaling_target_invocations,
                latency_p99_ms=settings.latency_p99_ms,
                error_5xx_threshold=settings.error_5xx_threshold,
                log_retention_days=settings.log_retention_days,
                tags=tags,
                protect=protect,
            ),
        )

    # --- monitoring and audit
    drift: DriftJob | None = None
    if endpoint is not None:
        drift = DriftJob(
            "drift",
            DriftJobArgs(
                schedule=settings.drift_schedule,
                image_uri=image.image_uri,
                image_repository_arn=image.repository_arn,
                endpoint_name=endpoint.endpoint_name,
                predictions_bucket_name=lake.bucket_names["predictions"],
                predictions_bucket_arn=lake.bucket_arns["predictions"],
                models_bucket_name=lake.bucket_names["models"],
                models_bucket_arn=lake.bucket_arns["models"],
                baseline_key=baseline_key_for(settings.model_key),
                kms_key_arn=lake.key_arn,
                topic_arn=on_call.topic_arn,
                drift_psi_threshold=settings.drift_psi_threshold,
                log_retention_days=settings.log_retention_days,
                tags=tags,
            ),
        )
    monitoring = Monitoring(
        "monitoring",
        MonitoringArgs(
            topic_arn=on_call.topic_arn,
            dashboard_name=f"ml-platform-{settings.stack}",
            features=FEATURE_NAMES,
            endpoint_name=endpoint.endpoint_name if endpoint else None,
            serverless=settings.endpoint_serverless,
            gpu=settings.endpoint_instance_type.split(".")[1] in settings.gpu_instance_families,
            ingest_stream_name=ingestion.stream_name,
            lake_bucket_names=lake.bucket_names,
            drift_state_machine_arn=drift.state_machine_arn if drift else None,
            latency_p99_ms=settings.latency_p99_ms,
            error_5xx_threshold=settings.error_5xx_threshold,
            error_4xx_rate_percent=settings.error_4xx_rate_percent,
            cpu_threshold_percent=settings.cpu_threshold_percent,
            memory_threshold_percent=settings.memory_threshold_percent,
            drift_psi_threshold=settings.drift_psi_threshold,
            freshness_hours=settings.freshness_hours,
            tags=tags,
        ),
    )
    AuditTrail(
        "audit",
        AuditTrailArgs(
            trail_name=f"ml-platform-{settings.stack}",
            lake_bucket_arns=[lake.bucket_arns[z] for z in LAKE_ZONES],
            data_events=settings.cloudtrail_data_events,
            kms_deletion_window_days=settings.kms_deletion_window_days,
            noncurrent_version_days=settings.noncurrent_version_days,
            force_destroy=settings.force_destroy,
            tags=tags,
            protect=protect,
        ),
    )

    return {
        "stack": settings.stack,
        "environment": settings.environment,
        "region": settings.region,
        "account_id": identity.account_id,
        "tags": tags,
        "lake_kms_key_arn": lake.key_arn,
        "raw_bucket": lake.bucket_names["raw"],
        "curated_bucket": lake.bucket_names["curated"],
        "features_bucket": lake.bucket_names["features"],
        "models_bucket": lake.bucket_names["models"],
        "predictions_bucket": lake.bucket_names["predictions"],
        "glue_database": lake.database_name,
        "athena_workgroup": lake.workgroup_name,
        "ingest_stream_name": ingestion.stream_name,
        "vpc_id": network.vpc_id,
        "training_role_arn": training_role.role_arn,
        "training_subnet_ids": network.private_subnet_ids,
        "training_security_group_ids": [network.compute_security_group_id],
        "training_cluster_name": cluster.cluster_name if cluster else None,
        "training_namespace": cluster.namespace if cluster else None,
        "training_service_account": cluster.service_account if cluster else None,
        "training_submitter_role_arn": cluster.submitter_role_arn if cluster else None,
        "training_jobs_function_name": cluster.jobs_function_name if cluster else None,
        "platform_image_uri": image.image_uri,
        "model_package_group_name": registry.group_name,
        "model_artifacts_prefix": registry.artifacts_prefix,
        "endpoint_name": endpoint.endpoint_name if endpoint else None,
        "endpoint_execution_role_arn": endpoint.execution_role_arn if endpoint else None,
        "alarm_topic_arn": on_call.topic_arn,
        "dashboard_name": monitoring.dashboard_name,
    }


def export(outputs: dict[str, Any]) -> None:
    for key, value in outputs.items():
        pulumi.export(key, value)
