"""The monitor page: its sections and their order, escaping, and charts whose labels never overlap.

Label boxes are computed from the SVG itself (position, font size, anchor, rotation, text) with
`ml.drift.label_width` as each text's width; `test_label_width_bounds_the_font` measures that bound
against DejaVu Sans, the widest sans-serif face a browser falls back on.
"""

from __future__ import annotations

import math
import re
import string
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ml.baseline as training_baseline
from ml.drift import (
    AxisLabels,
    Baseline,
    DriftReport,
    FeatureDrift,
    axis_labels,
    compute_drift,
    histogram_svg,
    label_width,
)
from ml.models import load
from ml.monitor_report import MonitorReportError, line_chart_svg, render_html
from ml.sample_data import generate_customers, true_churn_probability

CHURN = load("churn")
T0 = datetime(2025, 3, 1, tzinfo=UTC)
SVG = "{http://www.w3.org/2000/svg}"
# DejaVu Sans's ascent and descent (em): the box of a line of text around its baseline.
ASCENT, DESCENT = 0.928, 0.236


# --- label boxes from the SVG ------------------------------------------------------------------

Point = tuple[float, float]


def text_boxes(svg: str) -> list[tuple[str, list[Point]]]:
    """Every <text>'s box as the four corners on screen, after its rotation."""
    root = ET.fromstring(svg)
    boxes = []
    for el in root.iter(f"{SVG}text"):
        text = el.text or ""
        x, y, size = float(el.get("x", 0)), float(el.get("y", 0)), float(el.get("font-size", 16))
        width = label_width(text, size)
        start = {"start": 0.0, "middle": -width / 2, "end": -width}[el.get("text-anchor", "start")]
        corners = [
            (start, -ASCENT * size),
            (start + width, -ASCENT * size),
            (start + width, DESCENT * size),
            (start, DESCENT * size),
        ]
        angle, cx, cy = 0.0, x, y
        transform = el.get("transform")
        if transform:
            match = re.fullmatch(r"rotate\((-?[\d.]+) (-?[\d.]+) (-?[\d.]+)\)", transform)
            assert match, transform
            angle, cx, cy = (float(g) for g in match.groups())
        t = math.radians(angle)  # SVG: positive turns clockwise on screen (y points down)
        screen = []
        for du, dv in corners:
            px, py = x + du - cx, y + dv - cy
            screen.append(
                (cx + px * math.cos(t) - py * math.sin(t), cy + px * math.sin(t) + py * math.cos(t))
            )
        boxes.append((text, screen))
    return boxes


def _separated(a: list[Point], b: list[Point]) -> bool:
    """Separating axis theorem for two convex quadrilaterals (touching counts as apart)."""
    for poly in (a, b):
        for i in range(4):
            (x1, y1), (x2, y2) = poly[i], poly[(i + 1) % 4]
            nx, ny = y2 - y1, x1 - x2
            pa = [nx * x + ny * y for x, y in a]
            pb = [nx * x + ny * y for x, y in b]
            if max(pa) <= min(pb) + 1e-6 or max(pb) <= min(pa) + 1e-6:
                return True
    return False


def overlaps(svg: str) -> list[tuple[str, str]]:
    boxes = text_boxes(svg)
    return [
        (ta, tb)
        for i, (ta, a) in enumerate(boxes)
        for tb, b in boxes[i + 1 :]
        if not _separated(a, b)
    ]


def outside(svg: str) -> list[str]:
    root = ET.fromstring(svg)
    width, height = float(root.get("width", 0)), float(root.get("height", 0))
    return [
        text
        for text, corners in text_boxes(svg)
        if any(x < -0.5 or x > width + 0.5 or y < -0.5 or y > height + 0.5 for x, y in corners)
    ]


def assert_readable(svg: str) -> None:
    assert overlaps(svg) == []
    assert outside(svg) == []


def test_the_overlap_check_sees_the_old_drift_labels_run_into_each_other() -> None:
    # What the drift report drew before: 9 px labels centred in 58 px slots, side by side.
    old = (
        "<svg xmlns='http://www.w3.org/2000/svg' width='640' height='220'>"
        "<text x='59' y='184' font-size='9' text-anchor='middle'>(47, 52.61]</text>"
        "<text x='117' y='184' font-size='9' text-anchor='middle'>(52.61, 58.04]</text>"
        "</svg>"
    )
    assert overlaps(old) == [("(47, 52.61]", "(52.61, 58.04]")]
    assert overlaps(old.replace("x='117'", "x='160'")) == []  # far enough apart


