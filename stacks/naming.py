"""The logical names of a model's components, and the aliases that upgrade a single-model stack.

The rule, for every model of `models`: its `ModelGroup` is named after the model (`<model>`) and
its components, children of the group, `<model>-<role>` (`ROLES`), except its pipeline, named
after the model as the pipeline's own name says (`<model>`, so its children are
`<model>-train-role`, not `<model>-pipeline-train-role`); each component names its children
`<its name>-<suffix>`.

A stack deployed before stacks listed `models` served one model (`legacyModel`) with components at
the stack's root under other logical names: `registry`, `training`, the pipeline named after the
model, `serving`, `drift`, and the alarms as children of `monitoring` (`monitoring-<alarm>`). The
legacy model's components carry an alias to each former URN; Pulumi gives their children the
matching aliases itself (a child named `<parent>-<suffix>` of an aliased parent is aliased to
`<former parent name>-<suffix>` under the former parent), so `pulumi up` moves every resource in
place instead of replacing it. The alarms change parent one by one (`ModelAlarmsArgs.previous_*`).
Aliases to URNs a stack never had are ignored, so a new stack gets no special treatment.
"""

from __future__ import annotations

import pulumi

from stacks.settings import ModelInfo

ROLES = ("registry", "training", "pipeline", "serving", "drift", "alarms")
# The single-model platform's root components, by role (`None`: named after the model).
LEGACY_NAMES: dict[str, str | None] = {
    "registry": "registry",
    "training": "training",
    "pipeline": None,
    "serving": "serving",
    "drift": "drift",
}
# The component the single-model platform's endpoint and drift alarms were children of (the
# stack's `Monitoring`, which keeps this name and type): `<name>-<alarm>`.
LEGACY_ALARMS_PARENT = ("monitoring", "mlplatform:monitoring:Monitoring")


def component_name(model: ModelInfo, role: str) -> str:
    if role not in ROLES:
        raise ValueError(f"no component role {role!r}; roles: {', '.join(ROLES)}")
    return model.name if role == "pipeline" else f"{model.name}-{role}"


def aliases(model: ModelInfo, role: str) -> list[pulumi.Input[str | pulumi.Alias]]:
    """The former URN of the legacy model's `role` component: its name at the stack's root."""
    if not model.legacy or role not in LEGACY_NAMES:
        return []
    name = LEGACY_NAMES[role] or component_name(model, role)
    return [pulumi.Alias(name=name, parent=pulumi.ROOT_STACK_RESOURCE)]


def component_options(
    model: ModelInfo, role: str, group: pulumi.Resource
) -> pulumi.ResourceOptions:
    """A model component's options: a child of its model's group, with its aliases."""
    return pulumi.ResourceOptions(parent=group, aliases=aliases(model, role))


def previous_alarms(model: ModelInfo) -> tuple[pulumi.Output[str] | None, str]:
    """(former parent URN, former name prefix) of the legacy model's alarms; (None, "") else."""
    if not model.legacy:
        return None, ""
    name, type_ = LEGACY_ALARMS_PARENT
    return pulumi.create_urn(name, type_), name
