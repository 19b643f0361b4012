"""`ml.backtest`: a model's staleness, the committed `staleness.json`, and the drifting sample
history it is measured on (`ml.sample_data`'s concept drift)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

import ml.backtest
from ml.backtest import (
    CRITERIA,
    STALENESS_FORMAT,
    BacktestConfig,
    backtest,
    read_staleness,
    recommend,
    recommended_max_age_days,
    sample_backtest,
    staleness_path,
    to_json,
)
from ml.models import load, names
from ml.sample_data import MONTH_DAYS, generate_customers, generate_history, true_churn_probability
from ml.schema import CUSTOMERS_RAW

CHURN = load("churn")
START = datetime(2024, 1, 1, tzinfo=UTC)


# --- the committed files -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["churn", "spend"])
def test_the_committed_staleness_is_a_fresh_backtest(name: str) -> None:
    committed = json.loads(staleness_path(name).read_text())
    fresh = json.loads(to_json(sample_backtest(load(name))))
    assert committed == fresh, f"run `mlplat backtest --model {name} --write`"
    assert staleness_path(name).read_text() == to_json(fresh)  # byte for byte


@pytest.mark.parametrize("name", ["churn", "spend"])
def test_the_committed_staleness_says_when_to_retrain(name: str) -> None:
    document = read_staleness(name)
    age = recommended_max_age_days(name)
    assert isinstance(age, int) and 0 < age <= 4 * MONTH_DAYS
    assert document["format"] == STALENESS_FORMAT and document["model"] == name
    windows = document["windows"]
    assert [w["days_after_training"] for w in windows] == [30, 60, 90, 120, 150]
    assert windows[0]["shortfall"] == 0.0  # the first window's retrained model is the model
    # the stale model falls behind a retrained one as the months pass, past the tolerance
    assert windows[-1]["shortfall"] > document["tolerance"] > windows[1]["shortfall"]
    assert document["beyond_horizon"] is False


def test_every_model_with_a_staleness_file_is_a_model() -> None:
    models_dir = Path(ml.backtest.__file__).parent / "models"
    found = sorted(p.parent.name for p in models_dir.glob("*/staleness.json"))
    assert found == ["churn", "spend"] and set(found) <= set(names())


def test_the_recommended_age_is_read_with_the_standard_library_only() -> None:
    code = (
        "import sys, ml.backtest as b; print(b.recommended_max_age_days('churn')); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('numpy', 'pandas', 'sklearn', 'pyarrow')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    age, loaded = done.stdout.splitlines()
    assert int(age) == recommended_max_age_days("churn") and loaded == "[]"


def test_a_missing_or_bad_staleness_file_is_explained(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ml.backtest, "_MODELS", tmp_path)
    with pytest.raises(FileNotFoundError, match="run `mlplat backtest --model churn --write`"):
        recommended_max_age_days("churn")
    (tmp_path / "churn").mkdir()
    path = tmp_path / "churn" / "staleness.json"
    for body, message in (
        ("{no", "not JSON"),
        (json.dumps({"format": "other/1"}), "not a mlplat-staleness/1 document"),
        (
            json.dumps({"format": STALENESS_FORMAT, "recommended_max_age_days": 1.5}),
            "recommended_max_age_days 1.5 is not a whole number",
        ),
    ):
        path.write_text(body)
        with pytest.raises(ValueError, match=message):
            read_staleness("churn")
    path.write_text(json.dumps({"format": STALENESS_FORMAT, "recommended_max_age_days": 45}))
    assert recommended_max_age_days("churn") == 45
    with pytest.raises(ValueError, match=r"'\.\./etc' is not a model name"):
        staleness_path("../etc")


# --- the measurement -----------------------------------------------------------------------------


def _history(concept_drift_per_month: float, months: int = 5) -> pd.DataFrame:
    return generate_history(
        months, 2_500, seed=3, start=START, concept_drift_per_month=concept_drift_per_month
    )


def test_without_concept_drift_a_stale_model_is_as_good_as_a_retrained_one() -> None:
    until = START + timedelta(days=2 * MONTH_DAYS)
    document = backtest(CHURN, _history(0.0), trained_until=until, windows=3)
    shortfalls = [w["shortfall"] for w in document["windows"]]
    assert shortfalls[0] == 0.0 and all(abs(s) < 0.01 for s in shortfalls)
    assert document["recommended_max_age_days"] == 60 and document["beyond_horizon"] is True
    assert document["training"] == {
        "until": "2024-03-01T00:00:00+00:00",
        "rows": 5_000,
        "metric": document["training"]["metric"],
    }
    assert 0.75 < document["training"]["metric"] < 0.9
    assert [w["rows"] for w in document["windows"]] == [2_500, 2_500, 2_500]


def test_under_concept_drift_the_stale_model_falls_behind() -> None:
    until = START + timedelta(days=2 * MONTH_DAYS)
    document = backtest(CHURN, _history(0.5), trained_until=until, windows=3)
    first, second, third = document["windows"]
    assert first["metric"] == first["retrained_metric"]
    assert third["shortfall"] > second["shortfall"] > CRITERIA["binary_classification"].tolerance
    assert third["retrained_metric"] > third["metric"]
    assert document["recommended_max_age_days"] < 30 and document["beyond_horizon"] is False


def test_windows_without_enough_rows_are_reported_without_figures() -> None:
    until = START + timedelta(days=2 * MONTH_DAYS)
    raw = _history(0.0, months=3)  # one month after T, then nothing
    document = backtest(CHURN, raw, trained_until=until, windows=3)
    assert [w["rows"] for w in document["windows"]] == [2_500, 0, 0]
    assert document["windows"][1] == {
        "days_after_training": 60,
        "rows": 0,
        "metric": None,
        "retrained_metric": None,
        "shortfall": None,
        "within_tolerance": None,
    }
    assert document["recommended_max_age_days"] == 0
    with pytest.raises(ValueError, match="no rows before 2023-01-01"):
        backtest(CHURN, raw, trained_until=datetime(2023, 1, 1, tzinfo=UTC), windows=1)
    with pytest.raises(ValueError, match="timezone-aware"):
        backtest(CHURN, raw, trained_until=datetime(2024, 3, 1), windows=1)


def _windows(*shortfalls: float | None) -> list[dict[str, Any]]:
    return [{"shortfall": s} for s in shortfalls]


@pytest.mark.parametrize(
    ("shortfalls", "expected"),
    [
        ((0.0, 0.01, 0.02, 0.03), (60, False)),  # slope 0.02 / 60 days: the tolerance at 60
        ((0.0, 0.02, 0.04), (30, False)),
        ((0.0, 0.005, 0.01), (60, True)),  # reaches 0.02 only at 120 days: beyond the horizon
        ((0.0, -0.01, 0.0), (60, True)),  # no decay
        ((0.0, 0.01, None, 0.5), (30, True)),  # stops at the first window without figures
        ((0.0,), (0, True)),
        ((), (0, True)),
    ],
)
def test_the_recommendation_is_where_the_fitted_shortfall_reaches_the_tolerance(
    shortfalls: tuple[float | None, ...], expected: tuple[int, bool]
) -> None:
    assert recommend(_windows(*shortfalls), 0.02, 30) == expected


def test_shortfalls_follow_the_quality_shortfall_sign_rule() -> None:
    auc, rmse = CRITERIA["binary_classification"], CRITERIA["regression"]
    assert auc.shortfall(0.80, 0.78) == pytest.approx(0.02)  # retrained 0.80, stale 0.78
    assert auc.shortfall(0.80, 0.82) == pytest.approx(-0.02)
    assert rmse.shortfall(10.0, 11.0) == pytest.approx(0.1)  # stale RMSE 10% higher: worse
    assert rmse.shortfall(10.0, 9.0) == pytest.approx(-0.1)


def test_a_bad_backtest_config_is_explained() -> None:
    with pytest.raises(
        ValueError, match=r"train_months 0, windows 5: >= 1; rows_per_month 5: at least 100"
    ):
        BacktestConfig(train_months=0, rows_per_month=5)
    with pytest.raises(ValueError, match="start 'soon'"):
        BacktestConfig(start="soon")


# --- the drifting sample history -----------------------------------------------------------------


def test_concept_drift_changes_the_labels_and_nothing_else() -> None:
    base = generate_customers(3_000, seed=4)
    pd.testing.assert_frame_equal(generate_customers(3_000, seed=4, concept_drift=0.0), base)
    drifted = generate_customers(3_000, seed=4, concept_drift=1.0)
    labels = ["churned", "next_month_spend"]
    inputs = [c for c in CUSTOMERS_RAW.column_names if c not in labels]
    pd.testing.assert_frame_equal(drifted[inputs], base[inputs])
    assert (drifted["churned"] != base["churned"]).mean() > 0.05
    assert (drifted["next_month_spend"] != base["next_month_spend"]).mean() > 0.3
    with pytest.raises(ValueError, match="concept_drift must be between 0 and 5"):
        generate_customers(10, concept_drift=6.0)


def test_concept_drift_turns_the_relationship() -> None:
    """Under concept drift the old process ranks the new outcomes worse than the new process
    does: the relationship changed, not only the rate."""
    drifted = generate_customers(20_000, seed=6, concept_drift=1.5)
    y = drifted["churned"].to_numpy(dtype=int)
    old = roc_auc_score(y, true_churn_probability(drifted))
    new = roc_auc_score(y, true_churn_probability(drifted, concept_drift=1.5))
    assert new > old + 0.05
    assert abs(float(np.mean(true_churn_probability(drifted, concept_drift=1.5))) - y.mean()) < 0.02


def test_a_history_is_months_of_new_customers_each_further_drifted() -> None:
    history = generate_history(4, 500, seed=1, start=START, concept_drift_per_month=0.5)
    assert len(history) == 2_000 and history["customer_id"].is_unique
    month = (history["event_time"] - pd.Timestamp(START)) // pd.Timedelta(days=MONTH_DAYS)
    assert month.value_counts().sort_index().tolist() == [500, 500, 500, 500]
    third = history.iloc[1_000:1_500].reset_index(drop=True)
    expected = generate_customers(
        500,
        seed=10_002,
        as_of=START + timedelta(days=3 * MONTH_DAYS),
        id_offset=1_000,
        concept_drift=1.0,
    )
    pd.testing.assert_frame_equal(third, expected)
    with pytest.raises(ValueError, match=r"the last of 12 months \(5\.5\) at most 5"):
        generate_history(12, 10, concept_drift_per_month=0.5)
    with pytest.raises(ValueError, match="months \\(0\\) and rows_per_month \\(10\\)"):
        generate_history(0, 10)


# --- the command ---------------------------------------------------------------------------------


def test_the_command_prints_writes_and_checks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlplat.cli.app import app

    committed = read_staleness("churn")
    changed = {**committed, "recommended_max_age_days": committed["recommended_max_age_days"] + 1}
    monkeypatch.setattr(ml.backtest, "sample_backtest", lambda model: changed)
    (tmp_path / "churn").mkdir()
    (tmp_path / "churn" / "staleness.json").write_text(to_json(committed))
    monkeypatch.setattr(ml.backtest, "_MODELS", tmp_path)
    runner = CliRunner()

    checked = runner.invoke(app, ["backtest", "--model", "churn", "--check"])
    assert checked.exit_code == 1
    assert "differs from a fresh backtest: run `mlplat backtest --model churn --write`" in (
        checked.output
    )
    assert "recommended max age" in checked.output

    out = tmp_path / "doc.json"
    written = runner.invoke(app, ["backtest", "-m", "churn", "--write", "--json", str(out)])
    assert written.exit_code == 0, written.output
    assert json.loads((tmp_path / "churn" / "staleness.json").read_text()) == changed
    assert json.loads(out.read_text()) == changed
    assert runner.invoke(app, ["backtest", "-m", "churn", "--check"]).exit_code == 0
    both = runner.invoke(app, ["backtest", "-m", "churn", "--check", "--write"])
    assert both.exit_code == 2
