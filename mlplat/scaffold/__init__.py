"""`mlplat new model NAME --task ...`: a working model package from a template.

The package follows the model contract (`ml.models`): `spec.py` declares what the model reads and
predicts (pure), `model.py` binds it to its feature derivation, estimator and gate; its
known-value tests go to `tests/ml/models/<name>/`. The generic contract tests
(`tests/ml/test_model_contract.py`) pick up every package under `ml/models/` by themselves: a new
model trains, passes its gate on the sample data and answers requests through the handler before
it is ever deployed. Nothing outside
the package changes; adding its name to a stack's `models` gives it its own registry group,
pipeline, endpoint, alarms and drift job.
"""

from __future__ import annotations

import keyword
from pathlib import Path
from string import Template

from ml.models import NAME_PATTERN

TASKS = {"classification": "binary_classification", "regression": "regression"}
TEMPLATES = Path(__file__).resolve().parent / "model"


class ScaffoldError(ValueError):
    """The model cannot be scaffolded (bad name, bad task, package already there)."""


def files_for(name: str, task: str) -> dict[str, str]:
    """The package's files (path relative to the repository root -> text)."""
    problems: list[str] = []
    if not NAME_PATTERN.match(name) or keyword.iskeyword(name):
        problems.append(
            f"model name {name!r} must be 2-20 lowercase letters and digits, starting with a "
            "letter (it names the Python package and the model's AWS resources)"
        )
    if task not in TASKS:
        problems.append(f"task {task!r}: use one of {', '.join(TASKS)}")
    if problems:
        raise ScaffoldError("; ".join(problems))
    values = {"name": name, "title": name.capitalize()}
    kind = "classification" if task == "classification" else "regression"
    sources = {
        f"ml/models/{name}/__init__.py": "__init__.py.tmpl",
        f"ml/models/{name}/spec.py": f"spec_{kind}.py.tmpl",
        f"ml/models/{name}/model.py": f"model_{kind}.py.tmpl",
        f"tests/ml/models/{name}/__init__.py": None,
        f"tests/ml/models/{name}/test_model.py": f"test_{kind}.py.tmpl",
    }
    out: dict[str, str] = {}
    for relative, template in sources.items():
        text = "" if template is None else (TEMPLATES / template).read_text(encoding="utf-8")
        out[relative] = Template(text).substitute(values)
    return out


def new_model(root: Path, name: str, task: str) -> list[Path]:
    """Write the package under `root` (the repository); refuses to overwrite anything."""
    files = files_for(name, task)
    taken = [
        root / p for p in (f"ml/models/{name}", f"tests/ml/models/{name}") if (root / p).exists()
    ]
    if taken:
        raise ScaffoldError(
            f"{', '.join(map(str, taken))} already exists: choose another name or remove it first"
        )
    if not (root / "ml" / "models" / "__init__.py").is_file():
        raise ScaffoldError(f"{root} is not an ml-platform checkout (no ml/models/__init__.py)")
    written: list[Path] = []
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
