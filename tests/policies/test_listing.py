"""`mlplat policies [--json]` lists the pack; the taggable list matches the installed SDK."""

from __future__ import annotations

import inspect
import json

import pulumi_aws as aws
import typer
from typer.testing import CliRunner

from mlplat.cli.commands import policy as policy_commands
from policies.rules import POLICIES
from policies.taggable import derive, is_taggable, taggable_types

runner = CliRunner()


def app() -> typer.Typer:
    application = typer.Typer()
    policy_commands.register(application)

    @application.command("noop")  # keep typer from collapsing the group into one command
    def noop() -> None: ...

    return application


def test_json_lists_every_policy_with_its_metadata() -> None:
    result = runner.invoke(app(), ["policies", "--json"])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    assert [p["name"] for p in listed] == [p.name for p in POLICIES]
    for entry in listed:
        assert set(entry) == {"name", "kind", "enforcement", "severity", "description", "reference"}
        assert entry["enforcement"] in ("mandatory", "advisory")
        assert entry["severity"] in ("critical", "high", "medium", "low")
    kms = next(p for p in listed if p["name"] == "kms-key-rotation")
    assert kms == {
        "name": "kms-key-rotation",
        "kind": "resource",
        "enforcement": "mandatory",
        "severity": "high",
        "description": "Symmetric customer-managed KMS keys rotate automatically.",
        "reference": "CKV_AWS_7; CIS AWS Foundations v1.4.0 3.8",
    }


def test_table_lists_every_policy() -> None:
    result = runner.invoke(app(), ["policies"])
    assert result.exit_code == 0
    assert f"policy pack: {len(POLICIES)} policies" in result.stdout
    for p in POLICIES:
        assert p.name in result.stdout


def test_shipped_taggable_list_is_what_the_sdk_says() -> None:
    assert sorted(taggable_types()) == derive()


def test_taggable_derivation_agrees_with_the_sdk_signatures() -> None:
    for cls, token in [
        (aws.s3.Bucket, "aws:s3/bucket:Bucket"),
        (aws.s3.BucketPolicy, "aws:s3/bucketPolicy:BucketPolicy"),
        (aws.s3.BucketVersioning, "aws:s3/bucketVersioning:BucketVersioning"),
        (aws.sagemaker.Endpoint, "aws:sagemaker/endpoint:Endpoint"),
        (aws.kms.Alias, "aws:kms/alias:Alias"),
        (aws.appautoscaling.Target, "aws:appautoscaling/target:Target"),
    ]:
        takes_tags = "tags" in inspect.signature(cls._internal_init).parameters
        assert is_taggable(token) == takes_tags, token
    assert is_taggable("aws:s3/bucket:Bucket") and not is_taggable("aws:kms/alias:Alias")
