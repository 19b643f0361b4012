"""What the models' known-value tests share: crafted raw rows as the batch path's table and the
online path's records, and the two checks against features worked out by hand."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pytest

from ml.model import Model
from ml.schema import CUSTOMERS_RAW

Row = tuple[Any, ...]


def raw_frame(model: Model, rows: Sequence[Row]) -> pd.DataFrame:
    """`rows` (values in the order of the model's inputs) as a raw table of the schema's dtypes."""
    columns = model.spec.inputs
    frame = pd.DataFrame([dict(zip(columns, row, strict=True)) for row in rows])
    return frame.astype({c: CUSTOMERS_RAW.column(c).pandas_dtype for c in columns})


def records(model: Model, rows: Sequence[Row]) -> list[dict[str, Any]]:
    """`rows` as the JSON records a client sends (a missing value is null)."""
    out = []
    for row in rows:
        record = dict(zip(model.spec.inputs, row, strict=True))
        out.append(
            {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in record.items()}
        )
    return out


def check_batch(model: Model, row: Row, expected: Mapping[str, Any]) -> None:
    """The batch path (`build_features`) derives exactly `expected` from `row`."""
    got = model.features.build_features(raw_frame(model, [row])).iloc[0].to_dict()
    for name, value in expected.items():
        if isinstance(value, str):
            assert got[name] == value, name
        else:
            assert got[name] == pytest.approx(value, rel=1e-12, abs=1e-12), name


def check_online(model: Model, rows: Sequence[Row], expected: Sequence[Mapping[str, Any]]) -> None:
    """The online path (`records_to_matrix`) gives the matrix of the hand-computed features."""
    table = pd.DataFrame(list(expected)).astype(
        {c.name: c.pandas_dtype for c in model.spec.features.columns if c.name in expected[0]}
    )
    np.testing.assert_allclose(
        model.features.records_to_matrix(records(model, rows)),
        model.features.feature_matrix(table),
        rtol=1e-12,
        atol=1e-12,
    )
