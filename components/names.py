"""Physical names a model's resources get, written once: the stack's settings and the components
both use them (standard library only: the settings parser imports this module without Pulumi).

* a model's package group and its pipeline: `ml-platform-<stack>-<model>` (lower case: SageMaker
  lower-cases names in the ARNs that IAM and EventBridge match);
* its artifacts: `models/<group>` in the models bucket;
* its endpoint: `ml-platform-<stack>-<model>`; the one model a stack served before it listed
  `models` keeps that stack's `ml-platform-<stack>` (an endpoint's name cannot change in place);
* its pipeline's failure rule: `<pipeline>-failed`, fixed so that the on-call topic's policy names
  it before the rule exists.
"""

from __future__ import annotations

import re

ARTIFACTS_ROOT = "models"
RULE_NAME_MAX = 64  # EventBridge rule names
FAILED_SUFFIX = "-failed"
_MAX = 63  # SageMaker package group and endpoint names


def _fold(raw: str, allowed: str) -> str:
    """`raw` with every run of characters outside `allowed` (a regex class body) made one '-',
    trimmed to SageMaker's 63 characters."""
    name = re.sub(r"-+", "-", re.sub(f"[^{allowed}-]", "-", raw)).strip("-")
    return name[:_MAX].rstrip("-")


def default_group_name(stack: str, model: str) -> str:
    """`ml-platform-<stack>-<model>`, folded into what SageMaker accepts (a stack name may hold
    upper case, `_` or `.`)."""
    return _fold(f"ml-platform-{stack}-{model}".lower(), "a-z0-9")


def artifacts_prefix(group_name: str) -> str:
    """The key prefix (no slashes at the ends) that holds a group's artifacts."""
    return f"{ARTIFACTS_ROOT}/{group_name}"


def default_pipeline_name(stack: str, model: str) -> str:
    """A model's pipeline is named as its package group is."""
    return default_group_name(stack, model)


def failure_rule_name(pipeline_name: str) -> str:
    """The failure rule's name, fixed so that the on-call topic's policy names it up front."""
    stem = pipeline_name[: RULE_NAME_MAX - len(FAILED_SUFFIX)].rstrip("-")
    return f"{stem}{FAILED_SUFFIX}"


def default_endpoint_name(stack: str, model: str | None = None) -> str:
    """`ml-platform-<stack>-<model>` (`ml-platform-<stack>` without a model: the name a stack's
    one endpoint had before stacks listed `models`), folded into what SageMaker accepts."""
    suffix = f"-{model}" if model else ""
    return _fold(f"ml-platform-{stack}{suffix}", "A-Za-z0-9")
