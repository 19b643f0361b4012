"""The spend model's declaration (pure: read by the stack, the components and the policies)."""

from __future__ import annotations

from ml.models import KEY_COLUMNS, ModelSpec, Sensitive, predictions_dataset
from ml.schema import (
    CONTRACT_TYPES,
    CUSTOMERS_CURATED,
    CUSTOMERS_RAW,
    MISSING_CATEGORY,
    PAYMENT_METHODS,
    REGIONS,
    SPEND_LABEL,
    Column,
    Dataset,
)

INPUTS = (
    "tenure_months",
    "monthly_charges",
    "contract_type",
    "payment_method",
    "support_tickets",
    "data_usage_gb",
    "region",
)

FEATURES = Dataset(
    name="spend_features",
    zone="features",
    description="Next-month spend features derived by ml/models/spend, with the label when known",
    columns=(
        *(CUSTOMERS_RAW.column(c) for c in KEY_COLUMNS),
        # Not a feature (`sensitive` excludes it): carried beside the keys so that evaluation
        # measures the model's errors per group.
        CUSTOMERS_RAW.column("is_senior"),
        Column("tenure_months", "double", "Months since sign-up", nullable=False, minimum=0),
        Column("monthly_charges", "double", "Current monthly bill", nullable=False, minimum=0),
        Column("support_tickets", "double", "Support tickets in the last 90 days", nullable=False),
        Column(
            "data_usage_gb", "double", "Data used last month; 0 when not metered", nullable=False
        ),
        Column(
            "overage_gb",
            "double",
            "max(data_usage_gb - 30, 0): metered above the plan",
            nullable=False,
        ),
        Column("data_usage_missing", "double", "1 when data_usage_gb is missing", nullable=False),
        Column(
            "contract_type", "string", "Contract length", nullable=False, allowed=CONTRACT_TYPES
        ),
        Column(
            "payment_method",
            "string",
            "How the customer pays, or 'unknown'",
            nullable=False,
            allowed=(*PAYMENT_METHODS, MISSING_CATEGORY),
        ),
        Column("region", "string", "Sales region", nullable=False, allowed=REGIONS),
        CUSTOMERS_RAW.column(SPEND_LABEL),
    ),
)

SPEC = ModelSpec(
    name="spend",
    task="regression",
    description="What will a customer be billed in the next 30 days?",
    raw=CUSTOMERS_RAW,
    curated=CUSTOMERS_CURATED,
    inputs=INPUTS,
    label=SPEND_LABEL,
    features=FEATURES,
    predictions=predictions_dataset(
        "spend_predictions",
        CUSTOMERS_RAW,
        INPUTS,
        Column("score", "double", "Predicted spend in the next 30 days", nullable=False, minimum=0),
    ),
    slices=("contract_type", "region", "payment_method"),
    # the spend of the 30 days after the snapshot is billed by the day after: a day's slack
    label_horizon_days=31,
    # tenure stages, and data used within the plan's 30 GB, above it, and far above it (overage)
    slice_bands={"tenure_months": (6.0, 12.0, 24.0, 48.0), "data_usage_gb": (30.0, 60.0)},
    one_feature_baseline="monthly_charges",
    sensitive=(
        Sensitive(
            "is_senior",
            use="excluded",
            reason="billing must not depend on age; kept in the data only to measure group gaps",
        ),
    ),
    score_description="predicted amount billed in the next 30 days",
    framework="xgboost",
    pipeline_hyperparameters={
        "n_estimators": "200",
        "max_depth": "4",
        "learning_rate": "0.05",
        "min_child_weight": "10.0",
    },
    # two stumps: little better than the mean
    weak_hyperparameters={"n_estimators": "2", "max_depth": "1"},
)
