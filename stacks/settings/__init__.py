"""Typed, validated stack settings: one frozen `Settings` per stack, in sections.

Where to look:

- `spec`: the table of every config key (`SPEC`): type, bounds, default, description, and the
  `Settings` field(s) it fills. The README table and the `Pulumi.yaml` config schema are
  generated from it (`mlplat.plan.project_schema`).
- `sections`: `Settings`, the stack-wide fields and one section per shared component; each
  section's `args(...)` returns its component's Args, given the Outputs of other components.
- `models`: the sections each model of `models` gets (registry, pipeline, endpoint, drift job,
  alarms), the overrides of its entry applied, and the names it gets (`ModelInfo`).
- `parsing`: `parse_settings` (pure: a mapping of full config keys in, `Settings` or a
  `SettingsError` listing every problem out).
- `rules`: the rules between settings; the ones a component also enforces are that component's
  own check functions.
- `loading`: the stack file readers and `load()`, the only reader of the engine's config.
"""

from stacks.settings.loading import (
    load,
    not_valid_yaml,
    read_stack_document,
    read_stack_file,
    stack_file,
)
from stacks.settings.models import (
    MODEL_TAG,
    AlarmSettings,
    DriftSettings,
    EndpointSettings,
    ModelInfo,
    ModelSettings,
    PipelineSettings,
    RegistrySettings,
)
from stacks.settings.parsing import SettingsError, parse_settings
from stacks.settings.sections import (
    AuditSettings,
    ClusterSettings,
    ImageSettings,
    IngestionSettings,
    LakeSettings,
    MonitoringSettings,
    NetworkSettings,
    OnCallSettings,
    Settings,
    StackInfo,
    TrainingSettings,
    UsageSettings,
)
from stacks.settings.spec import (
    DEFAULT_GPU_FAMILIES,
    DEFAULT_MODELS,
    DEPLOYMENT_STRATEGIES,
    ENVIRONMENTS,
    MODEL_OVERRIDES,
    PROJECT,
    SECRET_PLACEHOLDER,
    SPEC,
    SPEC_BY_KEY,
    SUBSCRIPTION_PROTOCOLS,
    Environment,
    GpuNodeGroup,
    ModelEntry,
    Spec,
    Subscription,
    full_key,
)

__all__ = [
    "DEFAULT_GPU_FAMILIES",
    "DEFAULT_MODELS",
    "DEPLOYMENT_STRATEGIES",
    "ENVIRONMENTS",
    "MODEL_OVERRIDES",
    "MODEL_TAG",
    "PROJECT",
    "SECRET_PLACEHOLDER",
    "SPEC",
    "SPEC_BY_KEY",
    "SUBSCRIPTION_PROTOCOLS",
    "AlarmSettings",
    "AuditSettings",
    "ClusterSettings",
    "DriftSettings",
    "EndpointSettings",
    "Environment",
    "GpuNodeGroup",
    "ImageSettings",
    "IngestionSettings",
    "LakeSettings",
    "ModelEntry",
    "ModelInfo",
    "ModelSettings",
    "MonitoringSettings",
    "NetworkSettings",
    "OnCallSettings",
    "PipelineSettings",
    "RegistrySettings",
    "Settings",
    "SettingsError",
    "Spec",
    "StackInfo",
    "Subscription",
    "TrainingSettings",
    "UsageSettings",
    "full_key",
    "load",
    "not_valid_yaml",
    "parse_settings",
    "read_stack_document",
    "read_stack_file",
    "stack_file",
]
