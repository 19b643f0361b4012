"""The spend model's derived features, value by value: crafted raw rows and the features worked
out by hand (the plan's 30 GB boundary, missing usage and payment method, the schema's extremes),
through the batch path (`build_features`) and the online path (`records_to_matrix`). Changing a
rule of `derive` (the plan size, the overage floor, the missing-value treatments) fails here."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import pytest

from ml.models.spend.model import MODEL
from tests.ml.models import known_values

NAN = math.nan
FEATURES = MODEL.features

# Raw inputs, one row each: tenure, monthly, contract, payment, tickets, usage, region.
RAW: list[tuple[Any, ...]] = [
    (24, 60.0, "month-to-month", "card", 1, 45.0, "north"),
    (0, 30.0, "one-year", None, 0, NAN, "south"),
    (3, 80.0, "two-year", "wallet", 4, 30.0, "east"),
    (7, 55.5, "month-to-month", "invoice", 2, 30.5, "west"),
    (600, 0.0, "one-year", "bank-transfer", 1000, 100_000.0, "north"),
    (1, 10_000.0, "two-year", None, 0, 0.0, "east"),
]

# Worked out by hand: data_usage_gb is the usage, 0 when missing (flagged in
# data_usage_missing); overage_gb = max(usage - 30, 0); a missing payment method is "unknown".
EXPECTED: list[dict[str, Any]] = [
    {  # 45 GB: 15 over the plan
        "tenure_months": 24.0, "monthly_charges": 60.0, "support_tickets": 1.0,
        "data_usage_gb": 45.0, "overage_gb": 15.0, "data_usage_missing": 0.0,
        "contract_type": "month-to-month", "payment_method": "card", "region": "north",
    },
    {  # usage not metered: 0 GB, no overage, flagged; payment unknown
        "tenure_months": 0.0, "monthly_charges": 30.0, "support_tickets": 0.0,
        "data_usage_gb": 0.0, "overage_gb": 0.0, "data_usage_missing": 1.0,
        "contract_type": "one-year", "payment_method": "unknown", "region": "south",
    },
    {  # exactly the plan: no overage
        "tenure_months": 3.0, "monthly_charges": 80.0, "support_tickets": 4.0,
        "data_usage_gb": 30.0, "overage_gb": 0.0, "data_usage_missing": 0.0,
        "contract_type": "two-year", "payment_method": "wallet", "region": "east",
    },
    {  # half a GB over
        "tenure_months": 7.0, "monthly_charges": 55.5, "support_tickets": 2.0,
        "data_usage_gb": 30.5, "overage_gb": 0.5, "data_usage_missing": 0.0,
        "contract_type": "month-to-month", "payment_method": "invoice", "region": "west",
    },
    {  # the schema's extremes
        "tenure_months": 600.0, "monthly_charges": 0.0, "support_tickets": 1000.0,
        "data_usage_gb": 100_000.0, "overage_gb": 99_970.0, "data_usage_missing": 0.0,
        "contract_type": "one-year", "payment_method": "bank-transfer", "region": "north",
    },
    {  # 0 GB metered is not missing
        "tenure_months": 1.0, "monthly_charges": 10_000.0, "support_tickets": 0.0,
        "data_usage_gb": 0.0, "overage_gb": 0.0, "data_usage_missing": 0.0,
        "contract_type": "two-year", "payment_method": "unknown", "region": "east",
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


def test_overage_starts_above_the_plans_30_gb() -> None:
    usage = [0.0, 29.0, 29.99, 30.0, 30.01, 31.0, 130.0]
    rows = [(12, 50.0, "one-year", "card", 0, u, "north") for u in usage]
    table = FEATURES.build_features(raw_frame(rows))
    assert table["overage_gb"].tolist() == pytest.approx([0, 0, 0, 0, 0.01, 1, 100], abs=1e-9)
    assert table["data_usage_gb"].tolist() == usage
