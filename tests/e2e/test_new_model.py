"""A third model with no other edit: in a copy of the repository, `mlplat new model demo --task
regression` scaffolds the package, `- name: demo` joins the local stack's `models`, and the
sandbox (`--models demo`: the platform realized for all three models, the lifecycle run for demo)
trains it in its own pipeline, registers, deploys and serves it, watches it (drift, skew, online
quality per version, age) and refuses its weak retrain, with its roles kept out of the other
models' prefixes.

Everything runs in subprocesses with the copy first on `PYTHONPATH`, so the copy's `ml/models/demo`
is the one the stack, the pipeline's containers and the endpoint's handler import.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT

# What the sandbox needs of the repository (not `.venv`: the copy runs with this interpreter).
NEEDED = ("ml", "components", "stacks", "policies", "mlplat", "pyproject.toml")
MODELS_KEY = "ml-platform:models:"


@dataclass
class Demo:
    root: Path
    scaffold: subprocess.CompletedProcess[str]
    sandbox: subprocess.CompletedProcess[str]
    report: dict[str, Any]


def _copy(target: Path) -> None:
    for name in NEEDED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=shutil.ignore_patterns(".*cache"))
        else:
            shutil.copy2(source, target / name)
    for stack_file in ROOT.glob("Pulumi*.yaml"):
        shutil.copy2(stack_file, target / stack_file.name)


def add_to_models(stack_file: Path, name: str) -> None:
    """Append `- name: <name>` to the stack file's `ml-platform:models` list (its text kept)."""
    lines = stack_file.read_text().splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.strip().startswith(MODELS_KEY))
    last = start
    for i in range(start + 1, len(lines)):
        if not lines[i].strip().startswith("- "):
            break
        last = i
    indent = lines[last][: len(lines[last]) - len(lines[last].lstrip())]
    lines.insert(last + 1, f"{indent}- name: {name}\n")
    stack_file.write_text("".join(lines))


def _mlplat(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [sys.executable, "-m", "mlplat.cli.app", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    root = tmp_path_factory.mktemp("repo")
    _copy(root)
    scaffold = _mlplat(root, "new", "model", "demo", "--task", "regression", "--root", str(root))
    add_to_models(root / "Pulumi.local.yaml", "demo")
    report_path = root / "sandbox-report.json"
    sandbox = _mlplat(root, "sandbox", "--models", "demo", "--json", str(report_path))
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    yield Demo(root, scaffold, sandbox, report)
    shutil.rmtree(root, ignore_errors=True)


def test_the_stack_file_gains_only_the_model(tmp_path: Path) -> None:
    stack_file = tmp_path / "Pulumi.local.yaml"
    shutil.copy2(ROOT / "Pulumi.local.yaml", stack_file)
    add_to_models(stack_file, "demo")
    before = (ROOT / "Pulumi.local.yaml").read_text().splitlines()
    after = stack_file.read_text().splitlines()
    [added] = [line for line in after if line not in before]
    assert added == "    - name: demo" and len(after) == len(before) + 1
    spend = after.index("    - name: spend")
    assert after[spend + 1] == added


def test_the_scaffold_writes_the_package(demo: Demo) -> None:
    assert demo.scaffold.returncode == 0, demo.scaffold.stderr
    assert (demo.root / "ml/models/demo/spec.py").is_file()
    assert (demo.root / "ml/models/demo/model.py").is_file()
    assert not (ROOT / "ml/models/demo").exists()  # the checkout itself is untouched


def test_the_sandbox_runs_the_lifecycle_of_the_new_model(demo: Demo) -> None:
    steps = demo.report.get("steps", [])
    failed = [(s["name"], s["error"]) for s in steps if s["status"] != "ok"]
    assert demo.sandbox.returncode == 0, failed or demo.sandbox.stderr[-3000:]
    per_model = [s for s in steps if s["model"]]
    assert {s["model"] for s in per_model} == {"demo"}  # --models demo: its steps alone
    assert [s["name"] for s in per_model] == [
        f"{step}:demo"
        for step in (
            "pipeline",
            "approve",
            "deploy",
            "send-traffic",
            "capture",
            "drift",
            "prediction-logs",
            "retrain-refused",
            "skewed-handler",
            "quality",
        )
    ]
    # the platform is realized for all three models
    assert set(demo.report["outputs"]["models"]) == {"churn", "spend", "demo"}
    assert list(demo.report["models"]) == ["demo"]


def test_the_new_model_trains_registers_deploys_and_serves(demo: Demo) -> None:
    model = demo.report["models"]["demo"]
    outputs = demo.report["outputs"]["models"]["demo"]
    assert model["task"] == "regression"
    # trained in its own pipeline, registered in its own group
    pipeline = model["lifecycle"]["pipeline"]
    assert pipeline["pipeline"] == outputs["pipeline_name"] == "ml-platform-local-demo"
    assert pipeline["status"] == "Succeeded"
    assert model["modelVersion"] == f"{outputs['model_package_group_name']}/1"
    assert set(model["headline"]) == {"rmse", "mae"} and model["headline"]["rmse"] > 0
    # deployed to its own endpoint, served on loopback, its predictions answered
    deploy = model["lifecycle"]["deploy"]
    assert model["endpoint"] == deploy["endpoint"] == outputs["endpoint_name"]
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", deploy["url"])
    assert deploy["modelDataUrl"].split("/", 3)[3].startswith(outputs["model_artifacts_prefix"])
    assert model["predictionsServed"] == 3_000
    assert model["lifecycle"]["capture"]["prefix"].endswith(
        f"/{outputs['capture_prefix']}/primary/"
    )
    assert model["predictionLogs"]["rows"] == 3_000
    # watched, paged for, and its weak retrain refused
    assert model["drift"]["windows"][1]["driftedFeatures"]
    assert any(state == "ALARM" for state in model["driftAlarms"].values())
    assert any(n.get("driftOf") == "demo" for n in demo.report["notifications"])
    assert model["lifecycle"]["retrain-refused"]["gate"]["passed"] is False
    assert "demo: model" in demo.sandbox.stdout
    # its skew caught, its online quality measured per version, its age judged
    assert model["skew"]["alarm"]["to"] == "ALARM"
    assert set(model["onlineQuality"]["versions"]) == {
        f"{outputs['model_package_group_name']}/1",
        f"{outputs['model_package_group_name']}/2",
    }
    assert model["modelAgeDays"] > 0


def test_the_new_models_roles_and_the_others_stay_apart(demo: Demo) -> None:
    checks = demo.report["leastPrivilege"]["checks"]
    assert all(c["ok"] for c in checks)
    pairs = {(c["model"], c["otherModel"]) for c in checks if c.get("otherModel")}
    assert pairs == {
        ("demo", "churn"),
        ("demo", "spend"),
        ("churn", "demo"),
        ("spend", "demo"),
    }
    assert all(c["actual"] == "AccessDenied" for c in checks if c.get("otherModel"))
