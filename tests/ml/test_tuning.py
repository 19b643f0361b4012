"""`ml.tuning`: the hyperparameter search over a model's declared space, inside training."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from ml.models import load
from ml.pipeline.common import WorkItem, write_work_items
from ml.train import ContainerPaths, split, train
from ml.tuning import SearchConfig, SearchError, candidates, fold_of, score, search

CHURN = load("churn")
SPEND = load("spend")


@pytest.fixture(scope="module")
def rows(features: pd.DataFrame) -> pd.DataFrame:
    """The training rows of the session's churn features (what `train` searches on)."""
    train_rows, _ = split(features, 0.2, 0)
    return train_rows


def test_the_search_cross_validates_every_candidate_and_chooses_the_best(
    rows: pd.DataFrame,
) -> None:
    result = search(CHURN, rows, CHURN.hyperparameters(), SearchConfig(folds=3))
    assert [t.point for t in result.trials] == [{"c": 1.0}, {"c": 0.1}, {"c": 10.0}]
    assert all(len(t.fold_scores) == 3 and t.failure is None for t in result.trials)
    scores = [t.cv_score for t in result.trials]
    assert None not in scores
    assert result.best == scores.index(min(s for s in scores if s is not None))
    assert result.chosen.c == result.trials[result.best].point["c"]
    assert result.chosen.max_iter == CHURN.hyperparameters().max_iter  # the rest is kept
    assert result.metric == "log_loss" and result.grid_size == 3 and result.rows == len(rows)


def test_the_search_finds_a_far_better_point_than_the_one_it_starts_from(
    rows: pd.DataFrame,
) -> None:
    """Starting from a crippling setting, the search moves to the good one: a search that did
    not search, or kept the worst, fails here."""
    model = dataclasses.replace(CHURN, search_space={"c": (0.00001, 1.0)})
    result = search(model, rows, CHURN.hyperparameters(c=0.00001))
    assert [t.point["c"] for t in result.trials] == [0.00001, 1.0]
    worst, best = (t.cv_score for t in result.trials)
    assert worst is not None and best is not None and best < worst - 0.05
    assert result.chosen.c == 1.0


def test_same_rows_and_seed_give_the_same_trials_and_choice(rows: pd.DataFrame) -> None:
    hp = CHURN.hyperparameters(seed=5)
    a, b = search(CHURN, rows, hp), search(CHURN, rows, hp)
    assert [t.to_dict() for t in a.trials] == [t.to_dict() for t in b.trials]
    assert a.chosen == b.chosen
    # in another row order the folds hold the same customers: the same scores (up to the
    # optimizer's rounding) and the same choice
    reordered = search(CHURN, rows.iloc[::-1], hp)
    assert [t.cv_score for t in reordered.trials] == pytest.approx(
        [t.cv_score for t in a.trials], rel=1e-9
    )
    assert reordered.chosen == a.chosen


def test_folds_are_by_customer_whatever_the_row_order(rows: pd.DataFrame) -> None:
    doubled = pd.concat([rows, rows.iloc[::-1]], ignore_index=True)  # every customer twice
    folds = fold_of(doubled, 3, seed=0)
    by_customer = pd.Series(folds).groupby(doubled["customer_id"].to_numpy()).nunique()
    assert (by_customer == 1).all()
    shares = np.bincount(folds, minlength=3) / len(folds)
    assert np.all(np.abs(shares - 1 / 3) < 0.05)
    assert not np.array_equal(folds, fold_of(doubled, 3, seed=1))  # the seed matters
    without_ids = fold_of(rows.drop(columns=["customer_id"]), 4, seed=0)
    assert set(without_ids.tolist()) == {0, 1, 2, 3}


def test_a_large_grid_is_cut_to_a_seeded_sample_around_the_starting_point() -> None:
    hp = SPEND.hyperparameters()
    points, size = candidates(SPEND.search_space, hp, max_candidates=5, seed=0)
    assert size == 12 and len(points) == 5
    assert points[0] == {"max_depth": 4, "learning_rate": 0.05, "min_child_weight": 10.0}
    assert len({_key(p) for p in points}) == 5
    assert points == candidates(SPEND.search_space, hp, max_candidates=5, seed=0)[0]
    samples = {
        frozenset(_key(p) for p in candidates(SPEND.search_space, hp, max_candidates=5, seed=s)[0])
        for s in range(5)
    }
    assert len(samples) > 1  # the seed picks the sample
    full, _ = candidates(SPEND.search_space, hp, max_candidates=50, seed=0)
    assert len(full) == 12


def _key(point: dict[str, Any]) -> str:
    return json.dumps(point, sort_keys=True)


