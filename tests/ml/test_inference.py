from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sagemaker_inference.errors import GenericInferenceToolkitError

from ml.inference import handler
from ml.models import load
from tests.ml.conftest import records

# The handler bound to the churn model, as the artifact's code/inference.py binds it.
CHURN = load("churn")
model_fn, input_fn, predict_fn, output_fn = handler("churn")
INPUT_NAMES = CHURN.features.input_names
build_features = CHURN.features.build_features
feature_matrix = CHURN.features.feature_matrix


@pytest.fixture(scope="module")
def model(model_dir: Path) -> Any:
    return model_fn(str(model_dir))


def _score(
    model: Any, body: str | bytes, content_type: str, accept: str = "application/json"
) -> tuple[str, str]:
    return output_fn(predict_fn(input_fn(body, content_type), model), accept)


def _expected(model: Any, frame: pd.DataFrame) -> np.ndarray:
    return model.predict_proba(feature_matrix(build_features(frame)))[:, 1]


def test_single_json_record(model: Any, raw: pd.DataFrame) -> None:
    body, content_type = _score(model, json.dumps(records(raw.head(1))[0]), "application/json")
    assert content_type == "application/json"
    scores = [p["score"] for p in json.loads(body)["predictions"]]
    np.testing.assert_allclose(scores, _expected(model, raw.head(1)), rtol=1e-12)


@pytest.mark.parametrize("shape", ["list", "instances"])
def test_json_batches(model: Any, raw: pd.DataFrame, shape: str) -> None:
    recs = records(raw.head(25))
    payload = recs if shape == "list" else {"instances": recs}
    body, _ = _score(model, json.dumps(payload).encode(), "application/json; charset=utf-8")
    scores = [p["score"] for p in json.loads(body)["predictions"]]
    np.testing.assert_allclose(scores, _expected(model, raw.head(25)), rtol=1e-12)


def _csv(frame: pd.DataFrame, header: bool) -> str:
    cols = list(INPUT_NAMES)
    if header:
        cols = ["customer_id", *cols]
    return frame[cols].to_csv(index=False, header=header)


@pytest.mark.parametrize("header", [True, False])
def test_csv_in_csv_out(model: Any, raw: pd.DataFrame, header: bool) -> None:
    body, content_type = _score(model, _csv(raw.head(10), header), "text/csv", accept="text/csv")
    assert content_type == "text/csv"
    scores = [float(line) for line in body.splitlines()]
    np.testing.assert_allclose(scores, _expected(model, raw.head(10)), rtol=1e-12)


def test_accept_negotiation(model: Any, raw: pd.DataFrame) -> None:
    one = json.dumps(records(raw.head(1))[0])
    assert _score(model, one, "application/json", "*/*")[1] == "application/json"
    assert _score(model, one, "application/json", "")[1] == "application/json"
    assert _score(model, one, "application/json", "image/png, text/csv;q=0.5")[1] == "text/csv"


def _error(body: Any, content_type: str = "application/json") -> GenericInferenceToolkitError:
    with pytest.raises(GenericInferenceToolkitError) as err:
        input_fn(body, content_type)
    return err.value


@pytest.mark.parametrize(
    ("body", "content_type", "status", "message"),
    [
        ('{"tenure_months": ', "application/json", 400, "not valid JSON (Expecting value"),
        ("42", "application/json", 400, "got a JSON int"),
        ('{"instances": {}}', "application/json", 400, '"instances" must be a list'),
        ("   ", "application/json", 400, "the body is empty"),
        (b"\xff\xfe", "application/json", 400, "not UTF-8"),
        ("{}", "application/x-npy", 415, "content type 'application/x-npy' is not supported"),
        ('{"tenure_months": 3}', "application/json", 400, "missing feature 'region'"),
        ("1,2,3\n", "text/csv", 400, "CSV line 1 has 3 fields; expected 9"),
        ("tenure_months,region\n", "text/csv", 400, "has a header but no records"),
        (
            "5,50,,monthly,card,0,1,north,false\n",
            "text/csv",
            400,
            "feature 'contract_type' is 'monthly'",
        ),
        (
            "5,fifty,,one-year,card,0,1,north,maybe\n",
            "text/csv",
            400,
            "feature 'monthly_charges' must be a number; got str 'fifty'",
        ),
    ],
)
def test_bad_requests_say_what_to_fix(
    body: Any, content_type: str, status: int, message: str
) -> None:
    err = _error(body, content_type)
    assert err.status_code == status
    assert message in err.message


def test_mistyped_feature_in_json() -> None:
    record = {
        "tenure_months": "twelve",
        "monthly_charges": 50.0,
        "total_charges": None,
        "contract_type": "one-year",
        "payment_method": None,
        "support_tickets": 0,
        "data_usage_gb": None,
        "region": "east",
        "is_senior": "no",
    }
    err = _error(json.dumps(record))
    assert err.status_code == 400
    assert "feature 'tenure_months' must be a number; got str 'twelve'" in err.message
    assert "feature 'is_senior' must be true or false; got str 'no'" in err.message


