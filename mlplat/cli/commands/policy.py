"""`mlplat policies`: list the policy pack (name, enforcement, severity, description, reference)."""

from __future__ import annotations

import json
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    app.command("policies")(policies)


def policies(
    as_json: Annotated[bool, typer.Option("--json", help="Print the pack as JSON.")] = False,
) -> None:
    """List the policies `mlplat preview` and `pulumi preview --policy-pack policies` enforce."""
    from policies.rules import POLICIES

    if as_json:
        typer.echo(json.dumps([p.to_json() for p in POLICIES], indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(
        "policy",
        "kind",
        "enforcement",
        "severity",
        "description",
        "reference",
        title=f"policy pack: {len(POLICIES)} policies",
    )
    for p in POLICIES:
        table.add_row(p.name, p.kind, p.enforcement, p.severity, p.description, p.reference)
    Console(width=200).print(table)
