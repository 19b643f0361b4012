"""The feature engine: one declaration, one transform, two paths — for any model.

A model (`ml.models.<name>`) declares the raw columns it reads (`ModelSpec.inputs`, columns of its
raw dataset), its features table (`ModelSpec.features`) and one vectorized derivation (`derive`:
numpy over column arrays). `FeatureSet(spec, derive)` (`ml.model.Model.features`) validates the
inputs against the schema and runs that same derivation on both paths:

* batch: `build_features(raw_frame)` returns the features-zone table (the spec's `features`
  dataset), and `feature_matrix(table)` turns it into the float matrix the estimator consumes
  (`matrix_columns`: numeric features, then a 0/1 indicator per categorical value);
* online: `records_to_matrix(records)` validates request records (plain dicts, as parsed from
  JSON or CSV) and derives the same matrix without building a DataFrame, so a single record costs
  tens of microseconds.

`feature_matrix(build_features(frame))` and `records_to_matrix(frame's records)` are equal (a
property-based test holds them to it). Categorical features take their values from declared
vocabularies (the schema's allowed values) and are one-hot encoded here, so the matrix is all
float64 and never contains NaN: every missing input has a declared treatment.

`derive` receives numeric inputs as float64 (NaN = missing), categorical inputs as float64
indices into the input column's vocabulary (NaN = missing), booleans as 0.0/1.0; it returns every
feature as float64 without NaN, categorical features as indices into the feature's vocabulary.

Bad input never becomes a silent NaN: a missing column, a wrong dtype, a null in a required column,
a value out of the schema's range or outside its allowed values raises `FeatureValidationError`
naming the column, the problem and what is allowed; `validate_frame(..., on_invalid="reject")`
drops bad rows instead and counts them by reason.

This module ships inside the model artifact (`code/ml/features.py`): it may import only numpy,
pandas and `ml.schema` (pyarrow, when installed, speeds up the batch path; the online path never
needs it: the serving container may not ship it).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from ml.schema import Column

if TYPE_CHECKING:
    from ml.models import ModelSpec

Derive = Callable[[Mapping[str, np.ndarray]], dict[str, np.ndarray]]


@dataclass(frozen=True, slots=True)
class Feature:
    """One model input: its name, kind and, for a categorical feature, its vocabulary."""

    name: str
    kind: Literal["numeric", "categorical"]
    description: str
    vocabulary: tuple[str, ...] = ()


def _feature(column: Column) -> Feature:
    if column.type == "string":
        assert column.allowed is not None, column.name
        return Feature(column.name, "categorical", column.description, column.allowed)
    return Feature(column.name, "numeric", column.description)


class FeatureValidationError(ValueError):
    """Input that the feature code refuses, with every problem found (one line each)."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("invalid input: " + "; ".join(self.problems))


@dataclass(frozen=True, slots=True)
class ValidationReport:
    """What `validate_frame` found: rows in, rows rejected, and rejections by reason."""

    n_rows: int
    n_rejected: int
    reasons: dict[str, int] = field(default_factory=dict)

    @property
    def n_valid(self) -> int:
        return self.n_rows - self.n_rejected


def _row_error(report: ValidationReport) -> FeatureValidationError:
    return FeatureValidationError(
        [f"{reason} ({count} of {report.n_rows} rows)" for reason, count in report.reasons.items()]
    )


def _where(i: int, many: bool) -> str:
    return f"record {i}: " if many else ""


