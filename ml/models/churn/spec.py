"""The churn model's declaration (pure: read by the stack, the components and the policies)."""

from __future__ import annotations

from ml.models import ModelSpec, Sensitive, predictions_dataset
from ml.schema import (
    CONTRACT_TYPES,
    CUSTOMERS_CURATED,
    CUSTOMERS_RAW,
    MISSING_CATEGORY,
    PAYMENT_METHODS,
    REGIONS,
    Column,
    Dataset,
)

# The raw column holding the outcome: 1 if the customer churned within 30 days of the snapshot.
LABEL = "churned"

# The raw columns the model reads, in the order a header-less CSV request lists them.
INPUTS = (
    "tenure_months",
    "monthly_charges",
    "total_charges",
    "contract_type",
    "payment_method",
    "support_tickets",
    "data_usage_gb",
    "region",
    "is_senior",
)

# The features zone: one row per customer snapshot, the model inputs as `derive` (model.py) derives
# them (the same code the online handler runs), with the label when it is known.
CUSTOMER_FEATURES = Dataset(
    name="customer_features",
    zone="features",
    description="Model-ready customer features derived by ml.features, with the label when known",
    columns=(
        Column("customer_id", "string", "Stable customer identifier", nullable=False),
        Column("event_time", "timestamp", "When the snapshot was taken (UTC)", nullable=False),
        Column(
            "tenure_months",
            "double",
            "Months since sign-up",
            nullable=False,
            minimum=0,
            maximum=600,
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
            "avg_monthly_spend",
            "double",
            "Lifetime billed amount / max(tenure, 1); the current bill when unknown",
            nullable=False,
            minimum=0,
        ),
        Column(
            "charge_trend",
            "double",
            "monthly_charges / max(avg_monthly_spend, 1)",
            nullable=False,
            minimum=0,
        ),
        Column(
            "support_tickets",
            "double",
            "Support tickets in the last 90 days",
            nullable=False,
            minimum=0,
            maximum=1_000,
        ),
        Column(
            "log_data_usage_gb",
            "double",
            "log1p(data_usage_gb); 0 when not metered",
            nullable=False,
            minimum=0,
        ),
        Column(
            "data_usage_missing",
            "double",
            "1 when data_usage_gb is missing",
            nullable=False,
            minimum=0,
            maximum=1,
        ),
        Column(
            "total_charges_missing",
            "double",
            "1 when total_charges is missing",
            nullable=False,
            minimum=0,
            maximum=1,
        ),
        Column(
            "is_new_customer",
            "double",
            "1 when tenure_months < 6",
            nullable=False,
            minimum=0,
            maximum=1,
        ),
        Column(
            "is_senior",
            "double",
            "1 when the customer is 65 or older",
            nullable=False,
            minimum=0,
            maximum=1,
        ),
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
        Column(
            LABEL,
            "bigint",
            "1 if the customer churned within 30 days; null when unknown",
            minimum=0,
            maximum=1,
        ),
    ),
)

# The flattened capture of the churn endpoint: one row per scored record.
PREDICTIONS = predictions_dataset(
    "predictions",
    CUSTOMERS_RAW,
    INPUTS,
    Column("score", "double", "Predicted churn probability", nullable=False, minimum=0, maximum=1),
)

SPEC = ModelSpec(
    name="churn",
    task="binary_classification",
    description="Will a customer of the subscription service churn within the next month?",
    raw=CUSTOMERS_RAW,
    curated=CUSTOMERS_CURATED,
    inputs=INPUTS,
    label=LABEL,
    features=CUSTOMER_FEATURES,
    predictions=PREDICTIONS,
    slices=("contract_type", "region", "payment_method"),
    # outcomes are known a month after the snapshot: online quality waits this long
    label_horizon_days=30,
    # new customers churn the most: the gate holds each stage of tenure on its own
    slice_bands={"tenure_months": (6.0, 12.0, 24.0, 48.0)},
    one_feature_baseline="contract_type",
    sensitive=(
        Sensitive(
            "is_senior",
            use="feature",
            reason=(
                "retention offers differ by age band by policy; the gate bounds the "
                "calibration and error-rate gaps between the groups"
            ),
        ),
    ),
    score_description="probability that the customer churns within 30 days",
    pipeline_hyperparameters={"estimator": "logistic_regression", "c": "1.0", "max_iter": "500"},
    # so strong a regularisation that the scores barely move from the base rate
    weak_hyperparameters={"c": "0.0001"},
)

# The model's features, in matrix order: numeric first, then categorical (one drift alarm each).
FEATURE_NAMES: tuple[str, ...] = SPEC.feature_names
