"""ml.skew: captured inputs re-scored through the training path with the served estimator; a
handler whose feature code differs from training's is caught, a faithful one is not. Model age
from the served artifact's lineage."""

from __future__ import annotations

import io
import json
import math
import shutil
import tarfile
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import numpy as np
import pandas as pd
import pytest
from moto import mock_aws

from ml.models import load
from ml.serve import load_handler
from ml.skew import SkewError, load_served, measure_skew, model_age_days
from tests.ml.conftest import records
from tests.ml.test_labels import prediction_rows

CHURN = load("churn")

# Appended to the artifact's own `code/ml/models/churn/model.py`: the served feature code calls a
# customer "new" below 12 months of tenure; training says 6.
SKEWED_DERIVE = textwrap.dedent("""

    import dataclasses as _dataclasses

    _training_derive = derive


    def derive(cols):
        out = _training_derive(cols)
        out["is_new_customer"] = (cols["tenure_months"] < 12.0).astype(np.float64)
        return out


    MODEL = _dataclasses.replace(MODEL, derive=derive)
""")


def skewed_copy(model_dir: Path, dest: Path) -> Path:
    shutil.copytree(model_dir, dest)
    source = dest / "code" / "ml" / "models" / "churn" / "model.py"
    source.write_text(source.read_text() + SKEWED_DERIVE)
    return dest


def served_rows(directory: Path, raw: pd.DataFrame) -> pd.DataFrame:
    """Prediction-log rows of `raw` as the artifact in `directory` answers them (its handler)."""
    handler = load_handler(directory)
    body = json.dumps(records(raw))
    matrix = handler.input_fn(body, "application/json")
    answer, _ = handler.output_fn(handler.predict_fn(matrix, handler.model), "application/json")
    scores = np.array([p["score"] for p in json.loads(answer)["predictions"]])
    return prediction_rows(CHURN, raw, scores, json.loads(answer)["model_version"])


def test_a_faithful_handler_shows_no_skew(model_dir: Path, raw: pd.DataFrame) -> None:
    rows = served_rows(model_dir, raw.head(1_500))
    result = measure_skew(CHURN, CHURN.load(model_dir), rows)
    assert (result.n, result.n_differ, result.share, result.worst) == (1_000, 0, 0.0, [])


def test_a_handler_whose_feature_code_differs_shows_a_high_share(
    model_dir: Path, raw: pd.DataFrame, tmp_path: Path
) -> None:
    sample = raw.head(1_500)
    rows = served_rows(skewed_copy(model_dir, tmp_path / "skewed"), sample)
    result = measure_skew(CHURN, CHURN.load(model_dir), rows, sample=2_000)
    tenure = sample["tenure_months"].to_numpy()
    between = int(((tenure >= 6) & (tenure < 12)).sum())
    assert between > 100  # the test means something only if such customers are in the sample
    assert result.n == 1_500
    assert result.n_differ == between  # exactly the customers the two codes call differently
    assert result.share == pytest.approx(between / 1_500)
    assert len(result.worst) == 5
    for example in result.worst:
        assert 6 <= example["inputs"]["tenure_months"] < 12
        assert example["difference"] == pytest.approx(
            abs(example["endpoint_score"] - example["training_score"])
        )
        assert example["difference"] > 1e-6
        assert example["customer_id"] in set(sample["customer_id"])


def test_sampling_is_seeded_and_refused_rows_count_as_skew(
    model_dir: Path, raw: pd.DataFrame
) -> None:
    rows = served_rows(model_dir, raw.head(300))
    estimator = CHURN.load(model_dir)
    a = measure_skew(CHURN, estimator, rows, sample=50, seed=1)
    assert a.n == 50 and a == measure_skew(CHURN, estimator, rows, sample=50, seed=1)
    # the endpoint answered a row the training path refuses: that is skew too
    bad = rows.copy()
    bad["contract_type"] = bad["contract_type"].astype(object)
    bad.loc[0, "contract_type"] = "monthly"
    bad["contract_type"] = bad["contract_type"].astype("string")
    result = measure_skew(CHURN, estimator, bad)
    assert (result.n, result.n_differ) == (300, 1)
    assert result.worst[0]["training_score"] is None
    assert result.worst[0]["inputs"]["contract_type"] == "monthly"
    assert sum(result.refused.values()) == 1
    # a score the endpoint changed (a bug after predict_fn) is caught at the tolerance
    shifted = rows.assign(score=rows["score"] + 1e-5)
    assert measure_skew(CHURN, estimator, shifted).n_differ == 300
    assert measure_skew(CHURN, estimator, shifted, tolerance=1e-4).n_differ == 0


def test_bad_arguments_are_refused(model_dir: Path, raw: pd.DataFrame) -> None:
    rows = prediction_rows(CHURN, raw.head(5))
    estimator = CHURN.load(model_dir)
    with pytest.raises(SkewError, match="tolerance must be"):
        measure_skew(CHURN, estimator, rows, tolerance=-1)
    with pytest.raises(SkewError, match="sample must be at least 1"):
        measure_skew(CHURN, estimator, rows, sample=0)
    with pytest.raises(SkewError, match=r"lack column\(s\) \['score'\]"):
        measure_skew(CHURN, estimator, rows.drop(columns="score"))
    assert measure_skew(CHURN, estimator, rows.iloc[:0]).n == 0


def _tarball(directory: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                tar.add(path, arcname=str(path.relative_to(directory)))
    return buffer.getvalue()


def test_the_served_artifact_gives_its_estimator_and_age(
    model_dir: Path, raw: pd.DataFrame
) -> None:
    lineage = json.loads((model_dir / "lineage.json").read_text())
    created = datetime.fromisoformat(lineage["created_at"])
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="models")
        s3.put_object(Bucket="models", Key="churn/serving/model.tar.gz", Body=_tarball(model_dir))
        served = load_served(CHURN, s3, "models", "churn/serving/model.tar.gz")
        assert served.uri == "s3://models/churn/serving/model.tar.gz"
        matrix = CHURN.features.feature_matrix(CHURN.features.build_features(raw.head(20)))
        np.testing.assert_array_equal(
            CHURN.predict(served.estimator, matrix),
            CHURN.predict(CHURN.load(model_dir), matrix),
        )
        assert served.lineage["created_at"] == lineage["created_at"]
        with pytest.raises(SkewError, match=r"no served model at s3://models/nope\.tar\.gz"):
            load_served(CHURN, s3, "models", "nope.tar.gz")
        s3.put_object(Bucket="models", Key="bad.tar.gz", Body=b"not a tarball")
        with pytest.raises(SkewError, match="cannot extract"):
            load_served(CHURN, s3, "models", "bad.tar.gz")
    later = created + timedelta(days=45, hours=12)
    assert model_age_days(served.lineage, later) == pytest.approx(45.5)
    assert math.isclose(
        model_age_days({"created_at": "2025-01-01T00:00:00"}, later),
        (later - datetime(2025, 1, 1, tzinfo=UTC)).total_seconds() / 86400,
    )
    with pytest.raises(SkewError, match="has no created_at"):
        model_age_days({}, later)
    with pytest.raises(SkewError, match="not an ISO 8601 time"):
        model_age_days({"created_at": "yesterday"}, later)
