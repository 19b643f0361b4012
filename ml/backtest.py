"""Staleness: how fast a model's quality decays once trained, measured by a backtest.

`backtest(model, raw, trained_until=T, windows=N)` fits `model` (its default hyperparameters, as
`ml.train.train` fits it: the same split and convergence rule) on the labelled raw rows before T
and scores each later window of `window_days` days (window k:
the rows with T + (k-1)w <= event_time < T + kw) with that same model: the quality-decay curve
(`metric` per window). Beside it, each window is scored by a model *retrained* just before the
window, on the same span of history (for the first window that is the model itself). The
window's *shortfall* is how much worse the stale model is than the retrained one on the very same
rows, signed as the platform's `QualityShortfall` metric is (> 0 worse; ROC AUC: retrained minus
stale; RMSE: stale over retrained, minus 1). Scoring both on the same rows cancels most of the
labels' noise, which a comparison with the training's own figure (other rows) keeps: on a few
thousand labels per month that noise is as large as the decay itself.

`recommended_max_age_days` is where the shortfall, as a line through the origin fitted to the
windows (window k is (k-1) windows staler than its retrained model), reaches the tolerance
(`CRITERIA`: 0.02 of ROC AUC; 5% of RMSE); when it does not within the windows measured, the
horizon (`beyond_horizon`: the model may stay good longer than measured). It is the default
retraining cadence and the model-age alarm threshold of the platform.

The committed `ml/models/<name>/staleness.json` is the backtest on the sample history
(`sample_backtest`: `ml.sample_data.generate_history`, whose relationships between inputs and
outcomes drift a little every month; `BacktestConfig`), written by `mlplat backtest --model NAME
--write`, copied into every trained model's directory (`ml.train.write_outputs`) so it travels
in model.tar.gz, and held equal to a fresh backtest by a test. The document (`STALENESS_FORMAT`):

    {"format": "mlplat-staleness/1", "model": "<name>", "metric": "roc_auc",
     "higher_is_better": true, "tolerance": 0.02, "tolerance_kind": "absolute",
     "training": {"until": ISO, "rows": n, "metric": m (its held-out validation)},
     "window_days": 30,
     "windows": [{"days_after_training": 30, "rows": n, "metric": m, "retrained_metric": r,
                  "shortfall": s, "within_tolerance": true}, ...],
     "recommended_max_age_days": 60, "beyond_horizon": false, "data": {...}}

Reading it (`read_staleness`, `recommended_max_age_days(name)`) needs the standard library only:
this module imports numpy, pandas and the training code inside the functions that measure.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ml.contracts import STALENESS_FILE
from ml.models import NAME_PATTERN

if TYPE_CHECKING:
    import pandas as pd

    from ml.model import Model

STALENESS_FORMAT = "mlplat-staleness/1"
_MODELS = Path(__file__).resolve().parent / "models"
# Decimals kept in the document: the committed file must be reproduced on any machine.
_DIGITS = 4


@dataclass(frozen=True, slots=True)
class Criterion:
    """What a task's staleness is judged on: the metric, its direction, how much worse it may get
    (`relative`: as a fraction of the training figure)."""

    metric: str
    higher_is_better: bool
    tolerance: float
    relative: bool

    def shortfall(self, reference: float, value: float) -> float:
        """> 0: `value` is worse than `reference` (the `QualityShortfall` sign rule)."""
        delta = reference - value if self.higher_is_better else value - reference
        return delta / abs(reference) if self.relative else delta


CRITERIA: dict[str, Criterion] = {
    "binary_classification": Criterion("roc_auc", True, 0.02, relative=False),
    "regression": Criterion("rmse", False, 0.05, relative=True),
}


@dataclass(frozen=True, slots=True)
class BacktestConfig:
    """The sample history the committed staleness files are measured on: `train_months` months
    to train on, then `windows` months to score, `rows_per_month` new customers a month, the
    relationship drifting by `concept_drift_per_month` a month (`generate_history`)."""

    train_months: int = 3
    windows: int = 5
    rows_per_month: int = 5_000
    concept_drift_per_month: float = 0.2
    seed: int = 0
    start: str = "2024-01-01"  # the first month's first day (UTC)

    def __post_init__(self) -> None:
        problems = []
        if self.train_months < 1 or self.windows < 1:
            problems.append(f"train_months {self.train_months}, windows {self.windows}: >= 1")
        if self.rows_per_month < 100:
            problems.append(f"rows_per_month {self.rows_per_month}: at least 100")
        try:
            datetime.fromisoformat(self.start)
        except ValueError:
            problems.append(f"start {self.start!r}: a date YYYY-MM-DD")
        if problems:
            raise ValueError("backtest: " + "; ".join(problems))

    @property
    def start_time(self) -> datetime:
        return datetime.fromisoformat(self.start).replace(tzinfo=UTC)


def backtest(
    model: Model,
    raw: pd.DataFrame,
    *,
    trained_until: datetime,
    windows: int,
    window_days: int = 30,
    hp: Any = None,
    min_window_rows: int = 200,
) -> dict[str, Any]:
    """The staleness document (see the module docstring) of `model` on a labelled raw table
    with `event_time`: trained on the rows before `trained_until`, scored on `windows` windows of
    `window_days` after it, each also by a model retrained on the same span of history just
    before it. A window with fewer than `min_window_rows` rows (or, for a classifier, one class)
    is reported without figures, and the recommendation stops before it."""
    import pandas as pd

    if trained_until.tzinfo is None:
        raise ValueError("trained_until must be timezone-aware (UTC)")
    if windows < 1 or window_days < 1:
        raise ValueError(f"windows ({windows}) and window_days ({window_days}) must be >= 1")
    criterion = CRITERIA[model.spec.task]
    features = model.features.build_features(raw)
    times = features["event_time"]
    until = pd.Timestamp(trained_until)
    before = features.loc[times < until]
    if before.empty:
        raise ValueError(f"no rows before {until.isoformat()}: nothing to train on")
    span = until - before["event_time"].min()  # the history every model trains on
    hp = model.hyperparameters() if hp is None else hp
    stale, held_out = _fit(model, before, hp)
    rows: list[dict[str, Any]] = []
    for k in range(1, windows + 1):
        start = until + pd.Timedelta(days=window_days * (k - 1))
        window = features.loc[(times >= start) & (times < start + pd.Timedelta(days=window_days))]
        entry: dict[str, Any] = {"days_after_training": window_days * k, "rows": len(window)}
        figures = None
        if len(window) >= min_window_rows and _judgeable(model, window):
            retrained = stale
            if k > 1:
                history = features.loc[(times >= start - span) & (times < start)]
                retrained, _ = _fit(model, history, hp)
            figures = (_score(model, stale, window), _score(model, retrained, window))
        if figures is None:
            entry.update(metric=None, retrained_metric=None, shortfall=None)
            entry["within_tolerance"] = None
        else:
            metric, fresh = (_round(v) for v in figures)
            shortfall = _round(criterion.shortfall(fresh, metric))
            entry.update(metric=metric, retrained_metric=fresh, shortfall=shortfall)
            entry["within_tolerance"] = shortfall <= criterion.tolerance
        rows.append(entry)
    recommended, beyond = recommend(rows, criterion.tolerance, window_days)
    return {
        "format": STALENESS_FORMAT,
        "model": model.name,
        "metric": criterion.metric,
        "higher_is_better": criterion.higher_is_better,
        "tolerance": criterion.tolerance,
        "tolerance_kind": "relative" if criterion.relative else "absolute",
        "training": {
            "until": until.isoformat(),
            "rows": len(before),
            "metric": _round(_score(model, stale, held_out)),
        },
        "window_days": window_days,
        "windows": rows,
        "recommended_max_age_days": recommended,
        "beyond_horizon": beyond,
    }


def recommend(
    windows: list[dict[str, Any]], tolerance: float, window_days: int
) -> tuple[int, bool]:
    """The recommended maximum age (whole days), and whether it is the horizon (the fitted
    shortfall stays within the tolerance over every window measured).

    Window k's model is (k-1) windows staler than the one retrained for it: the shortfall is
    fitted as `slope * staleness` (least squares through the origin, over the windows up to the
    first without figures), and the age is where that line reaches the tolerance."""
    points: list[tuple[float, float]] = []
    for k, entry in enumerate(windows, start=1):
        if entry["shortfall"] is None:
            break
        points.append(((k - 1) * window_days, float(entry["shortfall"])))
    horizon = (len(points) - 1) * window_days if points else 0
    spread = sum(x * x for x, _ in points)
    if not spread:  # nothing staler than a retrained model was measured
        return horizon, True
    slope = sum(x * y for x, y in points) / spread
    if slope <= 0 or tolerance / slope >= horizon:
        return horizon, True
    return int(tolerance / slope), False


def sample_backtest(model: Model, config: BacktestConfig | None = None) -> dict[str, Any]:
    """`backtest` on the sample history of `config` (`ml.sample_data.generate_history`): the
    document the committed `staleness.json` holds."""
    from ml.sample_data import MONTH_DAYS, generate_history

    config = config or BacktestConfig()
    raw = generate_history(
        config.train_months + config.windows,
        config.rows_per_month,
        seed=config.seed,
        start=config.start_time,
        concept_drift_per_month=config.concept_drift_per_month,
    )
    document = backtest(
        model,
        raw,
        trained_until=config.start_time + timedelta(days=MONTH_DAYS * config.train_months),
        windows=config.windows,
        window_days=MONTH_DAYS,
    )
    document["data"] = {"source": "ml.sample_data.generate_history", **asdict(config)}
    return document


def _fit(model: Model, rows: pd.DataFrame, hp: Any) -> tuple[Any, pd.DataFrame]:
    """An estimator fitted as `ml.train.train` fits one (its split, its convergence rule; no
    evaluation, baselines or lineage), and the held-out rows of the split."""
    from ml.evaluate import labels
    from ml.train import fit_estimator, split

    train_rows, held_out = split(rows, hp.validation_fraction, hp.seed)
    X = model.features.feature_matrix(train_rows)
    return fit_estimator(model, hp, X, labels(model, train_rows)), held_out


def _judgeable(model: Model, window: pd.DataFrame) -> bool:
    """A classifier's window needs both classes for a ROC AUC."""
    return model.spec.task == "regression" or window[model.spec.label].nunique() == 2