class FeatureSet:
    """A model's features: its inputs, its derivation and its matrix layout, with both paths.

    Built once per model (`ml.model.Model.features`) from its spec and its `derive` function.
    """

    def __init__(self, spec: ModelSpec, derive: Derive) -> None:
        self.spec = spec
        self.derive = derive
        # The raw columns the model reads, in the order a header-less CSV request lists them.
        self.inputs: tuple[Column, ...] = spec.input_columns
        self.input_names: tuple[str, ...] = tuple(c.name for c in self.inputs)
        # Matrix column order: numeric features first, then categorical codes (the spec's order).
        self.features: tuple[Feature, ...] = tuple(_feature(c) for c in spec.feature_columns)
        self.feature_names: tuple[str, ...] = tuple(f.name for f in self.features)
        self.numeric_features: tuple[str, ...] = tuple(
            f.name for f in self.features if f.kind == "numeric"
        )
        self.categorical_features: tuple[str, ...] = tuple(
            f.name for f in self.features if f.kind == "categorical"
        )
        self.vocabularies: dict[str, tuple[str, ...]] = {
            f.name: f.vocabulary for f in self.features if f.kind == "categorical"
        }
        # The columns of the model matrix: numeric features as they are, categorical ones one-hot
        # encoded here (declared, fixed vocabularies) so that the model needs no encoder of its own.
        self.matrix_columns: tuple[str, ...] = (
            *self.numeric_features,
            *(
                f"{name}={value}"
                for name in self.categorical_features
                for value in self.vocabularies[name]
            ),
        )
        # The features-zone table: the key columns (passed through from the raw frame when
        # present), the features, the label when known.
        self.table = spec.features
        self.label = spec.label
        self._keys: tuple[str, ...] = tuple(
            c for c in spec.features.column_names if c not in (*self.feature_names, spec.label)
        )
        self._input_vocabulary: dict[str, dict[str, float]] = {
            c.name: {v: float(i) for i, v in enumerate(c.allowed)}
            for c in self.inputs
            if c.allowed is not None
        }

    def __repr__(self) -> str:
        return f"FeatureSet({self.spec.name!r}, {len(self.features)} features)"

    # -----------------------------------------------------------------------------------------
    # The transform: shared by both paths.
    # -----------------------------------------------------------------------------------------

    def _stack(self, derived: Mapping[str, np.ndarray]) -> np.ndarray:
        """The model matrix (`matrix_columns`): numeric features, then one 0/1 indicator per
        vocabulary value of each categorical feature."""
        n = len(derived[self.feature_names[0]])
        # Column-major: copying whole columns is several times faster than interleaving rows, and
        # scikit-learn takes either layout.
        matrix = np.empty((n, len(self.matrix_columns)), dtype=np.float64, order="F")
        for j, name in enumerate(self.numeric_features):
            matrix[:, j] = derived[name]
        j = len(self.numeric_features)
        for name in self.categorical_features:
            codes = derived[name]
            for i in range(len(self.vocabularies[name])):
                np.equal(codes, float(i), out=matrix[:, j], casting="unsafe")
                j += 1
        return matrix

    # -----------------------------------------------------------------------------------------
    # Batch path: frames.
    # -----------------------------------------------------------------------------------------

    def validate_frame(
        self, frame: pd.DataFrame, *, on_invalid: Literal["raise", "reject"] = "raise"
    ) -> tuple[pd.DataFrame, ValidationReport]:
        """Check a raw frame's model inputs against the schema.

        Missing columns and wrong dtypes always raise `FeatureValidationError` (no row could be
        used). Row problems (null in a required column, value out of range, not an allowed value,
        a fraction in an integer column) raise too with `on_invalid="raise"`; with `"reject"` the
        bad rows are dropped and counted by reason (`"<column>: <reason>"`). The frame is never
        modified.
        """
        if on_invalid not in ("raise", "reject"):
            raise ValueError(f"on_invalid must be 'raise' or 'reject', got {on_invalid!r}")
        _, bad, report = self._inspect(frame)
        if report.n_rejected and on_invalid == "raise":
            raise _row_error(report)
        valid = frame.loc[~bad] if report.n_rejected else frame
        return valid, report

    def _inspect(
        self, frame: pd.DataFrame
    ) -> tuple[dict[str, np.ndarray], np.ndarray, ValidationReport]:
        """Input columns as arrays (see `derive`), the mask of bad rows, and the report."""
        _check_columns(frame, self.inputs)
        cols: dict[str, np.ndarray] = {}
        bad = np.zeros(len(frame), dtype=bool)
        reasons: dict[str, int] = {}
        for column in self.inputs:
            cols[column.name], problems = _column_values(column, frame[column.name])
            for reason, mask in problems.items():
                count = int(mask.sum())
                if count:
                    reasons[f"{column.name}: {reason}"] = count
                    bad |= mask
        report = ValidationReport(n_rows=len(frame), n_rejected=int(bad.sum()), reasons=reasons)
        return cols, bad, report

    def build_features(self, raw: pd.DataFrame) -> pd.DataFrame:
        """The features-zone table (the columns of the spec's `features` dataset) for a raw frame.

        Raises `FeatureValidationError` on any bad input; to drop and count bad rows instead, pass
        the frame through `validate_frame(raw, on_invalid="reject")` first. The key columns
        (`customer_id`, `event_time`) and the label are carried over when the raw frame has them.
        The input is not modified.
        """
        cols, _, report = self._inspect(raw)
        if report.n_rejected:
            raise _row_error(report)
        derived = self.derive(cols)
        out: dict[str, object] = {}
        for name in self._keys:
            if name in raw.columns:
                out[name] = raw[name]
        for feature in self.features:
            values = derived[feature.name]
            if feature.kind == "categorical":
                out[feature.name] = _decode(values, feature.vocabulary)
            else:
                out[feature.name] = values
        if self.label in raw.columns:
            out[self.label] = raw[self.label]
        table = pd.DataFrame(out, index=raw.index, copy=False)
        dtypes = {c.name: c.pandas_dtype for c in self.table.columns if c.name in table.columns}
        return table.astype(dtypes)

    def feature_matrix(self, features: pd.DataFrame) -> np.ndarray:
        """The model's input matrix (N x len(matrix_columns), float64) from a feature table."""
        missing = [name for name in self.feature_names if name not in features.columns]
        if missing:
            raise FeatureValidationError(
                [f"feature table is missing column {name!r}" for name in missing]
            )
        columns: dict[str, np.ndarray] = {}
        problems: list[str] = []
        for feature in self.features:
            series = features[feature.name]
            if feature.kind == "categorical":
                codes = _codes(series, feature.vocabulary)
                unknown = np.isnan(codes)
                if unknown.any():
                    problems.append(
                        f"feature {feature.name!r}: {int(unknown.sum())} values not in "
                        f"{list(feature.vocabulary)}"
                    )
                columns[feature.name] = codes
            else:
                if not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
                    problems.append(
                        f"feature {feature.name!r} has dtype {series.dtype}, not numeric"
                    )
                    continue
                values = series.to_numpy(dtype=np.float64, na_value=np.nan)
                if np.isnan(values).any():
                    problems.append(
                        f"feature {feature.name!r} has {int(np.isnan(values).sum())} nulls"
                    )
                columns[feature.name] = values
        if problems:
            raise FeatureValidationError(problems)
        return self._stack(columns)

    # -----------------------------------------------------------------------------------------
    # Online path: request records.
    # -----------------------------------------------------------------------------------------

    def records_to_matrix(self, records: Sequence[Mapping[str, object]]) -> np.ndarray:
        """Validate request records and derive the model's input matrix, without pandas.

        Each record maps input column names to JSON-typed values (int/float, str, bool, None);
        extra keys are ignored. Any problem raises `FeatureValidationError` listing every problem
        found, each prefixed with the record's position when there is more than one record.
        """
        if not records:
            raise FeatureValidationError(["no records: send at least one record"])
        rows: list[list[float]] = []
        problems: list[str] = []
        many = len(records) > 1
        for i, record in enumerate(records):
            if not isinstance(record, Mapping):
                problems.append(
                    f"{_where(i, many)}expected an object of feature values, got "
                    f"{type(record).__name__}"
                )
                continue
            row, record_problems = self._record_values(record)
            problems.extend(_where(i, many) + p for p in record_problems)
            rows.append(row)
        if problems:
            raise FeatureValidationError(problems)
        if len(rows) == 1:
            cols = {
                name: np.array([v], dtype=np.float64)
                for name, v in zip(self.input_names, rows[0], strict=True)
            }
        else:
            block = np.array(rows, dtype=np.float64)
            cols = {name: block[:, j] for j, name in enumerate(self.input_names)}
        return self._stack(self.derive(cols))

    def _record_values(self, record: Mapping[str, object]) -> tuple[list[float], list[str]]:
        row: list[float] = []
        problems: list[str] = []
        for column in self.inputs:
            name = column.name
            if name not in record:
                problems.append(f"missing feature {name!r} ({column.description})")
                row.append(math.nan)
                continue
            value = record[name]
            if value is None or (type(value) is float and math.isnan(value)):
                if not column.nullable:
                    problems.append(f"feature {name!r} is required and cannot be null")
                row.append(math.nan)
                continue
            if column.type == "string":
                code = self._input_vocabulary[name].get(value) if type(value) is str else None
                if code is None:
                    allowed = list(column.allowed or ())
                    if type(value) is str:
                        problems.append(f"feature {name!r} is {value!r}; allowed values: {allowed}")
                    else:
                        problems.append(
                            f"feature {name!r} must be a string, one of {allowed}; "
                            f"got {type(value).__name__} {value!r}"
                        )
                    row.append(math.nan)
                else:
                    row.append(code)
            elif column.type == "boolean":
                if type(value) is not bool:
                    problems.append(
                        f"feature {name!r} must be true or false; got "
                        f"{type(value).__name__} {value!r}"
                    )
                    row.append(math.nan)
                else:
                    row.append(1.0 if value else 0.0)
            else:
                if type(value) not in (int, float):
                    problems.append(
                        f"feature {name!r} must be a number; got {type(value).__name__} {value!r}"
                    )
                    row.append(math.nan)
                    continue
                number = float(value)  # type: ignore[arg-type]
                low = column.minimum if column.minimum is not None else -math.inf
                high = column.maximum if column.maximum is not None else math.inf
                if not low <= number <= high:
                    problems.append(
                        f"feature {name!r} is {value!r}; must be in [{low:g}, {high:g}]"
                    )
                elif column.type == "bigint" and not number.is_integer():
                    problems.append(f"feature {name!r} is {value!r}; must be a whole number")
                row.append(number)
        return row, problems


