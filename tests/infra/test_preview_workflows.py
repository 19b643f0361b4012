"""The CI workflows: PR preview with a sticky summary, gated dev -> staging -> prod deploys."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Any

import yaml

from policies.rules import POLICIES
from tests.conftest import ROOT

WORKFLOWS = ROOT / ".github" / "workflows"


def load(name: str) -> dict[Any, Any]:
    doc = yaml.safe_load((WORKFLOWS / name).read_text())
    assert isinstance(doc, dict)
    return doc


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return list(job["steps"])


def uses(job: dict[str, Any]) -> list[str]:
    return [s["uses"].split("@")[0] for s in steps(job) if "uses" in s]


def test_preview_runs_every_stack_diffs_against_base_and_comments() -> None:
    wf = load("preview.yml")
    assert set(wf[True]) == {"pull_request"}  # YAML reads the `on:` key as True
    offline = wf["jobs"]["offline"]
    assert offline["env"]["STACKS"].split() == ["dev", "staging", "prod", "local"]
    assert {
        "actions/checkout",
        "astral-sh/setup-uv",
        "marocchino/sticky-pull-request-comment",
        "actions/upload-artifact",
    } <= set(uses(offline))
    checkouts = [s for s in steps(offline) if s.get("uses", "").startswith("actions/checkout")]
    assert [c["with"]["path"] for c in checkouts] == ["pr", "base"]
    assert checkouts[1]["with"]["ref"] == "${{ github.event.pull_request.base.sha }}"
    script = next(s["run"] for s in steps(offline) if s.get("id") == "preview")
    for flag in ("--json", "--diff", "--graph", "--markdown"):
        assert flag in script
    comment = next(
        s
        for s in steps(offline)
        if s.get("uses", "").startswith("marocchino/sticky-pull-request-comment")
    )
    assert comment["with"] == {"header": "mlplat-preview", "path": "out/comment.md"}
    assert wf["permissions"]["pull-requests"] == "write"


def test_real_engine_preview_only_with_credentials() -> None:
    job = load("preview.yml")["jobs"]["pulumi"]
    assert "secrets.PULUMI_ACCESS_TOKEN" in job["env"]["HAS_CLOUD"]
    pulumi = next(s for s in steps(job) if s.get("uses", "").startswith("pulumi/actions"))
    assert pulumi["if"] == "env.HAS_CLOUD == 'true'"
    assert pulumi["with"]["command"] == "preview"
    assert pulumi["with"]["policyPacks"] == "policies"
    assert all("if" in s for s in steps(job))


def test_deploy_promotes_through_environments() -> None:
    jobs = load("deploy.yml")["jobs"]
    assert list(jobs) == ["dev", "staging", "prod"]
    assert [jobs[j]["environment"] for j in jobs] == ["dev", "staging", "prod"]
    assert "needs" not in jobs["dev"]
    assert jobs["staging"]["needs"] == "dev" and jobs["prod"]["needs"] == "staging"
    for name, job in jobs.items():
        up = next(s for s in steps(job) if s.get("uses", "").startswith("pulumi/actions"))
        assert up["with"]["command"] == "up" and up["with"]["stack-name"] == name
        assert up["with"]["policyPacks"] == "policies"
        gate = next(s["run"] for s in steps(job) if s.get("name") == "Offline plan and policies")
        assert "mlplat preview" in gate


def test_policy_config_snippet_writes_a_config_for_every_policy() -> None:
    job = load("deploy.yml")["jobs"]["prod"]
    script = next(s["run"] for s in steps(job) if s.get("name") == "Policy pack configuration")
    code = re.search(r'python -c "(.*)"', script, re.DOTALL)
    assert code is not None
    out = subprocess.run(
        [sys.executable, "-c", code.group(1).replace("$STACK", "prod")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    config = json.loads(out.stdout)
    assert config == {p.name: {"environment": "prod"} for p in POLICIES}


def test_every_deploy_checks_the_gateway_reaches_the_cluster_api() -> None:
    for name, job in load("deploy.yml")["jobs"].items():
        found = steps(job)
        up = next(i for i, s in enumerate(found) if s.get("uses", "").startswith("pulumi/actions"))
        check = [s.get("name") for s in found].index("The cluster gateway reaches the cluster API")
        assert check > up, name
    script = next(
        s["run"]
        for s in steps(load("deploy.yml")["jobs"]["prod"])
        if s.get("name") == "The cluster gateway reaches the cluster API"
    )
    assert '"action": "list"' in script and "FunctionError" in script
    snippet = re.search(r"python3 -c '(.*?)'", script, re.DOTALL)
    assert snippet is not None
    for outputs, expected in (
        ({"training_jobs_function_name": "gpu-gateway-jobs-fn-1"}, "gpu-gateway-jobs-fn-1"),
        ({"training_jobs_function_name": None}, ""),
    ):
        done = subprocess.run(
            [sys.executable, "-c", snippet.group(1)],
            input=json.dumps(outputs),
            capture_output=True,
            text=True,
            check=True,
        )
        assert done.stdout.strip() == expected
