"""The component/resource graph of a plan, as Mermaid (`.mmd`, `.md`) or Graphviz DOT (`.dot`).

Components (`custom: false`) are boxes (Mermaid subgraphs, DOT clusters) holding their children;
custom resources are nodes labelled with their logical name and short type. Edges point from a
resource to what it uses: an explicit `dependsOn`, or an input that carries another resource's id
(a bucket policy's `bucket`, an ARN that ends in a role's name...). GitHub renders the `.md` form in
a PR.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

FORMATS = {".mmd": "mermaid", ".md": "markdown", ".dot": "dot"}
_ID_CHARS = r"[A-Za-z0-9_-]"


class GraphError(ValueError):
    """Unsupported output format."""


def format_for(path: str | Path) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise GraphError(
            f"--graph {path}: unsupported extension {suffix or '(none)'}; use {', '.join(FORMATS)}"
        )
    return FORMATS[suffix]


def short_type(type_: str) -> str:
    """`aws:s3/bucketPolicy:BucketPolicy` -> `s3/BucketPolicy`; components keep their token."""
    parts = type_.split(":")
    if len(parts) == 3 and parts[0] == "aws":
        return f"{parts[1].split('/')[0]}/{parts[2]}"
    return type_


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def edges(resources: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """(from URN, to URN): explicit dependsOn and id references carried by inputs."""
    ids: dict[str, str] = {}
    for r in resources:
        ident = r.get("id")
        if r.get("custom") and isinstance(ident, str) and len(ident) >= 6:
            ids.setdefault(ident, str(r["urn"]))
    pattern = None
    if ids:
        alternatives = "|".join(re.escape(i) for i in sorted(ids, key=len, reverse=True))
        pattern = re.compile(rf"(?<!{_ID_CHARS})(?:{alternatives})(?!{_ID_CHARS})")
    found: set[tuple[str, str]] = set()
    for r in resources:
        urn = str(r["urn"])
        for dep in (r.get("options") or {}).get("dependsOn") or []:
            found.add((urn, str(dep)))
        if pattern is None:
            continue
        for text in _strings(r.get("inputs") or {}):
            for match in pattern.finditer(text):
                target = ids[match.group(0)]
                if target != urn:
                    found.add((urn, target))
    known = {str(r["urn"]) for r in resources}
    return _collapse(resources, {(a, b) for a, b in found if a in known and b in known})


def _collapse(
    resources: Sequence[Mapping[str, Any]], found: set[tuple[str, str]]
) -> list[tuple[str, str]]:
    """`depends_on=[component]` arrives as one dependency per child: draw one edge to the box."""
    parent = {str(r["urn"]): r.get("parent") for r in resources}
    descendants: dict[str, set[str]] = {}
    for r in resources:
        if not r.get("custom"):
            continue
        node = parent.get(str(r["urn"]))
        while node in parent:
            descendants.setdefault(str(node), set()).add(str(r["urn"]))
            node = parent.get(str(node))
    for group, members in sorted(descendants.items(), key=lambda kv: -len(kv[1])):
        if len(members) < 2:
            continue
        for source in {a for a, _ in found}:
            targets = {b for a, b in found if a == source}
            if source not in members and source != group and members <= targets:
                found -= {(source, m) for m in members}
                found.add((source, group))
    return sorted(found)


class _Tree:
    def __init__(self, resources: Sequence[Mapping[str, Any]]) -> None:
        ordered = sorted(resources, key=lambda r: str(r["urn"]))
        self.by_urn = {str(r["urn"]): r for r in ordered}
        self.node_id = {urn: f"n{i}" for i, urn in enumerate(self.by_urn)}
        self.children: dict[str | None, list[str]] = {}
        for urn, r in self.by_urn.items():
            parent = r.get("parent")
            key = parent if parent in self.by_urn else None
            self.children.setdefault(key, []).append(urn)

    def is_group(self, urn: str) -> bool:
        return bool(self.children.get(urn))


def _label(resource: Mapping[str, Any]) -> str:
    return f"{resource['name']}\n{short_type(str(resource['type']))}"


def to_mermaid(plan: Mapping[str, Any]) -> str:
    resources = plan["resources"]
    tree = _Tree(resources)
    lines = ["flowchart LR"]

    def text(value: str) -> str:
        return value.replace('"', "#quot;").replace("\n", "<br/>")

    def emit(urn: str, depth: int) -> None:
        pad = "  " * depth
        r = tree.by_urn[urn]
        nid = tree.node_id[urn]
        if tree.is_group(urn):
            lines.append(f'{pad}subgraph {nid}["{text(_label(r))}"]')
            for child in tree.children[urn]:
                emit(child, depth + 1)
            lines.append(f"{pad}end")
        else:
            lines.append(f'{pad}{nid}["{text(_label(r))}"]')

    for urn in tree.children.get(None, []):
        emit(urn, 1)
    for a, b in edges(resources):
        lines.append(f"  {tree.node_id[a]} --> {tree.node_id[b]}")
    return "\n".join(lines) + "\n"


def to_dot(plan: Mapping[str, Any]) -> str:
    resources = plan["resources"]
    tree = _Tree(resources)
    title = f"{plan.get('project', '')} / {plan.get('stack', '')}"
    lines = [
        "digraph plan {",
        f"  label={_quote(title)};",
        "  rankdir=LR;",
        "  node [shape=box, fontsize=10];",
    ]

    def emit(urn: str, depth: int) -> None:
        pad = "  " * depth
        r = tree.by_urn[urn]
        nid = tree.node_id[urn]
        if tree.is_group(urn):
            lines.append(f"{pad}subgraph cluster_{nid} {{")
            lines.append(f"{pad}  label={_quote(_label(r))};")
            for child in tree.children[urn]:
                emit(child, depth + 1)
            lines.append(f"{pad}}}")
        else:
            lines.append(f"{pad}{nid} [label={_quote(_label(r))}];")

    for urn in tree.children.get(None, []):
        emit(urn, 1)
    for a, b in edges(resources):
        lines.append(f"  {tree.node_id[a]} -> {tree.node_id[b]};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def render(plan: Mapping[str, Any], fmt: str) -> str:
    if fmt == "dot":
        return to_dot(plan)
    mermaid = to_mermaid(plan)
    if fmt == "markdown":
        title = f"{plan.get('project', '')} / {plan.get('stack', '')}"
        return f"# {title}\n\n```mermaid\n{mermaid}```\n"
    return mermaid


def write_graph(plan: Mapping[str, Any], path: str | Path) -> str:
    """Write the graph in the format the extension names; returns that format."""
    fmt = format_for(path)
    Path(path).write_text(render(plan, fmt), encoding="utf-8")
    return fmt
