from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ml.features import FeatureSet, FeatureValidationError
from ml.models import load
from ml.models.churn.spec import CUSTOMER_FEATURES, FEATURE_NAMES
from ml.schema import (
    CONTRACT_TYPES,
    CUSTOMERS_RAW,
    DATASETS,
    PAYMENT_METHODS,
    REGIONS,
)
from tests.ml.conftest import records

# The feature engine, exercised through the churn model's features.
CHURN = load("churn")
FEATURES = CHURN.features
INPUT_NAMES = FEATURES.input_names
MATRIX_COLUMNS = FEATURES.matrix_columns
build_features = FEATURES.build_features
feature_matrix = FEATURES.feature_matrix
records_to_matrix = FEATURES.records_to_matrix
validate_frame = FEATURES.validate_frame

# --- the batch path --------------------------------------------------------------------------


def test_feature_table_is_the_features_dataset(raw: pd.DataFrame, features: pd.DataFrame) -> None:
    assert CHURN.spec.features is CUSTOMER_FEATURES and CHURN.spec.datasets[0] is CUSTOMER_FEATURES
    assert "customer_features" not in DATASETS  # a model's own table, not a shared one
    assert CUSTOMER_FEATURES.zone == "features"
    assert tuple(features.columns) == CUSTOMER_FEATURES.column_names
    assert {c: str(t) for c, t in features.dtypes.items()} == {
        c.name: c.pandas_dtype for c in CUSTOMER_FEATURES.columns
    }
    assert features.index.equals(raw.index)
    assert set(FEATURE_NAMES) < set(CUSTOMER_FEATURES.column_names)


def test_matrix_has_no_nan_and_declared_columns(features: pd.DataFrame) -> None:
    matrix = feature_matrix(features)
    assert matrix.shape == (len(features), len(MATRIX_COLUMNS))
    assert matrix.dtype == np.float64
    assert np.isfinite(matrix).all()
    # One indicator set per row for each categorical feature.
    for name in ("contract_type", "payment_method", "region"):
        cols = [j for j, c in enumerate(MATRIX_COLUMNS) if c.startswith(f"{name}=")]
        assert (matrix[:, cols].sum(axis=1) == 1).all()


def test_missing_inputs_have_declared_treatments(features: pd.DataFrame, raw: pd.DataFrame) -> None:
    no_total = raw["total_charges"].isna().to_numpy()
    assert (features["total_charges_missing"].to_numpy()[no_total] == 1).all()
    assert np.allclose(
        features["avg_monthly_spend"].to_numpy()[no_total],
        raw["monthly_charges"].to_numpy()[no_total],
    )
    no_payment = raw["payment_method"].isna().to_numpy()
    assert (features["payment_method"].to_numpy()[no_payment] == "unknown").all()


def test_build_features_does_not_modify_its_input(raw: pd.DataFrame) -> None:
    before = raw.copy()
    build_features(raw)
    pd.testing.assert_frame_equal(raw, before)


def test_accepts_plain_pandas_dtypes(raw: pd.DataFrame) -> None:
    plain = raw.head(50).astype(
        {"tenure_months": "float64", "contract_type": "object", "region": "category"}
    )
    plain["is_senior"] = plain["is_senior"].astype(bool)
    expected = feature_matrix(build_features(raw.head(50)))
    assert np.array_equal(feature_matrix(build_features(plain)), expected)


def test_missing_columns_are_named(raw: pd.DataFrame) -> None:
    with pytest.raises(FeatureValidationError) as err:
        build_features(raw.drop(columns=["region", "tenure_months"]))
    assert "missing column 'region'" in str(err.value)
    assert "missing column 'tenure_months'" in str(err.value)


def test_wrong_dtypes_are_named(raw: pd.DataFrame) -> None:
    bad = raw.head(10).astype({"monthly_charges": "string", "is_senior": "Int64"})
    with pytest.raises(FeatureValidationError) as err:
        validate_frame(bad)
    message = str(err.value)
    assert "column 'monthly_charges' has dtype string; expected numbers" in message
    assert "column 'is_senior' has dtype Int64; expected booleans" in message