def test_label_width_bounds_the_font() -> None:
    pil = pytest.importorskip("PIL.ImageFont")
    fonts = [
        p
        for p in (
            Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
            Path("/usr/share/fonts/TTF/DejaVuSans.ttf"),
            Path("/Library/Fonts/Arial.ttf"),
            Path("/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf"),
        )
        if p.exists()
    ]
    if not fonts:
        pytest.skip("no DejaVu Sans, Arial or Liberation Sans on this machine")
    samples = [
        *string.printable[:95],
        "(52.61, 58.04]",
        "month-to-month",
        "__other__",
        "2025-01-31 23:59",
        "WWW mmm @@@",
    ]
    for path in fonts:
        font = pil.truetype(str(path), 100)
        ascent, descent = font.getmetrics()
        assert ascent <= ASCENT * 100 + 1 and descent <= DESCENT * 100 + 1, path.name
        for text in samples:
            assert font.getlength(text) <= label_width(text, 100), (path.name, text)


# --- axis labels -------------------------------------------------------------------------------


def _axis_svg(labels: AxisLabels, n: int) -> str:
    left = labels.left_room(10)
    width = left + n * labels.slot + 10
    height = 10 + labels.depth + 2
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}'>"
        f"{labels.svg(left, 10)}</svg>"
    )


def test_short_labels_stay_side_by_side_and_long_ones_turn() -> None:
    short = axis_labels(["a", "b", "c"], slot=40)
    assert (short.turned, short.step) == (False, 1)
    long = axis_labels(["(52.61, 58.04]", "(58.04, 63.48]", "(63.48, 69.26]"], slot=58)
    assert (long.turned, long.step) == (True, 1)
    crowded = axis_labels([f"2025-01-{d:02d}" for d in range(1, 32)], slot=5)
    assert crowded.turned and crowded.step > 1
    assert crowded.shown == tuple(range(0, 31, crowded.step))
    for labels, n in ((short, 3), (long, 3), (crowded, 31)):
        assert_readable(_axis_svg(labels, n))


def test_a_bad_slot_is_refused() -> None:
    with pytest.raises(ValueError, match="slot must be a positive width"):
        axis_labels(["a"], slot=0)


@settings(max_examples=150, deadline=None)
@given(
    texts=st.lists(
        st.text(alphabet=st.sampled_from("0123456789.,()[]<=> -_abcmwMWé漢"), max_size=24),
        min_size=1,
        max_size=60,
    ),
    slot=st.floats(min_value=1, max_value=200),
)
def test_no_two_axis_labels_ever_overlap(texts: list[str], slot: float) -> None:
    assert_readable(_axis_svg(axis_labels(texts, slot), len(texts)))


# --- the charts ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def drift_report() -> DriftReport:
    raw = generate_customers(5_000, seed=1)
    features = CHURN.features.build_features(raw)
    baseline = Baseline.from_dict(
        training_baseline.compute_baseline(CHURN, features, true_churn_probability(raw))
    )
    new = generate_customers(3_000, seed=2, drift=1.5)
    return compute_drift(
        baseline,
        CHURN.features.build_features(new),
        true_churn_probability(new),
        threshold=0.2,
        endpoint_name="churn-ep",
        window_start=T0,
        window_end=T0 + timedelta(hours=1),
    )


def test_every_histogram_of_the_churn_model_is_readable(drift_report: DriftReport) -> None:
    columns = [*drift_report.features, drift_report.prediction]
    assert any(len(f.bins) == 20 for f in columns if f is not None)  # the 20-bin scores
    for column in columns:
        assert column is not None
        assert_readable(histogram_svg(column))


def _feature(bins: list[str]) -> FeatureDrift:
    share = tuple([1 / len(bins)] * len(bins))
    return FeatureDrift(
        "x", "categorical", 10, 0.0, 0.0, 0.0, None, False, tuple(bins), share, share
    )


