from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest

from ml.baseline import (
    FORMAT,
    bin_counts,
    category_proportions,
    compute_baseline,
    ks_statistic,
    psi,
)
from ml.models import load
from ml.sample_data import generate_customers

CHURN = load("churn")
FEATURES = CHURN.features.features


def test_baseline_has_every_feature_and_the_scores(trained: Any) -> None:
    baseline = trained.baseline
    json.dumps(baseline, allow_nan=False)
    assert baseline["format"] == FORMAT
    assert set(baseline["features"]) == {f.name for f in FEATURES}
    for name, entry in baseline["features"].items():
        if entry["kind"] == "numeric":
            assert len(entry["counts"]) == len(entry["edges"]) + 1, name
            assert sum(entry["proportions"]) == pytest.approx(1.0)
            assert len(entry["quantiles"]["values"]) == 101
        else:
            assert sum(entry["proportions"].values()) == pytest.approx(1.0)
    assert set(baseline["features"]["region"]["counts"]) == {"north", "south", "east", "west"}
    assert len(baseline["score"]["edges"]) == 19


def test_bin_counts_follow_the_documented_edges() -> None:
    counts = bin_counts(np.array([0.0, 1.0, 1.5, 2.0, 3.0, np.nan]), [1.0, 2.0])
    # x <= 1 | 1 < x <= 2 | x > 2
    assert counts.tolist() == [2, 2, 1]


def test_same_data_has_no_drift_and_shifted_data_has(features: pd.DataFrame) -> None:
    scores = np.linspace(0, 1, len(features))
    baseline = compute_baseline(CHURN, features, scores)
    entry = baseline["features"]["monthly_charges"]
    same = bin_counts(features["monthly_charges"].to_numpy(), entry["edges"])
    assert psi(entry["proportions"], same / same.sum()) == pytest.approx(0.0, abs=1e-12)
    shifted = features["monthly_charges"].to_numpy() * 1.5
    moved = bin_counts(shifted, entry["edges"])
    assert psi(entry["proportions"], moved / moved.sum()) > 0.25
    assert ks_statistic(entry, features["monthly_charges"].to_numpy()) < 0.02
    assert ks_statistic(entry, shifted) > 0.2


def test_category_proportions_count_unseen_values_as_other() -> None:
    shares = category_proportions(pd.Series(["a", "a", "b", "z", None]), ["a", "b"])
    assert shares == {"a": 0.5, "b": 0.25, "__other__": 0.25}


def test_bad_baseline_inputs(features: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="feature rows but"):
        compute_baseline(CHURN, features, np.zeros(3))
    with pytest.raises(ValueError, match="bins differ"):
        psi([0.5, 0.5], [1.0])


def test_a_regressors_score_bins_follow_its_scores(features: pd.DataFrame) -> None:
    spend = load("spend")
    table = spend.features.build_features(generate_customers(2_000, seed=5))
    scores = np.linspace(10.0, 500.0, len(table))
    baseline = compute_baseline(spend, table, scores)
    assert set(baseline["features"]) == set(spend.spec.feature_names)
    edges = baseline["score"]["edges"]
    assert len(edges) == 9 and 10.0 < edges[0] < edges[-1] < 500.0
