"""Compare two preview JSONs (a baseline, e.g. main's, and the current plan).

Resources are matched by URN: a URN only in the baseline is removed, only in the current plan is
added, in both with different inputs or options is changed (property by property). A removed
*stateful* resource (bucket, key, catalog, cluster, endpoint...) is a loud warning: it is deleted,
or, when an added resource has the same type, *replaced* — its logical name or parent changed, which
Pulumi treats as delete + create unless an alias is given. A changed property that AWS cannot update
in place on a stateful resource (a bucket's name, a key's spec...) is a replacement too.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlplat.aws import REGISTRY

MISSING = "<absent>"


class DiffError(ValueError):
    """The baseline is missing or not a preview JSON."""


@dataclass(frozen=True, slots=True)
class PropertyChange:
    path: str
    old: Any
    new: Any


@dataclass(frozen=True, slots=True)
class Changed:
    urn: str
    type: str
    name: str
    changes: tuple[PropertyChange, ...]


@dataclass(frozen=True, slots=True)
class PlanDiff:
    added: tuple[Mapping[str, Any], ...]
    removed: tuple[Mapping[str, Any], ...]
    changed: tuple[Changed, ...]
    warnings: tuple[str, ...]  # stateful resources replaced or deleted
    cost_before: float | None
    cost_after: float | None
    violations_before: int | None
    violations_after: int | None

    @property
    def cost_delta(self) -> float | None:
        if self.cost_before is None or self.cost_after is None:
            return None
        return round(self.cost_after - self.cost_before, 2)

    def to_json(self) -> dict[str, Any]:
        return {
            "added": [r["urn"] for r in self.added],
            "removed": [r["urn"] for r in self.removed],
            "changed": [
                {
                    "urn": c.urn,
                    "properties": [{"path": p.path, "old": p.old, "new": p.new} for p in c.changes],
                }
                for c in self.changed
            ],
            "warnings": list(self.warnings),
            "costDeltaUsd": self.cost_delta,
        }


def load_plan_json(path: str | Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DiffError(f"baseline {path}: no such file") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise DiffError(f"baseline {path}: not readable JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("resources"), list):
        raise DiffError(
            f"baseline {path}: not a preview JSON (expected an object with "
            "`resources`; write one with `mlplat preview --json`)"
        )
    for i, resource in enumerate(data["resources"]):
        if not isinstance(resource, dict) or not {"urn", "type", "name"} <= set(resource):
            raise DiffError(f"baseline {path}: resources[{i}] lacks urn, type or name")
    return data


def flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted path, leaf) pairs; lists by index (`rules[0].status`)."""
    if isinstance(value, dict) and value and not (set(value) <= {"unknown", "secret", "value"}):
        for key in sorted(value):
            yield from flatten(value[key], f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list) and value:
        for i, item in enumerate(value):
            yield from flatten(item, f"{prefix}[{i}]")
    else:
        yield prefix, value


def property_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[PropertyChange]:
    changes: list[PropertyChange] = []
    for section in ("inputs", "options"):
        before = dict(flatten(old.get(section) or {}))
        after = dict(flatten(new.get(section) or {}))
        for path in sorted(set(before) | set(after)):
            a, b = before.get(path, MISSING), after.get(path, MISSING)
            if a != b:
                shown = path if section == "inputs" else f"options.{path}"
                changes.append(PropertyChange(shown, a, b))
    return changes


def _top_key(path: str) -> str:
    return path.split(".", 1)[0].split("[", 1)[0]


def _cost(plan: Mapping[str, Any]) -> float | None:
    cost = plan.get("cost")
    value = cost.get("monthlyUsd") if isinstance(cost, dict) else None
    return float(value) if isinstance(value, int | float) else None


def _violations(plan: Mapping[str, Any]) -> int | None:
    policies = plan.get("policies")
    found = policies.get("violations") if isinstance(policies, dict) else None
    return len(found) if isinstance(found, list) else None