def test_csv_booleans_and_empty_fields(model: Any) -> None:
    row = "5,50.0,,month-to-month,,0,,north,TRUE\n"
    body, _ = _score(model, row, "text/csv")
    assert 0 < json.loads(body)["predictions"][0]["score"] < 1


def test_unsupported_accept_is_406() -> None:
    with pytest.raises(GenericInferenceToolkitError) as err:
        output_fn(np.array([0.5]), "application/xml")
    assert err.value.status_code == 406
    assert "accept application/json or text/csv" in err.value.message


def test_model_fn_explains_a_missing_model(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"no model\.joblib in"):
        model_fn(str(tmp_path))


def test_the_folded_linear_model_scores_like_the_pipeline() -> None:
    from ml.inference import LinearScorer, fold_linear
    from ml.models.churn.model import Hyperparameters, make_pipeline
    from ml.sample_data import generate_customers

    features = build_features(generate_customers(3_000, seed=11))
    matrix = feature_matrix(features)
    pipeline = make_pipeline().fit(matrix, features["churned"].to_numpy())
    folded = fold_linear(pipeline)
    assert isinstance(folded, LinearScorer)
    np.testing.assert_allclose(
        folded.predict_proba(matrix), pipeline.predict_proba(matrix), rtol=0, atol=1e-12
    )
    boosted = make_pipeline(Hyperparameters(estimator="hist_gradient_boosting", max_iter=5))
    assert fold_linear(boosted.fit(matrix, features["churned"].to_numpy())) is None
    with pytest.raises(ValueError, match="NaN or infinite"):
        folded.predict_proba(np.full((1, matrix.shape[1]), np.nan))


def test_the_handler_is_bound_to_the_model_it_names() -> None:
    from ml.models import ModelSpecError

    functions = handler("churn")
    assert [f.__name__ for f in functions] == ["model_fn", "input_fn", "predict_fn", "output_fn"]
    with pytest.raises(ModelSpecError, match="no model 'fraud'"):
        handler("fraud")


# --- the served version in every answer -------------------------------------------------------

ARN = "arn:aws:sagemaker:eu-west-1:123456789012:model-package/churn-models/12"


def test_every_json_answer_names_the_served_version(
    model_dir: Path, raw: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ml.contracts import MODEL_VERSION_ENV

    monkeypatch.setenv(MODEL_VERSION_ENV, ARN)
    fns = handler("churn")
    loaded = fns[0](str(model_dir))
    monkeypatch.delenv(MODEL_VERSION_ENV)  # read once at load, not per answer
    for body in (json.dumps(records(raw.head(1))[0]), json.dumps(records(raw.head(3)))):
        answer, _ = fns[3](fns[2](fns[1](body, "application/json"), loaded), "application/json")
        assert json.loads(answer)["model_version"] == "churn-models/12"
    # CSV answers stay one score per line (clients parse them as such)
    answer, content_type = fns[3](np.array([0.25, 0.5]), "text/csv")
    assert (answer, content_type) == ("0.25\n0.5\n", "text/csv")


def test_without_a_registered_version_the_answer_says_unregistered(
    model: Any, raw: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ml.contracts import MODEL_VERSION_ENV

    monkeypatch.delenv(MODEL_VERSION_ENV, raising=False)
    fns = handler("churn")  # not loaded yet: the version read at bind time answers
    body, _ = fns[3](np.array([0.5]), "application/json")
    assert json.loads(body) == {"predictions": [{"score": 0.5}], "model_version": "unregistered"}
    monkeypatch.setenv(MODEL_VERSION_ENV, "")
    assert (
        json.loads(_score(model, json.dumps(records(raw.head(1))), "application/json")[0])[
            "model_version"
        ]
        == "unregistered"
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (ARN, "churn-models/12"),
        ("arn:aws-cn:sagemaker:cn-north-1:123456789012:model-package/a-b/1", "a-b/1"),
        ("", "unregistered"),
        ("  ", "unregistered"),
    ],
)
def test_served_version_of_the_container_environment(value: str, expected: str) -> None:
    from ml.inference import served_version

    assert served_version({"MLPLAT_MODEL_VERSION": value}) == expected
    assert served_version({}) == "unregistered"


@pytest.mark.parametrize(
    "value",
    [
        "churn-models/12",
        "arn:aws:sagemaker:eu-west-1:123456789012:model-package-group/churn-models",
        "arn:aws:sagemaker:eu-west-1:123456789012:model-package/churn-models/twelve",
    ],
)
def test_a_malformed_version_stops_the_container_with_the_variable_named(
    value: str, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ml.inference import served_version

    with pytest.raises(ValueError, match=r"MLPLAT_MODEL_VERSION=.* is not a model package version"):
        served_version({"MLPLAT_MODEL_VERSION": value})
    fns = handler("churn")
    monkeypatch.setenv("MLPLAT_MODEL_VERSION", value)
    with pytest.raises(ValueError, match="expected arn:aws:sagemaker"):
        fns[0](str(model_dir))