@pytest.mark.parametrize(
    "bins",
    [
        ["<= 0", "> 0"],
        [f"category-with-a-rather-long-name-{i}" for i in range(8)],
        [f"({i * 1.2345:.4g}, {(i + 1) * 1.2345:.4g}]" for i in range(80)],
        ["WWWWWWWWWWWWWWWWWWWWWWWW", "漢字のカテゴリ名", "__other__"],
    ],
)
def test_histograms_with_many_or_long_bins_are_readable(bins: list[str]) -> None:
    svg = histogram_svg(_feature(bins))
    assert_readable(svg)
    titles = [t.text or "" for t in ET.fromstring(svg).iter(f"{SVG}title")]
    assert all(any(t.startswith(b) for t in titles) for b in bins)  # thinned labels: in tooltips


@pytest.mark.parametrize("windows", [1, 3, 30, 400])
def test_line_charts_are_readable_at_any_length(windows: int) -> None:
    rng = np.random.default_rng(windows)
    points = [
        ((T0 + timedelta(days=i)).strftime("%Y-%m-%d"), float(rng.uniform(0.6, 0.9)))
        for i in range(windows)
    ]
    assert_readable(line_chart_svg("roc_auc", points, reference=0.82))


def test_line_chart_draws_gaps_the_reference_and_the_values_in_place() -> None:
    values: list[float | None] = [0.8, 0.78, None, 0.76, 0.74, 0.72]
    points = [(f"w{i}", v) for i, v in enumerate(values)]
    root = ET.fromstring(line_chart_svg("roc_auc", points, reference=0.8))
    lines = [el.get("points", "").split() for el in root.iter(f"{SVG}polyline")]
    assert [len(line) for line in lines] == [2, 3]  # the missing window breaks the line
    circles = [(float(c.get("cx", 0)), float(c.get("cy", 0))) for c in root.iter(f"{SVG}circle")]
    assert len(circles) == 5
    assert [x for x, _ in circles] == sorted(x for x, _ in circles)
    ys = [y for _, y in circles]
    assert ys == sorted(ys)  # falling values sit lower and lower (SVG y grows downwards)
    (offline,) = [el for el in root.iter(f"{SVG}line") if el.get("class") == "offline"]
    assert float(offline.get("y1", 0)) == pytest.approx(circles[0][1])  # 0.8 online == offline
    # equal steps in value are equal steps on screen
    assert ys[2] - ys[1] == pytest.approx(ys[4] - ys[3], abs=0.2)


# --- the page ----------------------------------------------------------------------------------


