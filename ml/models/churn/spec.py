"""The churn model's declaration (pure: read by the stack, the components and the policies)."""

from __future__ import annotations

from ml.models import ModelSpec, Sensitive
from ml.schema import CUSTOMER_FEATURES, CUSTOMERS_CURATED, CUSTOMERS_RAW, LABEL, PREDICTIONS

SPEC = ModelSpec(
    name="churn",
    task="binary_classification",
    description="Will a customer of the subscription service churn within the next month?",
    raw=CUSTOMERS_RAW,
    curated=CUSTOMERS_CURATED,
    inputs=(
        "tenure_months",
        "monthly_charges",
        "total_charges",
        "contract_type",
        "payment_method",
        "support_tickets",
        "data_usage_gb",
        "region",
        "is_senior",
    ),
    label=LABEL,
    features=CUSTOMER_FEATURES,
    predictions=PREDICTIONS,
    slices=("contract_type", "region"),
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
)
