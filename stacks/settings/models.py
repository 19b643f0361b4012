"""The sections a stack builds once per model of its `models` list.

Each model gets its own registry group, pipeline, endpoint, drift job and alarms. Their sections
start from the stack-wide values of `SPEC` and take the overrides of the model's `models` entry
(`MODEL_OVERRIDES`); `ModelSettings.keys` remembers where each value came from, so a problem
names the key to change (`ml-platform:endpointMinInstances`, or
`ml-platform:models[1].endpointMinInstances`).

Names (`ModelInfo`): the package group and pipeline `ml-platform-<stack>-<model>`, the artifacts
prefix `models/<group>`, the endpoint `ml-platform-<stack>-<model>`; the legacy model (the one a
stack deployed before `models` existed served, `legacyModel`) keeps that stack's endpoint name
`ml-platform-<stack>`. Every resource of a model carries the `model` tag.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from components.names import (
    artifacts_prefix,
    default_endpoint_name,
    default_group_name,
    default_pipeline_name,
)
from ml.contracts import QUALITY_PREFIX, REPORT_PREFIX, baseline_key_for
from ml.models import ModelSpec
from ml.schema import CUSTOMER_OUTCOMES
from stacks.settings.sections import Section, StackInfo
from stacks.settings.spec import (
    KEY_OF_FIELD,
    MODEL_KEY_SPEC,
    MODEL_SECTIONS,
    PACKAGE_ARN_PATTERN,
    SPEC_BY_KEY,
    ModelEntry,
    default_max_model_age_days,
    default_model_key,
    full_key,
    retraining_schedule,
)

if TYPE_CHECKING:  # the component modules load Pulumi: `args()` imports each one when called
    import pulumi

    from components.drift_job import DriftJobArgs
    from components.model_alarms import ModelAlarmsArgs
    from components.model_endpoint import ModelEndpointArgs
    from components.model_pipeline import ModelPipelineArgs
    from components.model_registry import ModelRegistryArgs
    from components.monitoring import ModelPanel

MODEL_TAG = "model"


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """A hosted model: its declaration (pure `ml.models` spec) and the names it gets."""

    stack: StackInfo
    spec: ModelSpec = field(hash=False)  # (a spec holds dicts: equal, not hashed)
    # The model a stack deployed before `models` existed served (`legacyModel`): it keeps that
    # stack's names.
    legacy: bool = False

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def tags(self) -> dict[str, str]:
        """The stack's tags and the model's (cost allocation by model)."""
        return {**self.stack.tags, MODEL_TAG: self.name}

    @property
    def group_name(self) -> str:
        return default_group_name(self.stack.name, self.name)

    @property
    def artifacts_prefix(self) -> str:
        return artifacts_prefix(self.group_name)

    @property
    def pipeline_name(self) -> str:
        return default_pipeline_name(self.stack.name, self.name)

    @property
    def endpoint_name(self) -> str:
        if self.legacy:
            return default_endpoint_name(self.stack.name)
        return default_endpoint_name(self.stack.name, self.name)


@dataclass(frozen=True, slots=True)
class ModelSection(Section):
    """A section of one model's: `model` names and tags what the component creates."""

    model: ModelInfo


@dataclass(frozen=True, slots=True)
class RegistrySettings(ModelSection):
    """The model's package group (no knob of its own: its name follows the stack and model)."""

    def args(
        self,
        *,
        models_bucket_arn: pulumi.Input[str],
        kms_key_arn: pulumi.Input[str],
        writer_role_names: Mapping[str, pulumi.Input[str]],
    ) -> ModelRegistryArgs:
        from components.model_registry import ModelRegistryArgs

        return ModelRegistryArgs(
            group_name=self.model.group_name,
            models_bucket_arn=models_bucket_arn,
            kms_key_arn=kms_key_arn,
            # SageMaker cannot change a group's description: it is fixed by the model's name
            description=f"Model versions of the ml-platform {self.model.name} model",
            writer_role_names=writer_role_names,
            tags=self.model.tags,
            protect=self.stack.is_prod,
        )


