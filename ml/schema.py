"""Dataset schemas: declared once, as data.

The lake component catalogs these exact columns as Glue tables (and Firehose converts records to
Parquet through them); `ml/` validates, writes and reads frames against them. Nothing else in the
package spells out a column list by hand.

Types are Glue/Hive type names; `pandas_dtype` maps each to the dtype frames carry in memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

GlueType = Literal["string", "double", "bigint", "boolean", "timestamp"]

PANDAS_DTYPES: dict[str, str] = {
    "string": "string",
    "double": "float64",
    "bigint": "Int64",
    "boolean": "boolean",
    "timestamp": "datetime64[ns, UTC]",
}

# The partition key every dataset uses: Hive style, `dt=YYYY-MM-DD`.
PARTITION_KEY = "dt"


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: GlueType
    description: str
    nullable: bool = True
    minimum: float | None = None
    maximum: float | None = None
    allowed: tuple[str, ...] | None = None

    @property
    def pandas_dtype(self) -> str:
        return PANDAS_DTYPES[self.type]


@dataclass(frozen=True, slots=True)
class Dataset:
    """A dataset the platform ships: where it lives and what its rows look like."""

    name: str
    zone: Literal["raw", "curated", "features", "predictions"]
    description: str
    columns: tuple[Column, ...]
    partition_keys: tuple[str, ...] = field(default=(PARTITION_KEY,))

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"dataset {self.name!r} has no column {name!r}")

    @property
    def prefix(self) -> str:
        """Key prefix of the dataset inside its zone bucket (no leading or trailing slash)."""
        return self.name


# The customers of a subscription service: snapshots, and what was observed in the month after.
CONTRACT_TYPES = ("month-to-month", "one-year", "two-year")
PAYMENT_METHODS = ("card", "bank-transfer", "invoice", "wallet")
REGIONS = ("north", "south", "east", "west")

_CUSTOMER_COLUMNS: tuple[Column, ...] = (
    Column("customer_id", "string", "Stable customer identifier", nullable=False),
    Column("event_time", "timestamp", "When the snapshot was taken (UTC)", nullable=False),
    Column(
        "tenure_months", "bigint", "Months since sign-up", nullable=False, minimum=0, maximum=600
    ),
    Column(
        "monthly_charges",
        "double",
        "Current monthly bill",
        nullable=False,
        minimum=0,
        maximum=10_000,
    ),
    Column(
        "total_charges",
        "double",
        "Lifetime billed amount; missing for new customers",
        minimum=0,
        maximum=1_000_000,
    ),
    Column("contract_type", "string", "Contract length", nullable=False, allowed=CONTRACT_TYPES),
    Column(
        "payment_method", "string", "How the customer pays; may be unknown", allowed=PAYMENT_METHODS
    ),
    Column(
        "support_tickets",
        "bigint",
        "Support tickets in the last 90 days",
        nullable=False,
        minimum=0,
        maximum=1_000,
    ),
    Column(
        "data_usage_gb",
        "double",
        "Data used last month; missing when not metered",
        minimum=0,
        maximum=100_000,
    ),
    Column("region", "string", "Sales region", nullable=False, allowed=REGIONS),
    Column("is_senior", "boolean", "Customer is 65 or older", nullable=False),
)

# Outcomes observed after a snapshot: the labels of the models (`ml.models`) that predict them.
SPEND_LABEL = "next_month_spend"

CUSTOMERS_RAW = Dataset(
    name="customers",
    zone="raw",
    description="Customer snapshots as collected (batch uploads, Firehose stream), with the label",
    columns=(
        *_CUSTOMER_COLUMNS,
        Column(
            "churned", "bigint", "1 if the customer churned within 30 days", minimum=0, maximum=1
        ),
        Column(
            SPEND_LABEL,
            "double",
            "Amount billed in the 30 days after the snapshot; null until known",
            minimum=0,
            maximum=1_000_000,
        ),
    ),
)

CUSTOMERS_CURATED = Dataset(
    name="customers_curated",
    zone="curated",
    description="Validated, de-duplicated customer snapshots",
    columns=CUSTOMERS_RAW.columns,
)

# Outcomes that arrive after the prediction (labels coming back): one row per customer snapshot
# whose outcome became known, keyed as the predictions are (customer id, and the snapshot time the
# endpoint scored). Each model reads its own label column (`ModelSpec.label`); an outcome not yet
# known for one model is null. Ingested like the snapshots: batch uploads and a Firehose stream.
CUSTOMER_OUTCOMES = Dataset(
    name="customer_outcomes",
    zone="raw",
    description="Outcomes observed after a prediction (labels), by customer and snapshot time",
    columns=(
        Column("customer_id", "string", "Stable customer identifier", nullable=False),
        Column(
            "event_time",
            "timestamp",
            "The snapshot the outcome belongs to (the time the endpoint scored it, UTC)",
            nullable=False,
        ),
        Column("observed_at", "timestamp", "When the outcome became known (UTC)", nullable=False),
        Column(
            "churned", "bigint", "1 if the customer churned within 30 days", minimum=0, maximum=1
        ),
        Column(
            SPEND_LABEL,
            "double",
            "Amount billed in the 30 days after the snapshot",
            minimum=0,
            maximum=1_000_000,
        ),
    ),
)

# The datasets every model shares (the lake's raw and curated customer snapshots, the outcomes),
# by name; each model adds its own features and predictions tables (`ModelSpec.datasets`).
SHARED_DATASETS: tuple[Dataset, ...] = (CUSTOMERS_RAW, CUSTOMERS_CURATED, CUSTOMER_OUTCOMES)
DATASETS: dict[str, Dataset] = {d.name: d for d in SHARED_DATASETS}

# A model's features table stores categorical features as strings; a nullable category's missing
# value is stored as MISSING_CATEGORY.
MISSING_CATEGORY = "unknown"
