"""The options several commands share, declared once as `Annotated` aliases.

A command writes `stack: options.Stack = None`; the flag, its type and its help live here. `--json`
writes a different document per command, so `json_file(what)` names it. Loads nothing but typer:
`mlplat --help` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

# --- where the platform is ------------------------------------------------------------------------

StackName = Annotated[
    str,
    typer.Option("--stack", "-s", help="Stack: dev, staging, prod or local (Pulumi.<stack>.yaml)."),
]
Stack = Annotated[
    str | None,
    typer.Option(
        "--stack",
        "-s",
        help="Stack whose platform to use: its outputs (`pulumi stack output`, unless --outputs) "
        "and, where needed, its settings (Pulumi.<stack>.yaml).",
    ),
]
Outputs = Annotated[
    Path | None,
    typer.Option(
        "--outputs",
        help="Platform outputs: a `pulumi stack output --json` dump (instead of the Pulumi CLI).",
    ),
]
EndpointUrl = Annotated[
    str | None,
    typer.Option("--endpoint-url", help="AWS endpoint (e.g. a moto server http://127.0.0.1:5000)."),
]
Region = Annotated[
    str | None,
    typer.Option(
        "--region", help="AWS region (default: the platform outputs', else the credential chain's)."
    ),
]
ProjectDir = Annotated[
    Path | None,
    typer.Option("--project-dir", help="Directory holding Pulumi.yaml (default: found upwards)."),
]
Group = Annotated[
    str | None,
    typer.Option(
        "--group",
        help="Model package group (default: the model's model_package_group_name in the platform "
        "outputs, with --stack or --outputs).",
    ),
]

# --- which model ----------------------------------------------------------------------------------

Model = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        help="The model: a package of ml/models/ (default: the stack's first model, else the "
        "first package).",
    ),
]

Models = Annotated[
    str | None,
    typer.Option(
        "--models",
        help="Only these models of the stack (NAME[,NAME...]): the steps each model takes run for "
        "them alone (default: every model of the stack's `models`).",
    ),
]


def json_file(what: str) -> Any:
    """`--json FILE`: write `what` to FILE as JSON."""
    return typer.Option("--json", help=f"Write {what} to this JSON file.")


# --- the data a model is trained or evaluated on --------------------------------------------------

Data = Annotated[
    Path | None,
    typer.Option(
        "--data", help="Raw customers data (parquet file/dir or CSV); default: synthetic data."
    ),
]
Rows = Annotated[
    int, typer.Option("--rows", min=100, help="Rows of synthetic data when --data is not given.")
]
Seed = Annotated[int, typer.Option("--seed", help="Seed of the data generator and the model.")]
Drift = Annotated[
    float,
    typer.Option("--drift", min=0.0, max=5.0, help="Drift of the synthetic data (0 = none)."),
]
ApprovedMetrics = Annotated[
    Path | None,
    typer.Option(
        "--approved-metrics",
        help="metrics.json of the approved model: the candidate must not regress against it.",
    ),
]
