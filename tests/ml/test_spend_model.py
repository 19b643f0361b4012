"""The spend model (ml/models/spend): derivation, estimator, device, storage, image, packaging."""

from __future__ import annotations

import itertools
import logging
import shutil
import subprocess
import time
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ml.models.spend import estimator as xgb
from ml.models.spend.model import (
    ARTIFACT_FILE,
    MODEL,
    PLAN_GB,
    SEARCH_SPACE,
    SpendHyperparameters,
    derive,
    load,
    make_estimator,
    save,
    training_info,
)
from ml.regression import RegressionGateConfig

ROOT = Path(__file__).resolve().parents[2]
NAN = np.nan


def inputs(**columns: list[float]) -> dict[str, np.ndarray]:
    """Derive's inputs for a few records: defaults for every column not given."""
    n = len(next(iter(columns.values())))
    base = {
        "tenure_months": [12.0] * n,
        "monthly_charges": [60.0] * n,
        "contract_type": [0.0] * n,
        "payment_method": [0.0] * n,
        "support_tickets": [1.0] * n,
        "data_usage_gb": [10.0] * n,
        "region": [0.0] * n,
    }
    base.update(columns)
    return {k: np.array(v, dtype=np.float64) for k, v in base.items()}


# --- the declaration --------------------------------------------------------------------------


def test_the_package_binds_its_spec_and_parts() -> None:
    from ml.models import load as load_model

    assert load_model("spend") is MODEL
    assert MODEL.spec.task == "regression"
    assert MODEL.artifact_file == ARTIFACT_FILE == "model.ubj"
    assert MODEL.gate == RegressionGateConfig()
    assert MODEL.hyperparameters is SpendHyperparameters
    assert (MODEL.save, MODEL.load, MODEL.training_info) == (save, load, training_info)


# --- derive -----------------------------------------------------------------------------------


def test_derive_by_hand() -> None:
    out = derive(
        inputs(
            data_usage_gb=[45.0, NAN, 10.0, 30.0],
            payment_method=[0.0, NAN, 3.0, 1.0],
            tenure_months=[0.0, 5.0, 24.0, 600.0],
            contract_type=[0.0, 1.0, 2.0, 2.0],
            region=[3.0, 2.0, 1.0, 0.0],
        )
    )
    assert out["overage_gb"].tolist() == [15.0, 0.0, 0.0, 0.0]  # usage 45 -> 15 over the plan
    assert out["data_usage_gb"].tolist() == [45.0, 0.0, 10.0, 30.0]  # missing counts as 0
    assert out["data_usage_missing"].tolist() == [0.0, 1.0, 0.0, 0.0]
    # 'unknown' is the fifth value of the feature's vocabulary: card, bank-transfer, invoice,
    # wallet, unknown.
    assert out["payment_method"].tolist() == [0.0, 4.0, 3.0, 1.0]
    assert out["tenure_months"].tolist() == [0.0, 5.0, 24.0, 600.0]
    assert out["contract_type"].tolist() == [0.0, 1.0, 2.0, 2.0]
    assert out["region"].tolist() == [3.0, 2.0, 1.0, 0.0]
    assert out["monthly_charges"].tolist() == [60.0] * 4
    assert out["support_tickets"].tolist() == [1.0] * 4
    assert PLAN_GB == 30.0


def test_derive_gives_every_feature_as_finite_float64() -> None:
    out = derive(inputs(data_usage_gb=[NAN, 1e5], payment_method=[NAN, NAN]))
    assert set(out) == set(MODEL.spec.feature_names)
    for name, values in out.items():
        assert values.dtype == np.float64, name
        assert np.isfinite(values).all(), name
    vocabulary = MODEL.spec.features.column("payment_method").allowed
    assert vocabulary is not None and vocabulary[4] == "unknown"


def test_derive_does_not_modify_its_inputs() -> None:
    given = inputs(data_usage_gb=[NAN, 45.0], payment_method=[NAN, 1.0])
    before = {k: v.copy() for k, v in given.items()}
    derive(given)
    for name, values in given.items():
        np.testing.assert_array_equal(values, before[name])


