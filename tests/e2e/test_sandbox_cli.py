"""`mlplat sandbox`: the local stack realized on an embedded moto server; the step runner."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import boto3
import pytest
import typer
import yaml
from typer.testing import CliRunner

from stacks.commands import sandbox as sandbox_command
from stacks.sandbox.lifecycle import (
    ML_STEPS,
    PLATFORM_STEPS,
    STEPS,
    SandboxContext,
    SandboxReport,
    Step,
    StepFailed,
    run_steps,
)
from stacks.sandbox.server import SandboxServer, environment_for
from tests.conftest import ROOT, make_config, make_settings


@pytest.fixture
def cli() -> typer.Typer:
    app = typer.Typer()
    sandbox_command.register(app)

    @app.command("noop")
    def noop() -> None:  # a second command keeps typer from flattening `sandbox` away
        pass

    return app


def project_with(tmp_path: Path, **overrides: Any) -> Path:
    """A project dir: the real Pulumi.yaml and the real local stack file, with overrides."""
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    document = yaml.safe_load((ROOT / "Pulumi.local.yaml").read_text())
    for key, value in overrides.items():
        document["config"][f"ml-platform:{key}"] = value
    (tmp_path / "Pulumi.local.yaml").write_text(yaml.safe_dump(document))
    return tmp_path


def test_sandbox_realizes_the_local_stack_and_writes_the_report(cli, tmp_path):
    report_path = tmp_path / "report.json"
    result = CliRunner().invoke(
        cli, ["sandbox", "--json", str(report_path), "--project-dir", str(ROOT)]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(report_path.read_text())
    assert [(s["name"], s["status"]) for s in report["steps"]] == [(s.name, "ok") for s in STEPS]
    assert all(s["seconds"] > 0 for s in report["steps"])
    assert report["ok"] is True and report["stack"] == "local"
    assert report["serverUrl"].startswith("http://127.0.0.1:")
    resources = report["resources"]
    assert resources["failed"] == []
    assert resources["realizedCount"] == sum(resources["realized"].values()) > 0
    # every resource is accounted for: realized or listed with its reason
    assert all(item["reason"] for item in resources["notEmulated"])
    assert sum(resources["notEmulatedByType"].values()) == len(resources["notEmulated"])
    outputs = report["outputs"]
    assert outputs["stack"] == "local" and outputs["account_id"] == "123456789012"
    # the ML slots are there, empty until the lifecycle steps land
    assert report["modelVersion"] is None and report["predictionsServed"] is None
    assert report["metrics"] == {} and report["alarmStates"] == {}
    assert report["notifications"] == [] and report["drift"] == {}


def test_account_mismatch_fails_the_first_step_and_skips_the_rest(cli, tmp_path):
    root = project_with(tmp_path, accountId="210987654321")
    report_path = tmp_path / "report.json"
    result = CliRunner().invoke(
        cli, ["sandbox", "--json", str(report_path), "--project-dir", str(root)]
    )
    assert result.exit_code == 1
    report = json.loads(report_path.read_text())
    assert [(s["name"], s["status"]) for s in report["steps"]] == [("start-server", "failed")] + [
        (s.name, "not-run") for s in STEPS[1:]
    ]
    error = report["steps"][0]["error"]
    assert "answers for account 123456789012" in error and "210987654321" in error
    assert report["ok"] is False


def test_bad_configuration_exits_2_with_every_problem(cli, tmp_path):
    root = project_with(tmp_path, rawIaDays=5, endpointInstanceTyp="ml.m5.large")
    result = CliRunner().invoke(cli, ["sandbox", "--project-dir", str(root)])
    assert result.exit_code == 2
    assert "ml-platform:rawIaDays" in result.output
    assert "endpointInstanceTyp" in result.output


def test_missing_report_directory_exits_2(cli, tmp_path):
    result = CliRunner().invoke(
        cli, ["sandbox", "--json", str(tmp_path / "no" / "r.json"), "--project-dir", str(ROOT)]
    )
    assert result.exit_code == 2
    assert "does not exist" in result.output


def test_keep_prints_the_environment_and_serves_until_interrupted(cli, monkeypatch):
    seen: dict[str, Any] = {}
    real_print = sandbox_command._print_environment

    def capture(env: dict[str, str], scratch: Path) -> None:
        seen["env"], seen["scratch"] = env, scratch
        real_print(env, scratch)

    def wait() -> None:  # what a user does in another shell while the server is kept
        env = seen["env"]
        s3 = boto3.client(
            "s3",
            endpoint_url=env["AWS_ENDPOINT_URL"],
            region_name=env["AWS_DEFAULT_REGION"],
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        )
        seen["buckets"] = [b["Name"] for b in s3.list_buckets()["Buckets"]]

    monkeypatch.setattr(sandbox_command, "_print_environment", capture)
    monkeypatch.setattr(sandbox_command, "wait_until_interrupted", wait)
    result = CliRunner().invoke(cli, ["sandbox", "--keep", "--project-dir", str(ROOT)])
    assert result.exit_code == 0, result.output
    env = seen["env"]
    assert set(env) == {
        "AWS_ENDPOINT_URL",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_DEFAULT_REGION",
    }
    assert env["AWS_DEFAULT_REGION"] == "us-east-1"
    for key, value in env.items():
        assert f"export {key}={value}" in result.output
    assert f"sandbox running at {env['AWS_ENDPOINT_URL']}" in result.output
    assert seen["buckets"]  # the realized platform was reachable while kept
    assert (seen["scratch"] / "outputs.json").is_file()  # the scratch dir is kept too
    shutil.rmtree(seen["scratch"])


# --- the step runner


def _context(tmp_path: Path) -> SandboxContext:
    settings = make_settings("local")
    return SandboxContext(
        settings=settings,
        config=make_config("local"),
        scratch=tmp_path,
        report=SandboxReport(stack="local"),
    )


def test_steps_run_in_order_and_stop_at_the_first_failure(tmp_path):
    calls: list[str] = []

    def ok(name: str) -> Step:
        return Step(name, lambda ctx: calls.append(name) or f"{name} done")

    def boom(ctx: SandboxContext) -> str:
        calls.append("train")
        raise StepFailed("the gate refused the model: auc 0.61 < 0.75")

    ctx = _context(tmp_path)
    report = run_steps(ctx, [ok("generate-data"), ok("ingest"), Step("train", boom), ok("deploy")])
    assert calls == ["generate-data", "ingest", "train"]
    assert [(s.name, s.status) for s in report.steps] == [
        ("generate-data", "ok"),
        ("ingest", "ok"),
        ("train", "failed"),
        ("deploy", "not-run"),
    ]
    assert report.steps[0].detail == "generate-data done"
    assert report.steps[2].error == "the gate refused the model: auc 0.61 < 0.75"
    assert report.steps[3].seconds == 0.0
    assert report.ok is False


def test_an_unexpected_exception_is_recorded_with_its_type(tmp_path):
    def broken(ctx: SandboxContext) -> str:
        raise KeyError("raw_bucket")

    report = run_steps(_context(tmp_path), [Step("ingest", broken)])
    assert report.steps[0].status == "failed"
    assert report.steps[0].error == "KeyError: 'raw_bucket'"


def test_step_names_must_be_unique(tmp_path):
    step = Step("ingest", lambda ctx: "")
    with pytest.raises(ValueError, match="repeated: ingest"):
        run_steps(_context(tmp_path), [step, step])


def test_the_step_list_is_platform_then_ml():
    assert [s.name for s in PLATFORM_STEPS] == [
        "start-server",
        "realize-platform",
        "verify-platform",
    ]
    assert (*PLATFORM_STEPS, *ML_STEPS) == STEPS


def test_steps_that_need_the_server_say_so(tmp_path):
    report = run_steps(_context(tmp_path), [PLATFORM_STEPS[2]])
    assert report.steps[0].error == "nothing was realized (did realize-platform run?)"
    with pytest.raises(StepFailed, match="server is not running"):
        _ = _context(tmp_path).url


def test_a_program_is_realized_and_outputs_reach_the_context(tmp_path):
    import pulumi
    import pulumi_aws as aws

    def program() -> None:
        bucket = aws.s3.Bucket("ctx-bucket", force_destroy=True)
        pulumi.export("raw_bucket", bucket.bucket)

    ctx = _context(tmp_path)
    ctx.program = program
    try:
        report = run_steps(ctx, PLATFORM_STEPS)
        assert report.ok, [s.error for s in report.steps]
        assert ctx.outputs["raw_bucket"].startswith("ctx-bucket-")
        assert json.loads((tmp_path / "outputs.json").read_text()) == ctx.outputs
        with ctx.aws_environment():
            assert os.environ["AWS_ENDPOINT_URL"] == ctx.url
            names = [b["Name"] for b in boto3.client("s3").list_buckets()["Buckets"]]
            assert ctx.outputs["raw_bucket"] in names
        assert os.environ.get("AWS_ENDPOINT_URL") != ctx.url
    finally:
        assert ctx.server is not None
        ctx.server.stop()


def test_environment_for_lists_what_a_shell_needs():
    assert environment_for("http://127.0.0.1:1234", "eu-west-1") == {
        "AWS_ENDPOINT_URL": "http://127.0.0.1:1234",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }


def test_server_picks_a_free_port_and_stops():
    first, second = SandboxServer("us-east-1").start(), SandboxServer("us-east-1").start()
    try:
        assert first.url != second.url
        assert first.client("sts").get_caller_identity()["Account"] == "123456789012"
    finally:
        first.stop()
        second.stop()
    assert not first.running