# ---------------------------------------------------------------------------------------------
# Column helpers: shared by every model.
# ---------------------------------------------------------------------------------------------


def _check_columns(frame: pd.DataFrame, inputs: Sequence[Column]) -> None:
    problems: list[str] = []
    for column in inputs:
        if column.name not in frame.columns:
            problems.append(f"missing column {column.name!r} ({column.description})")
            continue
        dtype = frame[column.name].dtype
        if not _dtype_ok(column, dtype):
            problems.append(
                f"column {column.name!r} has dtype {dtype}; expected {_expected(column)}"
            )
    if problems:
        raise FeatureValidationError(problems)


def _dtype_ok(column: Column, dtype: object) -> bool:
    types = pd.api.types
    if column.type in ("double", "bigint"):
        return bool(types.is_numeric_dtype(dtype) and not types.is_bool_dtype(dtype))
    if column.type == "boolean":
        return bool(types.is_bool_dtype(dtype))
    if isinstance(dtype, pd.CategoricalDtype):
        return bool(types.is_string_dtype(dtype.categories.dtype))
    return bool(types.is_string_dtype(dtype))


def _expected(column: Column) -> str:
    if column.type in ("double", "bigint"):
        return f"numbers (Glue {column.type}, pandas {column.pandas_dtype})"
    if column.type == "boolean":
        return "booleans (pandas boolean or bool)"
    return "strings (pandas string)"


