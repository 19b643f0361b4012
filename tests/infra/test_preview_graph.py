"""`--graph`: components as boxes, resources as nodes, references as edges (Mermaid and DOT)."""

from __future__ import annotations

import re
import subprocess
import sys
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest
from typer.testing import CliRunner

from mlplat.cli.app import app
from mlplat.plan.graph import GraphError, edges, format_for, render, short_type, to_dot, to_mermaid
from tests.conftest import ROOT


class Lake(pulumi.ComponentResource):
    def __init__(self, name: str) -> None:
        super().__init__("mlplatform:test:Lake", name, None, None)
        child = pulumi.ResourceOptions(parent=self)
        key = aws.kms.Key(f"{name}-key", enable_key_rotation=True, opts=child)
        bucket = aws.s3.Bucket(f"{name}-raw", opts=child)
        aws.s3.BucketPolicy(f"{name}-raw-policy", bucket=bucket.id, policy="{}", opts=child)
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-raw-sse",
            bucket=bucket.id,
            rules=[
                {
                    "apply_server_side_encryption_by_default": {
                        "sse_algorithm": "aws:kms",
                        "kms_master_key_id": key.arn,
                    }
                }
            ],
            opts=child,
        )
        self.register_outputs({})


def program() -> None:
    lake = Lake("lake")
    aws.sns.Topic("alerts", opts=pulumi.ResourceOptions(depends_on=[lake]))


def plan_json(record: Any) -> dict[str, Any]:
    return record(program).to_json()


def node(text: str, label: str) -> str:
    found = re.findall(rf'(n\d+)\["{re.escape(label)}', text)
    assert len(found) == 1, (label, found)
    return found[0]


def test_mermaid_groups_components_and_draws_references(record) -> None:
    plan = plan_json(record)
    text = to_mermaid(plan)
    assert text.startswith("flowchart LR\n")
    lake = node(text, "lake<br/>mlplatform:test:Lake")
    assert f'subgraph {lake}["lake<br/>mlplatform:test:Lake"]' in text
    bucket = node(text, "lake-raw<br/>s3/Bucket")
    policy = node(text, "lake-raw-policy<br/>s3/BucketPolicy")
    sse = node(text, "lake-raw-sse<br/>s3/BucketServerSideEncryptionConfiguration")
    key = node(text, "lake-key<br/>kms/Key")
    topic = node(text, "alerts<br/>sns/Topic")
    assert f"{policy} --> {bucket}" in text  # `bucket` input carries the bucket's id
    assert f"{sse} --> {bucket}" in text
    assert f"{sse} --> {key}" in text  # the key ARN ends in the key id
    assert f"{topic} --> {lake}" in text  # explicit depends_on
    # the four children sit inside the component's subgraph
    inside = text.split(f'subgraph {lake}["lake<br/>mlplatform:test:Lake"]')[1].split("end")[0]
    assert {bucket, policy, sse, key} <= set(re.findall(r"(n\d+)\[", inside))
    assert topic not in inside


def test_dot_is_valid_shape(record) -> None:
    text = to_dot(plan_json(record))
    assert text.startswith("digraph plan {") and text.rstrip().endswith("}")
    assert text.count("{") == text.count("}")
    assert "subgraph cluster_" in text
    assert 'label="lake\\nmlplatform:test:Lake";' in text
    assert len(re.findall(r"n\d+ -> n\d+;", text)) == 4


def test_edges_are_sorted_and_skip_self_references(record) -> None:
    found = edges(plan_json(record)["resources"])
    assert found == sorted(found) and len(found) == 4
    assert all(a != b for a, b in found)


def test_formats_and_short_types() -> None:
    assert format_for("g.mmd") == "mermaid" and format_for("G.MD") == "markdown"
    assert format_for("g.dot") == "dot"
    with pytest.raises(GraphError, match=r"unsupported extension \.png; use \.mmd, \.md, \.dot"):
        format_for("g.png")
    assert short_type("aws:s3/bucketPolicy:BucketPolicy") == "s3/BucketPolicy"
    assert short_type("mlplatform:lake:DataLake") == "mlplatform:lake:DataLake"
    md = render({"project": "p", "stack": "s", "resources": []}, "markdown")
    assert md == "# p / s\n\n```mermaid\nflowchart LR\n```\n"


runner = CliRunner()


@pytest.mark.parametrize("suffix", [".mmd", ".md", ".dot"])
def test_cli_writes_the_graph_of_the_shipped_dev_stack(tmp_path, suffix: str) -> None:
    out = tmp_path / f"graph{suffix}"
    result = runner.invoke(
        app, ["preview", "-s", "dev", "--graph", str(out), "--project-dir", str(ROOT)]
    )
    assert result.exit_code in (0, 1), result.output  # the shipped stack is still being filled in
    text = out.read_text()
    if suffix == ".dot":
        assert text.startswith("digraph plan {") and text.count("{") == text.count("}")
    else:
        assert "flowchart LR" in text
        assert ("```mermaid" in text) == (suffix == ".md")


def test_cli_bad_graph_extension_exits_2_before_running(tmp_path) -> None:
    result = runner.invoke(
        app,
        ["preview", "-s", "dev", "--graph", str(tmp_path / "g.svg"), "--project-dir", str(ROOT)],
    )
    assert result.exit_code == 2
    assert "unsupported extension .svg" in result.stderr and result.stdout == ""


def test_command_modules_import_lazily() -> None:
    code = (
        "import sys, mlplat.cli.commands.plan, mlplat.cli.commands.policy; "
        "heavy = [m for m in ('pulumi', 'pulumi_aws', 'pulumi_policy', 'policies.rules', "
        "'mlplat.plan.engine', 'mlplat.plan.diff', 'mlplat.plan.graph', 'mlplat.plan.cost', "
        "'rich') "
        "if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
