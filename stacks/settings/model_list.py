"""The `models` list's data: what an entry is, the default list, and what an entry may override.

Per-environment defaults data: a stack that does not list `models` hosts the one model every stack
served before stacks listed them (`DEFAULT_MODELS`), and that model keeps those stacks' names
(`DEFAULT_LEGACY_MODEL`, the `legacyModel` setting). Standard library only (the backtest reader,
`ml.backtest`, reads its JSON with the standard library).
"""

from __future__ import annotations

import re
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
    "qualityMargin",
    "skewShareThreshold",
    "maxModelAgeDays",
    "modelPackageArn",
)


# The model-age alarm's threshold of a model whose `maxModelAgeDays` is not set and that has no
# committed backtest (a model just scaffolded): two weeks, so that its default retraining stays
# the weekly one every model had before backtests set it.
DEFAULT_MAX_MODEL_AGE_DAYS = 14


def default_max_model_age_days(model: str) -> int:
    """Days a version of `model` may serve before the model-age alarm pages, when the stack does
    not say: the recommendation of the model's committed backtest
    (`ml.backtest.recommended_max_age_days`: where its quality decay reaches the tolerance),
    at least a day; `DEFAULT_MAX_MODEL_AGE_DAYS` for a model without one."""
    from ml.backtest import recommended_max_age_days

    try:
        return max(1, recommended_max_age_days(model))
    except FileNotFoundError:
        return DEFAULT_MAX_MODEL_AGE_DAYS


def retraining_schedule(max_model_age_days: int) -> str:
    """The default retraining schedule of a model that may be `max_model_age_days` old: every half
    of that, so a version is replaced at half the age that pages, and one failed or refused
    retraining still leaves time for the next before the alarm."""
    days = max(1, max_model_age_days // 2)
    return f"rate({days} day{'s' if days > 1 else ''})"


def schedule_days(schedule: str) -> float | None:
    """Days between two runs of a `rate(...)` schedule; None for a cron expression (its period is
    not one number)."""
    match = re.fullmatch(r"rate\((\d+) (minute|hour|day)s?\)", schedule)
    if match is None:
        return None
    minutes = int(match.group(1)) * {"minute": 1, "hour": 60, "day": 1440}[match.group(2)]
    return minutes / 1440


def default_model_key(model: str) -> str:
    """The artifact a model's endpoint serves while no model package is set."""
    return f"{model}/current/model.tar.gz"


# A model package version's ARN; the group it belongs to is the first group.
PACKAGE_ARN_PATTERN = (
    r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:model-package/([A-Za-z0-9-]+)/\d+$"
)
