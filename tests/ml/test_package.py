from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from ml.package import build_model_tarball, code_files, model_name_of
from tests.ml.conftest import records


@pytest.fixture(scope="module")
def tarball(churn: Any, model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_model_tarball(churn, model_dir, tmp_path_factory.mktemp("pkg") / "model.tar.gz")


def test_layout_is_what_the_sklearn_container_loads(tarball: Path) -> None:
    with tarfile.open(tarball) as tar:
        names = set(tar.getnames())
    assert {
        "model.joblib",
        "metrics.json",
        "baseline.json",
        "lineage.json",
        "code/inference.py",
        "code/ml/__init__.py",
        "code/ml/contracts.py",
        "code/ml/schema.py",
        "code/ml/features.py",
        "code/ml/inference.py",
        "code/ml/model.py",
        "code/ml/models/__init__.py",
        "code/ml/models/churn/__init__.py",
        "code/ml/models/churn/spec.py",
        "code/ml/models/churn/model.py",
    } <= names
    assert not any(n.endswith("requirements.txt") for n in names)
    assert not any(n.startswith("code/ml/") and "train" in n for n in names)


def test_the_code_holds_the_models_own_package_and_no_other(tarball: Path) -> None:
    with tarfile.open(tarball) as tar:
        code = sorted(n for n in tar.getnames() if n.startswith("code/") and n.endswith(".py"))
    assert code == [
        "code/inference.py",
        "code/ml/__init__.py",
        "code/ml/contracts.py",
        "code/ml/features.py",
        "code/ml/inference.py",
        "code/ml/model.py",
        "code/ml/models/__init__.py",
        "code/ml/models/churn/__init__.py",
        "code/ml/models/churn/model.py",
        "code/ml/models/churn/spec.py",
        "code/ml/schema.py",
    ]
    assert model_name_of(tarball) == "churn"


def test_the_entry_point_binds_the_handler_to_the_model(churn: Any) -> None:
    entry = code_files(churn)["inference.py"].decode()
    assert "model_fn, input_fn, predict_fn, output_fn = handler('churn')" in entry


def test_a_model_package_ships_the_ml_modules_it_imports() -> None:
    from ml.models import load

    files = code_files(load("spend"))
    assert "ml/models/spend/estimator.py" in files  # its own package, whole
    assert "ml/model.py" in files  # the gate configs live there, not in the evaluation code
    assert "ml/regression.py" not in files  # nothing the package imports needs it
    assert not any(n.startswith("ml/models/churn/") for n in files)


def test_packaging_is_deterministic(
    churn: Any, model_dir: Path, tarball: Path, tmp_path: Path
) -> None:
    again = build_model_tarball(churn, model_dir, tmp_path / "again.tar.gz")
    assert (
        hashlib.sha256(again.read_bytes()).digest() == hashlib.sha256(tarball.read_bytes()).digest()
    )


def test_missing_model_is_explained(churn: Any, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"no model\.joblib in"):
        build_model_tarball(churn, tmp_path, tmp_path / "m.tar.gz")


# Runs in a fresh interpreter: -I (isolated: no cwd, no user site, no PYTHON* env), the repo is not
# on sys.path, only `code/` and the site-packages that hold scikit-learn and pandas. pyarrow (not
# in the serving container) is blocked throughout. The handler is imported twice: first with
# sagemaker_inference blocked too (the fallback error class), then with it (the container).
_PROBE = textwrap.dedent(
    """
    import importlib, json, sys
    code_dir, model_dir, body = sys.argv[1], sys.argv[2], sys.argv[3]
    blocked = {"pyarrow", "sagemaker_inference"}

    class Block:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in blocked:
                raise ImportError(f"{name} is blocked in this test")
            return None

    sys.meta_path.insert(0, Block())
    sys.path[:] = [code_dir] + [p for p in sys.path if "site-packages" in p or "lib/python" in p]
    runs = []
    for _ in range(2):
        for name in [m for m in sys.modules if m == "inference" or m.split(".")[0] == "ml"]:
            del sys.modules[name]
        inference = importlib.import_module("inference")
        assert inference.__file__.startswith(code_dir), inference.__file__
        assert sys.modules["ml"].__file__.startswith(code_dir)
        model = inference.model_fn(model_dir)
        data = inference.input_fn(body, "application/json")
        out, ctype = inference.output_fn(inference.predict_fn(data, model), "application/json")
        try:
            inference.input_fn('{"region": "mars"}', "application/json")
        except Exception as err:
            status = getattr(err, "status_code", None)
            base = type(err).__mro__[2]
        loaded = sorted(m for m in sys.modules if m.split(".")[0] == "ml")
        runs.append({"out": json.loads(out), "ctype": ctype, "status": status,
                     "toolkit": base.__module__, "modules": loaded})
        blocked.discard("sagemaker_inference")
    assert "pyarrow" not in sys.modules
    print(json.dumps(runs))
    """
)


def test_handler_loads_and_predicts_from_code_alone(
    churn: Any, tarball: Path, tmp_path: Path, raw: pd.DataFrame, trained: Any
) -> None:
    with tarfile.open(tarball) as tar:
        tar.extractall(tmp_path, filter="data")
    body = json.dumps(records(raw.head(3)))
    done = subprocess.run(
        [sys.executable, "-I", "-c", _PROBE, str(tmp_path / "code"), str(tmp_path), body],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    fallback, container = json.loads(done.stdout)
    matrix = churn.features.feature_matrix(churn.features.build_features(raw.head(3)))
    expected = trained.estimator.predict_proba(matrix)[:, 1]
    for run in (fallback, container):
        assert run["ctype"] == "application/json"
        scores = [p["score"] for p in run["out"]["predictions"]]
        assert scores == pytest.approx(expected.tolist(), rel=1e-12)
        assert run["status"] == 400
        assert run["modules"] == [
            "ml",
            "ml.contracts",
            "ml.features",
            "ml.inference",
            "ml.model",
            "ml.models",
            "ml.models.churn",
            "ml.models.churn.model",
            "ml.models.churn.spec",
            "ml.schema",
        ]
    assert fallback["toolkit"] == "ml.inference"
    assert container["toolkit"] == "sagemaker_inference.errors"


# Names the standard library gained in Python 3.11: the serving containers may run 3.10 (the
# XGBoost container's Python is not documented per version), so the code an artifact ships may
# use them only for type checking.
_PY311_NAMES = {("typing", "Self"), ("datetime", "UTC"), ("enum", "StrEnum"), ("tomllib", "")}


@pytest.mark.parametrize("name", ["churn", "spend"])
def test_the_shipped_code_runs_on_python_3_10(name: str) -> None:
    import ast

    from ml.models import load

    for path, source in code_files(load(name)).items():
        if not path.endswith(".py"):
            continue
        tree = ast.parse(source, filename=path, feature_version=(3, 10))
        runtime = [
            node
            for node in tree.body
            if not (isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test))
        ]
        for node in (n for top in runtime for n in ast.walk(top)):
            if isinstance(node, ast.ImportFrom) and node.module:
                for alias in node.names:
                    assert (node.module, alias.name) not in _PY311_NAMES, f"{path}: {alias.name}"
            if isinstance(node, ast.Import):
                assert all((a.name, "") not in _PY311_NAMES for a in node.names), path
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                assert (node.value.id, node.attr) not in _PY311_NAMES, f"{path}: {node.attr}"