# --- hyperparameters and the search space -----------------------------------------------------


def test_hyperparameters_parse_sagemakers_strings() -> None:
    hp = SpendHyperparameters.from_mapping(
        {"n_estimators": "120", "learning_rate": "0.05", "max_depth": "4.0", "seed": "7"}
    )
    assert (hp.n_estimators, hp.learning_rate, hp.max_depth, hp.seed) == (120, 0.05, 4, 7)
    assert SpendHyperparameters.from_mapping(hp.to_dict()) == hp
    assert SpendHyperparameters().subsample == 1.0  # deterministic by default


def test_hyperparameters_refuse_bad_values_all_at_once() -> None:
    with pytest.raises(ValueError, match="unknown hyperparameters \\['depth'\\]"):
        SpendHyperparameters.from_mapping({"depth": "3"})
    with pytest.raises(ValueError, match="n_estimators='many' is not a valid int"):
        SpendHyperparameters.from_mapping({"n_estimators": "many"})
    with pytest.raises(ValueError, match=r"n_estimators=0: .*learning_rate=2\.0: .*subsample=0"):
        SpendHyperparameters(n_estimators=0, learning_rate=2.0, subsample=0)


def test_every_point_of_the_search_space_is_valid() -> None:
    names = list(SEARCH_SPACE)
    assert set(names) <= set(SpendHyperparameters().to_dict())
    points = list(itertools.product(*SEARCH_SPACE.values()))
    assert 2 <= len(points) <= 16  # small: each point is a full fit
    for values in points:
        make_estimator(SpendHyperparameters(**dict(zip(names, values, strict=True))))


# --- the estimator ----------------------------------------------------------------------------