def test_a_candidate_that_does_not_converge_is_recorded_and_left_out(rows: pd.DataFrame) -> None:
    model = dataclasses.replace(CHURN, search_space={"max_iter": (1, 500)})
    result = search(model, rows.head(1_500), CHURN.hyperparameters(max_iter=1))
    failed, ok = result.trials
    assert failed.cv_score is None and failed.failure is not None
    assert "did not converge" in failed.failure
    assert ok.failure is None and result.chosen.max_iter == 500
    assert result.to_dict()["trials"][0]["cv_score"] is None


def test_a_search_where_nothing_trains_or_with_too_few_rows_is_refused(
    rows: pd.DataFrame,
) -> None:
    model = dataclasses.replace(CHURN, search_space={"max_iter": (1, 2)})
    with pytest.raises(SearchError, match="no candidate of 'churn''s search space trained"):
        search(model, rows.head(1_500), CHURN.hyperparameters(max_iter=1))
    with pytest.raises(SearchError, match=r"fold 0 holds \d+ rows of one class: too few"):
        search(CHURN, rows.head(12))
    with pytest.raises(SearchError, match="declares no search space"):
        search(dataclasses.replace(CHURN, search_space={}), rows)
    with pytest.raises(SearchError, match=r"folds=1: must be in \[2, 10\]; max_candidates=0"):
        SearchConfig(folds=1, max_candidates=0)


def test_scores_are_log_loss_and_rmse() -> None:
    y = np.array([1.0, 0.0])
    assert score("binary_classification", y, np.array([0.8, 0.4])) == pytest.approx(
        -(np.log(0.8) + np.log(0.6)) / 2
    )
    assert score("regression", np.array([1.0, 3.0]), np.array([2.0, 1.0])) == pytest.approx(
        np.sqrt(2.5)
    )


def test_training_with_search_records_space_trials_and_choice(features: pd.DataFrame) -> None:
    result = train(CHURN, features, CHURN.hyperparameters(seed=3), search=True)
    searched = result.lineage["search"]
    assert searched["space"] == {"c": [0.1, 1.0, 10.0]}
    assert searched["metric"] == "log_loss" and searched["folds"] == 3
    assert len(searched["trials"]) == 3
    assert all(t["cv_score"] is not None and len(t["fold_scores"]) == 3 for t in searched["trials"])
    best = min(searched["trials"], key=lambda t: t["cv_score"])
    assert searched["chosen"] == best["hyperparameters"]
    assert result.lineage["hyperparameters"]["c"] == best["hyperparameters"]["c"]
    assert result.hyperparameters.c == best["hyperparameters"]["c"]
    # the held-out rows the gate judges are not the searched ones
    assert searched["rows"] == result.lineage["data"]["rows_train"]
    # without the opt-in, nothing is searched
    assert "search" not in train(CHURN, features, CHURN.hyperparameters(seed=3)).lineage


def test_the_spend_model_searches_a_bounded_sample_of_its_grid(features: pd.DataFrame) -> None:
    raw_rows = SPEND.features.build_features(_raw(2_000))
    result = train(
        SPEND,
        raw_rows,
        SPEND.hyperparameters(n_estimators=20),
        search=SearchConfig(folds=2, max_candidates=3),
    )
    searched = result.lineage["search"]
    assert searched["grid_size"] == 12 and len(searched["trials"]) == 3
    assert searched["metric"] == "rmse"
    assert result.hyperparameters.n_estimators == 20  # outside the space: kept


def _raw(n: int) -> pd.DataFrame:
    from ml.sample_data import generate_customers

    return generate_customers(n, seed=2)


def test_the_pipelines_train_step_searches_when_its_hyperparameters_say_so(
    tmp_path: Path, features: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ml.pipeline.train as step

    table = CHURN.spec.features
    partitions = tmp_path / "partitions"
    write_work_items(
        partitions, [WorkItem(table.name, "features-zone", table.prefix, "2025-01-02", "", "")]
    )
    config = tmp_path / "config"
    config.mkdir()
    (config / "hyperparameters.json").write_text(json.dumps({"search": "true", "seed": "3"}))

    def read_local_dataset(*args: Any, **kwargs: Any) -> pd.DataFrame:
        return features

    monkeypatch.setattr(step, "read_local_dataset", read_local_dataset)
    paths = ContainerPaths(
        model_dir=tmp_path / "model",
        output_dir=tmp_path / "output",
        config_dir=config,
        channels={"partitions": partitions, "features": tmp_path / "mount"},
    )
    result = step.run_train(CHURN, paths)
    lineage = json.loads((tmp_path / "model" / "lineage.json").read_text())
    assert (
        result.search is not None
        and lineage["search"]["chosen"] == result.search.to_dict()["chosen"]
    )
    assert lineage["data"]["partitions"] == ["2025-01-02"]
    (config / "hyperparameters.json").write_text(json.dumps({"search": "false", "seed": "3"}))
    assert step.run_train(CHURN, paths).search is None