@dataclass(frozen=True, slots=True)
class PipelineSettings(ModelSection):
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
        from components.model_pipeline import ModelPipelineArgs

        names, arns = lake_bucket_names, lake_bucket_arns
        spec = self.model.spec
        return ModelPipelineArgs(
            pipeline_name=self.model.pipeline_name,
            stack=self.stack.name,
            region=self.region,
            model=self.model.name,
            raw_dataset=spec.raw.name,
            raw_prefix=spec.raw.prefix,
            curated_prefix=spec.curated.prefix,
            features_prefix=spec.features.prefix,
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
            tags=self.model.tags,
        )


@dataclass(frozen=True, slots=True)
class EndpointSettings(ModelSection):
    """The model endpoint (only when `enabled`)."""

    enabled: bool
    model_package_arn: str | None
    model_key: str  # served while no package is set
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
        from components.model_endpoint import ModelEndpointArgs

        return ModelEndpointArgs(
            endpoint_name=self.model.endpoint_name,
            models_bucket_name=models_bucket_name,
            models_bucket_arn=models_bucket_arn,
            predictions_bucket_name=predictions_bucket_name,
            predictions_bucket_arn=predictions_bucket_arn,
            kms_key_arn=kms_key_arn,
            model_prefix=model_prefix,
            alarm_topic_arn=alarm_topic_arn,
            model_package_arn=self.model_package_arn,
            framework=self.model.spec.framework,
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
            tags=self.model.tags,
            protect=self.stack.is_prod,
        )


@dataclass(frozen=True, slots=True)
class DriftSettings(ModelSection):
    """The scheduled drift job of the model's endpoint (only with an endpoint)."""

    schedule: str
    drift_psi_threshold: float
    log_retention_days: int
    # The served artifact: the training baseline and the lineage (its age) lie beside it.
    model_key: str
    # online quality: how far below the offline figure counts as a shortfall (the job's summary)
    quality_margin: float

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
        raw_bucket_name: pulumi.Input[str],
        raw_bucket_arn: pulumi.Input[str],
        model_package_group_arn: pulumi.Input[str],
        kms_key_arn: pulumi.Input[str],
        topic_arn: pulumi.Input[str],
        vpc_id: pulumi.Input[str],
        subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]],
        security_group_ids: Sequence[pulumi.Input[str]],
    ) -> DriftJobArgs:
        """The raw bucket holds the labels (the outcomes dataset); the package group is the
        model's own (the job writes online figures into its versions' metadata)."""
        from components.drift_job import DriftJobArgs
        from components.model_endpoint import capture_prefix

        model = self.model
        return DriftJobArgs(
            schedule=self.schedule,
            image_uri=image_uri,
            image_repository_arn=image_repository_arn,
            model=model.name,
            endpoint_name=endpoint_name,
            capture_prefix=capture_prefix(model.endpoint_name),
            predictions_prefix=model.spec.predictions.prefix,
            report_prefix=f"{REPORT_PREFIX}/{model.endpoint_name}",
            predictions_bucket_name=predictions_bucket_name,
            predictions_bucket_arn=predictions_bucket_arn,
            models_bucket_name=models_bucket_name,
            models_bucket_arn=models_bucket_arn,
            baseline_key=baseline_key_for(self.model_key),
            kms_key_arn=kms_key_arn,
            topic_arn=topic_arn,
            drift_psi_threshold=self.drift_psi_threshold,
            log_retention_days=self.log_retention_days,
            model_key=self.model_key,
            labels_bucket_name=raw_bucket_name,
            labels_bucket_arn=raw_bucket_arn,
            labels_prefix=CUSTOMER_OUTCOMES.prefix,
            quality_prefix=f"{QUALITY_PREFIX}/{model.endpoint_name}",
            model_package_group_arn=model_package_group_arn,
            quality_margin=self.quality_margin,
            vpc_id=vpc_id,
            subnet_ids=subnet_ids,
            security_group_ids=security_group_ids,
            tags=model.tags,
        )