def regression_data(n: int = 2_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    y = 50 + 10 * X[:, 0] + 5 * (X[:, 1] > 0) + rng.normal(0, 1, n)
    return X, y


def test_the_estimator_is_xgboost_hist_seeded_on_this_processs_device() -> None:
    import xgboost

    est = make_estimator(SpendHyperparameters(seed=4, n_jobs=2))
    assert isinstance(est, xgboost.XGBRegressor)
    params = est.get_params()
    assert params["tree_method"] == "hist"
    assert params["device"] == xgb.device() == "cpu"  # no GPU here
    assert (params["random_state"], params["n_jobs"], params["subsample"]) == (4, 2, 1.0)
    assert params["objective"] == "reg:squarederror"
    assert make_estimator().get_params()["n_jobs"] is None  # 0: every core


def test_same_seed_same_model_on_any_number_of_threads() -> None:
    X, y = regression_data()
    first = make_estimator(SpendHyperparameters(n_estimators=40, n_jobs=1)).fit(X, y)
    second = make_estimator(SpendHyperparameters(n_estimators=40, n_jobs=2)).fit(X, y)
    np.testing.assert_array_equal(first.predict(X), second.predict(X))


def test_predictions_are_floored_at_zero() -> None:
    X, y = regression_data()
    est = make_estimator(SpendHyperparameters(n_estimators=20, n_jobs=1)).fit(X, -y)
    assert (est.predict(X) == 0.0).all()
    assert est.predict(X).dtype == np.float64


# --- the device -------------------------------------------------------------------------------


@pytest.fixture
def fresh_device() -> Any:
    xgb.device.cache_clear()
    yield xgb.device
    xgb.device.cache_clear()


def test_a_build_without_cuda_trains_on_the_cpu(
    fresh_device: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger=xgb.__name__):
        assert fresh_device() == "cpu"
    assert "built without CUDA: training on cpu" in caplog.text


def test_a_cuda_build_without_a_visible_gpu_falls_back_to_the_cpu(
    fresh_device: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import xgboost

    # As a CUDA build on a machine without a GPU: the probe's fit falls back to the CPU.
    monkeypatch.setattr(xgboost, "build_info", lambda: {"USE_CUDA": True})
    with caplog.at_level(logging.INFO, logger=xgb.__name__):
        assert fresh_device() == "cpu"
    assert "training on cpu: no GPU is visible to xgboost" in caplog.text
    assert fresh_device() == "cpu"  # decided once: no second probe
    assert caplog.text.count("training on") == 1


def test_a_failing_cuda_fit_falls_back_to_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    import xgboost

    def fail(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise xgboost.core.XGBoostError("CUDA driver version is insufficient\nmore")

    monkeypatch.setattr(xgboost.XGBRegressor, "fit", fail)
    assert xgb.cuda_probe() == (
        "cpu",
        "a fit on cuda failed (CUDA driver version is insufficient)",
    )


def test_a_visible_gpu_is_chosen(monkeypatch: pytest.MonkeyPatch) -> None:
    # The probe's booster reports the device it trained on; on a GPU node that is cuda:0.
    monkeypatch.setattr(xgb, "booster_device", lambda booster: "cuda")
    assert xgb.cuda_probe() == ("cuda", "a GPU is visible to xgboost")


def test_training_info_names_the_device_and_the_xgboost_version() -> None:
    import xgboost

    X, y = regression_data(200)
    est = make_estimator(SpendHyperparameters(n_estimators=5, n_jobs=1)).fit(X, y)
    assert training_info(est) == {"device": "cpu", "xgboost": xgboost.__version__}
    assert xgboost.__version__ == "3.2.0"


# --- storage ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fitted() -> tuple[Any, np.ndarray]:
    X, y = regression_data(3_000, seed=2)
    return make_estimator(SpendHyperparameters(n_estimators=60, n_jobs=1)).fit(X, y), X


def test_save_and_load_give_identical_predictions(
    fitted: tuple[Any, np.ndarray], tmp_path: Path
) -> None:
    est, X = fitted
    save(est, tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["model.ubj"]
    loaded = load(tmp_path)
    np.testing.assert_array_equal(loaded.predict(X), est.predict(X))
    np.testing.assert_array_equal(loaded.predict(np.asfortranarray(X)), est.predict(X))
    assert loaded.predict(X[:1]).dtype == np.float64
    assert repr(loaded) == "SpendPredictor(60 trees)"


def test_the_stored_booster_is_plain_xgboost(
    fitted: tuple[Any, np.ndarray], tmp_path: Path
) -> None:
    import xgboost

    est, X = fitted
    save(est, tmp_path)
    # What the SageMaker XGBoost container does with a model file: no classes of ours needed.
    booster = xgboost.Booster(model_file=str(tmp_path / "model.ubj"))
    plain = booster.predict(xgboost.DMatrix(X))
    np.testing.assert_allclose(plain, est.predict(X), rtol=1e-6)
    assert (tmp_path / "model.ubj").read_bytes()[:1] == b"{"  # UBJSON, not a pickle


def test_load_explains_a_missing_model_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"no model\.ubj in .*: is this a spend model"):
        load(tmp_path)


def test_one_record_predicts_well_under_a_millisecond(
    fitted: tuple[Any, np.ndarray], tmp_path: Path
) -> None:
    est, X = fitted
    save(est, tmp_path)
    loaded = load(tmp_path)
    row = X[:1]
    for _ in range(50):
        loaded.predict(row)
    timings = []
    for _ in range(300):
        started = time.perf_counter()
        loaded.predict(row)
        timings.append(time.perf_counter() - started)
    assert float(np.median(timings)) < 1e-3


# --- on sample data, through the model's features ---------------------------------------------


def test_sample_data_through_features_fit_and_the_gate() -> None:
    from ml.evaluate import check_gate, evaluate, fit_baselines, labels
    from ml.models import load as load_model
    from ml.sample_data import generate_customers

    model = load_model("spend")
    table = model.features.build_features(generate_customers(8_000, seed=21))
    assert list(table.columns) == list(model.spec.features.column_names)
    train, test = table.iloc[:6_000], table.iloc[6_000:]
    X = model.features.feature_matrix(train)
    assert X.shape == (6_000, len(model.features.matrix_columns))
    est = model.make_estimator(model.hyperparameters(n_jobs=1)).fit(X, labels(model, train))
    report = evaluate(model, est, test, baselines=fit_baselines(model, train))
    assert set(report.baselines) == {"mean", "median", "one_feature"}
    assert set(report.slices) == set(model.spec.slice_columns)
    assert {"contract_type", "tenure_months", "data_usage_gb"} <= set(report.slices)
    gate = check_gate(model, report, approved=report.overall, approved_slices=report.slices)
    assert gate.passed, gate.summary()
    assert model.training_info(est)["device"] == "cpu"


def test_the_handler_scores_records_as_the_batch_does(tmp_path: Path) -> None:
    import json

    import pandas as pd

    from ml.inference import handler
    from ml.models import load as load_model
    from ml.sample_data import generate_customers

    model = load_model("spend")
    raw = generate_customers(300, seed=4)
    table = model.features.build_features(raw)
    est = model.make_estimator(model.hyperparameters(n_estimators=20, n_jobs=1)).fit(
        model.features.feature_matrix(table), table[model.spec.label].to_numpy()
    )
    model.save(est, tmp_path)
    model_fn, input_fn, predict_fn, output_fn = handler("spend")
    loaded = model_fn(str(tmp_path))
    records = [
        {k: (None if pd.isna(v) else v.item() if hasattr(v, "item") else v) for k, v in r.items()}
        for r in raw[list(model.features.input_names)].astype(object).to_dict("records")
    ]
    assert any(r["data_usage_gb"] is None for r in records)
    assert any(r["payment_method"] is None for r in records)
    body, content_type = output_fn(
        predict_fn(input_fn(json.dumps(records), "application/json"), loaded), "application/json"
    )
    assert content_type == "application/json"
    online = [p["score"] for p in json.loads(body)["predictions"]]
    batch = model.predict(est, model.features.feature_matrix(table))
    np.testing.assert_array_equal(online, batch)
    assert min(online) >= 0.0


# --- the image and the dependency -------------------------------------------------------------


def test_the_xgboost_container_image_offline() -> None:
    from ml.images import (
        XGBOOST_VERSION,
        ImageUriError,
        image_uri,
        xgboost_image_uri,
        xgboost_registry_account,
    )

    uri = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:3.2-0"
    assert xgboost_image_uri("us-east-1") == uri
    assert xgboost_image_uri("us-east-1", scope="training") == uri  # CPU and GPU instances alike
    assert image_uri(MODEL.spec.framework, "us-east-1") == uri
    assert xgboost_image_uri("cn-north-1").endswith(".amazonaws.com.cn/sagemaker-xgboost:3.2-0")
    assert xgboost_registry_account("eu-west-1") == "141502667606"
    assert XGBOOST_VERSION == "3.2-0"
    with pytest.raises(ImageUriError, match=r"no XGBoost 3\.2-0 inference image in region"):
        xgboost_image_uri("xx-nowhere-1")
    with pytest.raises(ImageUriError, match=r"XGBoost container '0\.1-0' is not in the SDK"):
        xgboost_image_uri("us-east-1", version="0.1-0")


def test_dev_installs_the_cpu_build_and_the_image_the_cuda_build_of_one_version() -> None:
    import xgboost

    from ml.images import XGBOOST_VERSION

    groups = tomllib.loads((ROOT / "pyproject.toml").read_text())["dependency-groups"]
    pins = {req.split("==")[1].split(";")[0] for req in groups["cpu"] + groups["cuda"]}
    assert pins == {xgboost.__version__}  # one version, the one installed here
    assert xgboost.__version__.startswith(XGBOOST_VERSION.split("-")[0] + ".")
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "--no-default-groups --no-install-project --group cuda" in dockerfile

    uv = shutil.which("uv")
    if uv is None:
        pytest.fail("uv is not on PATH")

    def exported(*args: str) -> set[str]:
        out = subprocess.run(
            [uv, "export", "--frozen", "--no-emit-project", "--no-hashes", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return {line.split("==")[0] for line in out.splitlines() if "==" in line}

    image = exported("--no-default-groups", "--group", "cuda")
    assert {"xgboost", "nvidia-nccl-cu12"} <= image and "xgboost-cpu" not in image
    dev = exported()
    assert "xgboost-cpu" in dev and "nvidia-nccl-cu12" not in dev
