from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.models.churn.spec import LABEL
from ml.sample_data import generate_customers, true_churn_probability
from ml.schema import CUSTOMERS_RAW


def test_columns_and_dtypes_are_exactly_the_raw_schema(raw: pd.DataFrame) -> None:
    assert tuple(raw.columns) == CUSTOMERS_RAW.column_names
    assert {c: str(t) for c, t in raw.dtypes.items()} == {
        c.name: c.pandas_dtype for c in CUSTOMERS_RAW.columns
    }


def test_values_respect_the_schema(raw: pd.DataFrame) -> None:
    for column in CUSTOMERS_RAW.columns:
        series = raw[column.name]
        if not column.nullable:
            assert not series.isna().any(), column.name
        if column.minimum is not None:
            assert (series.dropna() >= column.minimum).all(), column.name
            assert (series.dropna() <= column.maximum).all(), column.name
        if column.allowed is not None:
            assert set(series.dropna()) <= set(column.allowed), column.name
    assert raw["customer_id"].is_unique


def test_missing_values_where_the_schema_allows_them(raw: pd.DataFrame) -> None:
    for name in ("total_charges", "payment_method", "data_usage_gb"):
        assert 0.01 < raw[name].isna().mean() < 0.2, name
    # New customers have no lifetime bill yet.
    assert raw.loc[raw["tenure_months"] == 0, "total_charges"].isna().all()


def test_deterministic_for_a_seed() -> None:
    a = generate_customers(500, seed=5)
    pd.testing.assert_frame_equal(a, generate_customers(500, seed=5))
    assert not a.equals(generate_customers(500, seed=6))


def test_label_follows_the_known_process(raw: pd.DataFrame) -> None:
    p = true_churn_probability(raw)
    assert p.shape == (len(raw),)
    assert abs(float(raw[LABEL].mean()) - float(p.mean())) < 0.03
    # Rows the process gives a high probability churn far more often.
    high = p > np.quantile(p, 0.8)
    assert raw[LABEL][high].mean() > 2 * raw[LABEL][~high].mean()


def test_drift_shifts_only_the_chosen_columns() -> None:
    base = generate_customers(20_000, seed=1)
    drifted = generate_customers(
        20_000, seed=1, drift=1.0, drift_columns=("monthly_charges", "contract_type")
    )
    assert drifted["monthly_charges"].mean() > 1.2 * base["monthly_charges"].mean()
    m2m = "month-to-month"
    assert (drifted["contract_type"] == m2m).mean() > (base["contract_type"] == m2m).mean() + 0.1
    base_regions = base["region"].value_counts(normalize=True)
    drifted_regions = drifted["region"].value_counts(normalize=True)
    assert (base_regions - drifted_regions).abs().max() < 0.02


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_rows": -1}, "n_rows must be >= 0"),
        ({"n_rows": 10, "drift": -0.5}, "drift must be between 0 and 5"),
        ({"n_rows": 10, "drift": 1.0, "drift_columns": ("customer_id",)}, "cannot drift"),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        generate_customers(**kwargs)  # type: ignore[arg-type]


def test_zero_rows_is_an_empty_frame_with_the_schema() -> None:
    empty = generate_customers(0)
    assert len(empty) == 0
    assert tuple(empty.columns) == CUSTOMERS_RAW.column_names
