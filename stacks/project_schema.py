"""The `config:` schema declared in `Pulumi.yaml`, derived from `stacks.settings.SPEC`.

`python -m stacks.project_schema` prints it; a test keeps `Pulumi.yaml` equal to it, so the CLI's
own type checks and the program's parser never disagree about a key. Structured settings (lists of
objects) have no schema type in Pulumi and are left to the parser.
"""

from __future__ import annotations

from typing import Any

from stacks.settings import SPEC

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


if __name__ == "__main__":
    import yaml

    print(yaml.safe_dump({"config": config_schema()}, sort_keys=False, width=100), end="")