def _score(model: Model, estimator: Any, window: pd.DataFrame) -> float:
    """The criterion's metric of a fitted estimator on a window's rows."""
    import numpy as np

    from ml.evaluate import labels

    y = labels(model, window)
    scores = model.predict(estimator, model.features.feature_matrix(window))
    if model.spec.task == "regression":
        return float(np.sqrt(np.mean((scores - y) ** 2)))
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, scores))


def _round(value: float) -> float:
    return round(value, _DIGITS)


# --- the committed file: standard library only ---------------------------------------------------


def staleness_path(name: str) -> Path:
    """Where model `name`'s committed staleness lives: `ml/models/<name>/staleness.json`."""
    if not NAME_PATTERN.match(name):
        raise ValueError(f"{name!r} is not a model name (ml/models/<name>)")
    return _MODELS / name / STALENESS_FILE


def to_json(document: dict[str, Any]) -> str:
    """The document as committed: sorted keys, two-space indent, a final newline, strict JSON."""
    return json.dumps(document, indent=2, sort_keys=True, allow_nan=False) + "\n"


def write_staleness(name: str, document: dict[str, Any]) -> Path:
    path = staleness_path(name)
    path.write_text(to_json(document))
    return path


def read_staleness(name: str) -> dict[str, Any]:
    """Model `name`'s committed staleness document; `FileNotFoundError` when it has none (run
    `mlplat backtest --model NAME --write`), `ValueError` when it is not one."""
    path = staleness_path(name)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: model {name!r} has no committed staleness; run "
            f"`mlplat backtest --model {name} --write`"
        )
    try:
        document = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not JSON ({err})") from None
    if not isinstance(document, dict) or document.get("format") != STALENESS_FORMAT:
        raise ValueError(f"{path}: not a {STALENESS_FORMAT} document")
    age = document.get("recommended_max_age_days")
    if not isinstance(age, int) or isinstance(age, bool) or age < 0:
        raise ValueError(f"{path}: recommended_max_age_days {age!r} is not a whole number >= 0")
    return document


