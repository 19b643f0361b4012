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

from mlplat.cli.commands import sandbox as sandbox_command
from mlplat.sandbox.lifecycle import (
    ML_STEPS,
    PLATFORM_STEPS,
    STEPS,
    ModelStep,
    SandboxContext,
    SandboxReport,
    Step,
    StepFailed,
    expand,
    run_steps,
)
from mlplat.sandbox.server import SandboxServer, environment_for
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


def test_account_mismatch_fails_the_first_step_and_skips_the_rest(cli, tmp_path):
    root = project_with(tmp_path, accountId="210987654321")
    report_path = tmp_path / "report.json"
    result = CliRunner().invoke(
        cli, ["sandbox", "--json", str(report_path), "--project-dir", str(root)]
    )
    assert result.exit_code == 1
    report = json.loads(report_path.read_text())
    assert [(s["name"], s["status"]) for s in report["steps"]] == [("start-server", "failed")] + [
        (s.name, "not-run") for s in expand(STEPS[1:], ("churn", "spend"))
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


def test_models_names_only_models_of_the_stack(cli, tmp_path):
    result = CliRunner().invoke(
        cli, ["sandbox", "--models", "churn,nope", "--project-dir", str(ROOT)]
    )
    assert result.exit_code == 2
    assert "hosts no model 'nope'" in result.output and "churn, spend" in result.output
    result = CliRunner().invoke(cli, ["sandbox", "--models", " , ", "--project-dir", str(ROOT)])
    assert result.exit_code == 2 and "name at least one model" in result.output


def test_models_restricts_the_steps_each_model_takes(cli, tmp_path, monkeypatch):
    seen: list[tuple[str, ...]] = []

    def run_only_the_first(ctx: SandboxContext, *args: object, **kwargs: object) -> SandboxReport:
        seen.append(ctx.models)
        return ctx.report

    from mlplat.sandbox import lifecycle

    monkeypatch.setattr(lifecycle, "run_steps", run_only_the_first)
    result = CliRunner().invoke(cli, ["sandbox", "--models", "spend", "--project-dir", str(ROOT)])
    assert seen == [("spend",)], result.output
    assert [s.name for s in expand(ML_STEPS, seen[0]) if s.model] == [
        f"{step}:spend"
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


def test_missing_report_directory_exits_2(cli, tmp_path):
    result = CliRunner().invoke(
        cli, ["sandbox", "--json", str(tmp_path / "no" / "r.json"), "--project-dir", str(ROOT)]
    )
    assert result.exit_code == 2
    assert "does not exist" in result.output


# --- the step runner


TWO_MODELS = [{"name": "churn"}, {"name": "spend"}]


def _context(tmp_path: Path) -> SandboxContext:
    settings = make_settings("local", models=TWO_MODELS)
    return SandboxContext(
        settings=settings,
        config=make_config("local", models=TWO_MODELS),
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


def test_steps_together_run_at_the_same_time_and_a_failure_stops_the_run_after_them(tmp_path):
    import threading

    # each waits for the other: run one after the other, the first would time out
    both = threading.Barrier(2, timeout=10)
    calls: list[str] = []

    def meeting(name: str, fail: bool = False) -> Step:
        def fn(ctx: SandboxContext) -> str:
            import time

            both.wait()
            time.sleep(0.2)  # long enough that the run's wall time is clearly below the sum
            calls.append(name)
            if fail:
                raise StepFailed(f"{name} refused")
            return f"{name} met"

        return Step(name, fn, together="pair")

    report = run_steps(
        _context(tmp_path),
        [
            meeting("left"),
            meeting("right", fail=True),
            Step("after", lambda ctx: calls.append("after") or "x"),
        ],
    )
    assert sorted(calls) == ["left", "right"]  # both finished; the step after them did not run
    assert [(s.name, s.status) for s in report.steps] == [
        ("left", "ok"),
        ("right", "failed"),
        ("after", "not-run"),
    ]
    assert report.steps[0].detail == "left met" and report.steps[1].error == "right refused"
    # the run's seconds are its wall time, not the sum of the overlapping steps'
    assert report.seconds < sum(s.seconds for s in report.steps)
    assert report.to_json()["stepSeconds"] == pytest.approx(
        sum(s.seconds for s in report.steps), abs=0.01
    )


def test_steps_with_different_together_or_none_run_one_after_the_other(tmp_path):
    import threading

    running: list[int] = []
    overlapped: list[bool] = []
    lock = threading.Lock()

    def step(name: str, together: str | None) -> Step:
        def fn(ctx: SandboxContext) -> str:
            import time

            with lock:
                running.append(1)
                overlapped.append(len(running) > 1)
            time.sleep(0.05)
            with lock:
                running.pop()
            return name

        return Step(name, fn, together=together)

    report = run_steps(
        _context(tmp_path), [step("a", "x"), step("b", "y"), step("c", None), step("d", None)]
    )
    assert report.ok and overlapped == [False] * 4


def test_a_model_step_together_runs_every_model_at_once(tmp_path):
    import threading

    both = threading.Barrier(2, timeout=10)

    def train(ctx: SandboxContext, model: str) -> str:
        both.wait()
        return model

    per_model = ModelStep("train", train, together="t")
    report = run_steps(_context(tmp_path), [per_model])
    assert [(s.name, s.status) for s in report.steps] == [
        ("train:churn", "ok"),
        ("train:spend", "ok"),
    ]


def test_models_stepping_together_keep_the_stacks_order_in_the_report(tmp_path):
    import time

    def record(ctx: SandboxContext, model: str) -> str:
        if model == "churn":
            time.sleep(0.2)  # spend's thread reaches the report first
        ctx.report.model(model).lifecycle["seen"] = True
        return model

    report = run_steps(_context(tmp_path), [ModelStep("record", record, together="t")])
    assert report.ok and list(report.to_json()["models"]) == ["churn", "spend"]


def test_ctrl_c_stops_steps_that_run_together_at_once(tmp_path):
    import _thread
    import signal
    import threading
    import time

    release = threading.Event()
    both = threading.Barrier(2, timeout=10)  # both steps are running before the Ctrl-C

    def interrupted(ctx: SandboxContext) -> str:
        both.wait()
        _thread.interrupt_main()  # as Ctrl-C would, once, while the steps still run
        release.wait(10)
        return "done"

    def busy(ctx: SandboxContext) -> str:
        both.wait()
        release.wait(10)
        return "done"

    # Ctrl-C's own handler (pytest-xdist's workers ignore SIGINT, so the controller gets it)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    started = time.perf_counter()
    try:
        with pytest.raises(KeyboardInterrupt):
            run_steps(
                _context(tmp_path),
                [Step("a", interrupted, together="t"), Step("b", busy, together="t")],
            )
        # not after the steps' 10 s: the steps' threads do not hold the sandbox up
        assert time.perf_counter() - started < 5
    finally:
        release.set()
        signal.signal(signal.SIGINT, previous)


def test_step_names_must_be_unique(tmp_path):
    step = Step("ingest", lambda ctx: "")
    with pytest.raises(ValueError, match="repeated: ingest"):
        run_steps(_context(tmp_path), [step, step])


def test_a_model_step_runs_once_per_model_of_the_run_in_the_stacks_order(tmp_path):
    calls: list[tuple[str, str]] = []
    per_model = ModelStep("train", lambda ctx, model: calls.append(("train", model)) or model)
    ctx = _context(tmp_path)
    assert ctx.models == ("churn", "spend")  # the stack's `models`
    report = run_steps(ctx, [Step("data", lambda ctx: "d"), per_model])
    assert calls == [("train", "churn"), ("train", "spend")]
    assert [(s.name, s.model, s.detail) for s in report.steps] == [
        ("data", None, "d"),
        ("train:churn", "churn", "churn"),
        ("train:spend", "spend", "spend"),
    ]
    ctx = _context(tmp_path)
    ctx.only = ("spend", "churn")  # the stack's order, whatever the order asked in
    assert ctx.models == ("churn", "spend")
    ctx.only = ("spend",)
    calls.clear()
    run_steps(ctx, [per_model])
    assert calls == [("train", "spend")]


def test_the_step_list_is_platform_then_ml():
    assert [s.name for s in PLATFORM_STEPS] == [
        "start-server",
        "start-containers",
        "prepare-oncall-queues",
        "realize-platform",
        "verify-platform",
        "allow-oncall-delivery",
    ]
    assert [(s.name, isinstance(s, ModelStep)) for s in ML_STEPS] == [
        ("generate-data", False),
        ("ingest", False),
        ("pipeline", True),
        ("approve", True),
        ("deploy", True),
        ("send-traffic", True),
        ("capture", True),
        ("drift", True),
        ("alarms", False),
        ("notifications", False),
        ("prediction-logs", True),
        ("retrain-refused", True),
        ("slice-refused", False),
        ("skewed-handler", True),
        ("labels", False),
        ("quality", True),
        ("least-privilege", False),
    ]
    assert (*PLATFORM_STEPS, *ML_STEPS) == STEPS


def test_an_ml_step_without_its_platform_says_what_is_missing(tmp_path):
    steps = {s.name: s for s in ML_STEPS}
    report = run_steps(_context(tmp_path), [steps["ingest"], steps["pipeline"]])
    assert [(s.name, s.status) for s in report.steps] == [
        ("ingest", "failed"),
        ("pipeline:churn", "not-run"),
        ("pipeline:spend", "not-run"),
    ]
    assert report.steps[0].error == "no platform outputs (did realize-platform run?)"
    report = run_steps(_context(tmp_path), [steps["approve"]])
    assert report.steps[0].error == "no version of churn (did pipeline:churn run?)"
    ctx = _context(tmp_path)
    ctx.outputs = {"alarm_topic_arn": "arn:aws:sns:us-east-1:123456789012:t"}
    report = run_steps(ctx, [steps["least-privilege"]])
    assert "lack" in report.steps[0].error and "raw_bucket" in report.steps[0].error


def test_the_monitoring_steps_without_their_earlier_steps_say_what_is_missing(tmp_path):
    steps = {s.name: s for s in ML_STEPS}
    report = run_steps(_context(tmp_path), [steps["quality"]])
    assert report.steps[0].error == "no labels came back (did labels run?)"
    report = run_steps(_context(tmp_path), [steps["skewed-handler"]])
    assert report.steps[0].error == "no version of churn (did approve:churn run?)"
    report = run_steps(_context(tmp_path), [steps["slice-refused"]])
    assert report.steps[0].error == "no platform outputs (did realize-platform run?)"


def test_steps_that_need_the_server_say_so(tmp_path):
    verify = next(s for s in PLATFORM_STEPS if s.name == "verify-platform")
    report = run_steps(_context(tmp_path), [verify])
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
        # the program exports no on-call topic: everything up to reading it back (and no
        # pipeline: no container fork server)
        steps = [s for s in PLATFORM_STEPS[:5] if s.name != "start-containers"]
        report = run_steps(ctx, steps)
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


def test_every_server_starts_empty():
    # moto keeps one set of backends per process: a new sandbox must not see an old one's
    with SandboxServer("us-east-1") as first:
        first.client("s3").create_bucket(Bucket="left-over")
    with SandboxServer("us-east-1") as second:
        assert second.client("s3").list_buckets()["Buckets"] == []


def test_iam_enforcement_lasts_until_its_last_holder_leaves_and_spares_the_sandbox_key():
    from botocore.exceptions import ClientError

    with SandboxServer("us-east-1") as server:
        iam = server.client("iam")
        iam.create_user(UserName="nobody")  # no policy: may do nothing
        key = iam.create_access_key(UserName="nobody")["AccessKey"]
        nobody = server.session().client(
            "s3",
            endpoint_url=server.url,
            aws_access_key_id=key["AccessKeyId"],
            aws_secret_access_key=key["SecretAccessKey"],
        )
        sandbox = server.client("s3")

        def refused() -> bool:
            try:
                nobody.list_buckets()
            except ClientError as exc:
                return exc.response["Error"]["Code"] in ("AccessDenied", "403")
            return False

        assert not refused()  # not enforced
        with server.iam_enforced():
            with server.iam_enforced():  # a second holder (another step at the same time)
                assert refused()
                assert sandbox.list_buckets()["Buckets"] == []  # the sandbox's own key passes
            assert refused()  # the first holder still holds it
        assert not refused()  # the last holder left: as before


# --- the monitoring cases' own pieces


def test_the_skewed_artifact_edits_the_handler_and_nothing_else():
    import io
    import tarfile

    from mlplat.sandbox.steps.quality import SKEW_EDIT, skewed_artifact

    members = {
        "model.joblib": b"estimator",
        "code/inference.py": b"model_fn, input_fn, predict_fn, output_fn = handler('x')\n",
        "code/ml/features.py": b"# the feature code\n",
    }
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, body in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    with tarfile.open(fileobj=io.BytesIO(skewed_artifact(out.getvalue())), mode="r:gz") as tar:
        edited = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]
    assert set(edited) == set(members)
    assert edited["code/inference.py"] == members["code/inference.py"] + SKEW_EDIT.encode()
    assert edited["model.joblib"] == members["model.joblib"]
    assert edited["code/ml/features.py"] == members["code/ml/features.py"]
    without = io.BytesIO()
    with tarfile.open(fileobj=without, mode="w:gz") as tar:
        info = tarfile.TarInfo("model.joblib")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(StepFailed, match=r"no code/inference\.py"):
        skewed_artifact(without.getvalue())


def test_a_noisy_slice_shuffles_the_labels_of_its_least_frequent_value_only():
    import pandas as pd

    from mlplat.sandbox.steps.pipeline import noisy_slice

    frame = pd.DataFrame(
        {
            "contract": ["a"] * 6 + ["b"] * 4,
            "label": [0, 0, 0, 1, 1, 1, 0, 0, 1, 1],
        }
    )
    noisy, value = noisy_slice(frame, "label", "contract", seed=3)
    assert value == "b"
    assert noisy["label"][:6].tolist() == frame["label"][:6].tolist()  # the other slice as it was
    assert sorted(noisy["label"][6:]) == sorted(frame["label"][6:])  # its share of positives kept
    assert noisy["label"][6:].tolist() != frame["label"][6:].tolist()  # but not its order
    assert frame["label"].tolist() == [0, 0, 0, 1, 1, 1, 0, 0, 1, 1]  # the input untouched


def test_sessions_share_parsed_service_models_and_data_files_but_not_raw_model_files():
    import botocore.session

    from mlplat.sandbox.warm import share_service_models

    share_service_models()  # as the test session and the containers' fork server do
    first = botocore.session.get_session().get_component("data_loader")
    second = botocore.session.get_session().get_component("data_loader")
    assert first is not second  # two sessions, two loaders
    assert first.load_data("endpoints") is second.load_data("endpoints")
    assert first.load_service_model("s3", "service-2") is second.load_service_model(
        "s3", "service-2"
    )
    # a model file is merged into by `load_service_model`: never handed out shared
    raw = "s3/2006-03-01/service-2"
    assert first.load_data(raw) is not second.load_data(raw)
