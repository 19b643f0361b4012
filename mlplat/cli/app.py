"""`mlplat`: the command line of the platform.

Start-up stays fast: each command imports what it needs (pulumi, pandas, boto3...) when it runs.
Command groups live in `mlplat/cli/commands/`; each module exposes `register(app)`. The options
several commands share are declared once in `mlplat/cli/options.py`; a command fails through
`mlplat/cli/errors.py` (message on stderr; exit 2 for usage, 1 for a failed check).
"""

from __future__ import annotations

import typer

from mlplat.cli.commands import backtest as backtest_commands
from mlplat.cli.commands import bench as bench_commands
from mlplat.cli.commands import data as data_commands
from mlplat.cli.commands import explain as explain_commands
from mlplat.cli.commands import ml as ml_commands
from mlplat.cli.commands import monitor as monitor_commands
from mlplat.cli.commands import new as new_commands
from mlplat.cli.commands import pipeline as pipeline_commands
from mlplat.cli.commands import plan as plan_commands
from mlplat.cli.commands import policy as policy_commands
from mlplat.cli.commands import sandbox as sandbox_commands
from mlplat.cli.commands import serving as serving_commands

app = typer.Typer(
    name="mlplat",
    help="ml-platform: stand up the ML platform on AWS with Pulumi, and run the ML code on it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

for module in (
    plan_commands,
    sandbox_commands,
    policy_commands,
    data_commands,
    ml_commands,
    explain_commands,
    backtest_commands,
    pipeline_commands,
    serving_commands,
    monitor_commands,
    bench_commands,
    new_commands,
):
    module.register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
