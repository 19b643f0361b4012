"""The `config:` section of `Pulumi.yaml`, generated from `stacks.settings.SPEC`.

`python -m mlplat.plan.project_schema` prints it; `--write DIR` rewrites `DIR/Pulumi.yaml`'s
section and the README's settings table (`make docs`). A test keeps both equal to what this module
generates.

The Pulumi CLI reads this section before the program runs: a project key declared without a
`default` is required (the CLI stops with "Stack 'dev' is missing configuration value ..."), a
declared `default` is handed to every stack that does not set the key, and a declared `type`
(string, integer, boolean, or array with typed `items`) is checked against the stack's value. So:

- required settings (`Spec.required`) are declared with a type and no default: the CLI demands
  them, as the parser does;
- every setting whose default is one value for every environment, is set, and has a type the CLI
  knows (str, int, bool; strlist and cidrlist as an array of strings) is declared with its type
  and that default, which equals SPEC's (a test holds them to it);
- the rest are left undeclared, for the parser to default and check: defaults that depend on the
  environment (`_by_env`: the CLI has one default for every stack), no default at all (a declared
  key without one would be required), decimals (the CLI has no number type) and lists of objects
  (its arrays hold strings, integers, booleans or arrays). `undeclared()` lists them with the
  reason, and `write()` repeats that list in a comment at the top of the section.

`aws:region` is the AWS provider's key: stack files set it, and the CLI refuses a type or default
on a key outside the project's namespace. The parser keeps every rule the schema cannot say
(ranges, choices, patterns, cross-field rules); `mlplat.plan.project_config` applies the CLI's rules
offline.
"""

from __future__ import annotations

import json
from typing import Any

from stacks.settings import ENVIRONMENTS, SPEC, ModelEntry, Spec

_TYPES = {"str": "string", "int": "integer", "bool": "boolean"}
_ARRAYS = ("strlist", "cidrlist")


def _not_declared(spec: Spec) -> str | None:
    """Why `spec` is left out of the schema, or None if it is declared."""
    if spec.kind == "float":
        return "a decimal (the CLI has no number type)"
    if spec.kind not in _TYPES and spec.kind not in _ARRAYS:
        return "a list of objects (the CLI's arrays hold strings, integers, booleans or arrays)"
    if spec.required:
        return None
    if callable(spec.default):
        return "its default depends on the environment (the CLI has one default for all stacks)"
    if spec.default is None:
        return "unset by default (a declared key without a default is required)"
    return None


def undeclared() -> dict[str, str]:
    """The project keys `config_schema` leaves to the parser, with the reason."""
    return {
        spec.key: reason
        for spec in SPEC
        if ":" not in spec.key and (reason := _not_declared(spec)) is not None
    }


def config_schema() -> dict[str, dict[str, Any]]:
    """The declarations, by key: description, type (and items), and the default if not required."""
    schema: dict[str, dict[str, Any]] = {}
    for spec in SPEC:
        if ":" in spec.key or _not_declared(spec) is not None:
            continue
        entry: dict[str, Any] = {"description": spec.description}
        if spec.kind in _TYPES:
            entry["type"] = _TYPES[spec.kind]
        else:
            entry["type"] = "array"
            entry["items"] = {"type": "string"}
        if not spec.required:
            default = spec.default
            entry["default"] = list(default) if isinstance(default, tuple) else default
        schema[spec.key] = entry
    return schema


def _comment() -> list[str]:
    lines = [
        "Generated from stacks/settings/spec.py:SPEC by `make docs`; edit SPEC, not this section.",
        "The Pulumi CLI requires every key declared here without a default and type-checks",
        "declared keys. Declared: the required keys, and each key whose default is one value",
        "for every environment and has a type the CLI knows, with that default.",
        "Left to the program's parser (not declared):",
    ]
    by_reason: dict[str, list[str]] = {}
    for key, reason in undeclared().items():
        by_reason.setdefault(reason, []).append(key)
    for reason, keys in by_reason.items():
        lines.append(f"- {reason}: {', '.join(keys)}")
    lines.append("aws:region is the AWS provider's key: each stack file sets it.")
    return lines


def config_section() -> str:
    """The `config:` section as `write` puts it in Pulumi.yaml: the comment, then the schema."""
    import textwrap

    import yaml

    comment = []
    for line in _comment():
        for part in textwrap.wrap(line, width=95, subsequent_indent="  "):
            comment.append(f"  # {part}\n")
    section = yaml.safe_dump({"config": config_schema()}, sort_keys=False, width=100)
    head, _, body = section.partition("\n")
    return head + "\n" + "".join(comment) + body


def _default_text(spec: Spec) -> str:
    if spec.required:
        return "required"
    if spec.default_text is not None:
        return spec.default_text
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
        if value and isinstance(value[0], ModelEntry):
            return "[" + ", ".join(f"{{name: {v.name}}}" for v in value) + "]"
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
    """Rewrite Pulumi.yaml from its `config:` section on (the section ends the file) and the
    README's settings table, in place."""
    import os

    project = os.path.join(project_dir, "Pulumi.yaml")
    with open(project, encoding="utf-8") as f:
        text = f.read()
    head = text[: text.index("\nconfig:\n") + 1] if "\nconfig:\n" in text else text
    if head and not head.endswith("\n"):
        head += "\n"
    with open(project, "w", encoding="utf-8") as f:
        f.write(head + config_section())
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

    if sys.argv[1:] == ["--markdown"]:
        print(settings_table(), end="")
    elif sys.argv[1:2] == ["--write"]:
        write(sys.argv[2] if len(sys.argv) > 2 else ".")
    else:
        print(config_section(), end="")
