"""`mlplat bench`: the performance figures named in the issues."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Annotated

import typer

from mlplat.cli import options
from mlplat.cli.errors import fail


def register(app: typer.Typer) -> None:
    app.command("bench")(bench)


def bench(
    json_path: Annotated[Path | None, options.json_file("the figures")] = None,
    only: Annotated[
        list[str] | None,
        typer.Option("--only", help="Run only these benchmark modules (e.g. ml). Repeatable."),
    ] = None,
    quick: Annotated[
        bool, typer.Option("--quick", help="Smaller inputs: a smoke run, not a measurement.")
    ] = False,
) -> None:
    """Measure the figures the issues name (rows/s, latencies, seconds) and print them."""
    from rich.console import Console
    from rich.table import Table

    import mlplat.bench as bench_pkg

    console = Console()
    figures: dict[str, float] = {}
    modules = [m for m in bench_pkg.MODULES if not only or m.rsplit(".", 1)[-1] in only]
    if only and not modules:
        allowed = ", ".join(m.rsplit(".", 1)[-1] for m in bench_pkg.MODULES)
        fail(f"--only {only}: no such benchmark module; allowed: {allowed}")
    for name in modules:
        with console.status(f"running {name} ..."):
            module = importlib.import_module(name)
            figures.update(module.run(quick=quick))
    table = Table("figure", "value")
    for key, value in figures.items():
        table.add_row(key, f"{value:,.3f}")
    console.print(table)
    if json_path is not None:
        json_path.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
