"""Drift: production traffic against the training baseline, as metrics, alarms' inputs and a report.

The baseline is the JSON `ml.baseline.compute_baseline` writes beside the model (format
`mlplat-baseline/1`): per numeric feature the interior bin edges, the training proportions per bin
and 101 quantiles; per categorical feature the category proportions; the same for the scores.
`Baseline.from_dict` reads that format (and nothing else, so a format change fails loudly).

`compute_drift` bins new data exactly as the baseline did (bin 0 holds x <= e1, bin i holds
e(i) < x <= e(i+1), the last bin x > ek; unseen categories count as `__other__`) and computes, per
feature and for the scores:

* PSI, sum((a - e) ln(a / e)) with proportions clipped at 1e-4: the figure the alarms watch;
* Jensen-Shannon divergence (base 2, in [0, 1]) of the same two histograms;
* for numeric columns, the Kolmogorov-Smirnov statistic of `ml.baseline.ks_statistic`: the
  baseline's CDF interpolated between its 101 quantiles against the new data's empirical CDF,
  evaluated at those quantiles and at 1,001 evenly spaced order statistics of the new data.

A numeric column is one sort of a float64 copy (numpy's vectorized sort, about 10 ms per million
values on this kind of machine; binary-searching every value into the 101 quantiles instead is
several times slower), after which every "how many values are <= t" is a binary search of t; a
categorical column is one pyarrow hash count. The columns of a large window run in threads, one per
core (both release the GIL), so 1,000,000 rows x 20 features take 0.13-0.15 s on two cores
(`mlplat/bench/drift.py`). The scheduled job that runs it over the captured traffic is
`ml.drift.job` (`python -m ml.drift`).

The metric names, namespace and dimensions are defined once, in `ml.contracts`; the monitoring
component imports them from there for its alarms, so what the job puts is what the alarms watch.
"""

from __future__ import annotations

import html
import itertools
import json
import math
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np

# The contract with the alarms and the stack: names in `ml.contracts` (what components import).
from ml.contracts import (
    BASELINE_FILE,
    BASELINE_FORMAT,
    DRIFT_NAMESPACE,
    ENDPOINT_DIMENSION,
    FEATURE_DIMENSION,
    FEATURE_PSI_METRIC,
    PREDICTION_PSI_METRIC,
    REPORT_PREFIX,
    SCORED_ROWS_METRIC,
)
from ml.contracts import OTHER_CATEGORY as OTHER

PSI_EPS = 1e-4


class DriftError(ValueError):
    """Input drift cannot be computed from (a bad baseline, missing columns, no rows)."""


# ---------------------------------------------------------------------------------------------
# The baseline
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NumericReference:
    """A numeric column's training histogram: interior `edges` (k) and `proportions` (k + 1)."""

    edges: np.ndarray
    proportions: np.ndarray
    quantile_levels: np.ndarray  # the CDF levels of `quantile_values` (empty: no KS)
    quantile_values: np.ndarray

    kind: Literal["numeric"] = "numeric"


@dataclass(frozen=True, slots=True)
class CategoricalReference:
    """A categorical column's training frequencies; the last proportion is `__other__`."""

    categories: tuple[str, ...]
    proportions: np.ndarray

    kind: Literal["categorical"] = "categorical"


Reference = NumericReference | CategoricalReference


def _floats(value: Any, where: str) -> np.ndarray:
    if not isinstance(value, list) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in value
    ):
        raise DriftError(f"baseline {where}: expected a list of numbers")
    array = np.asarray(value, dtype=np.float64)
    if not np.all(np.isfinite(array)):
        raise DriftError(f"baseline {where}: non-finite values")
    return array


def _numeric_reference(entry: Mapping[str, Any], where: str) -> NumericReference:
    edges = _floats(entry.get("edges"), f"{where}.edges")
    proportions = _floats(entry.get("proportions"), f"{where}.proportions")
    if len(proportions) != len(edges) + 1:
        raise DriftError(
            f"baseline {where}: {len(edges)} edges need {len(edges) + 1} proportions, "
            f"got {len(proportions)}"
        )
    if np.any(np.diff(edges) <= 0):
        raise DriftError(f"baseline {where}.edges: not strictly increasing")
    quantiles = entry.get("quantiles") or {}
    levels = _floats(quantiles.get("q", []), f"{where}.quantiles.q")
    values = _floats(quantiles.get("values", []), f"{where}.quantiles.values")
    if len(values) not in (0, len(levels)) or np.any(np.diff(values) < 0):
        raise DriftError(f"baseline {where}.quantiles: values must be sorted and match q")
    if len(values) == 0:
        levels = values
    return NumericReference(edges, proportions, levels, values)


