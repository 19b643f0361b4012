"""The composition root: `build(settings)` wires the components into the platform.

Each component's Args come from its settings section (`settings.<section>.args(...)`), given the
Outputs of the components it depends on: this module wires outputs and copies no setting. It
returns the platform outputs (exactly the fields of `ml.outputs.PlatformOutputs`) as Pulumi
inputs; `__main__` exports them. No config is read here: everything arrives through `settings`.

Shared by every model: the lake (the shared raw and curated tables, and each model's own), the
network, the GPU cluster, the platform image, on-call, monitoring (freshness, the dashboard) and
the audit trail. Each model of `settings.models` gets, under its `ModelGroup`, its own registry
group, training role, pipeline, endpoint, drift job and alarms (`_host`).

Component logical names are API: renaming one replaces its resources. The shared components keep
theirs ("lake", "ingest", ...); a model's follow `stacks.naming`, with aliases that move a
single-model stack's resources in place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from components.audit import AuditTrail
from components.data_lake import DataLake
from components.drift_job import DriftJob
from components.ingestion import Ingestion
from components.model_alarms import ModelAlarms
from components.model_endpoint import ModelEndpoint
from components.model_group import ModelGroup, ModelGroupArgs
from components.model_pipeline import ModelPipeline
from components.model_registry import ModelRegistry
from components.monitoring import ModelPanel, Monitoring
from components.network import Network
from components.on_call import OnCall
from components.platform_image import PlatformImage
from components.training_cluster import TrainingCluster
from components.training_role import TrainingJobRole
from stacks import naming
from stacks.settings import ModelSettings, Settings


@dataclass(slots=True)
class _Shared:
    """What every model's components are wired to."""

    lake: DataLake
    network: Network
    image: PlatformImage
    on_call: OnCall


@dataclass(slots=True)
class _Hosted:
    """One model's components (None: disabled in this stack)."""

    settings: ModelSettings
    registry: ModelRegistry
    training_role: TrainingJobRole
    pipeline: ModelPipeline | None
    endpoint: ModelEndpoint | None
    drift: DriftJob | None
    panel: ModelPanel
    makers: list[Any] = field(default_factory=list)  # what makes roles (audited)

    def outputs(self) -> dict[str, Any]:
        """`ml.outputs.ModelOutputs`."""
        endpoint, drift, pipeline = self.endpoint, self.drift, self.pipeline
        return {
            "model_package_group_name": self.registry.group_name,
            "model_artifacts_prefix": self.registry.artifacts_prefix,
            "training_role_arn": self.training_role.role_arn,
            "pipeline_name": pipeline.pipeline_name if pipeline else None,
            "endpoint_name": endpoint.endpoint_name if endpoint else None,
            "endpoint_execution_role_arn": endpoint.execution_role_arn if endpoint else None,
            "capture_prefix": endpoint.capture_prefix if endpoint else None,
            "drift_state_machine_arn": drift.state_machine_arn if drift else None,
        }


def build(settings: Settings) -> dict[str, Any]:
    models = [m.info for m in settings.models]
    # --- data lake and collection
    lake = DataLake("lake", settings.lake.args(models=models))
    arns, key = lake.bucket_arns, lake.key_arn
    streams = {
        dataset: Ingestion(
            settings.ingestion.component_name(dataset),
            settings.ingestion.args(
                raw_bucket_arn=arns["raw"],
                kms_key_arn=key,
                glue_database_name=lake.database_name,
                glue_table_names=lake.table_names,
                dataset=dataset,
            ),
        )
        for dataset in settings.ingestion.datasets
    }
    ingestion = streams[settings.ingestion.main_dataset]

    # --- private network and training compute
    network = Network("network", settings.network.args(kms_key_arn=key))
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
                models=models,
            ),
        )
    image = PlatformImage("platform-image", settings.image.args(kms_key_arn=key))
    on_call = OnCall("on-call", settings.on_call.args(models=models))

    # --- each model: registry, training, pipeline, serving, drift, alarms
    shared = _Shared(lake, network, image, on_call)
    hosted = [_host(settings, m, shared) for m in settings.models]

    # --- monitoring and audit
    monitoring = Monitoring(
        "monitoring",
        settings.monitoring.args(
            topic_arn=on_call.topic_arn,
            ingest_stream_name=ingestion.stream_name,
            other_stream_names={d: i.stream_name for d, i in streams.items() if i is not ingestion},
            lake_bucket_names=lake.bucket_names,
            panels=[h.panel for h in hosted],
        ),
    )
    makers = [*streams.values(), network, cluster, *(c for h in hosted for c in h.makers)]
    _audit(settings, lake, on_call, makers)

    return _outputs(settings, lake, ingestion, network, cluster, image, on_call, monitoring, hosted)


