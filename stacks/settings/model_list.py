"""The `models` list's data: what an entry is, the default list, and what an entry may override.

Per-environment defaults data: a stack that does not list `models` hosts the one model every stack
served before stacks listed them (`DEFAULT_MODELS`), and that model keeps those stacks' names
(`DEFAULT_LEGACY_MODEL`, the `legacyModel` setting). Standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class ModelEntry:
    """One entry of `models`: a model package's name and the settings it overrides (by config
    key, values converted); `index` is its place in the list (problems name `models[<index>]`)."""

    name: str
    overrides: dict[str, Any] = field(default_factory=dict, hash=False)
    index: int = 0


DEFAULT_MODELS: tuple[ModelEntry, ...] = (ModelEntry("churn"),)
DEFAULT_LEGACY_MODEL = "churn"
# The sections a stack builds once per model (`section.field`s of SPEC under them are per model).
MODEL_SECTIONS: tuple[str, ...] = ("registry", "pipeline", "endpoint", "drift", "alarms")
# The settings a `models` entry may override; each defaults to the stack-wide key of that name.
MODEL_OVERRIDES: tuple[str, ...] = (
    "endpointInstanceType",
    "endpointServerless",
    "endpointMinInstances",
    "endpointMaxInstances",
    "dataCapturePercent",
    "latencyP99Ms",
    "error5xxThreshold",
    "error4xxRatePercent",
    "driftPsiThreshold",
    "driftSchedule",
    "pipelineSchedule",
    "pipelineInstanceType",
    "pipelineInstanceCount",
    "pipelineAutoApprove",
    "modelPackageArn",
)


def default_model_key(model: str) -> str:
    """The artifact a model's endpoint serves while no model package is set."""
    return f"{model}/current/model.tar.gz"


# A model package version's ARN; the group it belongs to is the first group.
PACKAGE_ARN_PATTERN = (
    r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:model-package/([A-Za-z0-9-]+)/\d+$"
)
