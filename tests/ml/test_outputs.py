"""Finding the platform: a saved outputs file, else the Pulumi CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ml.outputs import OUTPUT_KEYS, OutputsError, PlatformOutputs
from tests.conftest import make_outputs


def test_load_prefers_the_outputs_file(tmp_path: Path) -> None:
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(make_outputs(stack="qa").to_json()))
    assert PlatformOutputs.load("ignored", path).stack == "qa"


def test_load_needs_a_stack_or_a_file() -> None:
    with pytest.raises(OutputsError, match="--stack NAME or --outputs FILE"):
        PlatformOutputs.load(None, None)


def test_an_incomplete_file_names_the_missing_keys(tmp_path: Path) -> None:
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps({"stack": "qa"}))
    with pytest.raises(OutputsError, match="platform outputs lack") as info:
        PlatformOutputs.load(None, path)
    assert all(k in str(info.value) for k in OUTPUT_KEYS if k != "stack")


def test_without_the_pulumi_cli_the_error_says_what_to_pass(monkeypatch) -> None:
    monkeypatch.setenv("PATH", "")
    with pytest.raises(OutputsError, match="the Pulumi CLI is not installed; pass --outputs FILE"):
        PlatformOutputs.load("dev", None)
