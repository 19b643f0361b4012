"""The model contract, held for every package under `ml/models/` (a scaffolded one included).

Each model: a valid, pure declaration; a derivation that gives every feature as finite float64 on
real sample data (with its missing values); batch and online paths that agree; a training on the
sample data that its own gate passes against its baselines; an artifact whose `code/` holds only
its own package and serves from `code/` alone (no repository on the path, no network), refusing
a bad record with a 400 that names the column.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
import textwrap
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import ml.models
from ml.evaluate import check_gate
from ml.model import Model
from ml.package import build_model_tarball
from ml.sample_data import generate_customers
from ml.train import TrainingResult, train, write_outputs

MODELS = ml.models.names()


@cache
def _raw() -> pd.DataFrame:
    return generate_customers(6000, seed=11)


@cache
def _trained(name: str) -> TrainingResult:
    model = ml.models.load(name)
    return train(model, model.features.build_features(_raw()))


def _records(model: Model, frame: pd.DataFrame) -> list[dict[str, Any]]:
    rows = frame[list(model.spec.inputs)].astype(object).where(frame.notna(), None)
    return [
        {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
        for row in rows.to_dict("records")
    ]


def test_there_are_models_and_each_name_is_a_package() -> None:
    assert len(MODELS) >= 2
    for name in MODELS:
        assert (Path(ml.models.__file__).parent / name / "spec.py").is_file()


@pytest.mark.parametrize("name", MODELS)
def test_the_declaration_is_valid_and_pure(name: str) -> None:
    spec = ml.models.spec(name)
    assert spec.problems() == [] and spec.name == name
    assert spec.features.name != spec.predictions.name
    code = f"import ml.models as m, sys; m.spec({name!r}); print(sorted(sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert "numpy" not in done.stdout and "pandas" not in done.stdout


@pytest.mark.parametrize("name", MODELS)
def test_the_runtime_binds_the_declaration(name: str) -> None:
    model = ml.models.load(name)
    assert model.spec is ml.models.spec(name)
    hp = model.hyperparameters()
    assert type(
        model.hyperparameters.from_mapping({k: str(v) for k, v in hp.to_dict().items()})
    ) is type(hp)
    # the pipeline's parameters default to the runtime's own defaults; the weak setting parses
    assert model.hyperparameters.from_mapping(model.spec.pipeline_hyperparameters) == hp
    model.hyperparameters.from_mapping(model.spec.weak_hyperparameters)
    for key, values in model.search_space.items():
        assert values, f"{key}: an empty search space"
        for value in values:
            assert getattr(model.hyperparameters.from_mapping({key: str(value)}), key) == value


@pytest.mark.parametrize("name", MODELS)
def test_every_feature_is_finite_float64_on_real_data(name: str) -> None:
    model = ml.models.load(name)
    table = model.features.build_features(_raw())
    assert list(table.columns) == [c for c in model.spec.features.column_names if c in table]
    matrix = model.features.feature_matrix(table)
    assert matrix.dtype == np.float64 and matrix.shape == (
        len(_raw()),
        len(model.features.matrix_columns),
    )
    assert np.isfinite(matrix).all()


@pytest.mark.parametrize("name", MODELS)
def test_batch_and_online_paths_agree(name: str) -> None:
    model = ml.models.load(name)
    frame = _raw().head(300)
    batch = model.features.feature_matrix(model.features.build_features(frame))
    online = model.features.records_to_matrix(_records(model, frame))
    np.testing.assert_array_equal(batch, online)


@pytest.mark.parametrize("name", MODELS)
def test_training_on_sample_data_passes_its_own_gate(name: str) -> None:
    model = ml.models.load(name)
    result = _trained(name)
    report = check_gate(model, result.evaluation)
    assert report.passed, report.summary()
    assert result.lineage["model"] == name
    # the weak setting the sandbox retrains with is refused by the same gate
    weak = model.hyperparameters.from_mapping(model.spec.weak_hyperparameters)
    refused = train(model, model.features.build_features(_raw()), weak)
    assert not check_gate(model, refused.evaluation, approved=result.metrics).passed
    # and the gate is not a formality: the same report against itself far better must fail
    assert any(
        not c.passed for c in check_gate(model, result.evaluation, approved=_better(result)).checks
    )


def _better(result: TrainingResult) -> Any:
    """Overall metrics far better than the candidate's (a serving version it must not regress)."""
    from ml.evaluate import metrics_from_dict

    data = result.evaluation.overall.to_dict()
    if "rmse" in data:
        data.update(rmse=data["rmse"] / 2, mae=data["mae"] / 2)
    else:
        data.update(roc_auc=min(1.0, data["roc_auc"] + 0.1), log_loss=data["log_loss"] / 2)
    return metrics_from_dict(data)


# Runs in an isolated interpreter with only `code/` and site-packages on the path.
_PROBE = textwrap.dedent(
    """
    import importlib, json, sys
    code_dir, model_dir, body = sys.argv[1], sys.argv[2], sys.argv[3]
    sys.path[:] = [code_dir] + [p for p in sys.path if "site-packages" in p or "lib/python" in p]
    inference = importlib.import_module("inference")
    assert inference.__file__.startswith(code_dir), inference.__file__
    model = inference.model_fn(model_dir)
    out, ctype = inference.output_fn(
        inference.predict_fn(inference.input_fn(body, "application/json"), model),
        "application/json",
    )
    try:
        inference.input_fn('{"region": "mars"}', "application/json")
        status, message = None, ""
    except Exception as err:
        status, message = getattr(err, "status_code", None), str(err)
    ml_modules = sorted(m for m in sys.modules if m.split(".")[0] == "ml")
    print(json.dumps({"out": json.loads(out), "ctype": ctype, "status": status,
                      "message": message, "modules": ml_modules}))
    """
)


@pytest.mark.parametrize("name", MODELS)
def test_the_artifact_serves_from_its_code_alone(name: str, tmp_path: Path) -> None:
    model = ml.models.load(name)
    result = _trained(name)
    model_dir = write_outputs(result, tmp_path / "model")
    tarball = build_model_tarball(model, model_dir, tmp_path / "model.tar.gz")
    served = tmp_path / "served"
    with tarfile.open(tarball) as tar:
        names = tar.getnames()
        tar.extractall(served, filter="data")
    others = [n for n in MODELS if n != name]
    assert not [n for n in names if any(n.startswith(f"code/ml/models/{o}/") for o in others)]
    assert model.artifact_file in names
    frame = _raw().head(5)
    done = subprocess.run(
        [
            sys.executable,
            "-I",
            "-c",
            _PROBE,
            str(served / "code"),
            str(served),
            json.dumps(_records(model, frame)),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    run = json.loads(done.stdout)
    expected = model.predict(
        result.estimator, model.features.feature_matrix(model.features.build_features(frame))
    )
    assert [p["score"] for p in run["out"]["predictions"]] == pytest.approx(
        expected.tolist(), rel=1e-9
    )
    assert run["status"] == 400 and "region" in run["message"]
    assert f"ml.models.{name}" in run["modules"]
    assert not [m for m in run["modules"] if any(m.startswith(f"ml.models.{o}") for o in others)]
