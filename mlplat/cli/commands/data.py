"""`mlplat data`: what the lake catalogs, and batch ingestion of a file into a dataset.

Both commands find the infrastructure through the platform outputs: `--outputs FILE` (a
`pulumi stack output --json` dump) or `--stack S` (asks the Pulumi CLI). `--endpoint-url` points
the AWS clients at a moto server or another local stack. Errors: message on stderr, exit 2.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from ml.outputs import PlatformOutputs

OutputsOption = Annotated[
    Path | None,
    typer.Option("--outputs", help="Platform outputs: a `pulumi stack output --json` dump."),
]
StackOption = Annotated[
    str | None,
    typer.Option("--stack", "-s", help="Read the platform outputs of this stack (Pulumi CLI)."),
]
EndpointOption = Annotated[
    str | None,
    typer.Option("--endpoint-url", help="AWS endpoint (e.g. a moto server http://127.0.0.1:5000)."),
]


def register(app: typer.Typer) -> None:
    data = typer.Typer(
        name="data", help="The data lake: list datasets, ingest files.", no_args_is_help=True
    )
    data.command("list")(list_command)
    data.command("ingest")(ingest_command)
    app.add_typer(data, name="data")


def _fail(message: str, code: int = 2) -> typer.Exit:
    sys.stderr.write(message.rstrip() + "\n")
    return typer.Exit(code)


def _outputs(outputs: Path | None, stack: str | None) -> PlatformOutputs:
    from ml.outputs import OutputsError, PlatformOutputs

    if (outputs is None) == (stack is None):
        raise _fail("error: pass exactly one of --outputs FILE or --stack NAME")
    try:
        return PlatformOutputs.load(stack, outputs)
    except OutputsError as exc:
        raise _fail(f"error: {exc}") from None


def list_command(
    outputs: OutputsOption = None,
    stack: StackOption = None,
    endpoint_url: EndpointOption = None,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Also write the listing to this JSON file.")
    ] = None,
) -> None:
    """List the datasets in the lake's Glue catalog: location, columns, partitions, rows."""
    from botocore.exceptions import BotoCoreError, ClientError
    from rich.console import Console
    from rich.table import Table

    from ml.catalog import CatalogError, list_datasets

    platform = _outputs(outputs, stack)
    try:
        entries = list_datasets(
            platform.glue_database, region=platform.region, endpoint_url=endpoint_url
        )
    except (CatalogError, ClientError, BotoCoreError) as exc:
        raise _fail(f"error: cannot list {platform.glue_database}: {exc}") from None

    table = Table(
        "dataset",
        "location",
        "columns",
        "partitions",
        "rows",
        title=f"Glue database {platform.glue_database}",
    )
    for e in entries:
        rows = "unknown" if e.row_count is None else f"{e.row_count:,}"
        table.add_row(e.name, e.location, str(len(e.columns)), str(len(e.partitions)), rows)
    Console().print(table)
    if json_path is not None:
        listing = [
            {
                "name": e.name,
                "location": e.location,
                "columns": [{"name": c.name, "type": c.type} for c in e.columns],
                "partitionKeys": list(e.partition_keys),
                "partitions": list(e.partitions),
                "rowCount": e.row_count,
                "rowCountSource": e.row_count_source,
            }
            for e in entries
        ]
        json_path.write_text(json.dumps(listing, indent=2) + "\n")


def ingest_command(
    file: Annotated[Path, typer.Argument(help="CSV or Parquet file with the dataset's columns.")],
    dataset: Annotated[str, typer.Option("--dataset", "-d", help="Dataset to write into.")],
    outputs: OutputsOption = None,
    stack: StackOption = None,
    endpoint_url: EndpointOption = None,
    dt: Annotated[
        str | None,
        typer.Option(
            "--dt",
            help="Write every row to this partition (YYYY-MM-DD) instead of "
            "deriving it from the dataset's timestamp column.",
        ),
    ] = None,
    rows_per_file: Annotated[
        int, typer.Option("--rows-per-file", min=1, help="Rows per Parquet file.")
    ] = 1_000_000,
    catalog: Annotated[
        bool,
        typer.Option("--catalog/--no-catalog", help="Register the written partitions in Glue."),
    ] = True,
) -> None:
    """Validate FILE against the dataset schema and commit it to the dataset's zone bucket.

    Each partition written is replaced whole and appears atomically. Nothing is written when the
    file does not match the schema.
    """
    from botocore.exceptions import BotoCoreError, ClientError
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from ml.catalog import CatalogError, register_partitions
    from ml.lake import LakeError, get_dataset, load_file, write_dataset, zone_bucket

    err = Console(stderr=True)
    try:
        spec = get_dataset(dataset)
    except LakeError as exc:
        raise _fail(f"error: {exc}") from None
    platform = _outputs(outputs, stack)
    try:
        with err.status(f"reading {file} ..."):
            frame = load_file(file, spec)
    except LakeError as exc:
        raise _fail(f"error: {file}: {exc}") from None

    bucket = zone_bucket(platform, spec.zone)
    console = Console()
    try:
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=err,
            transient=True,
        ) as progress:
            task = progress.add_task(f"writing {spec.name}", total=None)

            def advance(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            result = write_dataset(
                frame,
                spec,
                bucket,
                kms_key_id=platform.lake_kms_key_arn,
                dt=dt,
                rows_per_file=rows_per_file,
                region=platform.region,
                endpoint_url=endpoint_url,
                progress=advance,
            )
    except LakeError as exc:
        raise _fail(f"error: {exc}") from None
    except (ClientError, BotoCoreError) as exc:
        raise _fail(
            f"error: writing to s3://{bucket}/{spec.prefix}/ failed: {exc}; no partition "
            "was left half-written"
        ) from None

    days = [p.dt for p in result.partitions]
    console.print(
        f"{spec.name}: {result.rows:,} rows in {result.files} file(s), "
        f"{len(days)} partition(s) {days[0]} .. {days[-1]} -> s3://{bucket}/{spec.prefix}/ "
        f"(write {result.write_id})",
        soft_wrap=True,
    )
    if catalog:
        try:
            added = register_partitions(
                platform.glue_database,
                spec,
                bucket,
                days,
                region=platform.region,
                endpoint_url=endpoint_url,
            )
        except (CatalogError, ClientError, BotoCoreError) as exc:
            raise _fail(f"error: the data is committed, but cataloging failed: {exc}") from None
        console.print(
            f"catalog: {added} new partition(s) in {platform.glue_database}.{spec.name}",
            soft_wrap=True,
        )
