"""Lake data against its schema: the errors, the Arrow schema, and `conform_frame`.

Frames are validated against ``ml.schema`` before anything is written: exact column set, dtypes
convertible to the declared Glue type (ISO-8601 strings parse as timestamps, naive timestamps are
taken as UTC), nullability, minimum/maximum and allowed values. Every problem is reported at once,
naming the column and what was expected. Timestamps are stored as microseconds (UTC), which
Athena reads; sub-microsecond digits are truncated. `ml.lake` writes and reads what passes.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ml.schema import DATASETS, PARTITION_KEY, Column, Dataset

ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "double": pa.float64(),
    "bigint": pa.int64(),
    "boolean": pa.bool_(),
    "timestamp": pa.timestamp("us", tz="UTC"),
}


class LakeError(ValueError):
    """A lake operation cannot proceed; the message says what and why."""


class SchemaError(LakeError):
    """A frame does not match its dataset's schema. `problems` lists every mismatch."""

    def __init__(self, dataset: str, problems: Sequence[str]) -> None:
        self.dataset = dataset
        self.problems = tuple(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"data does not match dataset {dataset!r}:\n{lines}")


class UnknownDatasetError(LakeError):
    def __init__(self, name: str) -> None:
        self.name = name
        known = sorted(lake_datasets())
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        super().__init__(f"unknown dataset {name!r}{hint} known datasets: {', '.join(known)}")


def lake_datasets() -> dict[str, Dataset]:
    """Every dataset the lake holds, by name: the shared ones (`ml.schema.DATASETS`) and each
    model's own tables (`ModelSpec.datasets` of every package in `ml.models`)."""
    from ml.models import names, spec

    found = dict(DATASETS)
    for model in names():
        found.update((d.name, d) for d in spec(model).datasets)
    return found


def get_dataset(name: str) -> Dataset:
    """The shipped dataset called `name`, or `UnknownDatasetError` with a suggestion."""
    try:
        return lake_datasets()[name]
    except KeyError:
        raise UnknownDatasetError(name) from None


# --------------------------------------------------------------------------------------------
# Validation


def arrow_schema(dataset: Dataset, columns: Sequence[str] | None = None) -> pa.Schema:
    """The Parquet schema of a dataset's data files (partition keys are not stored in files)."""
    names = dataset.column_names if columns is None else tuple(columns)
    return pa.schema(
        [
            pa.field(c.name, ARROW_TYPES[c.type], nullable=c.nullable)
            for c in (dataset.column(n) for n in names)
        ]
    )


def empty_frame(dataset: Dataset, columns: Sequence[str] | None = None) -> pd.DataFrame:
    names = dataset.column_names if columns is None else tuple(columns)
    return pd.DataFrame({n: pd.Series([], dtype=dtype_of(dataset, n)) for n in names})


def dtype_of(dataset: Dataset, name: str) -> str:
    return "string" if name == PARTITION_KEY else dataset.column(name).pandas_dtype


def _example(values: pd.Series) -> str:
    shown = ", ".join(repr(v.item() if hasattr(v, "item") else v) for v in values.head(3))
    return f"{shown}{', ...' if len(values) > 3 else ''}"


def _convert(series: pd.Series, column: Column) -> tuple[pd.Series | None, str | None]:
    """`series` as the column's pandas dtype, or a problem naming the column and expected type."""
    name, glue = column.name, column.type
    if pd.api.types.is_object_dtype(series.dtype):
        series = series.infer_objects()  # Python ints/floats/datetimes in an object column
    dtype = series.dtype
    expected = f"column {name!r}: expected {glue} ({column.pandas_dtype})"
    is_bool = pd.api.types.is_bool_dtype(dtype)
    is_text = _is_text(series)
    if glue == "string":
        if is_text:
            return series.astype("string"), None
        return None, f"{expected}, got {dtype}"
    if glue == "double":
        if pd.api.types.is_numeric_dtype(dtype) and not is_bool:
            return series.astype("float64"), None
        return None, f"{expected}, got {dtype}{_unparsable(series, pd.to_numeric)}"
    if glue == "bigint":
        if pd.api.types.is_integer_dtype(dtype):
            return series.astype("Int64"), None
        if pd.api.types.is_float_dtype(dtype):
            present = series.dropna()
            fractional = present[(present % 1) != 0]
            if fractional.empty:
                return series.astype("Int64"), None
            return None, f"{expected}, got {dtype} with non-integer values {_example(fractional)}"
        return None, f"{expected}, got {dtype}{_unparsable(series, pd.to_numeric)}"
    if glue == "boolean":
        if is_bool:
            return series.astype("boolean"), None
        if pd.api.types.is_object_dtype(dtype):
            present = series.dropna()
            if present.map(lambda v: isinstance(v, bool)).all():
                return series.astype("boolean"), None
        return None, f"{expected}, got {dtype}"
    if glue == "timestamp":
        if isinstance(dtype, pd.DatetimeTZDtype):
            return series.dt.tz_convert("UTC").astype("datetime64[ns, UTC]"), None
        if pd.api.types.is_datetime64_dtype(dtype):
            return series.dt.tz_localize("UTC").astype("datetime64[ns, UTC]"), None
        if is_text:
            parsed = pd.to_datetime(series, utc=True, format="ISO8601", errors="coerce")
            bad = series[parsed.isna() & series.notna()]
            if bad.empty:
                return parsed.astype("datetime64[ns, UTC]"), None
            return None, f"{expected} as ISO-8601 text, got unparsable values {_example(bad)}"
        return None, f"{expected}, got {dtype}"
    raise AssertionError(f"unhandled Glue type {glue!r}")  # pragma: no cover - schema Literal


