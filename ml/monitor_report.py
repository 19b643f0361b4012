"""The page people open about a model on an endpoint: is it still right, and why not.

The scheduled drift job (`ml.drift.job`) writes it at the drift report's `.html` key. One
standalone HTML page, per model version: online quality over time (one line chart per metric, the
registered offline figure as a dashed reference line), every feature's histogram against training
with the drifted ones first, the training-serving skew share and the model's age.

The page carries no script, stylesheet link, font or image from elsewhere: it is opened from S3 or a
laptop, offline, and every value from the data (names, versions, categories) is escaped. Charts are
inline SVG whose axis labels are laid out by `ml.drift.axis_labels` so that no two overlap.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ml.drift import (
    AXIS_FONT_SIZE,
    FONT_ASCENT_EM,
    FONT_DESCENT_EM,
    FONT_FAMILY,
    LABEL_GAP,
    DriftReport,
    FeatureDrift,
    axis_labels,
    histogram_svg,
    label_width,
)


class MonitorReportError(ValueError):
    """The inputs of the page are malformed (a quality row without a window, a bad skew record)."""


@dataclass(frozen=True, slots=True)
class QualityPoint:
    """One online-quality window of one model version."""

    window_end: datetime
    n: int
    metrics: Mapping[str, float | None]
    offline: Mapping[str, float]


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _when(value: Any, where: str) -> datetime:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise MonitorReportError(
                f"{where}.window_end is {value!r}: expected an ISO 8601 time"
            ) from None
    else:
        raise MonitorReportError(f"{where}.window_end is missing: expected an ISO 8601 time")
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _by_version(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[QualityPoint]]:
    """The quality rows grouped by model version, each version's windows in time order."""
    versions: dict[str, list[QualityPoint]] = {}
    for i, row in enumerate(rows):
        where = f"quality_history[{i}]"
        if not isinstance(row, Mapping):
            raise MonitorReportError(f"{where} is {type(row).__name__}: expected an object")
        version = row.get("model_version")
        if not isinstance(version, str) or not version:
            raise MonitorReportError(f"{where}.model_version must be a non-empty string")
        metrics = row.get("metrics") or {}
        offline = row.get("offline") or {}
        if not isinstance(metrics, Mapping) or not isinstance(offline, Mapping):
            raise MonitorReportError(f"{where}: metrics and offline must be objects of numbers")
        n = row.get("n", 0)
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise MonitorReportError(f"{where}.n is {n!r}: expected a row count >= 0")
        point = QualityPoint(
            window_end=_when(row.get("window_end"), where),
            n=n,
            metrics={str(k): _finite(v) for k, v in metrics.items()},
            offline={str(k): f for k, v in offline.items() if (f := _finite(v)) is not None},
        )
        versions.setdefault(version, []).append(point)
    for points in versions.values():
        points.sort(key=lambda p: p.window_end)
    return versions


def _version_order(versions: Mapping[str, list[QualityPoint]], serving: str | None) -> list[str]:
    """The serving version first, then the others, most recently measured first."""
    others = sorted(
        (v for v in versions if v != serving),
        key=lambda v: (versions[v][-1].window_end, v),
        reverse=True,
    )
    first = [serving] if serving is not None and serving in versions else []
    return first + others


# ---------------------------------------------------------------------------------------------
# The line chart
# ---------------------------------------------------------------------------------------------