def _host(settings: Settings, m: ModelSettings, shared: _Shared) -> _Hosted:
    """One model's components, children of its group, named and aliased by `stacks.naming`."""
    info = m.info
    lake, network = shared.lake, shared.network
    buckets, arns, key = lake.bucket_names, lake.bucket_arns, lake.key_arn
    topic = shared.on_call.topic_arn
    group = ModelGroup(info.name, ModelGroupArgs(model=info.name, task=info.spec.task))

    def opts(role: str) -> pulumi.ResourceOptions:
        return naming.component_options(info, role, group)

    def name(role: str) -> str:
        return naming.component_name(info, role)

    training_role = TrainingJobRole(
        name("training"),
        settings.training.args(
            lake_kms_key_arn=key,
            features_bucket_arn=arns["features"],
            models_bucket_arn=arns["models"],
            vpc_id=network.vpc_id,
            security_group_ids=[network.compute_security_group_id],
            model=info,
            image_repository_arn=shared.image.repository_arn,
        ),
        opts=opts("training"),
    )
    registry = ModelRegistry(
        name("registry"),
        m.registry.args(
            models_bucket_arn=arns["models"],
            kms_key_arn=key,
            writer_role_names={"training": training_role.role_name},
        ),
        opts=opts("registry"),
    )
    pipeline: ModelPipeline | None = None
    if m.pipeline.enabled:
        pipeline = ModelPipeline(
            name("pipeline"),
            m.pipeline.args(
                image_uri=shared.image.image_uri,
                image_repository_arn=shared.image.repository_arn,
                lake_bucket_names=buckets,
                lake_bucket_arns=arns,
                kms_key_arn=key,
                vpc_id=network.vpc_id,
                subnet_ids=network.private_subnet_ids,
                security_group_ids=[network.compute_security_group_id],
                group_name=registry.group_name,
                artifacts_prefix=registry.artifacts_prefix,
                topic_arn=topic,
            ),
            opts=opts("pipeline"),
        )
    endpoint: ModelEndpoint | None = None
    drift: DriftJob | None = None
    alarms: ModelAlarms | None = None
    if m.endpoint.enabled:
        endpoint = ModelEndpoint(
            name("serving"),
            m.endpoint.args(
                models_bucket_name=buckets["models"],
                models_bucket_arn=arns["models"],
                predictions_bucket_name=buckets["predictions"],
                predictions_bucket_arn=arns["predictions"],
                kms_key_arn=key,
                model_prefix=registry.artifacts_prefix,
                alarm_topic_arn=topic,
                vpc_id=network.vpc_id,
                subnet_ids=network.private_subnet_ids,
                security_group_id=network.compute_security_group_id,
            ),
            opts=opts("serving"),
        )
        drift = DriftJob(
            name("drift"),
            m.drift.args(
                image_uri=shared.image.image_uri,
                image_repository_arn=shared.image.repository_arn,
                endpoint_name=endpoint.endpoint_name,
                predictions_bucket_name=buckets["predictions"],
                predictions_bucket_arn=arns["predictions"],
                models_bucket_name=buckets["models"],
                models_bucket_arn=arns["models"],
                raw_bucket_name=buckets["raw"],
                raw_bucket_arn=arns["raw"],
                model_package_group_arn=registry.group_arn,
                kms_key_arn=key,
                topic_arn=topic,
                vpc_id=network.vpc_id,
                subnet_ids=network.private_subnet_ids,
                security_group_ids=[network.compute_security_group_id],
            ),
            opts=opts("drift"),
        )
        previous_parent, previous_prefix = naming.previous_alarms(info)
        alarms = ModelAlarms(
            name("alarms"),
            m.alarms.args(
                topic_arn=topic,
                endpoint_name=endpoint.endpoint_name,
                previous_parent=previous_parent,
                previous_prefix=previous_prefix,
            ),
            opts=opts("alarms"),
        )
    panel = m.alarms.panel(
        endpoint_name=endpoint.endpoint_name if endpoint else None,
        drift_state_machine_arn=drift.state_machine_arn if drift else None,
        alarm_arns=alarms.alarm_arns if alarms else {},
    )
    makers = [c for c in (training_role, pipeline, endpoint, drift) if c is not None]
    return _Hosted(m, registry, training_role, pipeline, endpoint, drift, panel, makers)


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
    cluster: TrainingCluster | None,
    image: PlatformImage,
    on_call: OnCall,
    monitoring: Monitoring,
    hosted: list[_Hosted],
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
        "training_subnet_ids": network.private_subnet_ids,
        "training_security_group_ids": [network.compute_security_group_id],
        "training_cluster_name": cluster.cluster_name if cluster else None,
        "training_namespace": cluster.namespace if cluster else None,
        "training_service_account": cluster.service_account if cluster else None,
        "training_submitter_role_arn": cluster.submitter_role_arn if cluster else None,
        "training_jobs_function_name": cluster.jobs_function_name if cluster else None,
        "platform_image_uri": image.image_uri,
        "alarm_topic_arn": on_call.topic_arn,
        "dashboard_name": monitoring.dashboard_name,
        "models": {h.settings.name: h.outputs() for h in hosted},
    }


def export(outputs: dict[str, Any]) -> None:
    for key, value in outputs.items():
        pulumi.export(key, value)
