"""`mlplat data`: what the lake catalogs, batch ingestion of a file into a dataset, and a
deletion request (`forget`).

The commands find the infrastructure through the platform outputs: `--outputs FILE` (a
`pulumi stack output --json` dump) or `--stack S` (asks the Pulumi CLI). `--endpoint-url` points
the AWS clients at a moto server or another local stack. Errors: message on stderr, exit 2.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from mlplat.cli import options
from mlplat.cli.errors import ExitCode, fail, usage_errors
from mlplat.cli.inputs import platform_outputs


def register(app: typer.Typer) -> None:
    data = typer.Typer(
        name="data",
        help="The data lake: list datasets, ingest files, forget customers.",
        no_args_is_help=True,
    )
    data.command("list")(list_command)
    data.command("ingest")(ingest_command)
    data.command("forget")(forget_command)
    app.add_typer(data, name="data")


def list_command(
    outputs: options.Outputs = None,
    stack: options.Stack = None,
    endpoint_url: options.EndpointUrl = None,
    json_path: Annotated[Path | None, options.json_file("the listing")] = None,
) -> None:
    """List the datasets in the lake's Glue catalog: location, columns, partitions, rows."""
    from botocore.exceptions import BotoCoreError, ClientError
    from rich.console import Console
    from rich.table import Table

    from ml.catalog import CatalogError, list_datasets

    platform = platform_outputs(stack, outputs, exactly_one=True)
    database = platform.glue_database
    with usage_errors(CatalogError, ClientError, BotoCoreError, prefix=f"cannot list {database}: "):
        entries = list_datasets(database, region=platform.region, endpoint_url=endpoint_url)

    table = Table(
        "dataset", "location", "columns", "partitions", "rows", title=f"Glue database {database}"
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
    outputs: options.Outputs = None,
    stack: options.Stack = None,
    endpoint_url: options.EndpointUrl = None,
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
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from ml.ingest import IngestError, ingest_frame
    from ml.lake import LakeError, get_dataset, load_file

    err = Console(stderr=True)
    with usage_errors(LakeError):
        spec = get_dataset(dataset)
    platform = platform_outputs(stack, outputs, exactly_one=True)
    with usage_errors(LakeError, prefix=f"{file}: "), err.status(f"reading {file} ..."):
        frame = load_file(file, spec)

    with (
        usage_errors(LakeError, IngestError),
        Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=err,
            transient=True,
        ) as progress,
    ):
        task = progress.add_task(f"writing {spec.name}", total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        ingested = ingest_frame(
            frame,
            spec,
            platform,
            dt=dt,
            rows_per_file=rows_per_file,
            catalog=catalog,
            endpoint_url=endpoint_url,
            progress=advance,
        )

    console = Console()
    result, days, where = ingested.written, ingested.days, f"s3://{ingested.bucket}/{spec.prefix}/"
    console.print(
        f"{spec.name}: {result.rows:,} rows in {result.files} file(s), "
        f"{len(days)} partition(s) {days[0]} .. {days[-1]} -> {where} (write {result.write_id})",
        soft_wrap=True,
    )
    if ingested.catalog_error is not None:
        fail(f"the data is committed, but cataloging failed: {ingested.catalog_error}")
    if ingested.cataloged is not None:
        table = f"{platform.glue_database}.{spec.name}"
        console.print(f"catalog: {ingested.cataloged} new partition(s) in {table}", soft_wrap=True)


def forget_command(
    customer_ids: Annotated[
        list[str],
        typer.Option(
            "--customer-id", help="A customer whose data is to be removed (repeat for several)."
        ),
    ],
    outputs: options.Outputs = None,
    stack: options.Stack = None,
    endpoint_url: options.EndpointUrl = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Report what would change; change nothing.")
    ] = False,
    bypass_governance: Annotated[
        bool,
        typer.Option(
            "--bypass-governance-retention",
            help="Also delete versions under governance-mode Object Lock (needs "
            "s3:BypassGovernanceRetention); compliance mode and legal holds still hold.",
        ),
    ] = False,
    json_path: Annotated[Path | None, options.json_file("the report")] = None,
) -> None:
    """Remove customers' rows from every zone (raw, curated, features, predictions: the prediction
    logs), their requests from the endpoints' data capture, and the stored versions that still
    hold them; write an audit record (ids hashed, never in clear).

    Partitions and files are rewritten atomically (readers see the old one or the new one).
    Versions under S3 Object Lock are reported with the date after which they can be deleted:
    run the same request again then. Exit 1 when a version could not be deleted for another
    reason (the report says which and why).
    """
    from botocore.exceptions import BotoCoreError, ClientError

    from ml.forget import ForgetError, forget_platform
    from ml.lake import LakeError, s3_client

    platform = platform_outputs(stack, outputs, exactly_one=True)

    def progress(line: str) -> None:
        typer.echo(line, err=True)

    with usage_errors(ForgetError, LakeError, ClientError, BotoCoreError):
        report = forget_platform(
            customer_ids,
            platform,
            s3=s3_client(platform.region, endpoint_url),
            dry_run=dry_run,
            bypass_governance=bypass_governance,
            progress=progress,
        )
    for line in report.summary():
        typer.echo(line)
    if json_path is not None:
        json_path.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    if report.versions_failed:
        fail(
            f"{len(report.versions_failed)} stored version(s) could not be deleted: see above",
            ExitCode.FAILED_CHECK,
        )
