"""The data steps: synthetic customers, ingested by batch upload and through the Firehose stream
into the raw zone. Curating them and deriving the features zone is the pipeline's work
(`mlplat.sandbox.steps.pipeline`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlplat.sandbox.context import SandboxContext, StepFailed
from mlplat.sandbox.steps.common import (
    HOUR,
    clock,
    platform_outputs,
    record,
    runtime,
    s3_client,
)

if TYPE_CHECKING:
    import pandas as pd

# Sizes: enough rows for a stable model and a stable PSI, small enough for a minute on 2 cores.
TRAIN_ROWS = 30_000
STREAM_ROWS = 1_000  # of TRAIN_ROWS, sent through Firehose instead of the batch upload


def generate_data(ctx: SandboxContext) -> str:
    from ml.sample_data import generate_customers

    as_of = clock(ctx) - 2 * HOUR
    customers = generate_customers(TRAIN_ROWS, seed=7, as_of=as_of)
    ctx.state.customers = customers
    # every model's label, from the same customers: a rate for a classifier, a mean otherwise
    labels: dict[str, float] = {}
    shown: list[str] = []
    for name in ctx.models:
        spec = runtime(ctx, name).spec
        if spec.label not in labels:
            labels[spec.label] = round(float(customers[spec.label].mean()), 4)
            rate = spec.task == "binary_classification"
            value = f"{labels[spec.label]:.1%}" if rate else f"{labels[spec.label]:,.2f}"
            shown.append(f"{spec.label} {'rate' if rate else 'mean'} {value}")
    record(ctx, "generate-data", rows=len(customers), labelMeans=labels)
    return f"{len(customers):,} customers up to {as_of:%Y-%m-%d %H:%M}Z; " + ", ".join(shown)


def ingest(ctx: SandboxContext) -> str:
    from ml.lake import write_dataset
    from ml.schema import CUSTOMERS_RAW
    from ml.stream import frame_records, send_records
    from mlplat.sandbox.firehose import deliver

    outputs = platform_outputs(ctx)
    customers: pd.DataFrame = ctx.state.need_customers()
    batch, streamed = customers.iloc[:-STREAM_ROWS], customers.iloc[-STREAM_ROWS:]
    s3 = s3_client(ctx)
    written = write_dataset(
        batch, CUSTOMERS_RAW, outputs.raw_bucket, kms_key_id=outputs.lake_kms_key_arn, s3=s3
    )
    sent = send_records(
        frame_records(streamed, CUSTOMERS_RAW),
        outputs.ingest_stream_name,
        firehose=ctx.client("firehose"),
        sleep=lambda _: None,
    )
    if not sent.ok:
        raise StepFailed(f"Firehose refused {len(sent.failed)} record(s): {sent.error_counts}")
    deliveries = deliver(
        s3,
        ctx.client("firehose"),
        ctx.client("glue"),
        ctx.client("cloudwatch"),
        outputs.ingest_stream_name,
        now=clock(ctx) - 2 * HOUR,  # collected before the traffic, on the sandbox's clock
    )
    delivered = sum(d.records for d in deliveries)
    if delivered != len(streamed):
        raise StepFailed(f"Firehose delivered {delivered} of {len(streamed)} streamed records")
    record(
        ctx,
        "ingest",
        batchRows=written.rows,
        batchPartitions=len(written.partitions),
        streamedRecords=sent.delivered,
        streamedObjects=[d.key for d in deliveries],
    )
    return (
        f"{written.rows:,} rows in {len(written.partitions)} partitions (batch), "
        f"{sent.delivered:,} records through {outputs.ingest_stream_name} "
        f"-> {len(deliveries)} Parquet object(s)"
    )
