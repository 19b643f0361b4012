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
    against: Annotated[
        Path | None,
        typer.Option(
            "--against",
            help="A base run's --json: print each figure beside it with the ratio; figures "
            "worse by more than --threshold are flagged (the exit status stays 0).",
        ),
    ] = None,
    markdown_path: Annotated[
        Path | None,
        typer.Option("--markdown", help="With --against: write the comparison as Markdown here."),
    ] = None,
    threshold: Annotated[
        float, typer.Option("--threshold", help="With --against: the flagged worsening, 0-1.")
    ] = 0.2,
) -> None:
    """Measure the figures the issues name (rows/s, latencies, seconds) and print them."""
    from rich.console import Console
    from rich.table import Table

    import mlplat.bench as bench_pkg
    from mlplat.bench.compare import CompareError, compare, load, markdown

    if markdown_path is not None and against is None:
        fail("--markdown compares with a base run: give --against BASE.json too")
    if not 0 < threshold < 1:
        fail(f"--threshold {threshold}: a fraction between 0 and 1 (0.2 = 20% worse)")
    base: dict[str, float] | None = None
    if against is not None:
        try:
            base = load(against)
        except CompareError as exc:
            fail(str(exc))
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
    if json_path is not None:
        json_path.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
    if base is None:
        table = Table("figure", "value")
        for key, value in figures.items():
            table.add_row(key, f"{value:,.3f}")
        console.print(table)
        return
    rows = compare(base, figures)
    table = Table("figure", "base", "value", "ratio", "")
    for row in rows:
        table.add_row(
            row.figure,
            "—" if row.base is None else f"{row.base:,.3f}",
            "—" if row.head is None else f"{row.head:,.3f}",
            "—" if row.ratio is None else f"{row.ratio:.2f}x",
            "regression" if row.regressed(threshold) else "",
        )
    console.print(table)
    if markdown_path is not None:
        command = "mlplat bench --quick" if quick else "mlplat bench"
        markdown_path.write_text(markdown(rows, threshold=threshold, command=command))