def _categorical_reference(entry: Mapping[str, Any], where: str) -> CategoricalReference:
    raw = entry.get("proportions")
    if not isinstance(raw, Mapping) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in raw.values()
    ):
        raise DriftError(f"baseline {where}.proportions: expected an object of numbers")
    categories = tuple(sorted(str(k) for k in raw if k != OTHER))
    proportions = np.array([float(raw[c]) for c in categories] + [float(raw.get(OTHER, 0.0))])
    return CategoricalReference(categories, proportions)


@dataclass(frozen=True, slots=True)
class Baseline:
    """The training distribution of each feature and of the model's scores."""

    features: Mapping[str, Reference]
    score: NumericReference
    n_rows: int

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Baseline:
        """Read `ml.baseline.compute_baseline`'s JSON (format `mlplat-baseline/1`)."""
        if not isinstance(data, Mapping):
            raise DriftError(f"baseline must be a JSON object, got {type(data).__name__}")
        if data.get("format") != BASELINE_FORMAT:
            raise DriftError(
                f"baseline format is {data.get('format')!r}; this code reads {BASELINE_FORMAT!r}"
            )
        entries = data.get("features")
        if not isinstance(entries, Mapping) or not entries:
            raise DriftError("baseline has no features")
        features: dict[str, Reference] = {}
        for name, entry in entries.items():
            where = f"features.{name}"
            if not isinstance(entry, Mapping):
                raise DriftError(f"baseline {where}: expected an object")
            kind = entry.get("kind")
            if kind == "numeric":
                features[str(name)] = _numeric_reference(entry, where)
            elif kind == "categorical":
                features[str(name)] = _categorical_reference(entry, where)
            else:
                raise DriftError(
                    f"baseline {where}.kind is {kind!r}; expected numeric or categorical"
                )
        score = data.get("score")
        if not isinstance(score, Mapping):
            raise DriftError("baseline has no score distribution")
        n_rows = data.get("n_rows")
        return cls(
            features,
            _numeric_reference(score, "score"),
            int(n_rows) if isinstance(n_rows, int) else 0,
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> Baseline:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DriftError(f"baseline is not JSON: {exc}") from None
        return cls.from_dict(data)

    @classmethod
    def from_s3(cls, s3: Any, bucket: str, key: str) -> Baseline:
        """`baseline.json` at `key`, or inside the model artifact when `key` is a `.tar.gz`."""
        from botocore.exceptions import ClientError

        try:
            body: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            raise DriftError(
                f"no baseline at s3://{bucket}/{key} ({code}); training writes baseline.json "
                "beside the model: upload it there or point at the model.tar.gz"
            ) from None
        if key.endswith(".tar.gz"):
            return cls.from_json(_member(body, BASELINE_FILE, f"s3://{bucket}/{key}"))
        return cls.from_json(body)


def _member(archive: bytes, name: str, where: str) -> bytes:
    import io
    import tarfile

    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
            for member in tar.getmembers():
                if member.isfile() and member.name.removeprefix("./") == name:
                    extracted = tar.extractfile(member)
                    if extracted is not None:
                        return extracted.read()
    except tarfile.TarError as exc:
        raise DriftError(f"{where} is not a gzipped tar archive: {exc}") from None
    raise DriftError(f"{where} holds no {name}: was the model trained by ml.train?")


# ---------------------------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------------------------


def psi(expected: np.ndarray, actual: np.ndarray, eps: float = PSI_EPS) -> float:
    """Population stability index of two proportion vectors over the same bins."""
    e = np.clip(np.asarray(expected, dtype=np.float64), eps, None)
    a = np.clip(np.asarray(actual, dtype=np.float64), eps, None)
    if e.shape != a.shape:
        raise DriftError(f"bins differ: {e.shape} expected vs {a.shape} actual")
    return float(np.sum((a - e) * np.log(a / e)))


def jensen_shannon(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon divergence (base 2, 0..1) of two proportion vectors."""
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    p = p / p.sum() if p.sum() > 0 else p
    q = q / q.sum() if q.sum() > 0 else q
    m = (p + q) / 2

    def kl(x: np.ndarray) -> float:
        nz = x > 0
        return float(np.sum(x[nz] * np.log2(x[nz] / m[nz])))

    return max(0.0, min(1.0, (kl(p) + kl(q)) / 2))


@dataclass(frozen=True, slots=True)
class FeatureDrift:
    name: str
    kind: Literal["numeric", "categorical"]
    n: int
    missing: float
    psi: float
    js: float
    ks: float | None
    drifted: bool
    bins: tuple[str, ...]
    expected: tuple[float, ...]
    actual: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "n": self.n,
            "missing": self.missing,
            "psi": self.psi,
            "js": self.js,
            "ks": self.ks,
            "drifted": self.drifted,
            "bins": list(self.bins),
            "expected": list(self.expected),
            "actual": list(self.actual),
        }


def _bin_labels(edges: np.ndarray) -> tuple[str, ...]:
    if len(edges) == 0:
        return ("all",)
    labels = [f"<= {edges[0]:.4g}"]
    labels += [f"({lo:.4g}, {hi:.4g}]" for lo, hi in itertools.pairwise(edges)]
    labels.append(f"> {edges[-1]:.4g}")
    return tuple(labels)


def _sorted_floats(name: str, values: Any) -> np.ndarray:
    """A sorted float64 copy of a column (NaN last); the caller's data is never modified."""
    try:
        if hasattr(values, "to_numpy"):
            array: np.ndarray = values.to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
        else:
            array = np.array(values, dtype=np.float64, copy=True)
    except (TypeError, ValueError) as exc:
        raise DriftError(f"column {name!r} is not numeric: {exc}") from None
    if array.ndim != 1:
        raise DriftError(f"column {name!r} must be one-dimensional, got shape {array.shape}")
    array.sort()  # in place on our own copy
    return array


def _numeric_drift(name: str, values: Any, ref: NumericReference, threshold: float) -> FeatureDrift:
    # One sort (vectorized, ~10-20 ms per million floats) answers every "how many x <= t"
    # question with a binary search per threshold t, instead of a binary search per row.
    x = _sorted_floats(name, values)
    n_total = len(x)
    n = n_total
    if n_total and np.isnan(x[-1]):
        n = int(np.searchsorted(x, np.inf, side="right"))  # NaNs sort after +inf
        x = x[:n]
    if n == 0:
        raise DriftError(f"column {name!r} has no non-missing values")
    at_or_below = np.searchsorted(x, ref.edges, side="right")
    counts = np.diff(np.concatenate(([0], at_or_below, [n])))
    actual = counts / n
    ks: float | None = None
    if len(ref.quantile_values):
        # ml.baseline.ks_statistic's statistic (baseline CDF interpolated between its quantiles),
        # evaluated at the baseline's quantiles and 1,001 evenly spaced order statistics of x.
        sample = x[np.linspace(0, n - 1, min(n, 1001)).astype(np.int64)]
        grid = np.unique(np.concatenate([ref.quantile_values, sample]))
        cdf_ref = np.interp(grid, ref.quantile_values, ref.quantile_levels, left=0.0, right=1.0)
        cdf_new = np.searchsorted(x, grid, side="right") / n
        ks = float(np.max(np.abs(cdf_ref - cdf_new)))
    value = psi(ref.proportions, actual)
    return FeatureDrift(
        name=name,
        kind="numeric",
        n=n,
        missing=float(1 - n / n_total),
        psi=value,
        js=jensen_shannon(ref.proportions, actual),
        ks=ks,
        drifted=value > threshold,
        bins=_bin_labels(ref.edges),
        expected=tuple(float(v) for v in ref.proportions),
        actual=tuple(float(v) for v in actual),
    )


def _categorical_drift(
    name: str, values: Any, ref: CategoricalReference, threshold: float
) -> FeatureDrift:
    import pyarrow as pa
    import pyarrow.compute as pc

    array = (
        values
        if isinstance(values, pa.Array | pa.ChunkedArray)
        else pa.array(values, from_pandas=True)
    )
    if not pa.types.is_string(array.type) and not pa.types.is_large_string(array.type):
        array = array.cast(pa.string())
    n_total = len(array)
    counted = pc.value_counts(array)  # nulls counted under None, dropped below
    by_value = dict(
        zip(counted.field("values").to_pylist(), counted.field("counts").to_pylist(), strict=True)
    )
    by_value.pop(None, None)
    n = int(sum(by_value.values()))
    if n == 0:
        raise DriftError(f"column {name!r} has no non-missing values")
    known = [int(by_value.get(c, 0)) for c in ref.categories]
    actual = np.array([*known, n - sum(known)], dtype=np.float64) / n
    value = psi(ref.proportions, actual)
    return FeatureDrift(
        name=name,
        kind="categorical",
        n=n,
        missing=float(1 - n / n_total) if n_total else 0.0,
        psi=value,
        js=jensen_shannon(ref.proportions, actual),
        ks=None,
        drifted=value > threshold,
        bins=(*ref.categories, OTHER),
        expected=tuple(float(v) for v in ref.proportions),
        actual=tuple(float(v) for v in actual),
    )


def column_drift(name: str, values: Any, ref: Reference, threshold: float) -> FeatureDrift:
    if isinstance(ref, CategoricalReference):
        return _categorical_drift(name, values, ref, threshold)
    return _numeric_drift(name, values, ref, threshold)


# ---------------------------------------------------------------------------------------------
# The report
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DriftReport:
    endpoint_name: str
    window_start: datetime
    window_end: datetime
    threshold: float
    n_rows: int
    features: tuple[FeatureDrift, ...]
    prediction: FeatureDrift | None
    n_rejected: int = 0
    rejected: Mapping[str, int] = field(default_factory=dict)

    @property
    def drifted_features(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features if f.drifted)

    @property
    def prediction_drifted(self) -> bool:
        return self.prediction is not None and self.prediction.drifted

    def feature(self, name: str) -> FeatureDrift:
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(f"no drift result for feature {name!r}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "endpoint_name": self.endpoint_name,
            "window_start": self.window_start.isoformat(),
            "window_end": self.window_end.isoformat(),
            "threshold": self.threshold,
            "metric": "psi",
            "n_rows": self.n_rows,
            "n_rejected": self.n_rejected,
            "rejected": dict(self.rejected),
            "drifted_features": list(self.drifted_features),
            "prediction_drifted": self.prediction_drifted,
            "features": [f.to_dict() for f in self.features],
            "prediction": self.prediction.to_dict() if self.prediction else None,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def to_html(self) -> str:
        """A self-contained page: a table of every column, a histogram per drifted one."""
        esc = html.escape
        rows = []
        for f in (*self.features, *([self.prediction] if self.prediction else [])):
            ks = "" if f.ks is None else f"{f.ks:.3f}"
            flag = "drift" if f.drifted else "ok"
            rows.append(
                f"<tr class='{flag}'><td>{esc(f.name)}</td><td>{f.kind}</td><td>{f.psi:.4f}</td>"
                f"<td>{f.js:.4f}</td><td>{ks}</td><td>{f.n}</td><td>{flag}</td></tr>"
            )
        drifted = [f for f in self.features if f.drifted]
        if self.prediction is not None and self.prediction.drifted:
            drifted.append(self.prediction)
        charts = (
            "\n".join(
                f"<section><h2>{esc(f.name)} (PSI {f.psi:.3f})</h2>{histogram_svg(f)}</section>"
                for f in drifted
            )
            or "<p>No column crossed the threshold.</p>"
        )
        title = f"Drift report: {esc(self.endpoint_name)}"
        return (
            "<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<title>{title}</title><style>"
            "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}"
            "tr.drift{background:#fde2e1}td:first-child{text-align:left}"
            "</style></head><body>"
            f"<h1>{title}</h1><p>Window {esc(self.window_start.isoformat())} to "
            f"{esc(self.window_end.isoformat())}; {self.n_rows} rows scored, {self.n_rejected} "
            f"rejected; PSI threshold {self.threshold:g}.</p>"
            "<table><tr><th>column</th><th>kind</th><th>PSI</th><th>JS</th><th>KS</th>"
            f"<th>rows</th><th>status</th></tr>{''.join(rows)}</table>{charts}</body></html>\n"
        )


# Below this many rows a window is compared column after column: threads would cost more than
# they save.
PARALLEL_MIN_ROWS = 50_000


def _each_column(
    columns: list[tuple[str, Any, Reference]], threshold: float, n_rows: int
) -> list[FeatureDrift]:
    """`column_drift` of each column, in order. A large window's columns run in threads, one per
    core: the work is numpy's sort and pyarrow's hashing, which release the GIL."""
    workers = min(os.cpu_count() or 1, len(columns))
    if n_rows < PARALLEL_MIN_ROWS or workers < 2:
        return [column_drift(name, values, ref, threshold) for name, values, ref in columns]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="drift") as pool:
        return list(pool.map(lambda c: column_drift(c[0], c[1], c[2], threshold), columns))


def compute_drift(
    baseline: Baseline,
    features: Any,
    scores: Any | None,
    *,
    threshold: float,
    endpoint_name: str,
    window_start: datetime,
    window_end: datetime,
    n_rejected: int = 0,
    rejected: Mapping[str, int] | None = None,
) -> DriftReport:
    """Drift of every baseline feature in `features` (a DataFrame or a mapping of columns).

    `scores` are the model's outputs for the same rows (None: no prediction drift).
    """
    if not (isinstance(threshold, int | float) and math.isfinite(threshold) and threshold > 0):
        raise DriftError(f"threshold must be a positive number, got {threshold!r}")
    if not endpoint_name:
        raise DriftError("endpoint_name is empty")
    columns = list(features.keys())
    missing = [name for name in baseline.features if name not in columns]
    if missing:
        raise DriftError(f"feature columns missing from the data: {', '.join(missing)}")
    lengths = {len(features[name]) for name in baseline.features}
    if scores is not None:
        lengths.add(len(scores))
    if len(lengths) != 1:
        raise DriftError(f"columns (and scores) differ in length: {sorted(lengths)}")
    n_rows = lengths.pop()
    if n_rows == 0:
        raise DriftError("no rows to compare against the baseline")
    columns_to_do = [(name, features[name], ref) for name, ref in baseline.features.items()]
    if scores is not None:
        columns_to_do.append(("prediction", scores, baseline.score))
    done = _each_column(columns_to_do, threshold, n_rows)
    results = tuple(done[: len(baseline.features)])
    prediction = done[-1] if scores is not None else None
    return DriftReport(
        endpoint_name,
        window_start,
        window_end,
        float(threshold),
        n_rows,
        results,
        prediction,
        n_rejected,
        dict(rejected or {}),
    )


# ---------------------------------------------------------------------------------------------
# Inline SVG charts (this report's histograms; `ml.monitor_report` draws its line charts with
# the same axis labels)
# ---------------------------------------------------------------------------------------------

AXIS_FONT_SIZE = 10  # px, every axis label
# A label's box, in em of its font size: the ascent and descent of DejaVu Sans (0.928 / 0.236), the
# widest of the sans-serif faces browsers fall back on (Arial, Helvetica, Liberation Sans are
# narrower and shorter).
FONT_ASCENT_EM = 0.93
FONT_DESCENT_EM = 0.24
LABEL_GAP = 2.0  # px of clear space between two label boxes
FONT_FAMILY = "DejaVu Sans, Arial, Helvetica, sans-serif"
# Upper bounds of glyph advances, in em. The figures are DejaVu Sans's rounded up (its glyphs are
# the widest of the faces above); a test measures them against the font.
_GLYPH_EM_CLASSES: tuple[tuple[str, float], ...] = (
    (" ',.:;|/\\-()[]ijlIJft", 0.40),
    ('0123456789abcdeghknopqrsuvxyz!"*_`?${}', 0.64),
    ("ABCDEFGHKLNOPQRSTUVXYZ&", 0.80),
    ("mwMW#%+<=>^~@", 1.00),
)
_GLYPH_EM = {c: em for chars, em in _GLYPH_EM_CLASSES for c in chars}
_OTHER_GLYPH_EM = 1.25  # anything else (accents, CJK, symbols): wider than any of the above
_TURN = math.radians(45)  # labels that do not fit side by side are turned by this angle


def label_width(text: str, font_size: float = AXIS_FONT_SIZE) -> float:
    """An upper bound of `text`'s rendered width in px: no browser draws it wider."""
    return font_size * sum(_GLYPH_EM.get(c, _OTHER_GLYPH_EM) for c in text)


@dataclass(frozen=True, slots=True)
class AxisLabels:
    """How the labels of an axis of evenly spaced slots are drawn so that no two boxes overlap.

    Side by side when the widest label fits its slot; otherwise turned by 45 degrees, which
    separates neighbours by `slot * sin 45` across their baselines whatever their length; when even
    that is less than a line, only every `step`-th label is drawn (the bars keep every label in
    their tooltip).
    """

    texts: tuple[str, ...]
    slot: float
    turned: bool
    step: int
    font_size: float

    @property
    def shown(self) -> tuple[int, ...]:
        return tuple(range(0, len(self.texts), self.step))

    @property
    def _widest(self) -> float:
        return max((label_width(self.texts[i], self.font_size) for i in self.shown), default=0.0)

    @property
    def depth(self) -> float:
        """Vertical room the labels need below the axis line, in px."""
        ascent, descent = FONT_ASCENT_EM * self.font_size, FONT_DESCENT_EM * self.font_size
        if not self.turned:
            return LABEL_GAP + ascent + descent
        c, s = math.cos(_TURN), math.sin(_TURN)
        return LABEL_GAP + ascent * c + self._widest * s + descent * c

    def overhang(self, index: int) -> float:
        """How far label `index`'s box reaches left of its slot's centre, in px."""
        width = label_width(self.texts[index], self.font_size)
        if not self.turned:
            return width / 2
        c, s = math.cos(_TURN), math.sin(_TURN)
        return width * c + FONT_ASCENT_EM * self.font_size * s

    def left_room(self, pad: float) -> float:
        """The left margin (at least `pad`) that keeps every label inside the picture."""
        need = max(
            (self.overhang(i) - (i + 0.5) * self.slot + LABEL_GAP for i in self.shown),
            default=0.0,
        )
        return max(pad, need)

    def svg(self, left: float, axis_y: float) -> str:
        """The `<text>` elements, slot i centred at `left + (i + 0.5) * slot`, below `axis_y`."""
        ascent = FONT_ASCENT_EM * self.font_size
        parts = []
        for i in self.shown:
            x = left + (i + 0.5) * self.slot
            text = html.escape(self.texts[i])
            if self.turned:
                y = axis_y + LABEL_GAP + ascent * math.cos(_TURN)
                parts.append(
                    f"<text class='tick' x='{x:.1f}' y='{y:.1f}' font-size='{self.font_size:g}' "
                    f"text-anchor='end' transform='rotate(-45 {x:.1f} {y:.1f})'>{text}</text>"
                )
            else:
                y = axis_y + LABEL_GAP + ascent
                parts.append(
                    f"<text class='tick' x='{x:.1f}' y='{y:.1f}' font-size='{self.font_size:g}' "
                    f"text-anchor='middle'>{text}</text>"
                )
        return "".join(parts)


def axis_labels(texts: Sequence[str], slot: float, font_size: float = AXIS_FONT_SIZE) -> AxisLabels:
    """Lay out one label per slot (of width `slot` px) so that no two label boxes overlap."""
    if slot <= 0:
        raise ValueError(f"slot must be a positive width in px, got {slot!r}")
    labels = tuple(texts)
    widest = max((label_width(t, font_size) for t in labels), default=0.0)
    if widest + LABEL_GAP <= slot:
        return AxisLabels(labels, slot, turned=False, step=1, font_size=font_size)
    line = (FONT_ASCENT_EM + FONT_DESCENT_EM) * font_size + LABEL_GAP
    step = max(1, math.ceil(line / (slot * math.sin(_TURN))))
    return AxisLabels(labels, slot, turned=True, step=step, font_size=font_size)


def histogram_svg(result: FeatureDrift, width: int = 640, height: int = 220) -> str:
    """Training vs. production proportions per bin, as inline SVG (no external assets).

    `width` x `height` is the least size; the picture grows to hold bin labels that have to be
    turned (long interval labels) so that none runs into its neighbour.
    """
    k = len(result.bins)
    top = max(max(result.expected, default=0.0), max(result.actual, default=0.0), 1e-9)
    pad, legend = 30.0, 22.0
    slot = (width - 2 * pad) / max(k, 1)
    labels = axis_labels(result.bins, slot)
    left = labels.left_room(pad)
    base = height - legend - AXIS_FONT_SIZE * (FONT_ASCENT_EM + FONT_DESCENT_EM) - LABEL_GAP
    total_height = base + labels.depth + legend
    total_width = left + k * slot + pad
    bar = slot * 0.4
    name = html.escape(result.name)
    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{total_width:.0f}' "
        f"height='{total_height:.0f}' viewBox='0 0 {total_width:.0f} {total_height:.0f}' "
        f"font-family='{FONT_FAMILY}' role='img' aria-label='{name} histogram'>",
        f"<line x1='{left:.1f}' y1='{base:.1f}' x2='{left + k * slot:.1f}' y2='{base:.1f}' "
        "stroke='#333'/>",
    ]
    bars = zip(result.bins, result.expected, result.actual, strict=True)
    for i, (label, e, a) in enumerate(bars):
        x = left + i * slot
        for offset, share, color, who in (
            (0.0, e, "#8ab4f8", "training"),
            (bar, a, "#f28b82", "production"),
        ):
            h = (base - 10) * share / top
            parts.append(
                f"<rect x='{x + offset + slot * 0.1:.1f}' y='{base - h:.1f}' width='{bar:.1f}' "
                f"height='{h:.1f}' fill='{color}'><title>{html.escape(label)} {who}: "
                f"{share:.3f}</title></rect>"
            )
    parts.append(labels.svg(left, base))
    legend_y = total_height - 8
    parts.append(
        f"<text x='{left:.1f}' y='{legend_y:.1f}' font-size='11' fill='#1a73e8'>training</text>"
        f"<text x='{left + 70:.1f}' y='{legend_y:.1f}' font-size='11' fill='#d93025'>"
        "production</text></svg>"
    )
    return "".join(parts)


# ---------------------------------------------------------------------------------------------
# Where results go: CloudWatch and the lake
# ---------------------------------------------------------------------------------------------


def metric_data(report: DriftReport) -> list[dict[str, Any]]:
    """The CloudWatch datapoints of a report, with the dimensions the alarms use."""
    endpoint = {"Name": ENDPOINT_DIMENSION, "Value": report.endpoint_name}
    when = report.window_end
    data: list[dict[str, Any]] = [
        {
            "MetricName": FEATURE_PSI_METRIC,
            "Timestamp": when,
            "Unit": "None",
            "Value": f.psi,
            "Dimensions": [endpoint, {"Name": FEATURE_DIMENSION, "Value": f.name}],
        }
        for f in report.features
    ]
    if report.prediction is not None:
        data.append(
            {
                "MetricName": PREDICTION_PSI_METRIC,
                "Timestamp": when,
                "Unit": "None",
                "Value": report.prediction.psi,
                "Dimensions": [endpoint],
            }
        )
    data.append(
        {
            "MetricName": SCORED_ROWS_METRIC,
            "Timestamp": when,
            "Unit": "Count",
            "Value": float(report.n_rows),
            "Dimensions": [endpoint],
        }
    )
    return data


def put_metrics(cloudwatch: Any, data: Sequence[Mapping[str, Any]]) -> int:
    """PutMetricData into `DRIFT_NAMESPACE` in API-sized batches; returns the datapoints sent."""
    for start in range(0, len(data), 500):
        cloudwatch.put_metric_data(
            Namespace=DRIFT_NAMESPACE, MetricData=list(data[start : start + 500])
        )
    return len(data)


def report_keys(report: DriftReport, prefix: str = REPORT_PREFIX) -> tuple[str, str]:
    """`drift-reports/<endpoint>/dt=YYYY-MM-DD/drift-<end>.{json,html}`; re-runs overwrite."""
    end = report.window_end.astimezone(UTC)
    folder = f"{prefix.strip('/')}/{report.endpoint_name}/dt={end:%Y-%m-%d}"
    stem = f"{folder}/drift-{end:%Y%m%dT%H%M%SZ}"
    return f"{stem}.json", f"{stem}.html"


def _sse(kms_key_arn: str | None) -> dict[str, str]:
    sse = {"ServerSideEncryption": "aws:kms"}
    if kms_key_arn:
        sse["SSEKMSKeyId"] = kms_key_arn
    return sse


def write_report(
    s3: Any,
    bucket: str,
    report: DriftReport,
    *,
    kms_key_arn: str | None = None,
    prefix: str = REPORT_PREFIX,
) -> tuple[str, str]:
    """Put the JSON and HTML report into the predictions bucket (SSE-KMS); returns both keys."""
    json_key, html_key = report_keys(report, prefix)
    s3.put_object(
        Bucket=bucket,
        Key=json_key,
        Body=report.to_json().encode(),
        ContentType="application/json",
        **_sse(kms_key_arn),
    )
    s3.put_object(
        Bucket=bucket,
        Key=html_key,
        Body=report.to_html().encode(),
        ContentType="text/html; charset=utf-8",
        **_sse(kms_key_arn),
    )
    return json_key, html_key
