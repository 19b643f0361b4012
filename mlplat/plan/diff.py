"""Compare two preview JSONs (a baseline, e.g. main's, and the current plan).

Resources are matched by URN, then by alias: a current resource whose `options.aliases` (as the
plan engine records them: its own and those inherited from an aliased parent) name a baseline URN
that is gone is that resource *moved* (Pulumi updates it in place under its new URN). A URN only
in the baseline is removed, only in the current plan is added, in both (or moved) with different
inputs or options is changed (property by property). A removed *stateful* resource (bucket, key,
catalog, cluster, endpoint...) is a loud warning: it is deleted, or, when an added resource has the
same type, *replaced* — its logical name or parent changed, which Pulumi treats as delete + create
unless an alias is given. A changed property that AWS cannot update in place on a stateful resource
(a bucket's name, a key's spec...) is a replacement too, moved or not.
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
class Moved:
    """A baseline resource the current plan keeps under a new URN (through an alias)."""

    old_urn: str
    urn: str
    type: str
    old_name: str
    name: str


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
    moved: tuple[Moved, ...] = ()

    @property
    def cost_delta(self) -> float | None:
        if self.cost_before is None or self.cost_after is None:
            return None
        return round(self.cost_after - self.cost_before, 2)

    def to_json(self) -> dict[str, Any]:
        return {
            "added": [r["urn"] for r in self.added],
            "removed": [r["urn"] for r in self.removed],
            "moved": [{"from": m.old_urn, "to": m.urn} for m in self.moved],
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
        before = dict(flatten(_without_aliases(section, old.get(section) or {})))
        after = dict(flatten(_without_aliases(section, new.get(section) or {})))
        for path in sorted(set(before) | set(after)):
            a, b = before.get(path, MISSING), after.get(path, MISSING)
            if a != b:
                shown = path if section == "inputs" else f"options.{path}"
                changes.append(PropertyChange(shown, a, b))
    return changes


def _without_aliases(section: str, values: Mapping[str, Any]) -> Mapping[str, Any]:
    """Aliases say where a resource was, not what it is: they are not a property."""
    if section != "options":
        return values
    return {k: v for k, v in values.items() if k != "aliases"}


def _aliases(resource: Mapping[str, Any]) -> list[str]:
    options = resource.get("options")
    found = options.get("aliases") if isinstance(options, dict) else None
    return [str(a) for a in found] if isinstance(found, list) else []


def _moves(
    old: Mapping[str, Mapping[str, Any]], new: Mapping[str, Mapping[str, Any]], warnings: list[str]
) -> dict[str, str]:
    """Baseline URN -> the current URN that claims it through an alias (gone URNs only)."""
    moves: dict[str, str] = {}
    for urn in sorted(set(new) - set(old)):
        for alias in _aliases(new[urn]):
            if alias not in old:
                continue  # an alias to a URN the baseline never had: nothing to move
            if alias in new:
                warnings.append(
                    f"ALIAS {urn} names {alias}, which the plan still has: Pulumi refuses an "
                    "alias to a live resource"
                )
            elif alias in moves:
                warnings.append(
                    f"ALIAS {urn} and {moves[alias]} both name {alias}: Pulumi refuses two "
                    "resources aliased to one"
                )
            else:
                moves[alias] = urn
    return moves


def _changed(
    old: Mapping[str, Any], new: Mapping[str, Any], changed: list[Changed], warnings: list[str]
) -> None:
    """`new` against `old` (the same resource): its changes, and a replacement warning when a
    stateful resource's change cannot be made in place."""
    changes = property_changes(old, new)
    if not changes:
        return
    changed.append(Changed(str(new["urn"]), str(new["type"]), str(new["name"]), tuple(changes)))
    # inputs that force a replacement (create-only in the AWS provider): see `mlplat.aws`
    forcing = sorted({_top_key(c.path) for c in changes} & REGISTRY.force_new(new["type"]))
    if REGISTRY.stateful(new["type"]) and forcing:
        warnings.append(
            f"REPLACE {new['type']} {new['name']!r}: "
            f"{', '.join(forcing)} changed and cannot be updated in place; the "
            "resource and its data would be deleted and recreated"
        )


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
    changed: list[Changed] = []
    warnings: list[str] = []
    moves = _moves(old, new, warnings)
    moved = [
        Moved(a, u, str(new[u]["type"]), str(old[a]["name"]), str(new[u]["name"]))
        for a, u in sorted(moves.items())
    ]
    added = [new[u] for u in sorted(set(new) - set(old) - set(moves.values()))]
    removed = [old[u] for u in sorted(set(old) - set(new) - set(moves))]
    pairs = [(u, u) for u in sorted(set(old) & set(new))] + sorted(moves.items())
    for before, after in pairs:
        _changed(old[before], new[after], changed, warnings)
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
        tuple(moved),
    )


def _short(value: Any, limit: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render_text(diff: PlanDiff, limit: int = 20) -> list[str]:
    """Plain lines for the console."""
    lines = [
        f"diff: {len(diff.added)} added, {len(diff.removed)} removed, {len(diff.moved)} moved, "
        f"{len(diff.changed)} changed"
    ]
    lines += [f"  + {r['type']} {r['name']}" for r in diff.added[:limit]]
    lines += [f"  - {r['type']} {r['name']}" for r in diff.removed[:limit]]
    lines += [f"  > {m.type} {m.old_name} -> {m.name}" for m in diff.moved[:limit]]
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
            f"{len(diff.removed)} removed, {len(diff.moved)} moved, "
            f"{len(diff.changed)} changed</summary>",
            "",
            "```diff",
        ]
        out += [
            line[2:] if line.startswith("  ") else line for line in render_text(diff, limit)[1:]
        ]
        out += ["```", "</details>"]
    return "\n".join(out) + "\n"