def _nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About `count` round values spanning [low, high] (1, 2, 2.5 or 5 times a power of ten)."""
    if high <= low:
        span = abs(low) * 0.1 or 1.0
        low, high = low - span, high + span
    raw = (high - low) / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw * (1 - 1e-9))
    first, last = math.floor(low / step + 1e-9), math.ceil(high / step - 1e-9)
    return [round(i * step, 12) for i in range(first, last + 1)]


def _distinct_texts(values: Sequence[float]) -> list[str]:
    """The shortest `g` formatting (4 to 12 digits) that tells every value apart."""
    for digits in range(4, 13):
        texts = [f"{v:.{digits}g}" for v in values]
        if len(set(texts)) == len(texts):
            return texts
    return [repr(v) for v in values]


def line_chart_svg(
    metric: str,
    points: Sequence[tuple[str, float | None]],
    *,
    reference: float | None = None,
    width: int = 640,
    height: int = 220,
) -> str:
    """`metric` per window (x labels), a gap where a window has no value, `reference` dashed.

    Windows are evenly spaced slots in time order: their labels follow `ml.drift.axis_labels`
    (side by side, turned or thinned) and the y labels sit at least a line apart.
    """
    values = [v for _, v in points if v is not None]
    if reference is not None:
        values.append(reference)
    ticks = _nice_ticks(min(values), max(values)) if values else [0.0, 1.0]
    low, high = ticks[0], ticks[-1]
    tick_texts = _distinct_texts(ticks)
    font = AXIS_FONT_SIZE
    line = (FONT_ASCENT_EM + FONT_DESCENT_EM) * font + LABEL_GAP
    left = max(40.0, max(label_width(t, font) for t in tick_texts) + 10)
    pad, top_pad, legend = 20.0, 12.0, 20.0
    n = max(len(points), 1)
    slot = (width - left - pad) / n
    labels = axis_labels([label for label, _ in points], slot)
    left = labels.left_room(left)
    plot_bottom = height - legend - line
    # y labels one per tick: the plot is tall enough for a line of text between two ticks
    plot_height = max(plot_bottom - top_pad, line * (len(ticks) - 1))
    plot_bottom = top_pad + plot_height
    # the x labels start below the lowest y label, which is centred on the axis line
    below = (FONT_ASCENT_EM - 0.5 + FONT_DESCENT_EM) * font
    total_height = plot_bottom + below + labels.depth + legend
    total_width = left + n * slot + pad

    def y_of(value: float) -> float:
        return plot_bottom - plot_height * (value - low) / (high - low)

    name = html.escape(metric)
    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{total_width:.0f}' "
        f"height='{total_height:.0f}' viewBox='0 0 {total_width:.0f} {total_height:.0f}' "
        f"font-family='{FONT_FAMILY}' role='img' aria-label='{name} over time'>"
    ]
    for tick, text in zip(ticks, tick_texts, strict=True):
        y = y_of(tick)
        parts.append(
            f"<line x1='{left:.1f}' y1='{y:.1f}' x2='{left + n * slot:.1f}' y2='{y:.1f}' "
            "stroke='#e0e0e0'/>"
            f"<text class='tick' x='{left - 6:.1f}' y='{y + (FONT_ASCENT_EM - 0.5) * font:.1f}' "
            f"font-size='{font:g}' text-anchor='end'>{html.escape(text)}</text>"
        )
    parts.append(
        f"<line x1='{left:.1f}' y1='{plot_bottom:.1f}' x2='{left + n * slot:.1f}' "
        f"y2='{plot_bottom:.1f}' stroke='#333'/>"
    )
    if reference is not None:
        y = y_of(reference)
        parts.append(
            f"<line class='offline' x1='{left:.1f}' y1='{y:.1f}' x2='{left + n * slot:.1f}' "
            f"y2='{y:.1f}' stroke='#5f6368' stroke-dasharray='6 4'>"
            f"<title>offline {name}: {reference:.4g}</title></line>"
        )
    segment: list[str] = []
    segments: list[list[str]] = [segment]
    for i, (label, value) in enumerate(points):
        if value is None:
            segment = []
            segments.append(segment)
            continue
        x, y = left + (i + 0.5) * slot, y_of(value)
        segment.append(f"{x:.1f},{y:.1f}")
        parts.append(
            f"<circle cx='{x:.1f}' cy='{y:.1f}' r='3' fill='#d93025'>"
            f"<title>{html.escape(label)}: {name} {value:.4g}</title></circle>"
        )
    for done in segments:
        if len(done) > 1:
            parts.append(
                f"<polyline class='online' points='{' '.join(done)}' fill='none' "
                "stroke='#d93025' stroke-width='2'/>"
            )
    parts.append(labels.svg(left, plot_bottom + below))
    legend_y = total_height - 6
    parts.append(
        f"<text x='{left:.1f}' y='{legend_y:.1f}' font-size='11' fill='#d93025'>online</text>"
    )
    if reference is not None:
        parts.append(
            f"<text x='{left + 60:.1f}' y='{legend_y:.1f}' font-size='11' fill='#5f6368'>"
            "offline (registered)</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


# ---------------------------------------------------------------------------------------------
# The page
# ---------------------------------------------------------------------------------------------

_STYLE = (
    "body{font-family:sans-serif;margin:2em;max-width:72em}table{border-collapse:collapse}"
    "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}"
    "td:first-child,th:first-child{text-align:left}tr.drift{background:#fde2e1}"
    "figure{margin:1em 0}figcaption{font-weight:bold}.missing{color:#5f6368}"
)


def _window_labels(points: Sequence[QualityPoint]) -> list[str]:
    """Dates when every window ends on a different day, else dates and times."""
    days = {p.window_end.astimezone(UTC).date() for p in points}
    fmt = "%Y-%m-%d" if len(days) == len(points) else "%Y-%m-%d %H:%M"
    return [p.window_end.astimezone(UTC).strftime(fmt) for p in points]


def _number(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}g}"


def _version_section(index: int, version: str, points: list[QualityPoint], serving: bool) -> str:
    esc = html.escape
    last = points[-1]
    names = list(dict.fromkeys(name for p in points for name in (*p.metrics, *p.offline)))
    offline: dict[str, float] = {}
    for p in points:
        offline.update(p.offline)  # the latest window's registered figures win
    rows = "".join(
        f"<tr><td>{esc(name)}</td><td>{_number(last.metrics.get(name))}</td>"
        f"<td>{_number(offline.get(name))}</td></tr>"
        for name in names
    )
    labels = _window_labels(points)
    charts = "".join(
        f"<figure class='metric' data-metric='{esc(name)}'><figcaption>{esc(name)}</figcaption>"
        + line_chart_svg(
            name,
            [(label, p.metrics.get(name)) for label, p in zip(labels, points, strict=True)],
            reference=offline.get(name),
        )
        + "</figure>"
        for name in names
    )
    status = " (serving)" if serving else ""
    return (
        f"<section class='version' id='version-{index}' data-version='{esc(version)}'>"
        f"<h3>{esc(version)}{status}</h3><p>{len(points)} windows; the latest ends "
        f"{esc(last.window_end.isoformat())} with {last.n} labelled rows.</p>"
        "<table><tr><th>metric</th><th>online (latest)</th><th>offline (registered)</th></tr>"
        f"{rows}</table>{charts}</section>"
    )


def _quality_section(history: Sequence[Mapping[str, Any]], serving: str | None) -> str:
    versions = _by_version(history)
    if not versions:
        body = (
            "<p class='missing'>No labelled predictions yet: online quality is computed once "
            "the label horizon of the scored rows has passed and their outcomes have arrived.</p>"
        )
    else:
        body = "".join(
            _version_section(i, version, versions[version], version == serving)
            for i, version in enumerate(_version_order(versions, serving))
        )
    return f"<section id='quality'><h2>Online quality per model version</h2>{body}</section>"


def _skew_section(skew: Mapping[str, Any] | None) -> str:
    if skew is None:
        body = "<p class='missing'>Not measured in this run.</p>"
    else:
        n, n_differ, share = skew.get("n"), skew.get("n_differ"), _finite(skew.get("share"))
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (n, n_differ)):
            raise MonitorReportError(
                f"skew n and n_differ must be row counts, got {n!r}, {n_differ!r}"
            )
        if share is None or not 0.0 <= share <= 1.0:
            raise MonitorReportError(f"skew share must be in [0, 1], got {skew.get('share')!r}")
        body = (
            f"<p><strong>{share:.2%}</strong> of {n} re-scored captured rows "
            f"({n_differ} rows) got a different score from the training path than from the "
            "endpoint.</p>"
        )
    return f"<section id='skew'><h2>Training-serving skew</h2>{body}</section>"


def _age_section(age_days: float | None) -> str:
    age = _finite(age_days)
    body = (
        "<p class='missing'>Unknown: the served artifact's lineage was not read.</p>"
        if age is None
        else f"<p>The serving version was trained <strong>{age:.1f} days</strong> ago.</p>"
    )
    return f"<section id='age'><h2>Model age</h2>{body}</section>"


def _drift_order(report: DriftReport) -> list[FeatureDrift]:
    """Every column (features, then the scores), the drifted ones first, each group by PSI."""
    columns = [*report.features, *([report.prediction] if report.prediction else [])]
    return sorted(columns, key=lambda f: (not f.drifted, -f.psi))


def _drift_section(report: DriftReport | None) -> str:
    esc = html.escape
    if report is None:
        body = "<p class='missing'>No drift report for this run.</p>"
        return f"<section id='drift'><h2>Features against training</h2>{body}</section>"
    columns = _drift_order(report)
    rows = "".join(
        f"<tr class='{'drift' if f.drifted else 'ok'}'><td>{esc(f.name)}</td><td>{f.kind}</td>"
        f"<td>{f.psi:.4f}</td><td>{f.js:.4f}</td>"
        f"<td>{'' if f.ks is None else f'{f.ks:.3f}'}</td><td>{f.missing:.1%}</td>"
        f"<td>{'drift' if f.drifted else 'ok'}</td></tr>"
        for f in columns
    )
    charts = "".join(
        f"<section class='feature' data-feature='{esc(f.name)}' "
        f"data-drifted='{str(f.drifted).lower()}'><h3>{esc(f.name)} (PSI {f.psi:.3f}"
        f"{', drifted' if f.drifted else ''})</h3>{histogram_svg(f)}</section>"
        for f in columns
    )
    return (
        "<section id='drift'><h2>Features against training</h2>"
        f"<p>Window {esc(report.window_start.isoformat())} to "
        f"{esc(report.window_end.isoformat())}: {report.n_rows} rows scored, "
        f"{report.n_rejected} rejected; PSI threshold {report.threshold:g}; "
        f"{len(report.drifted_features)} of {len(report.features)} features drifted.</p>"
        "<table><tr><th>column</th><th>kind</th><th>PSI</th><th>JS</th><th>KS</th>"
        f"<th>missing</th><th>status</th></tr>{rows}</table>{charts}</section>"
    )


def render_html(
    *,
    model: str,
    endpoint: str,
    model_version: str | None,
    drift: DriftReport | None,
    quality_history: Sequence[Mapping[str, Any]],
    skew: Mapping[str, Any] | None,
    age_days: float | None,
) -> str:
    """The monitor page of `model` on `endpoint` (see the module docstring).

    `quality_history` rows: `{"window_end": ISO time, "model_version": str, "n": int,
    "metrics": {name: float | None}, "offline": {name: float}}`; `skew`: `{"n": int,
    "n_differ": int, "share": float}`; None (or an empty history) says "not measured" on the page.
    """
    esc = html.escape
    title = f"Model monitor: {esc(model)} on {esc(endpoint)}"
    serving = esc(model_version) if model_version else "unknown"
    age = _finite(age_days)
    share = None if skew is None else _finite(skew.get("share"))
    drifted = "not measured" if drift is None else str(len(drift.drifted_features))
    summary = (
        "<section id='summary'><h2>Summary</h2><table>"
        f"<tr><th>serving version</th><td>{serving}</td></tr>"
        f"<tr><th>model age</th><td>{'unknown' if age is None else f'{age:.1f} days'}</td></tr>"
        f"<tr><th>skew share</th><td>{'not measured' if share is None else f'{share:.2%}'}"
        "</td></tr>"
        f"<tr><th>drifted features</th><td>{drifted}</td></tr></table></section>"
    )
    return (
        "<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{title}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{title}</h1>{summary}{_quality_section(quality_history, model_version)}"
        f"{_skew_section(skew)}{_age_section(age_days)}{_drift_section(drift)}</body></html>\n"
    )
