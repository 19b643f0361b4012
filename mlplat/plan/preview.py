"""`mlplat preview`: the offline plan of a stack, and what CI reads from it."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlplat.plan.project_config import load_stack_config
from stacks.settings import Settings, parse_settings

if TYPE_CHECKING:
    from mlplat.plan.engine import Plan


def find_project_dir(start: str | Path | None = None) -> Path:
    """The directory holding `Pulumi.yaml`: the current one or a parent, else the package's own."""
    here = Path(start or os.getcwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "Pulumi.yaml").is_file():
            return candidate
    return Path(__file__).resolve().parents[2]


def load_stack(stack: str, project_dir: str | Path) -> tuple[Settings, dict[str, str]]:
    """The stack's settings and the config the program receives, as under `pulumi preview`.

    First the Pulumi CLI's rules (`mlplat.plan.project_config`): `Pulumi.yaml` is validated,
    `Pulumi.<stack>.yaml` read, the declared defaults applied and the declared keys checked; a
    broken rule raises `PulumiConfigError` with the CLI's message, where the CLI would stop. Then
    `parse_settings` parses the merged config (strings, as the engine hands them to the program)
    and raises `SettingsError` with every problem it finds.
    """
    merged = load_stack_config(project_dir, stack)
    return parse_settings(stack, merged.config, merged.secret_keys), merged.config


def make_plan(stack: str, project_dir: str | Path) -> Plan:
    from mlplat.plan import engine

    settings, config = load_stack(stack, project_dir)
    return engine.run(settings, config)


def component_of(resource_urn: str, by_urn: dict[str, Any]) -> str:
    """The logical name of the top-level component a resource belongs to ('-' for none)."""
    node = by_urn.get(resource_urn)
    top = "-"
    while node is not None and node.parent:
        parent = by_urn.get(node.parent)
        if parent is None:
            break
        top = parent.name
        node = parent
    return top


def counts(plan: Plan) -> Counter[tuple[str, str]]:
    by_urn = plan.by_urn()
    return Counter((component_of(r.urn, by_urn), r.type) for r in plan.resources)


# --- policies and cost over the plan -------------------------------------------------------------

if TYPE_CHECKING:
    from mlplat.plan.cost import CostReport
    from policies.core import PolicyReport


@dataclass(slots=True)
class PreviewResult:
    """A stack's plan with what CI reads from it: policy results and the cost estimate."""

    plan: Plan
    settings: Settings
    policies: PolicyReport
    cost: CostReport

    def to_json(self) -> dict[str, Any]:
        return self.plan.to_json()


def policy_config(settings: Settings) -> dict[str, Any]:
    """The pack configuration a stack implies (what CI passes to `--policy-pack-config`)."""
    return {
        "environment": settings.environment,
        "allowedGpuFamilies": list(settings.cluster.gpu_instance_families),
    }


def analyse(plan: Plan, settings: Settings) -> PreviewResult:
    """Run the policy pack and the cost estimate over a recorded plan (and attach both to it)."""
    from mlplat.plan.cost import Usage, estimate
    from policies.core import evaluate_plan

    resources = [r.to_json() for r in plan.resources]
    report = evaluate_plan(resources, policy_config(settings))
    cost = estimate(resources, settings.region, Usage.from_settings(settings))
    plan.extra = {**plan.extra, "policies": report.to_json(), "cost": cost.to_json()}
    return PreviewResult(plan, settings, report, cost)


def run_preview(stack: str, project_dir: str | Path) -> PreviewResult:
    """`make_plan` plus policies and cost; raises `SettingsError` on bad configuration."""
    from mlplat.plan import engine

    settings, config = load_stack(stack, project_dir)
    return analyse(engine.run(settings, config), settings)
