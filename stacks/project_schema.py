"""The `config:` schema declared in `Pulumi.yaml`, derived from `stacks.settings.SPEC`.

`python -m stacks.project_schema` prints it; a test keeps `Pulumi.yaml` equal to it, so the CLI's
own type checks and the program's parser never disagree about a key. Pulumi's schema types are
string, integer, boolean and array: lists of objects and decimals are left to the parser.
"""

from __future__ import annotations

import json
from typing import Any

from stacks.settings import ENVIRONMENTS, SPEC, Spec

_TYPES = {"str": "string", "int": "integer", "bool": "boolean"}


def config_schema() -> dict[str, dict[str, Any]]:
    schema: dict[str, dict[str, Any]] = {}
    for spec in SPEC:
        if ":" in spec.key:  # provider keys are declared by their provider
            continue
        entry: dict[str, Any] = {"description": spec.description}
        if spec.kind in _TYPES:
            entry["type"] = _TYPES[spec.kind]
        elif spec.kind in ("strlist", "cidrlist"):
            entry["type"] = "array"
            entry["items"] = {"type": "string"}
        else:
            continue
        schema[spec.key] = entry
    return schema


def _default_text(spec: Spec) -> str:
    if spec.required:
        return "required"
    if callable(spec.default):
        by_env = {env: spec.default(env) for env in ENVIRONMENTS}
        if len({json.dumps(v, default=str) for v in by_env.values()}) > 1:
            return ", ".join(f"{env}: {_show(v)}" for env, v in by_env.items())
        return _show(by_env["dev"])
    return _show(spec.default)


def _show(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple):
        if value and hasattr(value[0], "__dataclass_fields__"):
            return f"{len(value)} group(s)" if hasattr(value[0], "instance_types") else "[]"
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value)


def settings_table() -> str:
    """The README's settings table (a test keeps the README equal to it)."""
    rows = ["| key | what | allowed | default |", "| --- | --- | --- | --- |"]
    for spec in SPEC:
        what = spec.description.replace("|", "\\|")
        rows.append(f"| `{spec.key}` | {what} | {spec.allowed} | {_default_text(spec)} |")
    return "\n".join(rows) + "\n"


README_TABLE_START = "| key | what | allowed | default |"


def write(project_dir: str) -> None:
    """Rewrite the `config:` section of Pulumi.yaml and the README's settings table in place."""
    import os

    import yaml

    project = os.path.join(project_dir, "Pulumi.yaml")
    with open(project, encoding="utf-8") as f:
        text = f.read()
    head = text[: text.index("\nconfig:\n") + 1] if "\nconfig:\n" in text else text
    config = yaml.safe_dump({"config": config_schema()}, sort_keys=False, width=100)
    with open(project, "w", encoding="utf-8") as f:
        f.write(head + config)
    readme = os.path.join(project_dir, "README.md")
    with open(readme, encoding="utf-8") as f:
        text = f.read()
    start = text.index(README_TABLE_START)
    end = text.find("\n\n", start)
    rest = text[end + 1 :] if end != -1 else ""
    with open(readme, "w", encoding="utf-8") as f:
        f.write(text[:start] + settings_table() + rest)


if __name__ == "__main__":
    import sys

    import yaml

    if sys.argv[1:] == ["--markdown"]:
        print(settings_table(), end="")
    elif sys.argv[1:2] == ["--write"]:
        write(sys.argv[2] if len(sys.argv) > 2 else ".")
    else:
        print(yaml.safe_dump({"config": config_schema()}, sort_keys=False, width=100), end="")
