"""Upgrading a stack deployed before stacks listed `models`: nothing stateful replaced or deleted.

`baselines/plan-<stack>.json.gz` are the plans of the shipped stacks as the single-model platform
recorded them (see `baselines/README.md`), compacted by `compact`: every resource's URN, type, name,
parent and options, and the inputs of the stateful ones (what decides a replacement). Each shipped
stack's current plan, compacted the same way, is diffed against its baseline with the aliases the
plan records: churn's resources move under their model's group (aliases), nothing stateful is
deleted or replaced.

Remake the baselines (only when the single-model platform's plans themselves change, which they
no longer do) with `uv run python -m tests.infra.test_upgrade DIR`, DIR holding the
`plan-<stack>.json` that `mlplat preview --stack <stack> --json` wrote at that commit.
"""

from __future__ import annotations

import gzip
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from mlplat.aws import REGISTRY
from mlplat.plan.diff import diff_plans

BASELINES = Path(__file__).resolve().parent / "baselines"
STACKS = ("dev", "staging", "prod", "local")
# The single-model platform's stateful resources of churn, by logical name: where each is now.
CHURN_MOVES = {
    "serving-endpoint": "churn-serving-endpoint",
    "registry-group": "churn-registry-group",
}
# What churn gains on the upgrade: alarms the single-model platform never had (no alias).
CHURN_NEW_ALARMS = (
    "churn-alarms-quality-shortfall",
    "churn-alarms-skew",
    "churn-alarms-model-age",
)


def compact(plan: Mapping[str, Any]) -> dict[str, Any]:
    """What the upgrade check reads of a plan: every resource's identity and options, and the
    inputs of the stateful ones."""
    resources = []
    for r in sorted(plan["resources"], key=lambda r: str(r["urn"])):
        kept = {k: r[k] for k in ("urn", "type", "name", "parent", "custom", "options") if k in r}
        if REGISTRY.stateful(str(r["type"])):
            kept["inputs"] = r.get("inputs", {})
        resources.append(kept)
    return {"project": plan["project"], "stack": plan["stack"], "resources": resources}


def baseline(stack: str) -> dict[str, Any]:
    with gzip.open(BASELINES / f"plan-{stack}.json.gz", "rt", encoding="utf-8") as f:
        loaded: dict[str, Any] = json.load(f)
    return loaded


@pytest.mark.parametrize("stack", STACKS)
def test_no_stateful_resource_is_replaced_or_deleted(shipped_plans, stack: str) -> None:
    before = baseline(stack)
    after = compact(shipped_plans[stack].to_json())
    diff = diff_plans(before, after)
    assert diff.warnings == ()
    assert diff.removed == ()  # every resource of the single-model stack is kept
    moved = {m.old_name: m.name for m in diff.moved}
    for old, new in CHURN_MOVES.items():
        assert moved[old] == new, old
    # the stateful resources that kept their URN (lake, keys, cluster, tables...) still are
    stateful = {r["urn"] for r in before["resources"] if REGISTRY.stateful(r["type"])}
    now = {r["urn"] for r in after["resources"]}
    kept = stateful & now
    assert stateful - kept == {m.old_urn for m in diff.moved if REGISTRY.stateful(m.type)}
    # what the upgrade adds: the second model (and each model's group and alarms component),
    # and churn's online quality, skew and age alarms (new alarms, nothing stateful)
    added = {r["name"] for r in diff.added}
    assert {"spend", "spend-serving-endpoint", "spend-registry-group", "churn-alarms"} <= added
    assert {n for n in added if n.startswith("churn-")} == {"churn-alarms", *CHURN_NEW_ALARMS}


@pytest.mark.parametrize("stack", STACKS)
def test_churn_keeps_its_physical_names(shipped_plans, stack: str) -> None:
    """Names that cannot change in place: the endpoint's and the package group's."""
    before = {r["name"]: r for r in baseline(stack)["resources"]}
    plan = shipped_plans[stack]
    endpoint = plan.named("churn-serving-endpoint")
    group = plan.named("churn-registry-group")
    assert endpoint.inputs["name"] == before["serving-endpoint"]["inputs"]["name"]
    assert endpoint.inputs["name"] == f"ml-platform-{stack}"
    assert (
        group.inputs["modelPackageGroupName"]
        == before["registry-group"]["inputs"]["modelPackageGroupName"]
    )
    assert (
        group.inputs["modelPackageGroupDescription"]
        == before["registry-group"]["inputs"]["modelPackageGroupDescription"]
    )


def test_without_the_legacy_model_churn_would_be_replaced(record, settings_for) -> None:
    """The aliases are what keeps churn's resources: a stack that says no model is legacy gets
    none, and the diff says so loudly (the endpoint's name changes too)."""
    from stacks import composition

    settings = settings_for("dev", legacyModel="")
    plan = record(lambda: composition.export(composition.build(settings)), settings=settings)
    diff = diff_plans(baseline("dev"), compact(plan.to_json()))
    assert diff.moved == ()
    text = "\n".join(diff.warnings)
    assert "REPLACE aws:sagemaker/endpoint:Endpoint 'serving-endpoint'" in text
    assert "REPLACE aws:sagemaker/modelPackageGroup:ModelPackageGroup 'registry-group'" in text


def test_baselines_are_compact_and_from_the_single_model_platform() -> None:
    for stack in STACKS:
        plan = baseline(stack)
        assert plan["stack"] == stack
        names = {r["name"] for r in plan["resources"]}
        assert {"serving", "registry", "training", "drift", "churn", "monitoring"} <= names
        assert not any(n.startswith("spend") for n in names)
        for r in plan["resources"]:
            assert ("inputs" in r) == REGISTRY.stateful(r["type"]), r["name"]


def main(source: str) -> None:
    """Write `baselines/plan-<stack>.json.gz` from `source/plan-<stack>.json`."""
    BASELINES.mkdir(exist_ok=True)
    for stack in STACKS:
        plan = json.loads((Path(source) / f"plan-{stack}.json").read_text(encoding="utf-8"))
        text = json.dumps(compact(plan), sort_keys=True, separators=(",", ":"))
        with gzip.GzipFile(BASELINES / f"plan-{stack}.json.gz", "wb", mtime=0) as f:
            f.write(text.encode())


if __name__ == "__main__":
    main(sys.argv[1])