def _column_values(column: Column, series: pd.Series) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The column as a float64 array (numbers; vocabulary indices for strings; 0/1 for booleans;
    NaN for missing or unknown) and the masks of its bad rows, by reason."""
    problems: dict[str, np.ndarray] = {}
    if column.type == "string":
        values = _codes(series, column.allowed or ())
        null = series.isna().to_numpy(dtype=bool)
        problems[f"not one of {list(column.allowed or ())}"] = ~null & np.isnan(values)
    else:
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        null = np.isnan(values)
    if column.type in ("double", "bigint"):
        with np.errstate(invalid="ignore"):
            low = column.minimum if column.minimum is not None else -math.inf
            high = column.maximum if column.maximum is not None else math.inf
            problems[f"out of range [{low:g}, {high:g}]"] = ~null & ~(
                (values >= low) & (values <= high)
            )
            if column.type == "bigint" and pd.api.types.is_float_dtype(series.dtype):
                problems["not a whole number"] = np.isfinite(values) & (values != np.floor(values))
    if not column.nullable:
        problems["null in a required column"] = null
    return values, problems


def _decode(codes: np.ndarray, vocabulary: tuple[str, ...]) -> pd.api.extensions.ExtensionArray:
    """Strings (pandas `string` dtype) from vocabulary indices (float64 without NaN)."""
    try:
        import pyarrow as pa
    except ImportError:
        return pd.Categorical.from_codes(codes.astype(np.int64), vocabulary).astype("string")
    return pd.arrays.ArrowStringArray(pa.array(vocabulary).take(pa.array(codes.astype(np.int32))))


def _codes(series: pd.Series, vocabulary: tuple[str, ...]) -> np.ndarray:
    """Vocabulary index of each value (float64), NaN for null or unknown values."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        series = series.astype("string")
    try:
        import pyarrow as pa
        import pyarrow.compute as pc
    except ImportError:
        found: np.ndarray = np.asarray(
            pd.Categorical(series, categories=vocabulary).codes, dtype=np.float64
        )
        found[found < 0] = np.nan
        return found
    array = pa.array(series, from_pandas=True)
    if not pa.types.is_string(array.type) and not pa.types.is_large_string(array.type):
        array = array.cast(pa.string())
    index = pc.index_in(array, value_set=pa.array(vocabulary, type=array.type))
    codes: np.ndarray = index.to_numpy(zero_copy_only=False).astype(np.float64)
    return codes
