"""`mlplat new model NAME --task classification|regression`: scaffold a model package."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mlplat.cli.errors import usage_errors

new_app = typer.Typer(help="Scaffold new parts of the platform.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(new_app, name="new")


@new_app.command("model")
def model(
    name: Annotated[str, typer.Argument(help="Model name: 2-20 lowercase letters and digits.")],
    task: Annotated[
        str, typer.Option("--task", help="classification (binary) or regression.")
    ] = "classification",
    root: Annotated[
        Path, typer.Option("--root", help="The ml-platform checkout to write into.")
    ] = Path("."),
) -> None:
    """Write ml/models/NAME/ (spec, model, tests) from the template for TASK.

    The package follows the model contract, so the contract tests train, gate and serve it at
    once; add `- name: NAME` to a stack's `models` to give it its own registry group, pipeline,
    endpoint, alarms and drift job.
    """
    from mlplat.scaffold import ScaffoldError, new_model

    with usage_errors(ScaffoldError):
        written = new_model(root.resolve(), name, task)
    for path in written:
        typer.echo(f"wrote {path.relative_to(root.resolve())}")
    typer.echo(
        f"next: edit ml/models/{name}/spec.py and model.py, run `make test`, then add "
        f"`- name: {name}` under `ml-platform:models` in a Pulumi.<stack>.yaml"
    )
