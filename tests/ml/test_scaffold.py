"""`mlplat new model`: a scaffolded package follows the contract with no edit anywhere else."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlplat.cli.app import app
from mlplat.scaffold import ScaffoldError, files_for, new_model

ROOT = Path(__file__).resolve().parents[2]

# In the copy: the new model is listed, trains on sample data, passes its own gate, and its
# artifact answers a request through the handler (the same path an endpoint takes).
_CHECK = textwrap.dedent(
    """
    import json, sys, tempfile
    from pathlib import Path
    import ml.models
    from ml.evaluate import check_gate
    from ml.inference import bind
    from ml.sample_data import generate_customers
    from ml.train import train, write_outputs

    name = sys.argv[1]
    assert ml.models.__file__.startswith(sys.argv[2]), ml.models.__file__
    model = ml.models.load(name)
    raw = generate_customers(4000, seed=3)
    result = train(model, model.features.build_features(raw))
    gate = check_gate(model, result.evaluation)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = write_outputs(result, Path(tmp))
        model_fn, input_fn, predict_fn, output_fn = bind(model)
        estimator = model_fn(str(model_dir))
        record = {k: raw.iloc[0][k] for k in model.spec.inputs}
        record = {k: (None if v is None or v != v else v.item() if hasattr(v, "item") else v)
                  for k, v in record.items()}
        matrix = input_fn(json.dumps([record]), "application/json")
        body, _ = output_fn(predict_fn(matrix, estimator), "application/json")
    print(json.dumps({"models": ml.models.names(), "gate": gate.passed,
                      "summary": gate.summary(), "answer": json.loads(body)}))
    """
)


def _copy(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(ROOT / "ml", root / "ml", ignore=shutil.ignore_patterns("__pycache__"))
    (root / "tests").mkdir()
    return root


@pytest.mark.parametrize("task", ["regression", "classification"])
def test_a_scaffolded_model_trains_passes_its_gate_and_serves(tmp_path: Path, task: str) -> None:
    root = _copy(tmp_path)
    written = new_model(root, "demo", task)
    assert {p.relative_to(root).as_posix() for p in written} == set(files_for("demo", task))
    done = subprocess.run(
        [sys.executable, "-c", _CHECK, "demo", str(root)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env={"PYTHONPATH": str(root), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.splitlines()[-1])
    assert "demo" in out["models"]
    assert out["gate"], out["summary"]
    [prediction] = out["answer"]["predictions"]
    assert isinstance(prediction["score"], float)


def test_the_cli_writes_the_package_and_says_what_next(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    result = CliRunner().invoke(
        app, ["new", "model", "demo", "--task", "regression", "--root", str(root)]
    )
    assert result.exit_code == 0, result.output
    assert "wrote ml/models/demo/spec.py" in result.output
    assert "- name: demo" in result.output
    assert (root / "tests/ml/models/demo/test_model.py").is_file()
    again = CliRunner().invoke(app, ["new", "model", "demo", "--root", str(root)])
    assert again.exit_code == 2 and "already exists" in again.output


@pytest.mark.parametrize(
    ("name", "task", "message"),
    [
        ("Demo", "regression", "lowercase letters and digits"),
        ("d", "regression", "2-20 lowercase"),
        ("demo-model", "regression", "lowercase letters and digits"),
        ("demo", "ranking", "use one of classification, regression"),
    ],
)
def test_bad_names_and_tasks_are_refused(name: str, task: str, message: str) -> None:
    with pytest.raises(ScaffoldError, match=message):
        files_for(name, task)


def test_a_tree_that_is_not_the_platform_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ScaffoldError, match="not an ml-platform checkout"):
        new_model(tmp_path, "demo", "regression")
    assert list(tmp_path.iterdir()) == []
