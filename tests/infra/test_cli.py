"""`mlplat preview` as a new user meets it: exit codes, messages, the plan file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from ml.outputs import OUTPUT_KEYS, PlatformOutputs
from mlplat.cli.app import app
from tests.conftest import ROOT

runner = CliRunner()
PLAN_KEYS = {"project", "stack", "resources", "outputs", "policies", "cost"}
RESOURCE_KEYS = {"urn", "id", "type", "name", "parent", "custom", "inputs", "options"}
OPTION_KEYS = {"protect", "retainOnDelete", "deleteBeforeReplace", "ignoreChanges", "dependsOn"}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the project's stack files, to break on purpose."""
    for name in ("Pulumi.yaml", "Pulumi.dev.yaml", "Pulumi.prod.yaml"):
        shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path


def set_config(project: Path, stack: str, **values: object) -> None:
    path = project / f"Pulumi.{stack}.yaml"
    doc = yaml.safe_load(path.read_text())
    for key, value in values.items():
        doc["config"][key if ":" in key else f"ml-platform:{key}"] = value
    path.write_text(yaml.safe_dump(doc))


def preview(project: Path, stack: str, out: Path) -> object:
    return runner.invoke(
        app, ["preview", "--stack", stack, "--json", str(out), "--project-dir", str(project)]
    )


@pytest.mark.parametrize(
    ("stack", "change", "message"),
    [
        ("qa", {}, "no stack file Pulumi.qa.yaml"),
        ("dev", {"rawIADays": 40}, "did you mean 'ml-platform:rawIaDays'?"),
        # the CLI's own type check runs first, with its message
        (
            "dev",
            {"rawIaDays": "later"},
            "Stack 'dev' with configuration key 'rawIaDays' must be of type 'integer'",
        ),
        # the program receives config as text, as from the Pulumi CLI
        (
            "dev",
            {"noncurrentVersionDays": 0},
            "ml-platform:noncurrentVersionDays: '0' is not allowed (too small)",
        ),
        ("dev", {"endpointMinInstances": 3, "endpointMaxInstances": 1}, "min must be <= max"),
        ("prod", {"forceDestroy": True}, "ml-platform:forceDestroy: true is not allowed in prod"),
    ],
)
def test_bad_configuration_exits_2_and_writes_no_plan(project, tmp_path, stack, change, message):
    if change:
        set_config(project, stack, **change)
    out = tmp_path / "plan.json"
    result = preview(project, stack, out)
    assert result.exit_code == 2
    assert message in result.stderr
    assert result.stdout == ""  # nothing printed as if it had worked
    assert not out.exists()


def test_preview_writes_the_plan_with_every_field(tmp_path):
    out = tmp_path / "plan.json"
    result = runner.invoke(
        app, ["preview", "--stack", "dev", "--json", str(out), "--project-dir", str(ROOT)]
    )
    assert result.exit_code == 0, result.output
    plan = json.loads(out.read_text())
    assert set(plan) >= PLAN_KEYS
    assert plan["project"] == "ml-platform" and plan["stack"] == "dev"
    for resource in plan["resources"]:
        assert set(resource) >= RESOURCE_KEYS
        assert set(resource["options"]) >= OPTION_KEYS
    assert "resources" in result.stdout and "outputs" in result.stdout


@pytest.mark.parametrize("stack", ["dev", "staging", "prod", "local"])
def test_exported_outputs_equal_the_platform_outputs_record(shipped_plans, stack):
    outputs = shipped_plans[stack].outputs
    assert set(outputs) == set(OUTPUT_KEYS)
    record = PlatformOutputs.from_mapping(outputs)
    assert record.stack == stack and record.environment == stack


@pytest.mark.parametrize("command", [[], ["preview"], ["bench"]])
def test_help_on_every_command(command):
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0
    assert "Usage" in result.stdout


def test_every_registered_command_has_help():
    import typer.main

    group = typer.main.get_command(app)
    names = list(group.commands)  # type: ignore[attr-defined]
    assert "preview" in names
    for name in names:
        result = runner.invoke(app, [name, "--help"])
        assert result.exit_code == 0, name


def test_every_command_module_is_registered():
    import importlib

    import typer.main

    names = set(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
    for path in sorted((ROOT / "mlplat" / "cli" / "commands").glob("*.py")):
        module = importlib.import_module(f"mlplat.cli.commands.{path.stem}")
        if not hasattr(module, "register"):
            continue
        probe = typer.Typer()
        module.register(probe)
        probe.command("probe-noop")(lambda: None)
        added = set(typer.main.get_command(probe).commands) - {"probe-noop"}  # type: ignore[attr-defined]
        assert added and added <= names, (path.stem, added - names)


# --- one way to declare an option, one way to fail


SHARED_FLAGS = ("--stack", "--outputs", "--endpoint-url", "--region", "--project-dir", "--group")


def test_shared_options_are_declared_once_in_options_py():
    import re

    declared = []
    for path in sorted((ROOT / "mlplat" / "cli" / "commands").glob("*.py")):
        source = path.read_text()
        for flag in (*SHARED_FLAGS, "--json"):
            for match in re.finditer(rf'typer\.Option\(\s*"{flag}"', source):
                declared.append(f"{path.name}: {flag} at {match.start()}")
    # `mlplat policies --json` is a flag (print as JSON), not a file: the one exception
    assert [d for d in declared if not d.startswith("policy.py: --json")] == []


def test_every_shared_option_reads_the_same_in_every_command():
    import typer.main

    group = typer.main.get_command(app)
    seen: dict[str, set[str | None]] = {}
    stack = [group]
    while stack:
        command = stack.pop()
        stack.extend(getattr(command, "commands", {}).values())
        for param in getattr(command, "params", []):
            flag = param.opts[0] if param.opts else ""
            if flag in SHARED_FLAGS:
                seen.setdefault(flag, set()).add(param.help)  # type: ignore[attr-defined]
    assert set(seen) == set(SHARED_FLAGS)
    # `--stack` is required for preview/deploy/rollback and optional elsewhere: two texts
    assert {flag: len(texts) for flag, texts in seen.items()} == {
        flag: 2 if flag == "--stack" else 1 for flag in SHARED_FLAGS
    }


@pytest.mark.parametrize(
    ("code", "expected"),
    [(2, "error: no stack file Pulumi.qa.yaml\n"), (1, "no stack file Pulumi.qa.yaml\n")],
)
def test_fail_writes_stderr_and_exits_with_its_code(capsys, code, expected):
    import typer

    from mlplat.cli.errors import ExitCode, fail

    with pytest.raises(typer.Exit) as exit_:
        fail("no stack file Pulumi.qa.yaml  ", ExitCode(code))
    assert exit_.value.exit_code == code
    assert capsys.readouterr() == ("", expected)
