"""The churn model's derived features, value by value: crafted raw rows and the features worked
out by hand (boundaries, missing values, clipping), through the batch path (`build_features`)
and the online path (`records_to_matrix`). Changing a rule of `derive` (`tenure < 6`, the
`max(tenure, 1)` floor, the missing-value treatments) fails here."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import pytest

from ml.models.churn.model import MODEL
from tests.ml.models import known_values

NAN = math.nan
FEATURES = MODEL.features

# Raw inputs, one row each: tenure, monthly, total, contract, payment, tickets, usage, region,
# senior.
RAW: list[tuple[Any, ...]] = [
    (5, 50.0, 200.0, "month-to-month", "card", 2, math.e - 1, "north", True),
    (6, 60.0, 300.0, "one-year", None, 0, 0.0, "south", False),
    (0, 30.0, NAN, "two-year", "invoice", 7, NAN, "east", False),
    (0, 90.0, 45.0, "month-to-month", "wallet", 0, 99.0, "west", True),
    (12, 5.0, 6.0, "one-year", "bank-transfer", 1, 30.0, "north", False),
    (600, 0.0, 0.0, "two-year", "card", 1000, 100_000.0, "south", False),
    (1, 70.0, NAN, "month-to-month", None, 3, NAN, "east", True),
]

# Worked out by hand: avg_monthly_spend = total / max(tenure, 1), or monthly when total is
# missing; charge_trend = monthly / max(avg, 1); log_data_usage_gb = ln(1 + usage), 0 when
# missing; is_new_customer = tenure < 6; a missing payment method is "unknown".
EXPECTED: list[dict[str, Any]] = [
    {  # tenure 5: still new; 200 over 5 months
        "tenure_months": 5.0, "monthly_charges": 50.0, "avg_monthly_spend": 40.0,
        "charge_trend": 1.25, "support_tickets": 2.0, "log_data_usage_gb": 1.0,
        "data_usage_missing": 0.0, "total_charges_missing": 0.0, "is_new_customer": 1.0,
        "is_senior": 1.0, "contract_type": "month-to-month", "payment_method": "card",
        "region": "north",
    },
    {  # tenure 6: no longer new; no payment method: unknown; usage 0 is metered, not missing
        "tenure_months": 6.0, "monthly_charges": 60.0, "avg_monthly_spend": 50.0,
        "charge_trend": 1.2, "support_tickets": 0.0, "log_data_usage_gb": 0.0,
        "data_usage_missing": 0.0, "total_charges_missing": 0.0, "is_new_customer": 0.0,
        "is_senior": 0.0, "contract_type": "one-year", "payment_method": "unknown",
        "region": "south",
    },
    {  # no lifetime bill yet: the current bill stands in; usage missing: 0 and flagged
        "tenure_months": 0.0, "monthly_charges": 30.0, "avg_monthly_spend": 30.0,
        "charge_trend": 1.0, "support_tickets": 7.0, "log_data_usage_gb": 0.0,
        "data_usage_missing": 1.0, "total_charges_missing": 1.0, "is_new_customer": 1.0,
        "is_senior": 0.0, "contract_type": "two-year", "payment_method": "invoice",
        "region": "east",
    },
    {  # tenure 0 with a bill: divided by max(0, 1) = 1; ln(1 + 99) = ln(100)
        "tenure_months": 0.0, "monthly_charges": 90.0, "avg_monthly_spend": 45.0,
        "charge_trend": 2.0, "support_tickets": 0.0, "log_data_usage_gb": math.log(100.0),
        "data_usage_missing": 0.0, "total_charges_missing": 0.0, "is_new_customer": 1.0,
        "is_senior": 1.0, "contract_type": "month-to-month", "payment_method": "wallet",
        "region": "west",
    },
    {  # an average under 1: the trend divides by max(0.5, 1) = 1
        "tenure_months": 12.0, "monthly_charges": 5.0, "avg_monthly_spend": 0.5,
        "charge_trend": 5.0, "support_tickets": 1.0, "log_data_usage_gb": math.log(31.0),
        "data_usage_missing": 0.0, "total_charges_missing": 0.0, "is_new_customer": 0.0,
        "is_senior": 0.0, "contract_type": "one-year", "payment_method": "bank-transfer",
        "region": "north",
    },
    {  # the schema's extremes: nothing overflows, 0 / max(0, 1) = 0
        "tenure_months": 600.0, "monthly_charges": 0.0, "avg_monthly_spend": 0.0,
        "charge_trend": 0.0, "support_tickets": 1000.0,
        "log_data_usage_gb": math.log(100_001.0), "data_usage_missing": 0.0,
        "total_charges_missing": 0.0, "is_new_customer": 0.0, "is_senior": 0.0,
        "contract_type": "two-year", "payment_method": "card", "region": "south",
    },
    {  # a lifetime bill missing after the first month: still the current bill
        "tenure_months": 1.0, "monthly_charges": 70.0, "avg_monthly_spend": 70.0,
        "charge_trend": 1.0, "support_tickets": 3.0, "log_data_usage_gb": 0.0,
        "data_usage_missing": 1.0, "total_charges_missing": 1.0, "is_new_customer": 1.0,
        "is_senior": 1.0, "contract_type": "month-to-month", "payment_method": "unknown",
        "region": "east",
    },
]  # fmt: skip


def raw_frame(rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    return known_values.raw_frame(MODEL, rows)


def test_every_feature_is_checked_here() -> None:
    assert all(set(row) == set(MODEL.spec.feature_names) for row in EXPECTED)


@pytest.mark.parametrize("i", range(len(RAW)))
def test_the_batch_path_gives_the_hand_computed_features(i: int) -> None:
    known_values.check_batch(MODEL, RAW[i], EXPECTED[i])


def test_the_online_path_gives_the_same_hand_computed_matrix() -> None:
    known_values.check_online(MODEL, RAW, EXPECTED)


def test_a_customer_is_new_below_six_months_of_tenure() -> None:
    rows = [(t, 50.0, 50.0 * t, "one-year", "card", 0, 10.0, "north", False) for t in range(13)]
    table = FEATURES.build_features(raw_frame(rows))
    assert table["is_new_customer"].tolist() == [1.0] * 6 + [0.0] * 7  # 0..5 new; 6..12 not


def test_the_tenure_floor_and_the_average_floor() -> None:
    # tenure 0 and 1 divide by 1; the trend's denominator never drops below 1
    rows = [
        (0, 10.0, 8.0, "one-year", "card", 0, 1.0, "north", False),
        (1, 10.0, 8.0, "one-year", "card", 0, 1.0, "north", False),
        (2, 10.0, 8.0, "one-year", "card", 0, 1.0, "north", False),
        (16, 10.0, 8.0, "one-year", "card", 0, 1.0, "north", False),
    ]
    table = FEATURES.build_features(raw_frame(rows))
    assert table["avg_monthly_spend"].tolist() == [8.0, 8.0, 4.0, 0.5]
    assert table["charge_trend"].tolist() == [1.25, 1.25, 2.5, 10.0]
