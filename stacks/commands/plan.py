"""`mlplat preview`: evaluate the Pulumi program offline and write the plan."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    app.command("preview")(preview)


def _fail(message: str, code: int = 2) -> typer.Exit:
    sys.stderr.write(message.rstrip() + "\n")
    return typer.Exit(code)


def preview(
    stack: Annotated[str, typer.Option("--stack", "-s", help="Stack to preview (dev, staging, prod, local).")],
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Write the plan (resources, outputs) to this file.")
    ] = None,
    project_dir: Annotated[
        Path | None,
        typer.Option("--project-dir", help="Directory holding Pulumi.yaml (default: found upwards)."),
    ] = None,
) -> None:
    """Run the Pulumi program offline under the recording engine: no CLI, account or network.

    Exit codes: 0 ok, 2 bad configuration or usage.
    """
    from rich.console import Console
    from rich.table import Table

    from stacks.preview import counts, find_project_dir, make_plan
    from stacks.settings import SettingsError

    root = project_dir or find_project_dir()
    try:
        plan = make_plan(stack, root)
    except SettingsError as exc:
        raise _fail(f"error: {exc}") from None

    console = Console()
    table = Table("component", "type", "count", title=f"{plan.project} / {plan.stack}: "
                  f"{len(plan.resources)} resources")
    for (component, type_), n in sorted(counts(plan).items()):
        table.add_row(component, type_, str(n))
    console.print(table)
    outputs = Table("output", "value", title="outputs")
    for key, value in sorted(plan.outputs.items()):
        outputs.add_row(key, json.dumps(value) if not isinstance(value, str) else value)
    console.print(outputs)
    if json_path is not None:
        json_path.write_text(json.dumps(plan.to_json(), indent=2, sort_keys=True) + "\n")
        console.print(f"plan written to {json_path}")