def diff_plans(baseline: Mapping[str, Any], current: Mapping[str, Any]) -> PlanDiff:
    old = {str(r["urn"]): r for r in baseline["resources"]}
    new = {str(r["urn"]): r for r in current["resources"]}
    added = [new[u] for u in sorted(set(new) - set(old))]
    removed = [old[u] for u in sorted(set(old) - set(new))]
    changed: list[Changed] = []
    warnings: list[str] = []
    for urn in sorted(set(old) & set(new)):
        changes = property_changes(old[urn], new[urn])
        if not changes:
            continue
        resource = new[urn]
        changed.append(Changed(urn, str(resource["type"]), str(resource["name"]), tuple(changes)))
        # inputs that force a replacement (create-only in the AWS provider): see `mlplat.aws`
        forcing = sorted({_top_key(c.path) for c in changes} & REGISTRY.force_new(resource["type"]))
        if REGISTRY.stateful(resource["type"]) and forcing:
            warnings.append(
                f"REPLACE {resource['type']} {resource['name']!r}: "
                f"{', '.join(forcing)} changed and cannot be updated in place; the "
                "resource and its data would be deleted and recreated"
            )
    unclaimed = [r for r in added if REGISTRY.stateful(r["type"])]
    for gone in removed:
        if not REGISTRY.stateful(gone["type"]):
            continue
        candidates = [r for r in unclaimed if r["type"] == gone["type"]]
        if candidates:
            twin = max(
                candidates,
                key=lambda r: difflib.SequenceMatcher(
                    None, str(r["urn"]), str(gone["urn"])
                ).ratio(),
            )
            unclaimed.remove(twin)
            how = (
                "its parent changed"
                if twin["name"] == gone["name"]
                else f"its logical name changed to {twin['name']!r}"
            )
            warnings.append(
                f"REPLACE {gone['type']} {gone['name']!r}: {how}; Pulumi would delete it and "
                f"create {twin['urn']} (data loss). Keep the name/parent or add "
                f"ResourceOptions(aliases=[...]) pointing at {gone['urn']}"
            )
        else:
            warnings.append(
                f"DELETE {gone['type']} {gone['name']!r} ({gone['urn']}): a stateful "
                "resource would be deleted with its data"
            )
    return PlanDiff(
        tuple(added),
        tuple(removed),
        tuple(changed),
        tuple(warnings),
        _cost(baseline),
        _cost(current),
        _violations(baseline),
        _violations(current),
    )


def _short(value: Any, limit: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render_text(diff: PlanDiff, limit: int = 20) -> list[str]:
    """Plain lines for the console."""
    lines = [
        f"diff: {len(diff.added)} added, {len(diff.removed)} removed, {len(diff.changed)} changed"
    ]
    lines += [f"  + {r['type']} {r['name']}" for r in diff.added[:limit]]
    lines += [f"  - {r['type']} {r['name']}" for r in diff.removed[:limit]]
    for c in diff.changed[:limit]:
        lines.append(f"  ~ {c.type} {c.name}")
        lines += [f"      {p.path}: {_short(p.old)} -> {_short(p.new)}" for p in c.changes[:limit]]
    if diff.cost_delta is not None:
        lines.append(
            f"cost: {diff.cost_before:.2f} -> {diff.cost_after:.2f} USD/month "
            f"({diff.cost_delta:+.2f})"
        )
    return lines


def render_markdown(
    stack: str, current: Mapping[str, Any], diff: PlanDiff | None, limit: int = 30
) -> str:
    """A PR-comment section: policy results, cost (and its delta), replaced resources."""
    violations = (current.get("policies") or {}).get("violations") or []
    mandatory = [v for v in violations if v.get("enforcement") == "mandatory"]
    cost = (current.get("cost") or {}).get("monthlyUsd")
    status = "❌" if mandatory else "✅"
    out = [
        f"### {status} `{stack}`: {len(current.get('resources', []))} resources, "
        f"{len(mandatory)} mandatory / {len(violations) - len(mandatory)} advisory violations"
    ]
    if isinstance(cost, int | float):
        delta = diff.cost_delta if diff is not None else None
        out.append(
            f"**Estimated cost:** ${cost:,.2f}/month"
            + (f" ({delta:+,.2f} vs base)" if delta is not None else "")
        )
    if diff is not None and diff.warnings:
        out.append("")
        out.append("> [!WARNING]")
        out += [f"> {w}" for w in diff.warnings]
    if violations:
        out += [
            "",
            "| severity | enforcement | policy | resource | message |",
            "| --- | --- | --- | --- | --- |",
        ]
        for v in violations[:limit]:
            message = str(v.get("message", "")).replace("|", "\\|")
            out.append(
                f"| {v.get('severity')} | {v.get('enforcement')} | `{v.get('policy')}` | "
                f"`{v.get('name')}` | {message} |"
            )
        if len(violations) > limit:
            out.append(f"\n…and {len(violations) - limit} more (see the preview artifact)")
    if diff is not None:
        out += [
            "",
            f"<details><summary>diff vs base: {len(diff.added)} added, "
            f"{len(diff.removed)} removed, {len(diff.changed)} changed</summary>",
            "",
            "```diff",
        ]
        out += [
            line[2:] if line.startswith("  ") else line for line in render_text(diff, limit)[1:]
        ]
        out += ["```", "</details>"]
    return "\n".join(out) + "\n"