class Outline(HTMLParser):
    """The page's sections (id or class plus data-*) in document order, and its tags."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: list[dict[str, str | None]] = []
        self.tags: set[str] = set()
        self.attributes: list[tuple[str, str | None]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attributes += attrs
        if tag == "section":
            self.sections.append(dict(attrs))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def outline(page: str) -> Outline:
    parser = Outline()
    parser.feed(page)
    parser.close()
    return parser


def history() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for i in range(10):
        rows.append(
            {
                "window_end": (T0 + timedelta(days=i)).isoformat(),
                "model_version": "churn/3",
                "n": 200 + i,
                "metrics": {"roc_auc": 0.81 - 0.002 * i, "log_loss": None if i == 4 else 0.4},
                "offline": {"roc_auc": 0.82, "log_loss": 0.39},
            }
        )
    rows.append(
        {
            "window_end": (T0 - timedelta(days=40)).isoformat(),
            "model_version": "churn/1",
            "n": 90,
            "metrics": {"roc_auc": 0.7},
            "offline": {"roc_auc": 0.75},
        }
    )
    rows.append(
        {
            "window_end": (T0 - timedelta(days=5)).isoformat(),
            "model_version": "churn/2",
            "n": 90,
            "metrics": {"roc_auc": 0.78},
            "offline": {"roc_auc": 0.8},
        }
    )
    return rows[::-1]  # out of order: the page sorts


def page(drift: DriftReport | None, **overrides: Any) -> str:
    args: dict[str, Any] = {
        "model": "churn",
        "endpoint": "churn-ep",
        "model_version": "churn/3",
        "drift": drift,
        "quality_history": history(),
        "skew": {"n": 1000, "n_differ": 7, "share": 0.007},
        "age_days": 12.5,
    }
    args.update(overrides)
    return render_html(**args)


def test_the_page_has_its_sections_in_order(drift_report: DriftReport) -> None:
    parsed = outline(page(drift_report))
    top = [s["id"] for s in parsed.sections if s.get("id") and not s.get("class")]
    assert top == ["summary", "quality", "skew", "age", "drift"]
    text = " ".join(parsed.text)
    assert "0.70%" in text and "1000 re-scored" in text  # the skew share
    assert "12.5 days" in text  # the model age


def test_versions_serving_first_then_most_recent(drift_report: DriftReport) -> None:
    parsed = outline(page(drift_report))
    versions = [s["data-version"] for s in parsed.sections if s.get("class") == "version"]
    assert versions == ["churn/3", "churn/2", "churn/1"]
    figures = [v for k, v in parsed.attributes if k == "data-metric"]
    assert figures == ["roc_auc", "log_loss", "roc_auc", "roc_auc"]


def test_every_feature_has_a_histogram_drifted_first(drift_report: DriftReport) -> None:
    parsed = outline(page(drift_report))
    shown = [s for s in parsed.sections if s.get("class") == "feature"]
    names = [str(s["data-feature"]) for s in shown]
    assert sorted(names) == sorted([*CHURN.spec.feature_names, "prediction"])
    flags = [s["data-drifted"] == "true" for s in shown]
    assert flags == sorted(flags, reverse=True) and any(flags) and not all(flags)
    drifted = [f for f in (*drift_report.features, drift_report.prediction) if f and f.drifted]
    expected = [f.name for f in sorted(drifted, key=lambda f: -f.psi)]
    assert names[: len(expected)] == expected


def test_every_chart_on_the_page_is_readable(drift_report: DriftReport) -> None:
    text = page(drift_report)
    svgs = re.findall(r"<svg.*?</svg>", text, re.S)
    assert len(svgs) == 4 + len(CHURN.spec.feature_names) + 1
    for svg in svgs:
        assert_readable(svg)


def test_everything_is_escaped_and_nothing_is_fetched(drift_report: DriftReport) -> None:
    evil = "<script>alert('x')</script>\"'&"
    hostile = [
        {
            "window_end": T0.isoformat(),
            "model_version": evil,
            "n": 1,
            "metrics": {evil: 0.5},
            "offline": {evil: 0.6},
        }
    ]
    text = page(
        drift_report, model=evil, endpoint=evil, model_version=evil, quality_history=hostile
    )
    parsed = outline(text)
    assert "script" not in parsed.tags
    assert evil in "".join(parsed.text)  # shown as text, decoded back by the parser
    assert ("data-version", evil) in parsed.attributes
    for needle in ("<script", "<link", "<img", "src=", "url(", "@import", "https://"):
        assert needle not in text
    assert set(re.findall(r"http://[^'\" ]+", text)) == {"http://www.w3.org/2000/svg"}


def test_what_was_not_measured_says_so() -> None:
    parsed = outline(page(None, quality_history=[], skew=None, age_days=None, model_version=None))
    text = " ".join(parsed.text)
    assert "No labelled predictions yet" in text
    assert "Not measured in this run" in text
    assert "Unknown: the served artifact's lineage was not read" in text
    assert "No drift report for this run" in text
    assert "<svg" not in page(None, quality_history=[], skew=None, age_days=None)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (
            {"model_version": "v", "n": 1, "metrics": {}},
            r"quality_history\[0\]\.window_end is missing",
        ),
        ({"window_end": "yesterday", "model_version": "v"}, "'yesterday': expected an ISO 8601"),
        ({"window_end": "2025-01-01T00:00:00Z"}, r"model_version must be a non-empty string"),
        ({"window_end": "2025-01-01", "model_version": "v", "n": -1}, "expected a row count"),
        ({"window_end": "2025-01-01", "model_version": "v", "metrics": [1]}, "must be objects"),
    ],
)
def test_malformed_quality_rows_are_named(row: dict[str, Any], message: str) -> None:
    with pytest.raises(MonitorReportError, match=message):
        page(None, quality_history=[row])


def test_a_bad_skew_record_is_named() -> None:
    with pytest.raises(MonitorReportError, match=r"skew share must be in \[0, 1\]"):
        page(None, skew={"n": 10, "n_differ": 1, "share": 1.5})
    with pytest.raises(MonitorReportError, match="skew n and n_differ must be row counts"):
        page(None, skew={"n": "10", "n_differ": 1, "share": 0.1})


def test_the_drift_report_page_keeps_its_histograms_readable(drift_report: DriftReport) -> None:
    text = drift_report.to_html()
    svgs = re.findall(r"<svg.*?</svg>", text, re.S)
    assert svgs
    for svg in svgs:
        assert_readable(svg)
