"""The README's "stand up a new environment" runbook, line by line, as far as the engines go.

Every command of the block is either run (mlplat commands, `pulumi config set` on a copy of the
stack file, `pulumi up` as the offline plan with the policy pack) or checked against what the
plan says (the service-linked role the stack names, the bucket, key and object key of an upload,
the stack outputs a command reads). Account-only commands (a state backend, a quota lookup) are
checked for shape. A line no handler knows fails the test: the runbook cannot grow a step that
nothing here exercises.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from ml.contracts import baseline_key_for
from ml.outputs import OUTPUT_KEYS
from mlplat.cli.app import app
from tests.conftest import ROOT

MARKER = "<!-- runbook:"
# EC2 quota codes the runbook may name, by GPU capacity type (Service Quotas, service code ec2).
GPU_QUOTAS = {"L-3819A6DF": "SPOT", "L-DB2E81BA": "ON_DEMAND"}
OUTPUT_REF = re.compile(r"\$\(pulumi stack output (\w+) -s ([\w.-]+)\)")


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
        name, stack = match.group(1), match.group(2)
        assert name in OUTPUT_KEYS, f"`pulumi stack output {name}` is not a platform output"
        assert stack in self.outputs, f"`pulumi stack output -s {stack}` before `pulumi up`"
        value = self.outputs[stack][name]
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

    def _aws_s3(self, words: list[str]) -> None:
        assert words[0] == "cp"
        source, target = Path(self.work / words[1]), words[2]
        options = dict(zip(words[3::2], words[4::2], strict=False))
        assert source.is_file(), f"{words[1]} was not written by an earlier step"
        (stack,) = self.outputs
        outputs, settings = self.outputs[stack], self.settings[stack]
        bucket, _, key = target.removeprefix("s3://").partition("/")
        assert bucket == outputs["models_bucket"]
        expected = {
            "model.tar.gz": settings.endpoint.model_key,
            "baseline.json": baseline_key_for(settings.endpoint.model_key),
        }
        assert key == expected[source.name], (key, expected[source.name])
        # the lake's bucket policy refuses puts without SSE-KMS under the lake key
        assert options == {"--sse": "aws:kms", "--sse-kms-key-id": outputs["lake_kms_key_arn"]}

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

    def _pulumi_config(self, words: list[str]) -> None:
        assert words[0] == "set" and words[3] == "-s"
        key, value, stack = words[1], words[2], words[4]
        path = self.project / f"Pulumi.{stack}.yaml"
        document = yaml.safe_load(path.read_text())
        document["config"][key] = yaml.safe_load(value)  # as the CLI stores a plain value
        path.write_text(yaml.safe_dump(document, sort_keys=False))

    def _pulumi_up(self, words: list[str]) -> None:
        assert words[0] == "-s" and words[2:] == ["--policy-pack", "policies"]
        self.preview(words[1])

    # --- mlplat ---------------------------------------------------------------------------------

    def _mlplat_preview(self, words: list[str]) -> None:
        result = CliRunner().invoke(app, ["preview", *words, "--project-dir", str(self.project)])
        assert result.exit_code == 0, result.output

    def _mlplat_train(self, words: list[str]) -> None:
        if "--local" in words:
            out = words[words.index("--output") + 1]
            args = [*words, "--rows", "20000"]  # a smaller sample than the default, same path
            args[args.index(out)] = str(self.work / out)
            result = CliRunner().invoke(app, ["train", *args])
            assert result.exit_code == 0, result.output
            return
        # remote: the Job the jobs gateway would get (no cluster here to follow it on)
        stack = words[words.index("--stack") + 1]
        outputs = self.work / f"{stack}-outputs.json"
        outputs.write_text(json.dumps(self.outputs[stack]))
        assert self.outputs[stack]["training_jobs_function_name"]
        args = [a for a in words if a != "--wait"] + ["--outputs", str(outputs), "--dry-run"]
        result = CliRunner().invoke(app, ["train", *args])
        assert result.exit_code == 0, result.output
        job = yaml.safe_load(result.stdout)
        assert job["kind"] == "Job" and job["metadata"]["namespace"] == "training"


def test_every_runbook_command_runs_offline(tmp_path: Path) -> None:
    runbook = Runbook(tmp_path)
    lines = runbook_lines()
    assert len(lines) >= 10
    for line in lines:
        runbook.run(line)
    assert runbook.ran == lines
    # the first `pulumi up` had no endpoint, the second serves the first model
    assert runbook.outputs["staging"]["endpoint_name"]


def test_an_unknown_runbook_step_is_refused(tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match=r"not exercised offline: kubectl apply -f x\.yaml"):
        Runbook(tmp_path).run("kubectl apply -f x.yaml")