def recommended_max_age_days(name: str) -> int:
    """The age (days) past which model `name` should be retrained, from its committed backtest:
    the default retraining cadence and model-age alarm threshold."""
    age: int = read_staleness(name)["recommended_max_age_days"]
    return age


def render(document: dict[str, Any]) -> str:
    """The decay curve as a few lines of text (what `mlplat backtest` prints)."""
    metric = document["metric"]
    training = document["training"]
    lines = [
        f"{document['model']}: {metric} {training['metric']} at training "
        f"({training['rows']} rows before {training['until']}); tolerance "
        f"{document['tolerance']:g} ({document['tolerance_kind']})",
        f"{'days after':>10}  {'rows':>6}  {metric:>8}  {'retrained':>9}  {'shortfall':>9}",
    ]
    for w in document["windows"]:
        value = "-" if w["metric"] is None else f"{w['metric']:.4f}"
        fresh = "-" if w["retrained_metric"] is None else f"{w['retrained_metric']:.4f}"
        short = "-" if w["shortfall"] is None else f"{w['shortfall']:+.4f}"
        mark = "" if w["within_tolerance"] is not False else "  over tolerance"
        lines.append(
            f"{w['days_after_training']:>10}  {w['rows']:>6}  {value:>8}  {fresh:>9}  "
            f"{short:>9}{mark}"
        )
    horizon = " (every window within tolerance)" if document["beyond_horizon"] else ""
    lines.append(f"recommended max age: {document['recommended_max_age_days']} days{horizon}")
    return "\n".join(lines)
