"""The README's "stand up a new environment" runbook, line by line, as far as the engines go.

Every command of the block is either run (mlplat commands, `pulumi config set` on a copy of the
stack file, `pulumi up` as the offline plan with the policy pack) or checked against what the
plan says (the service-linked role the stack names, the stack outputs a command reads).
Account-only commands (a state backend, a quota lookup) are checked for shape. The commands that
act on the platform run against moto with the plan's outputs (`--outputs`): the batch ingest into
the raw bucket; the pipeline run against a stubbed SageMaker client (moto has no pipeline steps),
registering version 1 as the pipeline's Register step would; approve; deploy with the real
`pulumi_apply`, whose `pulumi config set` and `pulumi up` run here as the lines above do. A line
no handler knows fails the test: the runbook cannot grow a step that nothing here exercises.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
import pytest
import yaml
from botocore.stub import ANY, Stubber
from moto import mock_aws
from typer.testing import CliRunner

from ml import contracts
from ml.contracts import BASELINE_FORMAT, baseline_key_for
from ml.outputs import OUTPUT_KEYS, ModelOutputs
from mlplat.cli.app import app
from tests.conftest import ROOT

MARKER = "<!-- runbook:"
# EC2 quota codes the runbook may name, by GPU capacity type (Service Quotas, service code ec2).
GPU_QUOTAS = {"L-3819A6DF": "SPOT", "L-DB2E81BA": "ON_DEMAND"}
# `$(pulumi stack output NAME -s S)`, or one model's output:
# `$(pulumi stack output models --json -s S | jq -r .MODEL.NAME)`
OUTPUT_REF = re.compile(
    r"\$\(pulumi stack output (\w+)(?: --json)? -s ([\w.-]+)(?: \| jq -r \.(\w+)\.(\w+))?\)"
)


def runbook_lines() -> list[str]:
    text = (ROOT / "README.md").read_text()
    start = text.index(MARKER)
    block = text[text.index("```bash\n", start) + len("```bash\n") :]
    block = block[: block.index("```")]
    return [line for line in block.splitlines() if line.strip()]


class Runbook:
    """The state the commands share: a copy of the project, the last plan's outputs."""

    def __init__(self, tmp: Path) -> None:
        self.project = tmp / "project"
        self.project.mkdir()
        for name in ("Pulumi.yaml", *(p.name for p in ROOT.glob("Pulumi.*.yaml"))):
            shutil.copy(ROOT / name, self.project / name)
        self.work = tmp / "work"
        self.work.mkdir()
        self.outputs: dict[str, dict[str, Any]] = {}
        self.settings: dict[str, Any] = {}
        self.ran: list[str] = []

    def preview(self, stack: str) -> Any:
        from mlplat.plan.preview import run_preview

        result = run_preview(stack, self.project)
        assert not result.policies.mandatory_failed, [
            (v.policy, v.message) for v in result.policies.violations
        ]
        self.outputs[stack] = result.plan.outputs
        self.settings[stack] = result.settings
        return result

    def output(self, match: re.Match[str]) -> str:
        name, stack, model, key = match.groups()
        assert name in OUTPUT_KEYS, f"`pulumi stack output {name}` is not a platform output"
        assert stack in self.outputs, f"`pulumi stack output -s {stack}` before `pulumi up`"
        value = self.outputs[stack][name]
        if model is not None:
            assert name == "models" and key in ModelOutputs.__dataclass_fields__, (name, key)
            assert model in value, f"stack {stack} hosts no model {model}"
            value = value[model][key]
        assert isinstance(value, str) and value, (name, value)
        return value

    def run(self, line: str) -> None:
        words = shlex.split(OUTPUT_REF.sub(self.output, line), comments=True)
        handler = getattr(self, "_" + "_".join(words[:2]).replace("-", "_"), None)
        if words[:3] == ["uv", "run", "mlplat"]:
            handler = getattr(self, "_mlplat_" + words[3].replace("-", "_"), None)
            words = words[4:]
        else:
            words = words[2:]
        assert handler is not None, f"runbook line not exercised offline: {line}"
        handler(words)
        self.ran.append(line)

    # --- the AWS CLI ----------------------------------------------------------------------------

    def _aws_iam(self, words: list[str]) -> None:
        assert words[:2] == ["create-service-linked-role", "--aws-service-name"]
        service = words[2]
        stack = next(iter(self.settings), "staging")
        plan = json.dumps([r.to_json() for r in self.preview(stack).plan.resources])
        # the stack names that role (the GPU cluster's key grant): it must exist first
        assert f"role/aws-service-role/{service}/" in plan

    def _aws_service_quotas(self, words: list[str]) -> None:
        args = dict(zip(words[1::2], words[2::2], strict=False))
        assert words[0] == "get-service-quota" and args["--service-code"] == "ec2"
        capacity = GPU_QUOTAS[args["--quota-code"]]
        from mlplat.plan.preview import load_stack

        settings, _ = load_stack("staging", self.project)
        assert any(g.capacity_type == capacity for g in settings.cluster.gpu_node_groups)

    # --- the Pulumi CLI ------------------------------------------------------------------------

    def _pulumi_login(self, words: list[str]) -> None:
        # a state backend: needs an account (or Pulumi Cloud); only its form is checked here
        assert not words or re.fullmatch(r"(s3|gs|azblob|file)://\S+", words[0]), words

    def _pulumi_stack(self, words: list[str]) -> None:
        assert words[0] == "init"
        stack = words[1]
        assert (ROOT / f"Pulumi.{stack}.yaml").is_file(), f"no Pulumi.{stack}.yaml in the repo"
        provider = dict(zip(words[2::2], words[3::2], strict=False))["--secrets-provider"]
        assert re.fullmatch(r"awskms://(alias/[\w/-]+|[\w-]+)\?region=[a-z0-9-]+", provider)

    def _pulumi_config(self, words: list[str]) -> subprocess.CompletedProcess[str]:
        """`config set KEY VALUE -s S`, `config set --path 'KEY[i].field' VALUE -s S` and
        `config get KEY --json -s S`, on the stack file as the CLI reads and writes it."""
        done = subprocess.CompletedProcess(words, 0, "", "")
        if words[0] == "get":
            assert words[2:4] == ["--json", "-s"], words
            key, stack = words[1], words[4]
            config = yaml.safe_load((self.project / f"Pulumi.{stack}.yaml").read_text())["config"]
            if key not in config:
                return subprocess.CompletedProcess(
                    words,
                    255,
                    "",
                    f"error: configuration key '{key}' not found for stack '{stack}'",
                )
            value = config[key]
            shown = {"value": json.dumps(value), "secret": False}
            if isinstance(value, dict | list):
                shown["objectValue"] = value
            done.stdout = json.dumps(shown)
            return done
        assert words[0] == "set", words
        with_path = words[1] == "--path"
        key, value, dash, stack = words[1 + with_path : 5 + with_path]
        assert dash == "-s", words
        path = self.project / f"Pulumi.{stack}.yaml"
        document = yaml.safe_load(path.read_text())
        if with_path:  # `ml-platform:models[1].modelPackageArn`
            found = re.fullmatch(r"([\w-]+:[\w-]+)\[(\d+)\]\.(\w+)", key)
            assert found, key
            entry = document["config"][found.group(1)][int(found.group(2))]
            entry[found.group(3)] = yaml.safe_load(value)
        else:
            document["config"][key] = yaml.safe_load(value)  # as the CLI stores a plain value
        path.write_text(yaml.safe_dump(document, sort_keys=False))
        return done

    def _pulumi_up(self, words: list[str]) -> None:
        assert words[0] == "-s" and words[2:] == ["--policy-pack", "policies"]
        self.preview(words[1])

    # --- mlplat ---------------------------------------------------------------------------------

    def _mlplat_preview(self, words: list[str]) -> None:
        result = CliRunner().invoke(app, ["preview", *words, "--project-dir", str(self.project)])
        assert result.exit_code == 0, result.output

    def outputs_file(self, stack: str) -> Path:
        """The last plan's outputs as `--outputs FILE` (what `pulumi stack output --json` says)."""
        path = self.work / f"{stack}-outputs.json"
        path.write_text(json.dumps(self.outputs[stack]))
        return path

    @staticmethod
    def stack_of(words: list[str]) -> tuple[str, list[str]]:
        """The `--stack S` of a command, and its other words."""
        at = words.index("--stack")
        return words[at + 1], words[:at] + words[at + 2 :]

    def invoke(self, *args: str) -> Any:
        result = CliRunner().invoke(app, list(args))
        assert result.exit_code == 0, result.output
        return result

    def _mlplat_train(self, words: list[str]) -> None:
        # remote: the Job the jobs gateway would get (no cluster here to follow it on)
        stack = words[words.index("--stack") + 1]
        assert self.outputs[stack]["training_jobs_function_name"]
        args = [a for a in words if a != "--wait"]
        result = self.invoke(
            "train", *args, "--outputs", str(self.outputs_file(stack)), "--dry-run"
        )
        job = yaml.safe_load(result.stdout)
        assert job["kind"] == "Job" and job["metadata"]["namespace"] == "training"

    def _mlplat_data(self, words: list[str]) -> None:
        # a batch export into the raw zone: synthetic customers, the plan's raw bucket in moto
        assert words[0] == "ingest"
        stack, args = self.stack_of(words[1:])
        export = self.work / args[0]
        from ml.sample_data import generate_customers

        generate_customers(2_000, seed=3).to_parquet(export)
        boto3.client("s3").create_bucket(Bucket=self.outputs[stack]["raw_bucket"])
        outputs = str(self.outputs_file(stack))
        # the Glue catalog is the stack's (not realized here): the files only
        self.invoke("data", "ingest", str(export), *args[1:], "--outputs", outputs, "--no-catalog")
        listed = boto3.client("s3").list_objects_v2(Bucket=self.outputs[stack]["raw_bucket"])
        assert any(o["Key"].endswith(".parquet") for o in listed.get("Contents", []))

    def _mlplat_pipeline(self, words: list[str]) -> None:
        assert words[0] == "run" and "--wait" in words
        stack, args = self.stack_of(words)
        outputs = self.outputs[stack]
        model = args[args.index("--model") + 1] if "--model" in args else "churn"
        name = outputs["models"][model]["pipeline_name"]
        assert name, "the stack deploys no pipeline"
        self.register_first_version(outputs, model)
        client = boto3.client("sagemaker")
        stub = Stubber(client)
        arn = f"arn:aws:sagemaker:{outputs['region']}:{outputs['account_id']}:pipeline/{name}"
        execution = f"{arn}/execution/first"
        stub.add_response(
            "start_pipeline_execution",
            {"PipelineExecutionArn": execution},
            {
                "PipelineName": name,
                "ClientRequestToken": ANY,
                "PipelineParameters": [],
                "PipelineExecutionDisplayName": ANY,
            },
        )
        stub.add_response(
            "describe_pipeline_execution",
            {"PipelineExecutionArn": execution, "PipelineExecutionStatus": "Succeeded"},
            {"PipelineExecutionArn": execution},
        )
        steps = [
            {"StepName": step, "StepStatus": "Succeeded"}
            for step in (
                contracts.STEP_WINDOW,
                contracts.STEP_CURATE,
                contracts.STEP_FEATURES,
                contracts.STEP_TRAIN,
                contracts.STEP_EVALUATE,
                contracts.STEP_GATE,
                contracts.STEP_REGISTER,
            )
        ]
        stub.add_response(
            "list_pipeline_execution_steps",
            {"PipelineExecutionSteps": steps},
            {"PipelineExecutionArn": execution, "SortOrder": "Ascending"},
        )
        with stub, mock.patch.object(boto3, "client", return_value=client):
            result = self.invoke("pipeline", *args, "--outputs", str(self.outputs_file(stack)))
        stub.assert_no_pending_responses()
        assert f"{contracts.STEP_REGISTER:<14} Succeeded" in result.stdout

    def register_first_version(self, outputs: dict[str, Any], model: str) -> None:
        """What the pipeline's Register step leaves: version 1 of the model's group, pending
        approval, its evaluation's reports in the models bucket and attached."""
        from ml import registry

        s3 = boto3.client("s3")
        bucket = outputs["models_bucket"]
        s3.create_bucket(Bucket=bucket)
        group = outputs["models"][model]["model_package_group_name"]
        prefix = (
            f"{outputs['models'][model]['model_artifacts_prefix']}/{contracts.PIPELINE_ROOT}/first"
        )
        reports = {
            contracts.GATE_FILE: {"passed": True, "message": "gate passed", "failed": []},
            contracts.BASELINE_FILE: {"format": BASELINE_FORMAT, "n_rows": 1, "features": {}},
            contracts.METRICS_FILE: {"overall": {"roc_auc": 0.8}},
        }
        for name, body in reports.items():
            s3.put_object(Bucket=bucket, Key=f"{prefix}/evaluation/{name}", Body=json.dumps(body))
        # the Train step's artifact: deploy publishes it where the monitor job reads it
        s3.put_object(Bucket=bucket, Key=f"{prefix}/train/model.tar.gz", Body=b"model.tar.gz")
        evaluation = f"s3://{bucket}/{prefix}/evaluation"
        registry.ensure_group(group)
        registry.register_model(
            group,
            model_data_url=f"s3://{bucket}/{prefix}/train/model.tar.gz",
            image_uri=registry.sklearn_image_uri(outputs["region"]),
            metrics={"roc_auc": 0.8},
            baseline_s3_uri=f"{evaluation}/{contracts.BASELINE_FILE}",
            gate_s3_uri=f"{evaluation}/{contracts.GATE_FILE}",
            metrics_s3_uri=f"{evaluation}/{contracts.METRICS_FILE}",
        )

    def _mlplat_approve(self, words: list[str]) -> None:
        stack, _ = self.stack_of(words)
        result = self.invoke("approve", *words, "--outputs", str(self.outputs_file(stack)))
        approved = json.loads(result.stdout)
        assert (approved["version"], approved["status"]) == (1, "Approved")

    def _mlplat_deploy(self, words: list[str]) -> None:
        stack, _ = self.stack_of(words)
        arn = words[words.index("--model-package") + 1]
        outputs = self.outputs_file(stack)

        def pulumi(command: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
            # `pulumi_apply`'s commands, run as the runbook's own `pulumi ...` lines are
            assert command[0] == "pulumi"
            if command[1] == "up":
                assert command[2:] == ["-s", stack, "--yes"]
                self.preview(stack)
                return subprocess.CompletedProcess(command, 0, "", "")
            return self._pulumi_config(command[2:])

        with mock.patch("ml.deploy.subprocess.run", pulumi):
            result = self.invoke(
                "deploy", *words, "--outputs", str(outputs), "--project-dir", str(self.project)
            )
        deployed = json.loads(result.stdout)
        assert deployed["model_package_arn"] == arn
        key = baseline_key_for(self.settings[stack].model("churn").endpoint.model_key)
        assert deployed["baseline_uri"] == f"s3://{self.outputs[stack]['models_bucket']}/{key}"
        # the deployed model's own entry holds the package; the other model's has none
        document = yaml.safe_load((self.project / f"Pulumi.{stack}.yaml").read_text())
        entries = {e["name"]: e for e in document["config"]["ml-platform:models"]}
        assert entries["churn"]["modelPackageArn"] == arn
        assert "modelPackageArn" not in entries["spend"]
        assert "ml-platform:modelPackageArn" not in document["config"]
        assert self.settings[stack].model("churn").endpoint.model_package_arn == arn  # after up


def test_every_runbook_command_runs_offline(tmp_path: Path) -> None:
    runbook = Runbook(tmp_path)
    lines = runbook_lines()
    assert len(lines) >= 10
    endpoints: list[str | None] = []
    with mock_aws():
        for line in lines:
            runbook.run(line)
            if line.startswith(("pulumi up", "uv run mlplat deploy")):
                endpoints.append(runbook.outputs["staging"]["models"]["churn"]["endpoint_name"])
    assert runbook.ran == lines
    # `pulumi up` without an endpoint; `mlplat deploy`'s `pulumi up` serves the first model
    assert endpoints[0] is None and endpoints[-1]


def test_an_unknown_runbook_step_is_refused(tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match=r"not exercised offline: kubectl apply -f x\.yaml"):
        Runbook(tmp_path).run("kubectl apply -f x.yaml")