def _corrupt(raw: pd.DataFrame) -> pd.DataFrame:
    bad = raw.head(20).copy()
    bad.loc[bad.index[0], "monthly_charges"] = -5.0  # out of range
    bad.loc[bad.index[1], "region"] = "mars"  # not allowed
    bad.loc[bad.index[2], "contract_type"] = pd.NA  # required
    bad.loc[bad.index[3], "tenure_months"] = 601  # out of range
    bad.loc[bad.index[4], "monthly_charges"] = np.inf
    return bad


def test_bad_rows_raise_with_counts_by_reason(raw: pd.DataFrame) -> None:
    with pytest.raises(FeatureValidationError) as err:
        build_features(_corrupt(raw))
    problems = err.value.problems
    assert "monthly_charges: out of range [0, 10000] (2 of 20 rows)" in problems
    assert any(p.startswith("region: not one of ['north'") for p in problems)
    assert "contract_type: null in a required column (1 of 20 rows)" in problems
    assert "tenure_months: out of range [0, 600] (1 of 20 rows)" in problems


def test_bad_rows_can_be_rejected_and_counted(raw: pd.DataFrame) -> None:
    bad = _corrupt(raw)
    valid, report = validate_frame(bad, on_invalid="reject")
    assert (report.n_rows, report.n_rejected, report.n_valid) == (20, 5, 15)
    assert report.reasons["monthly_charges: out of range [0, 10000]"] == 2
    assert list(valid.index) == list(bad.index[5:])
    assert len(build_features(valid)) == 15


def test_fraction_in_an_integer_column_is_refused(raw: pd.DataFrame) -> None:
    bad = raw.head(5).astype({"support_tickets": "float64"})
    bad.loc[bad.index[0], "support_tickets"] = 1.5
    with pytest.raises(FeatureValidationError, match="support_tickets: not a whole number"):
        validate_frame(bad)


def test_on_invalid_must_be_known(raw: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="on_invalid must be 'raise' or 'reject'"):
        validate_frame(raw, on_invalid="drop")  # type: ignore[arg-type]


def test_feature_matrix_refuses_a_bad_table(features: pd.DataFrame) -> None:
    with pytest.raises(FeatureValidationError, match="missing column 'charge_trend'"):
        feature_matrix(features.drop(columns=["charge_trend"]))
    bad = features.head(5).copy()
    bad["region"] = bad["region"].astype(object)
    bad.loc[bad.index[0], "region"] = "atlantis"
    with pytest.raises(FeatureValidationError, match=r"feature 'region': 1 values not in"):
        feature_matrix(bad)


def test_feature_table_roundtrips_through_parquet(features: pd.DataFrame, tmp_path: Any) -> None:
    path = tmp_path / "features.parquet"
    features.to_parquet(path)
    assert np.array_equal(feature_matrix(pd.read_parquet(path)), feature_matrix(features))


# --- the online path -------------------------------------------------------------------------


def _record(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "tenure_months": 12,
        "monthly_charges": 70.5,
        "total_charges": 800.0,
        "contract_type": "one-year",
        "payment_method": "card",
        "support_tickets": 1,
        "data_usage_gb": 12.5,
        "region": "north",
        "is_senior": False,
    }
    base.update(overrides)
    return base


def test_extra_keys_are_ignored_and_nullable_inputs_may_be_null() -> None:
    a = records_to_matrix([_record(customer_id="C1")])
    b = records_to_matrix([_record()])
    assert np.array_equal(a, b)
    m = records_to_matrix([_record(total_charges=None, payment_method=None, data_usage_gb=None)])
    assert np.isfinite(m).all()


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({k: v for k, v in _record().items() if k != "region"}, "missing feature 'region'"),
        (_record(tenure_months="12"), "feature 'tenure_months' must be a number; got str '12'"),
        (_record(monthly_charges=True), "feature 'monthly_charges' must be a number; got bool"),
        (_record(is_senior=1), "feature 'is_senior' must be true or false; got int 1"),
        (_record(region="mars"), "feature 'region' is 'mars'; allowed values: ['north'"),
        (_record(region=3), "feature 'region' must be a string, one of"),
        (_record(contract_type=None), "feature 'contract_type' is required and cannot be null"),
        (_record(monthly_charges=-1), "feature 'monthly_charges' is -1; must be in [0, 10000]"),
        (_record(monthly_charges=math.inf), "feature 'monthly_charges' is inf; must be in"),
        (_record(support_tickets=1.5), "feature 'support_tickets' is 1.5; must be a whole number"),
        (_record(tenure_months=math.nan), "feature 'tenure_months' is required"),
    ],
)
def test_bad_records_are_explained(record: dict[str, Any], message: str) -> None:
    with pytest.raises(FeatureValidationError) as err:
        records_to_matrix([record])
    assert message in str(err.value)


