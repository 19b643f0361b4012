"""`--diff`: two recorded plans compared; stateful replacements and deletions are loud."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest
from typer.testing import CliRunner

from mlplat.cli.app import app
from mlplat.plan.diff import (
    DiffError,
    diff_plans,
    flatten,
    load_plan_json,
    render_markdown,
    render_text,
)
from mlplat.plan.preview import analyse
from tests.conftest import ROOT

TAGS = {"owner": "ml-team", "environment": "dev", "cost-center": "ml-1234"}


class Lake(pulumi.ComponentResource):
    def __init__(self, name: str, version: int) -> None:
        super().__init__("mlplatform:test:Lake", name, None, None)
        child = pulumi.ResourceOptions(parent=self)
        raw_name = f"{name}-raw" if version == 1 else f"{name}-landing"  # a rename
        raw = aws.s3.Bucket(raw_name, tags=TAGS, opts=child)
        aws.s3.BucketVersioning(
            f"{name}-raw-versioning",
            bucket=raw.id,
            versioning_configuration={"status": "Enabled"},
            opts=child,
        )
        aws.s3.Bucket(f"{name}-models", bucket=f"models-v{version}", tags=TAGS, opts=child)
        aws.kms.Key(
            f"{name}-key",
            enable_key_rotation=True,
            tags=TAGS,
            description="lake key" if version == 1 else "lake data key",
            opts=child,
        )
        if version == 1:
            aws.glue.CatalogDatabase(f"{name}-db", name="lake_db", opts=child)
            aws.cloudwatch.LogGroup(f"{name}-logs", retention_in_days=30, tags=TAGS, opts=child)
        else:
            aws.sns.Topic(f"{name}-events", tags=TAGS, opts=child)
        self.register_outputs({})


def plans(record: Any, settings_for: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    settings = settings_for("dev")
    out = []
    for version in (1, 2):
        plan = record(lambda v=version: Lake("lake", v) and None, settings=settings)
        out.append(analyse(plan, settings).to_json())
    return out[0], out[1]


def test_added_removed_changed_and_loud_stateful_warnings(record, settings_for) -> None:
    before, after = plans(record, settings_for)
    diff = diff_plans(before, after)
    assert sorted(r["name"] for r in diff.added) == ["lake-events", "lake-landing"]
    assert sorted(r["name"] for r in diff.removed) == ["lake-db", "lake-logs", "lake-raw"]
    changed = {c.name: c for c in diff.changed}
    assert set(changed) == {"lake-key", "lake-models", "lake-raw-versioning"}
    key_changes = [(p.path, p.old, p.new) for p in changed["lake-key"].changes]
    assert key_changes == [("description", "lake key", "lake data key")]
    assert [p.path for p in changed["lake-models"].changes] == ["bucket"]
    # the versioning resource now points at another bucket id
    assert [p.path for p in changed["lake-raw-versioning"].changes] == ["bucket"]
    warnings = sorted(diff.warnings)
    assert len(warnings) == 3
    assert warnings[0].startswith("DELETE aws:glue/catalogDatabase:CatalogDatabase 'lake-db'")
    assert warnings[1].startswith("REPLACE aws:s3/bucket:Bucket 'lake-models': bucket changed")
    assert warnings[2].startswith(
        "REPLACE aws:s3/bucket:Bucket 'lake-raw': its logical name changed to 'lake-landing'"
    )
    assert "aliases" in warnings[2]
    assert not any("lake-logs" in w for w in warnings)  # a log group is not stateful here
    # the cost delta: one bucket share moved, a log group (unpriced) went, nothing else
    assert diff.cost_before is not None and diff.cost_after is not None
    assert diff.cost_delta == round(diff.cost_after - diff.cost_before, 2)
    as_json = diff.to_json()
    assert set(as_json) == {"added", "removed", "moved", "changed", "warnings", "costDeltaUsd"}


def test_parent_change_is_a_replacement(record, settings_for) -> None:
    settings = settings_for("dev")

    class Box(pulumi.ComponentResource):
        def __init__(self, name: str) -> None:
            super().__init__("mlplatform:test:Box", name, None, None)
            aws.kms.Key("key", enable_key_rotation=True, opts=pulumi.ResourceOptions(parent=self))
            self.register_outputs({})

    before = record(
        lambda: aws.kms.Key("key", enable_key_rotation=True) and None, settings=settings
    ).to_json()
    after = record(lambda: Box("box") and None, settings=settings).to_json()
    warnings = diff_plans(before, after).warnings
    assert len(warnings) == 1
    assert warnings[0].startswith("REPLACE aws:kms/key:Key 'key': its parent changed")


def test_identical_plans_have_no_diff(record, settings_for) -> None:
    before, _ = plans(record, settings_for)
    diff = diff_plans(before, before)
    assert (diff.added, diff.removed, diff.changed, diff.warnings) == ((), (), (), ())
    assert diff.cost_delta == 0.0


def test_flatten_paths() -> None:
    assert dict(flatten({"rules": [{"status": "Enabled", "x": {"unknown": True}}], "a": {}})) == {
        "a": {},
        "rules[0].status": "Enabled",
        "rules[0].x": {"unknown": True},
    }


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        ("{not json", "not readable JSON"),
        ('{"stack": "dev"}', "not a preview JSON"),
        ('{"resources": [{"urn": "u"}]}', "resources[0] lacks urn, type or name"),
    ],
)
def test_bad_baseline_is_a_clear_error(tmp_path, content: str | None, message: str) -> None:
    path = tmp_path / "base.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(DiffError, match="baseline") as info:
        load_plan_json(path)
    assert message in str(info.value)


def test_markdown_summary_names_warnings_and_cost(record, settings_for) -> None:
    before, after = plans(record, settings_for)
    text = render_markdown("dev", after, diff_plans(before, after))
    assert text.startswith("### ❌ `dev`: 6 resources, ")  # the test lake is not compliant
    assert "**Estimated cost:** $" in text and "vs base" in text
    assert "> [!WARNING]" in text and "REPLACE aws:s3/bucket:Bucket 'lake-raw'" in text
    assert "```diff" in text and "+ aws:s3/bucket:Bucket lake-landing" in text


runner = CliRunner()


def test_cli_diff_against_the_shipped_dev_plan(tmp_path) -> None:
    base = tmp_path / "base.json"
    first = runner.invoke(
        app, ["preview", "-s", "dev", "--json", str(base), "--project-dir", str(ROOT)]
    )
    assert first.exit_code in (0, 1), first.output  # the shipped stack is still being filled in
    summary = tmp_path / "summary.md"
    second = runner.invoke(
        app,
        [
            "preview",
            "-s",
            "dev",
            "--diff",
            str(base),
            "--markdown",
            str(summary),
            "--project-dir",
            str(ROOT),
        ],
    )
    assert second.exit_code == first.exit_code
    assert "diff: 0 added, 0 removed, 0 moved, 0 changed" in second.stdout
    assert "cost: " in second.stdout and "(+0.00)" in second.stdout
    assert "diff vs base: 0 added, 0 removed, 0 moved, 0 changed" in summary.read_text()
    plan = json.loads(base.read_text())
    assert set(plan) == {"project", "stack", "resources", "outputs", "policies", "cost"}
    assert set(plan["policies"]) == {"violations"}
    assert set(plan["cost"]) == {"monthlyUsd", "items"}


def test_cli_missing_baseline_exits_2_and_writes_nothing(tmp_path) -> None:
    out = tmp_path / "plan.json"
    result = runner.invoke(
        app,
        [
            "preview",
            "-s",
            "dev",
            "--diff",
            str(tmp_path / "none.json"),
            "--json",
            str(out),
            "--project-dir",
            str(ROOT),
        ],
    )
    assert result.exit_code == 2
    assert "baseline" in result.stderr and "no such file" in result.stderr
    assert result.stdout == "" and not out.exists()


# --- aliases: a moved resource is not a replaced one --------------------------------------------


class Box(pulumi.ComponentResource):
    """A component whose children are named after it (`<name>-key`, `<name>-bucket`)."""

    def __init__(self, name: str, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplatform:test:Box", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        aws.kms.Key(f"{name}-key", enable_key_rotation=True, tags=TAGS, opts=child)
        aws.s3.Bucket(f"{name}-bucket", bucket="box-bucket", tags=TAGS, opts=child)
        self.register_outputs({})


def recorded(record: Any, settings_for: Any, program: Any) -> dict[str, Any]:
    out: dict[str, Any] = record(lambda: program() and None, settings=settings_for("dev")).to_json()
    return out


def test_the_recorder_resolves_aliases_and_their_inheritance(record, settings_for) -> None:
    class Group(pulumi.ComponentResource):
        def __init__(self, name: str) -> None:
            super().__init__("mlplatform:test:Group", name, None, None)
            self.register_outputs({})

    def program() -> None:
        group = Group("g")
        Box(
            "new",
            pulumi.ResourceOptions(
                parent=group, aliases=[pulumi.Alias(name="old", parent=pulumi.ROOT_STACK_RESOURCE)]
            ),
        )

    plan = {r["name"]: r for r in recorded(record, settings_for, program)["resources"]}
    stack = "urn:pulumi:dev::ml-platform::pulumi:pulumi:Stack"
    # its own alias: the former name at the stack's root
    assert plan["new"]["options"]["aliases"] == [f"{stack}$mlplatform:test:Box::old"]
    # its children's: named after the former name, under the former parent
    assert plan["new-key"]["options"]["aliases"] == [
        "urn:pulumi:dev::ml-platform::mlplatform:test:Box$aws:kms/key:Key::old-key"
    ]
    assert plan["g"]["options"]["aliases"] == []


def test_an_aliased_rename_or_move_is_a_move_not_a_replacement(record, settings_for) -> None:
    before = recorded(record, settings_for, lambda: Box("box"))
    renamed = recorded(
        record,
        settings_for,
        lambda: Box("crate", pulumi.ResourceOptions(aliases=[pulumi.Alias(name="box")])),
    )
    diff = diff_plans(before, renamed)
    assert diff.warnings == () and diff.added == () and diff.removed == ()
    assert sorted((m.old_name, m.name) for m in diff.moved) == [
        ("box", "crate"),
        ("box-bucket", "crate-bucket"),
        ("box-key", "crate-key"),
    ]
    assert "diff: 0 added, 0 removed, 3 moved" in render_text(diff)[0]
    assert "  > aws:kms/key:Key box-key -> crate-key" in render_text(diff)
    assert diff.to_json()["moved"][0] == {"from": diff.moved[0].old_urn, "to": diff.moved[0].urn}
    # the same rename without the alias: the bucket and the key are replaced
    unaliased = recorded(record, settings_for, lambda: Box("crate"))
    warnings = diff_plans(before, unaliased).warnings
    assert len(warnings) == 2 and all(w.startswith("REPLACE") for w in warnings)


def test_a_moved_resource_whose_name_changes_is_still_replaced(record, settings_for) -> None:
    before = recorded(record, settings_for, lambda: aws.s3.Bucket("b", bucket="one", tags=TAGS))
    after = recorded(
        record,
        settings_for,
        lambda: aws.s3.Bucket(
            "c",
            bucket="two",
            tags=TAGS,
            opts=pulumi.ResourceOptions(aliases=[pulumi.Alias(name="b")]),
        ),
    )
    diff = diff_plans(before, after)
    assert [m.name for m in diff.moved] == ["c"]
    (warning,) = diff.warnings
    assert warning.startswith("REPLACE aws:s3/bucket:Bucket 'c': bucket changed")


def test_aliases_pulumi_refuses_are_loud(record, settings_for) -> None:
    before = recorded(record, settings_for, lambda: Box("box"))

    def twice() -> None:
        for name in ("one", "two"):
            Box(name, pulumi.ResourceOptions(aliases=[pulumi.Alias(name="box")]))

    warnings = diff_plans(before, recorded(record, settings_for, twice)).warnings
    assert any(
        "both name" in w and "Pulumi refuses two resources aliased to one" in w for w in warnings
    )

    def to_a_live_one() -> None:
        Box("box")
        Box("new", pulumi.ResourceOptions(aliases=[pulumi.Alias(name="box")]))

    warnings = diff_plans(before, recorded(record, settings_for, to_a_live_one)).warnings
    assert any("which the plan still has" in w for w in warnings)
