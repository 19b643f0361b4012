"""The composition root: `build(settings)` wires the components into the platform.

Each component's Args come from its settings section (`settings.<section>.args(...)`), given the
Outputs of the components it depends on: this module wires outputs and copies no setting. It
returns the platform outputs (exactly the fields of `ml.outputs.PlatformOutputs`) as Pulumi
inputs; `__main__` exports them. No config is read here: everything arrives through `settings`.
Component logical names ("lake", "ingest", ...) are API: renaming one replaces its resources.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws

from components.audit import AuditTrail
from components.data_lake import DataLake
from components.drift_job import DriftJob
from components.ingestion import Ingestion
from components.model_endpoint import ModelEndpoint
from components.model_pipeline import ModelPipeline
from components.model_registry import ModelRegistry
from components.monitoring import Monitoring
from components.network import Network
from components.on_call import OnCall
from components.platform_image import PlatformImage
from components.training_cluster import TrainingCluster
from components.training_role import TrainingJobRole
from stacks.settings import Settings


def build(settings: Settings) -> dict[str, Any]:
    # --- data lake and collection
    lake = DataLake("lake", settings.lake.args())
    buckets, arns, key = lake.bucket_names, lake.bucket_arns, lake.key_arn
    ingestion = Ingestion(
        "ingest",
        settings.ingestion.args(
            raw_bucket_arn=arns["raw"],
            kms_key_arn=key,
            glue_database_name=lake.database_name,
            glue_table_names=lake.table_names,
        ),
    )

    # --- private network and training compute
    network = Network("network", settings.network.args(kms_key_arn=key))
    training_role = TrainingJobRole(
        "training",
        settings.training.args(
            lake_kms_key_arn=key,
            features_bucket_arn=arns["features"],
            models_bucket_arn=arns["models"],
            vpc_id=network.vpc_id,
            security_group_ids=[network.compute_security_group_id],
        ),
    )
    cluster: TrainingCluster | None = None
    if settings.cluster.enabled:
        cluster = TrainingCluster(
            "gpu",
            settings.cluster.args(
                vpc_id=network.vpc_id,
                subnet_ids=network.private_subnet_ids,
                node_security_group_id=network.compute_security_group_id,
                lake_kms_key_arn=key,
                features_bucket_arn=arns["features"],
                models_bucket_arn=arns["models"],
            ),
        )
    image = PlatformImage("platform-image", settings.image.args(kms_key_arn=key))

    # --- on-call, registry and serving
    on_call = OnCall("on-call", settings.on_call.args())
    registry = ModelRegistry(
        "registry",
        settings.registry.args(
            models_bucket_arn=arns["models"],
            kms_key_arn=key,
            writer_role_names={"training": training_role.role_name},
        ),
    )
    pipeline = _pipeline(settings, lake, network, image, registry, on_call)
    endpoint: ModelEndpoint | None = None
    if settings.endpoint.enabled:
        endpoint = ModelEndpoint(
            "serving",
            settings.endpoint.args(
                models_bucket_name=buckets["models"],
                models_bucket_arn=arns["models"],
                predictions_bucket_name=buckets["predictions"],
                predictions_bucket_arn=arns["predictions"],
                kms_key_arn=key,
                model_prefix=registry.artifacts_prefix,
                alarm_topic_arn=on_call.topic_arn,
                vpc_id=network.vpc_id,
                subnet_ids=network.private_subnet_ids,
                security_group_id=network.compute_security_group_id,
            ),
        )

    # --- monitoring and audit
    drift: DriftJob | None = None
    if endpoint is not None:
        drift = DriftJob(
            "drift",
            settings.drift.args(
                image_uri=image.image_uri,
                image_repository_arn=image.repository_arn,
                endpoint_name=endpoint.endpoint_name,
                predictions_bucket_name=buckets["predictions"],
                predictions_bucket_arn=arns["predictions"],
                models_bucket_name=buckets["models"],
                models_bucket_arn=arns["models"],
                kms_key_arn=key,
                topic_arn=on_call.topic_arn,
                vpc_id=network.vpc_id,
                subnet_ids=network.private_subnet_ids,
                security_group_ids=[network.compute_security_group_id],
            ),
        )
    monitoring = Monitoring(
        "monitoring",
        settings.monitoring.args(
            topic_arn=on_call.topic_arn,
            endpoint_name=endpoint.endpoint_name if endpoint else None,
            ingest_stream_name=ingestion.stream_name,
            lake_bucket_names=buckets,
            drift_state_machine_arn=drift.state_machine_arn if drift else None,
        ),
    )
    makers = [ingestion, network, training_role, cluster, pipeline, endpoint, drift]
    _audit(settings, lake, on_call, makers)

    return _outputs(
        settings,
        lake,
        ingestion,
        network,
        training_role,
        cluster,
        image,
        registry,
        pipeline,
        endpoint,
        on_call,
        monitoring,
    )


def _pipeline(
    settings: Settings,
    lake: DataLake,
    network: Network,
    image: PlatformImage,
    registry: ModelRegistry,
    on_call: OnCall,
) -> ModelPipeline | None:
    """The model's pipeline (named after its model), in the private network; on-call pages its
    failures (the topic's policy names its failure rule up front)."""
    if not settings.pipeline.enabled:
        return None
    return ModelPipeline(
        "churn",
        settings.pipeline.args(
            image_uri=image.image_uri,
            image_repository_arn=image.repository_arn,
            lake_bucket_names=lake.bucket_names,
            lake_bucket_arns=lake.bucket_arns,
            kms_key_arn=lake.key_arn,
            vpc_id=network.vpc_id,
            subnet_ids=network.private_subnet_ids,
            security_group_ids=[network.compute_security_group_id],
            group_name=registry.group_name,
            artifacts_prefix=registry.artifacts_prefix,
            topic_arn=on_call.topic_arn,
        ),
    )


def _audit(settings: Settings, lake: DataLake, on_call: OnCall, makers: list[Any]) -> None:
    """Last: the trail watches every bucket and role the components before it made."""
    AuditTrail(
        "audit",
        settings.audit.args(
            lake_bucket_arns=lake.bucket_arns,
            alarm_topic_arn=on_call.topic_arn,
            watched_bucket_names=list(lake.bucket_names.values()),
            watched_role_names=[n for c in makers if c is not None for n in c.role_names],
        ),
    )


def _outputs(
    settings: Settings,
    lake: DataLake,
    ingestion: Ingestion,
    network: Network,
    training_role: TrainingJobRole,
    cluster: TrainingCluster | None,
    image: PlatformImage,
    registry: ModelRegistry,
    pipeline: ModelPipeline | None,
    endpoint: ModelEndpoint | None,
    on_call: OnCall,
    monitoring: Monitoring,
) -> dict[str, Any]:
    """The platform outputs: exactly the fields of `ml.outputs.PlatformOutputs`."""
    buckets = lake.bucket_names
    return {
        "stack": settings.stack,
        "environment": settings.environment,
        "region": settings.region,
        "account_id": aws.get_caller_identity_output().account_id,
        "tags": settings.tags,
        "lake_kms_key_arn": lake.key_arn,
        "raw_bucket": buckets["raw"],
        "curated_bucket": buckets["curated"],
        "features_bucket": buckets["features"],
        "models_bucket": buckets["models"],
        "predictions_bucket": buckets["predictions"],
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
        "pipeline_name": pipeline.pipeline_name if pipeline else None,
        "endpoint_name": endpoint.endpoint_name if endpoint else None,
        "endpoint_execution_role_arn": endpoint.execution_role_arn if endpoint else None,
        "alarm_topic_arn": on_call.topic_arn,
        "dashboard_name": monitoring.dashboard_name,
    }


def export(outputs: dict[str, Any]) -> None:
    for key, value in outputs.items():
        pulumi.export(key, value)