@dataclass(frozen=True, slots=True)
class AlarmSettings(ModelSection):
    """The model's alarms (its endpoint's health, its drift per feature, its online quality, skew
    and age) and dashboard section."""

    latency_p99_ms: int
    error_5xx_threshold: int
    error_4xx_rate_percent: int
    cpu_threshold_percent: int
    memory_threshold_percent: int
    drift_psi_threshold: float
    drift_schedule: str
    quality_margin: float
    skew_share_threshold: float
    max_model_age_days: int
    serverless: bool
    endpoint_instance_type: str
    gpu_instance_families: tuple[str, ...]

    @property
    def gpu(self) -> bool:
        """The endpoint runs on GPU instances (GPU utilization is watched and charted)."""
        return self.endpoint_instance_type.split(".")[1] in self.gpu_instance_families

    @property
    def drift_period_seconds(self) -> int:
        """How far apart the drift job's datapoints are: one run's window (at most a day)."""
        from components.drift_job import schedule_window_hours

        return min(schedule_window_hours(self.drift_schedule), 24) * 3600

    def args(
        self,
        *,
        topic_arn: pulumi.Input[str],
        endpoint_name: pulumi.Input[str],
        previous_parent: pulumi.Input[str] | None = None,
        previous_prefix: str = "",
    ) -> ModelAlarmsArgs:
        """`previous_*`: where the alarms lived before (`ModelAlarmsArgs`), None if nowhere."""
        from components.model_alarms import ModelAlarmsArgs

        return ModelAlarmsArgs(
            topic_arn=topic_arn,
            endpoint_name=endpoint_name,
            features=self.model.spec.feature_names,
            serverless=self.serverless,
            gpu=self.gpu,
            latency_p99_ms=self.latency_p99_ms,
            error_5xx_threshold=self.error_5xx_threshold,
            error_4xx_rate_percent=self.error_4xx_rate_percent,
            cpu_threshold_percent=self.cpu_threshold_percent,
            memory_threshold_percent=self.memory_threshold_percent,
            drift_psi_threshold=self.drift_psi_threshold,
            drift_period_seconds=self.drift_period_seconds,
            quality_margin=self.quality_margin,
            skew_share_threshold=self.skew_share_threshold,
            max_model_age_days=self.max_model_age_days,
            previous_parent=previous_parent,
            previous_prefix=previous_prefix,
            tags=self.model.tags,
        )

    def panel(
        self,
        *,
        endpoint_name: pulumi.Input[str] | None,
        drift_state_machine_arn: pulumi.Input[str] | None,
        alarm_arns: Mapping[str, pulumi.Input[str]],
    ) -> ModelPanel:
        """The model's section of the stack's dashboard (no endpoint: `endpoint_name` None)."""
        from components.monitoring import ModelPanel

        return ModelPanel(
            model=self.model.name,
            endpoint_name=endpoint_name,
            features=self.model.spec.feature_names,
            serverless=self.serverless,
            gpu=self.gpu,
            latency_p99_ms=self.latency_p99_ms,
            drift_psi_threshold=self.drift_psi_threshold,
            drift_period_seconds=self.drift_period_seconds,
            quality_margin=self.quality_margin,
            skew_share_threshold=self.skew_share_threshold,
            max_model_age_days=self.max_model_age_days,
            drift_state_machine_arn=drift_state_machine_arn,
            alarm_arns=alarm_arns,
        )


