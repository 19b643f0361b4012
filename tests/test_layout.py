"""The house: who may import whom, what the platform image installs, and how big a part may grow.

* `ml` imports nothing of `stacks`, `components`, `policies`, `mlplat`, nor Pulumi or the tools;
* `components` nothing of `stacks`, `mlplat`, and of `ml` only dependency-free contracts;
* `stacks` nothing of `mlplat`; `policies` nothing of `components`, `stacks`, `mlplat`;
* loading the program and its components loads no numpy or pandas; loading `ml` loads no Pulumi;
* the platform image installs `ml` and its own dependencies only;
* no module over 800 lines, no function over 120, outside tests and generated data.
Every import counts, including the ones inside functions.
"""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("ml", "components", "stacks", "policies", "mlplat")
# package -> the first-party packages it must not import
FORBIDDEN = {
    "ml": {"stacks", "components", "policies", "mlplat"},
    "components": {"stacks", "mlplat", "policies"},
    "stacks": {"mlplat", "policies"},
    "policies": {"components", "stacks", "mlplat"},
}
# third-party modules a package may not import (Pulumi and the tools stay out of `ml`)
FORBIDDEN_THIRD_PARTY = {
    "ml": {"pulumi", "pulumi_aws", "pulumi_policy", "moto", "typer", "rich", "sagemaker"},
    "policies": {"pulumi", "pulumi_aws", "boto3", "moto"},
}
# the `ml` modules components and the program may import: standard library only at import time
# (`ml.backtest` reads a model's committed staleness with json; it measures with lazy imports, and
# tests/ml/test_backtest.py holds that importing it loads neither numpy nor pandas)
ML_CONTRACTS = {"ml.contracts", "ml.schema", "ml.images", "ml.backtest"}
MAX_MODULE_LINES = 800
MAX_FUNCTION_LINES = 120


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every absolute import in `path`, top-level or inside a function."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, a.name) for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
            found.extend((node.lineno, f"{node.module}.{a.name}") for a in node.names)
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_import_rules(package: str) -> None:
    broken = []
    for path in modules(package):
        for line, name in imports(path):
            top = name.split(".")[0]
            where = f"{path.relative_to(ROOT)}:{line}"
            if top in FORBIDDEN[package] or top in FORBIDDEN_THIRD_PARTY.get(package, set()):
                broken.append(f"{where} imports {name}")
            if package in ("components", "stacks") and top == "ml":
                parts = name.split(".")
                module = ".".join(parts[:2])
                # a model's declaration is a contract too: `ml.models`, `ml.models.<name>[.spec]`
                declaration = parts[:2] == ["ml", "models"] and (
                    len(parts) <= 3 or (len(parts) == 4 and parts[3] == "spec")
                )
                if module not in ML_CONTRACTS and name not in ML_CONTRACTS and not declaration:
                    broken.append(f"{where} imports {name}: only {sorted(ML_CONTRACTS)}")
    assert broken == []


