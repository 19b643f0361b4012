"""`mlplat backtest --model NAME [--write | --check]`: a model's staleness, measured.

Calls `ml.backtest.sample_backtest` (train on the sample history up to T, score the monthly
windows after it, each beside a model retrained for it) and prints the decay curve and the
recommended maximum age. `--write` commits the result as `ml/models/<name>/staleness.json` (what
every trained model carries, and what the platform's model-age alarm and retraining cadence
default to); `--check` exits 1 when the committed file differs from the fresh measurement.
`--json FILE` writes the document. Exit codes: 0 done, 1 `--check` found a difference, 2 usage.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from mlplat.cli import options
from mlplat.cli.errors import ExitCode, fail
from mlplat.cli.inputs import model_name


def register(app: typer.Typer) -> None:
    app.command("backtest")(backtest)


def backtest(
    model: options.Model = None,
    write: Annotated[
        bool,
        typer.Option("--write", help="Commit the result as ml/models/NAME/staleness.json."),
    ] = False,
    check: Annotated[
        bool,
        typer.Option(
            "--check", help="Exit 1 when the committed staleness.json differs from this run."
        ),
    ] = False,
    json_file: Annotated[Path | None, options.json_file("the staleness document")] = None,
) -> None:
    """Train on the sample history up to T, score monthly windows after it: the decay curve and
    the recommended maximum model age (the default retraining cadence and age alarm)."""
    from ml.backtest import (
        read_staleness,
        render,
        sample_backtest,
        staleness_path,
        to_json,
        write_staleness,
    )
    from ml.models import load

    if write and check:
        fail("--write and --check: choose one")
    name = model_name(model)
    document = sample_backtest(load(name))
    typer.echo(render(document))
    if json_file is not None:
        json_file.write_text(to_json(document))
    if write:
        typer.echo(f"wrote {write_staleness(name, document)}")
    if check:
        path = staleness_path(name)
        try:
            committed = read_staleness(name)
        except (FileNotFoundError, ValueError) as err:
            fail(err, ExitCode.FAILED_CHECK)
        if committed != json.loads(to_json(document)):
            fail(
                f"{path} differs from a fresh backtest: run `mlplat backtest --model {name} "
                "--write` and commit it",
                ExitCode.FAILED_CHECK,
            )
        typer.echo(f"{path} is up to date")