def test_every_problem_of_a_batch_is_reported_with_its_position() -> None:
    with pytest.raises(FeatureValidationError) as err:
        records_to_matrix([_record(), _record(region="mars"), "oops", _record(is_senior=None)])  # type: ignore[list-item]
    assert err.value.problems == (
        "record 1: feature 'region' is 'mars'; allowed values: ['north', 'south', 'east', 'west']",
        "record 2: expected an object of feature values, got str",
        "record 3: feature 'is_senior' is required and cannot be null",
    )


def test_no_records_is_an_error() -> None:
    with pytest.raises(FeatureValidationError, match="no records"):
        records_to_matrix([])


# --- parity: one definition, two paths -------------------------------------------------------

_finite = {"allow_nan": False, "allow_infinity": False}
_record_strategy = st.fixed_dictionaries(
    {
        "tenure_months": st.integers(0, 600),
        "monthly_charges": st.floats(0, 10_000, **_finite),
        "total_charges": st.none() | st.floats(0, 1_000_000, **_finite),
        "contract_type": st.sampled_from(CONTRACT_TYPES),
        "payment_method": st.none() | st.sampled_from(PAYMENT_METHODS),
        "support_tickets": st.integers(0, 1_000),
        "data_usage_gb": st.none() | st.floats(0, 100_000, **_finite),
        "region": st.sampled_from(REGIONS),
        "is_senior": st.booleans(),
    }
)


def _frame(recs: list[dict[str, Any]]) -> pd.DataFrame:
    dtypes = {c.name: c.pandas_dtype for c in CUSTOMERS_RAW.columns if c.name in INPUT_NAMES}
    return pd.DataFrame(recs, columns=list(INPUT_NAMES)).astype(dtypes)


@settings(max_examples=80, deadline=None)
@given(st.lists(_record_strategy, min_size=1, max_size=40))
def test_batch_and_online_paths_give_identical_features(recs: list[dict[str, Any]]) -> None:
    batch = feature_matrix(build_features(_frame(recs)))
    online = records_to_matrix(recs)
    one_by_one = np.vstack([records_to_matrix([r]) for r in recs])
    assert np.array_equal(batch, online)
    assert np.array_equal(batch, one_by_one)
    assert np.isfinite(batch).all()


def test_parity_on_generated_data(raw: pd.DataFrame) -> None:
    head = raw.head(300)
    assert np.array_equal(feature_matrix(build_features(head)), records_to_matrix(records(head)))


# --- the engine is the model's: built from a spec and its derivation --------------------------


def test_a_feature_set_follows_its_spec() -> None:
    assert isinstance(FEATURES, FeatureSet) and CHURN.features is FEATURES  # built once
    assert FEATURES.feature_names == CHURN.spec.feature_names == FEATURE_NAMES
    assert FEATURES.input_names == CHURN.spec.inputs
    assert FEATURES.numeric_features + FEATURES.categorical_features == FEATURE_NAMES
    assert FEATURES.vocabularies["payment_method"][-1] == "unknown"
    assert MATRIX_COLUMNS[: len(FEATURES.numeric_features)] == FEATURES.numeric_features
    assert len(MATRIX_COLUMNS) == len(FEATURES.numeric_features) + sum(
        len(v) for v in FEATURES.vocabularies.values()
    )


def test_a_derivation_that_leaves_a_feature_out_is_caught_at_the_matrix(raw: pd.DataFrame) -> None:
    def partial(cols: Any) -> dict[str, np.ndarray]:
        derived = CHURN.derive(cols)
        del derived["charge_trend"]
        return derived

    broken = FeatureSet(CHURN.spec, partial)
    with pytest.raises(KeyError, match="charge_trend"):
        broken.records_to_matrix(records(raw.head(1)))