def _loaded_after(code: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys, json; print(json.dumps(sorted(sys.modules)))"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return {m.split(".")[0] for m in json.loads(done.stdout.splitlines()[-1])}


def test_the_program_and_its_components_load_no_numpy_or_pandas() -> None:
    components = " ".join(
        f"import components.{p.stem};" for p in modules("components") if p.stem != "__init__"
    )
    loaded = _loaded_after(f"import stacks.composition, stacks.settings; {components}")
    assert {"pulumi", "pulumi_aws"} <= loaded  # it did import the program
    assert loaded.isdisjoint({"numpy", "pandas", "pyarrow", "sklearn", "scipy"})


def test_ml_loads_no_pulumi_moto_or_tools() -> None:
    names = [
        ".".join(p.relative_to(ROOT).with_suffix("").parts)
        for p in modules("ml")
        if p.name != "__main__.py"
    ]
    names = [n.removesuffix(".__init__") for n in names]
    loaded = _loaded_after("; ".join(f"import {n}" for n in names))
    assert {"numpy", "pandas", "pyarrow"} <= loaded  # it did import the ML code
    # scikit-learn imports `rich` for its own display whenever rich is installed (it is, for the
    # CLI): what the libraries load by themselves is not the ML code's doing
    loaded -= _loaded_after("import sklearn, xgboost") - {"sklearn", "xgboost"}
    assert loaded.isdisjoint(
        {"pulumi", "pulumi_aws", "pulumi_policy", "moto", "typer", "rich", "stacks", "mlplat"}
    )


def test_the_platform_image_installs_ml_and_its_own_dependencies_only() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    copies = [line.split()[1] for line in dockerfile.splitlines() if line.startswith("COPY ")]
    assert [c for c in copies if not c.startswith("--from")] == ["pyproject.toml", "ml"]
    assert "uv sync --frozen --no-default-groups --no-install-project" in dockerfile
    uv = shutil.which("uv")
    if uv is None:  # the test environment is made by uv: it is on PATH under `make test`
        pytest.fail("uv is not on PATH")
    exported = subprocess.run(
        [uv, "export", "--frozen", "--no-default-groups", "--no-emit-project", "--no-hashes"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    installed = {
        line.split("==")[0].strip().lower()
        for line in exported.splitlines()
        if line and not line.startswith(("#", " "))
    }
    assert {"pandas", "numpy", "pyarrow", "scikit-learn", "joblib", "boto3"} <= installed
    assert installed.isdisjoint(
        {"pulumi", "pulumi-aws", "pulumi-policy", "moto", "typer", "rich", "sagemaker", "pytest"}
    )


def test_python_m_ml_drift_runs_the_job_entry_point() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ml.drift"], cwd=ROOT, capture_output=True, text=True, env={}
    )
    assert done.returncode != 0
    assert (
        "drift job environment lacks MLPLAT_MODEL, MLPLAT_DRIFT_PREDICTIONS_BUCKET" in done.stderr
    )


def test_no_module_or_function_outgrows_its_reader() -> None:
    too_long = []
    for package in PACKAGES:
        for path in modules(package):
            source = path.read_text()
            lines = len(source.splitlines())
            if lines > MAX_MODULE_LINES:
                too_long.append(f"{path.relative_to(ROOT)}: {lines} lines")
            for node in ast.walk(ast.parse(source)):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    length = (node.end_lineno or node.lineno) - node.lineno + 1
                    if length > MAX_FUNCTION_LINES:
                        too_long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}()")
    assert too_long == []


def test_the_readme_shows_how_another_program_reuses_the_components(tmp_path, record) -> None:
    """The README's snippet, run as another program would run it: from its own directory."""
    import os
    import re

    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### Reusing the components in another Pulumi program") :]
    snippet = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert snippet is not None
    program_file = tmp_path / "__main__.py"
    program_file.write_text(snippet.group(1))
    here = os.getcwd()
    os.chdir(tmp_path)
    try:
        plan = record(
            lambda: exec(compile(program_file.read_text(), str(program_file), "exec"), {})
        )
    finally:
        os.chdir(here)
    (lake,) = plan.of_type("mlplatform:lake:DataLake")
    assert lake.name == "lake"
    assert len(plan.of_type("aws:s3/bucket:Bucket")) >= 6
    assert "raw_bucket" in plan.outputs


def _mypy_skipped_aws_services() -> set[str]:
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    skipped: set[str] = set()
    for override in config["tool"]["mypy"].get("overrides", []):
        if override.get("follow_imports") == "skip":
            modules = override["module"]
            for name in [modules] if isinstance(modules, str) else modules:
                parts = name.split(".")
                if parts[0] == "pulumi_aws" and len(parts) >= 2 and parts[1] != "*":
                    skipped.add(parts[1])
    return skipped


def test_mypy_skips_no_pulumi_aws_service_the_code_uses() -> None:
    """pyproject's skip list keeps a cold mypy run short; a service the type-checked packages use
    (`aws.<service>.`, `pulumi_aws.<service>`) must stay checked, and every skipped name must be a
    service of the installed SDK (no stale entries)."""
    import importlib.util

    skipped = _mypy_skipped_aws_services()
    used: dict[str, str] = {}
    pattern = re.compile(r"\b(?:aws|pulumi_aws)\.([a-z][a-z0-9_]*)\.")
    checked = ("components", "stacks", "ml", "policies", "mlplat")
    for package in checked:
        for path in modules(package):
            code = "\n".join(
                line for line in path.read_text().splitlines() if not line.lstrip().startswith("#")
            )
            for service in pattern.findall(code):
                used.setdefault(service, str(path.relative_to(ROOT)))
    spec = importlib.util.find_spec("pulumi_aws")
    assert spec is not None and spec.submodule_search_locations
    sdk = Path(next(iter(spec.submodule_search_locations)))
    services = {p.name for p in sdk.iterdir() if (p / "__init__.py").is_file()}
    assert {s: f for s, f in used.items() if s in skipped} == {}
    assert sorted(skipped - services) == []
    assert "s3" in used and "sagemaker" in used  # the scan sees the code's services