@dataclass(frozen=True, slots=True)
class ModelSettings:
    """One model of the stack: its sections, and where each of their values came from."""

    info: ModelInfo
    registry: RegistrySettings
    pipeline: PipelineSettings
    endpoint: EndpointSettings
    drift: DriftSettings
    alarms: AlarmSettings
    # `section.field` -> the config key its value came from (for problems)
    keys: Mapping[str, str] = field(hash=False)

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def spec(self) -> ModelSpec:
        return self.info.spec

    @property
    def legacy(self) -> bool:
        return self.info.legacy

    def keys_of(self, section: str) -> dict[str, str]:
        """A section's fields -> the config keys they came from."""
        prefix = section + "."
        return {p.removeprefix(prefix): k for p, k in self.keys.items() if p.startswith(prefix)}


# The per-model sections, by `ModelSettings` field (the section of SPEC's `section.field`).
SECTION_CLASSES: Mapping[str, type[ModelSection]] = {
    "registry": RegistrySettings,
    "pipeline": PipelineSettings,
    "endpoint": EndpointSettings,
    "drift": DriftSettings,
    "alarms": AlarmSettings,
}
assert tuple(SECTION_CLASSES) == MODEL_SECTIONS


def package_group(arn: str) -> str | None:
    """The package group a model package ARN names (`.../model-package/<group>/<version>`)."""
    match = re.fullmatch(PACKAGE_ARN_PATTERN, arn)
    return match.group(1) if match else None


def build_models(
    stack: StackInfo,
    entries: Sequence[ModelEntry],
    defaults: Mapping[str, Mapping[str, Any]],
    *,
    legacy_model: str,
    model_package_arn: str | None,
) -> tuple[ModelSettings, ...]:
    """Each entry's sections: the stack-wide `defaults` (by section) with its overrides; the
    stack-wide `modelPackageArn` goes to the model whose group it names."""
    from ml.models import spec as model_spec

    built = []
    for entry in entries:
        info = ModelInfo(stack, model_spec(entry.name), legacy=entry.name == legacy_model)
        fields = {section: dict(defaults[section]) for section in MODEL_SECTIONS}
        keys = {
            path: key for path, key in KEY_OF_FIELD.items() if path.split(".")[0] in MODEL_SECTIONS
        }
        where = f"{full_key(SPEC_BY_KEY['models'])}[{entry.index}]"
        model_key = entry.overrides.get(MODEL_KEY_SPEC.key, default_model_key(entry.name))
        package = model_package_arn
        if package is not None and package_group(package) != info.group_name:
            package = None  # another model's
        for path in MODEL_KEY_SPEC.fields:
            section, _, field = path.partition(".")
            fields[section][field] = model_key
            keys[path] = f"{where}.{MODEL_KEY_SPEC.key}"
        fields["endpoint"]["model_package_arn"] = package
        keys["endpoint.model_package_arn"] = full_key(SPEC_BY_KEY["modelPackageArn"])
        for key, value in entry.overrides.items():
            spec = MODEL_KEY_SPEC if key == MODEL_KEY_SPEC.key else SPEC_BY_KEY[key]
            paths = ("endpoint.model_package_arn",) if key == "modelPackageArn" else spec.fields
            for path in paths:
                section, _, field = path.partition(".")
                fields[section][field] = value
                keys[path] = f"{where}.{key}"
        # the model's own defaults: its backtest's age, and a retraining at half that age
        alarms, pipeline = fields["alarms"], fields["pipeline"]
        if alarms["max_model_age_days"] is None:
            alarms["max_model_age_days"] = default_max_model_age_days(entry.name)
        if pipeline["schedule"] is None:
            pipeline["schedule"] = retraining_schedule(alarms["max_model_age_days"])
        built.append(
            ModelSettings(
                info=info,
                registry=RegistrySettings(stack, info, **fields["registry"]),
                pipeline=PipelineSettings(stack, info, **fields["pipeline"]),
                endpoint=EndpointSettings(stack, info, **fields["endpoint"]),
                drift=DriftSettings(stack, info, **fields["drift"]),
                alarms=AlarmSettings(stack, info, **fields["alarms"]),
                keys=keys,
            )
        )
    return tuple(built)
