"""`mlplat explain`: why a trained model gives one record its score, step by step.

Parses its options, calls `ml.explain.explain_artifact` and prints its table (or writes its JSON).
A record the endpoint would refuse fails with the handler's message (the field, what is allowed):
exit 2, as any bad input.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from mlplat.cli import options
from mlplat.cli.errors import fail


def register(app: typer.Typer) -> None:
    app.command("explain")(explain)


def explain(
    model: Annotated[
        Path,
        typer.Option("--model", help="The trained model: a model.tar.gz (or its directory)."),
    ],
    record: Annotated[
        Path,
        typer.Option(
            "--record",
            help="A JSON file holding one record as an endpoint request sends it: an object of "
            "the model's inputs (or a list, or an instances list, holding one).",
        ),
    ],
    json_path: Annotated[str | None, options.json_file("the explanation")] = None,
) -> None:
    """Explain a score: the validated input, the derived features, the matrix columns, each
    column's contribution where the model allows it, and the score.

    Contributions: a logistic regression's coefficient x standardised value (they add up, with
    the intercept, to the logit); XGBoost's TreeSHAP values (they add up, with the expected
    value, to the margin); none for other estimators. The record is validated as the endpoint
    validates it. `--json -` prints the JSON instead of the table.
    """
    from ml.explain import ExplainError, explain_artifact
    from ml.inference import InferenceError

    for path, what in ((model, "--model"), (record, "--record")):
        if not path.exists():
            fail(f"{what} {path}: no such file")
    try:
        done = explain_artifact(model, record)
    except ExplainError as exc:
        fail(exc)
    except InferenceError as exc:
        fail(f"the record is refused as the endpoint would refuse it: {exc.message}")
    document = json.dumps(done.to_dict(), indent=2) + "\n"
    if json_path == "-":
        sys.stdout.write(document)
        return
    if json_path is not None:
        Path(json_path).write_text(document)
    typer.echo(done.to_text(), nl=False)
