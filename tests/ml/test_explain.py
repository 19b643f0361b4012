"""`mlplat explain`: every step against values computed by hand, and the shipped models' sums.

* a logistic regression whose scaler and coefficients are set by hand: the standardised values,
  the contributions, the logit and the score are worked out below;
* XGBoost trees fitted on four rows, whose leaves, covers and Shapley values are worked out below;
* the trained churn and spend models: the contributions add up to the logit / the margin to 1e-9
  for every record, the score is the handler's, and the TreeSHAP values are XGBoost's own.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from ml.explain import ExplainError, explain, explain_artifact, tree_contributions
from ml.inference import InvalidRequestError, fold_linear
from ml.models import load
from ml.sample_data import generate_customers
from tests.ml.conftest import records

CHURN = load("churn")
SPEND = load("spend")
RECORD = {
    "customer_id": "c-1",
    "tenure_months": 14,
    "monthly_charges": 70.0,
    "total_charges": 700.0,
    "contract_type": "month-to-month",
    "payment_method": "card",
    "support_tickets": 2,
    "data_usage_gb": None,
    "region": "north",
    "is_senior": False,
}


def body(record: dict[str, Any] | list[Any]) -> bytes:
    return json.dumps(record).encode()


# --- a logistic regression set by hand ----------------------------------------------------------


@pytest.fixture(scope="module")
def hand_set() -> Any:
    """The churn pipeline (scaler + logistic regression) with parameters chosen here: tenure
    (mean 10, scale 2) weighs 0.5, monthly charges (mean 50, scale 10) -1.0, a month-to-month
    contract 2.0, the intercept is -0.25; every other coefficient is 0."""
    columns = CHURN.features.matrix_columns
    rng = np.random.default_rng(0)
    pipeline = CHURN.make_estimator(CHURN.hyperparameters())
    pipeline.fit(rng.normal(size=(40, len(columns))), np.arange(40) % 2)
    scaler = pipeline.named_steps["columns"].named_transformers_["numeric"]
    numeric = CHURN.features.numeric_features
    scaler.mean_ = np.array(
        [{"tenure_months": 10.0, "monthly_charges": 50.0}.get(n, 0.0) for n in numeric]
    )
    scaler.scale_ = np.array(
        [{"tenure_months": 2.0, "monthly_charges": 10.0}.get(n, 1.0) for n in numeric]
    )
    coef = np.zeros((1, len(columns)))
    coef[0, numeric.index("tenure_months")] = 0.5
    coef[0, numeric.index("monthly_charges")] = -1.0
    # the transformer's output: the numeric columns, then the indicators in matrix order
    coef[0, columns.index("contract_type=month-to-month")] = 2.0
    pipeline.named_steps["model"].coef_ = coef
    pipeline.named_steps["model"].intercept_ = np.array([-0.25])
    return pipeline


def test_each_step_of_a_logistic_regression_by_hand(hand_set: Any) -> None:
    done = explain(CHURN, hand_set, body(RECORD))
    assert dict(done.inputs)["tenure_months"] == 14 and dict(done.inputs)["data_usage_gb"] is None
    assert done.ignored == ("customer_id",)
    features = dict(done.features)
    assert features["avg_monthly_spend"] == 50.0  # 700 / 14
    assert features["charge_trend"] == pytest.approx(1.4)  # 70 / 50
    assert features["log_data_usage_gb"] == 0.0 and features["data_usage_missing"] == 1.0
    assert features["is_new_customer"] == 0.0  # 14 months is not new
    assert features["contract_type"] == "month-to-month" and features["payment_method"] == "card"
    columns = {c.name: c for c in done.columns}
    tenure, monthly = columns["tenure_months"], columns["monthly_charges"]
    assert (tenure.value, tenure.mean, tenure.scale, tenure.standardised) == (14, 10, 2, 2.0)
    assert (tenure.coefficient, tenure.contribution) == (0.5, 1.0)  # 0.5 x (14 - 10) / 2
    assert (monthly.standardised, monthly.contribution) == (2.0, -2.0)  # -1 x (70 - 50) / 10
    indicator = columns["contract_type=month-to-month"]
    assert (indicator.value, indicator.mean, indicator.contribution) == (1.0, None, 2.0)
    assert columns["contract_type=one-year"].value == 0.0
    others = [
        c.contribution
        for n, c in columns.items()
        if n not in ("tenure_months", "monthly_charges", "contract_type=month-to-month")
    ]
    assert others == [0.0] * (len(columns) - 3)
    a = done.attribution
    assert (a.method, a.link, a.base) == ("linear", "logistic", -0.25)
    assert a.margin == 0.75  # -0.25 + 1 - 2 + 2
    assert done.score == pytest.approx(1 / (1 + math.exp(-0.75)), abs=1e-15)  # 0.67917869917...
    assert a.linked == pytest.approx(0.679178699175393, abs=1e-15)


def test_the_text_and_json_show_every_step(hand_set: Any) -> None:
    done = explain(CHURN, hand_set, body(RECORD))
    text = done.to_text()
    for heading in ("1. validated input", "2. derived features", "3. matrix columns", "4. score"):
        assert heading in text
    assert text.index("1. validated") < text.index("2. derived") < text.index("4. score")
    assert "intercept -0.25 + sum of contributions = logit 0.75" in text
    assert "ignored keys (not inputs of the model): customer_id" in text
    data = json.loads(json.dumps(done.to_dict()))
    assert (data["attribution"]["base_name"], data["attribution"]["base"]) == ("intercept", -0.25)
    assert data["attribution"]["margin"] == 0.75
    assert data["features"]["avg_monthly_spend"] == 50.0
    assert [c["name"] for c in data["columns"]] == list(CHURN.features.matrix_columns)


# --- trees fitted by hand -----------------------------------------------------------------------


def _booster(x: list[list[float]], y: list[float], depth: int) -> Any:
    import xgboost

    model = xgboost.XGBRegressor(
        n_estimators=1,
        max_depth=depth,
        learning_rate=1.0,
        reg_lambda=0.0,
        min_child_weight=0.0,
        base_score=0.0,
        tree_method="exact",
        n_jobs=1,
    )
    return model.fit(np.array(x), np.array(y)).get_booster()


def test_a_stump_by_hand() -> None:
    # x0 = 1 on one row of four, y = 10 x0: leaves 0 (cover 3) and 10 (cover 1); E f = 2.5
    booster = _booster([[0.0], [0.0], [0.0], [1.0]], [0.0, 0.0, 0.0, 10.0], depth=1)
    phi, expected, margin, link = tree_contributions(booster, np.array([1.0]))
    assert (expected, margin, link) == (2.5, 10.0, "identity")
    assert phi.tolist() == [7.5]
    phi, _, margin, _ = tree_contributions(booster, np.array([0.0]))
    assert (phi.tolist(), margin) == ([-2.5], 0.0)


GRID = [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]


@pytest.mark.parametrize(
    ("y", "x", "shapley"),
    [
        # additive, 10 x0 + 5 x1 on a balanced grid: phi_i = w_i (x_i - 1/2)
        ([0.0, 5.0, 10.0, 15.0], [1.0, 1.0], [5.0, 2.5]),
        ([0.0, 5.0, 10.0, 15.0], [0.0, 1.0], [-5.0, 2.5]),
        # AND: 10 when both are 1. v({}) = 2.5, v({0}) = v({1}) = 5, v({0, 1}) = 10, so
        # phi_0 = phi_1 = ((5 - 2.5) + (10 - 5)) / 2 = 3.75
        ([0.0, 0.0, 0.0, 10.0], [1.0, 1.0], [3.75, 3.75]),
        # at (1, 0): v({0}) = 5, v({1}) = 0, v({0, 1}) = 0: phi_0 = 1.25, phi_1 = -3.75
        ([0.0, 0.0, 0.0, 10.0], [1.0, 0.0], [1.25, -3.75]),
    ],
)
def test_two_feature_trees_by_hand(y: list[float], x: list[float], shapley: list[float]) -> None:
    import xgboost

    booster = _booster(GRID, y, depth=2)
    phi, expected, margin, _ = tree_contributions(booster, np.array(x))
    assert phi.tolist() == pytest.approx(shapley, abs=1e-12)
    assert expected == pytest.approx(sum(y) / 4, abs=1e-12)
    assert margin == y[GRID.index(x)]
    theirs = booster.predict(xgboost.DMatrix(np.array([x])), pred_contribs=True)[0]
    assert theirs[:-1].tolist() == pytest.approx(shapley, abs=1e-5)  # XGBoost's own (float32)


# --- the shipped models -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def spend_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ml.train import train, write_outputs

    raw = generate_customers(2_000, seed=5)
    trained = train(SPEND, SPEND.features.build_features(raw), SPEND.hyperparameters(seed=1))
    return write_outputs(trained, tmp_path_factory.mktemp("spend"))


def test_the_churn_logit_is_the_sum_of_its_contributions(model_dir: Path, tmp_path: Path) -> None:
    estimator = CHURN.load(model_dir)
    served = fold_linear(estimator)
    assert served is not None
    for i, record in enumerate(records(generate_customers(40, seed=8))):
        path = tmp_path / f"r{i}.json"
        path.write_text(json.dumps(record))
        done = explain_artifact(model_dir, path)
        a = done.attribution
        assert a.base is not None and a.margin is not None
        assert abs(a.base + math.fsum(done.contributions.values()) - a.margin) < 1e-9
        matrix = CHURN.features.records_to_matrix([record])
        assert abs(a.margin - float(matrix[0] @ served.weights + served.bias)) < 1e-9
        assert abs(_sigmoid(a.margin) - done.score) < 1e-9
        assert done.score == float(served.predict_proba(matrix)[0, 1])  # the handler's


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def test_the_spend_margin_is_the_sum_of_its_shap_values(spend_dir: Path, tmp_path: Path) -> None:
    import xgboost

    estimator = SPEND.load(spend_dir)
    for i, record in enumerate(records(generate_customers(40, seed=8), "spend")):
        path = tmp_path / f"r{i}.json"
        path.write_text(json.dumps(record))
        done = explain_artifact(spend_dir, path)
        a = done.attribution
        assert a.method == "tree_shap" and a.base is not None and a.margin is not None
        phi = np.array([c.contribution for c in done.columns])
        assert abs(a.base + math.fsum(phi) - a.margin) < 1e-9
        matrix = SPEND.features.records_to_matrix([record])
        assert done.score == float(SPEND.predict(estimator, matrix)[0])  # the handler's
        theirs = estimator.booster.predict(xgboost.DMatrix(matrix), pred_contribs=True)[0]
        assert np.abs(phi - theirs[:-1]).max() < 1e-4  # XGBoost's TreeSHAP, in float32
        assert abs(a.base - theirs[-1]) < 1e-3
        assert abs(a.margin - max(done.score, a.margin)) < 1e-3 * max(1.0, abs(a.margin))


def test_an_estimator_without_exact_attribution_says_so() -> None:
    from ml.train import train

    raw = generate_customers(1_500, seed=2)
    hp = CHURN.hyperparameters(estimator="hist_gradient_boosting", max_iter=20)
    fitted = train(CHURN, CHURN.features.build_features(raw), hp).estimator
    done = explain(CHURN, fitted, body(RECORD))
    assert done.attribution.method == "none"
    assert "-> HistGradientBoostingClassifier) has no exact per-column attribution" in (
        done.attribution.description
    )
    assert done.contributions == {}
    matrix = CHURN.features.records_to_matrix([RECORD])
    assert done.score == float(fitted.predict_proba(matrix)[0, 1])


# --- bad records --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"region": "mars"}, "feature 'region' is 'mars'; allowed values: ['north', 'south',"),
        ({"tenure_months": -3}, "feature 'tenure_months' is -3; must be in [0,"),
        ({"is_senior": "no"}, "feature 'is_senior' must be true or false; got str 'no'"),
        ({"contract_type": None}, "feature 'contract_type' is required and cannot be null"),
    ],
)
def test_a_bad_record_names_the_field_and_what_is_allowed(
    hand_set: Any, change: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidRequestError) as refused:
        explain(CHURN, hand_set, body({**RECORD, **change}))
    assert message in refused.value.message


def test_a_missing_field_is_named(hand_set: Any) -> None:
    record = {k: v for k, v in RECORD.items() if k != "monthly_charges"}
    with pytest.raises(InvalidRequestError, match="missing feature 'monthly_charges'"):
        explain(CHURN, hand_set, body(record))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"{not json", "the record is not JSON"),
        (body([RECORD, RECORD]), "the file holds 2 records; explain takes one record"),
        (body({"instances": []}), "the file holds 0 records"),
        (b"42", "expected a record: a JSON object of the model's inputs, got int"),
    ],
)
def test_a_file_that_is_not_one_record_is_refused(hand_set: Any, text: bytes, message: str) -> None:
    with pytest.raises(ExplainError, match=message):
        explain(CHURN, hand_set, text)
    assert (
        explain(CHURN, hand_set, body([RECORD])).score
        == explain(CHURN, hand_set, body({"instances": [RECORD]})).score
    )


# --- the command --------------------------------------------------------------------------------


runner = CliRunner()


def test_the_command_prints_the_table_or_the_json(model_dir: Path, tmp_path: Path) -> None:
    from mlplat.cli.app import app

    record = tmp_path / "r.json"
    record.write_text(json.dumps(RECORD))
    shown = runner.invoke(app, ["explain", "--model", str(model_dir), "--record", str(record)])
    assert shown.exit_code == 0, shown.output
    assert "3. matrix columns and contributions: LogisticRegression" in shown.stdout
    assert "score (the model's output, as the endpoint answers)" in shown.stdout
    as_json = runner.invoke(
        app, ["explain", "--model", str(model_dir), "--record", str(record), "--json", "-"]
    )
    assert as_json.exit_code == 0, as_json.output
    data = json.loads(as_json.stdout)
    assert data["model"] == "churn" and data["attribution"]["method"] == "linear"
    out = tmp_path / "explained.json"
    written = runner.invoke(
        app, ["explain", "--model", str(model_dir), "--record", str(record), "--json", str(out)]
    )
    assert written.exit_code == 0 and "1. validated input" in written.stdout
    assert json.loads(out.read_text())["score"] == data["score"]


def test_the_command_refuses_a_bad_record_with_exit_2(model_dir: Path, tmp_path: Path) -> None:
    from mlplat.cli.app import app

    record = tmp_path / "r.json"
    record.write_text(json.dumps({**RECORD, "payment_method": "cash"}))
    refused = runner.invoke(app, ["explain", "--model", str(model_dir), "--record", str(record)])
    assert refused.exit_code == 2
    assert "error: the record is refused as the endpoint would refuse it" in refused.output
    assert "feature 'payment_method' is 'cash'; allowed values:" in refused.output
    missing = runner.invoke(
        app, ["explain", "--model", str(tmp_path / "nope.tar.gz"), "--record", str(record)]
    )
    assert missing.exit_code == 2 and "no such file" in missing.output
    (tmp_path / "empty").mkdir()
    unknown = runner.invoke(
        app, ["explain", "--model", str(tmp_path / "empty"), "--record", str(record)]
    )
    assert unknown.exit_code == 2 and "cannot tell which model it is" in unknown.output