def _is_text(series: pd.Series) -> bool:
    """A string column, or an object column whose present values are all `str`."""
    if isinstance(series.dtype, pd.StringDtype):
        return True
    if pd.api.types.is_object_dtype(series.dtype):
        return bool(series.dropna().map(lambda v: isinstance(v, str)).all())
    return False


def _unparsable(series: pd.Series, parse: Callable[..., Any]) -> str:
    if not _is_text(series):
        return ""
    parsed = parse(series, errors="coerce")
    bad = series[pd.isna(parsed) & series.notna()]
    return f" with non-numeric values {_example(bad)}" if not bad.empty else ""


def _value_problems(series: pd.Series, column: Column) -> list[str]:
    problems: list[str] = []
    name = column.name
    nulls = int(series.isna().sum())
    if nulls and not column.nullable:
        problems.append(f"column {name!r}: {nulls} null value(s), but the column is not nullable")
    if nulls == len(series):
        return problems
    numeric = pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(
        series.dtype
    )
    # One float64 pass for the bounds (missing values are NaN: never out of range); the values
    # named come from the series itself.
    values = series.to_numpy(dtype=np.float64, na_value=np.nan) if numeric else None
    for bound, word, outside in (
        (column.minimum, "below the minimum", np.less),
        (column.maximum, "above the maximum", np.greater),
    ):
        if bound is None:
            continue
        if values is not None:
            bad = series[outside(values, bound)]
        else:
            present = series.dropna()
            bad = present[outside(present, bound)]
        if not bad.empty:
            problems.append(
                f"column {name!r}: {len(bad)} value(s) {word} {bound:g} (e.g. {_example(bad)})"
            )
    if column.allowed is not None:
        found = pc.unique(pa.array(series, from_pandas=True)).drop_null().cast(pa.string())
        unknown = sorted(set(found.to_pylist()) - set(column.allowed))
        if unknown:
            problems.append(
                f"column {name!r}: value(s) {', '.join(map(repr, unknown[:5]))} not allowed; "
                f"allowed: {', '.join(column.allowed)}"
            )
    return problems


def conform_frame(frame: pd.DataFrame, dataset: Dataset) -> pd.DataFrame:
    """A new frame with exactly the dataset's columns, in order, as `Column.pandas_dtype`.

    Raises `SchemaError` listing every problem: missing or extra columns, an empty frame, a dtype
    that cannot hold the declared Glue type, nulls in a required column, values outside
    minimum/maximum or the allowed set. The input frame is not modified.
    """
    problems: list[str] = []
    names = [str(c) for c in frame.columns]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        problems.append(f"duplicated column(s): {', '.join(duplicated)}")
    expected = dataset.column_names
    missing = [n for n in expected if n not in names]
    extra = [n for n in names if n not in expected]
    if missing:
        problems.append(f"missing column(s): {', '.join(missing)}")
    if extra:
        hints = []
        for n in extra:
            close = difflib.get_close_matches(n, missing or expected, n=1)
            hints.append(f"{n} (did you mean {close[0]!r}?)" if close else n)
        problems.append(
            f"unexpected column(s): {', '.join(hints)}; {dataset.name!r} has exactly: "
            f"{', '.join(expected)}"
        )
    if len(frame) == 0:
        problems.append("no rows: nothing to write")
    if problems:
        raise SchemaError(dataset.name, problems)

    if names == list(expected) and all(
        frame[c.name].dtype == pd.api.types.pandas_dtype(c.pandas_dtype) for c in dataset.columns
    ):
        # Already the schema's columns and dtypes (a frame the lake read): check the values only.
        for column in dataset.columns:
            problems.extend(_value_problems(frame[column.name], column))
        if problems:
            raise SchemaError(dataset.name, problems)
        return frame.reset_index(drop=True)  # a new frame; copy-on-write shares the data

    out: dict[str, pd.Series] = {}
    for column in dataset.columns:
        series, problem = _convert(frame[column.name].reset_index(drop=True), column)
        if problem is not None:
            problems.append(problem)
            continue
        assert series is not None
        problems.extend(_value_problems(series, column))
        out[column.name] = series
    if problems:
        raise SchemaError(dataset.name, problems)
    return pd.DataFrame(out)


def load_file(path: str | Path, dataset: Dataset) -> pd.DataFrame:
    """Read a local CSV or Parquet file and conform it to `dataset` (`SchemaError` if it can't)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet", ".pq"):
        kind = suffix or "(none)"
        raise LakeError(f"{path}: unsupported file type {kind!r}; use .csv or .parquet")
    if not path.is_file():
        raise LakeError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise SchemaError(dataset.name, [f"{path} is empty: no header and no rows"])
    if suffix == ".csv":
        # Text columns stay text (an id like "00123" is not a number); the rest is inferred and
        # then converted by `conform_frame`, which names any column that does not fit.
        text = {c.name: "string" for c in dataset.columns if c.type == "string"}
        try:
            frame = pd.read_csv(path, dtype=text)
        except pd.errors.EmptyDataError:
            raise SchemaError(dataset.name, [f"{path} is empty: no header and no rows"]) from None
        except (pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise LakeError(f"{path}: not a readable CSV file: {exc}") from None
    else:
        try:
            frame = pq.read_table(path).to_pandas()
        except pa.ArrowException as exc:
            raise LakeError(f"{path}: not a readable Parquet file: {exc}") from None
    return conform_frame(frame, dataset)
