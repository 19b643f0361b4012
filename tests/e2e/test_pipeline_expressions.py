"""The sandbox's reading of a pipeline definition: parameters, execution variables, step
properties, `Std:Join`, `Std:JsonGet` and conditions, as SageMaker Pipelines evaluates them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mlplat.sandbox.pipeline import PipelineError, PipelineRun, _condition, _Context, _mapped


def _context(tmp_path: Path) -> _Context:
    run = PipelineRun("p", "arn:aws:sagemaker:us-east-1:1:pipeline/p/execution/e1", {"C": "0.5"})
    run.properties["Window"] = {
        "ProcessingOutputConfig": {
            "Outputs": [
                {"OutputName": "other", "S3Output": {"S3Uri": "s3://b/other"}},
                {"OutputName": "work", "S3Output": {"S3Uri": "s3://b/work"}},
            ]
        }
    }
    run.property_files["Evaluate.GateReport"] = {"passed": False, "metadata": {"roc_auc": "0.8"}}
    run.properties["Evaluate"] = {}
    return _Context(run, {"PipelineExecutionId": "e1"}, "arn:aws:iam::1:role/p", tmp_path)


def test_expressions_resolve_as_sagemaker_evaluates_them(tmp_path: Path) -> None:
    context = _context(tmp_path)
    value: dict[str, Any] = {
        "c": {"Get": "Parameters.C"},
        "uri": {"Get": "Steps.Window.ProcessingOutputConfig.Outputs['work'].S3Output.S3Uri"},
        "joined": {
            "Std:Join": {
                "On": "/",
                "Values": ["s3:/", "b", {"Get": "Execution.PipelineExecutionId"}],
            }
        },
        "auc": {
            "Std:JsonGet": {
                "PropertyFile": {"Get": "Steps.Evaluate.PropertyFiles.GateReport"},
                "Path": "metadata.roc_auc",
            }
        },
        "flag": {
            "Std:Join": {
                "On": "",
                "Values": [
                    {
                        "Std:JsonGet": {
                            "PropertyFile": {"Get": "Steps.Evaluate.PropertyFiles.GateReport"},
                            "Path": "passed",
                        }
                    }
                ],
            }
        },
        "plain": ["--x", 1],
    }
    assert context.resolve("Train", value) == {
        "c": "0.5",
        "uri": "s3://b/work",  # a list of named outputs is indexed by OutputName
        "joined": "s3://b/e1",
        "auc": "0.8",
        "flag": "false",  # a boolean joins as JSON spells it
        "plain": ["--x", 1],
    }


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ({"Get": "Parameters.Windw"}, "step Train: no parameter 'Windw'"),
        ({"Get": "Execution.Nope"}, "step Train: no execution variable 'Nope'"),
        ({"Get": "Steps.Train.ModelArtifacts"}, "step Train: refers to step Train, which has"),
        (
            {"Get": "Steps.Window.ProcessingOutputConfig.Outputs['missing'].S3Output"},
            "no 'missing' there",
        ),
    ],
)
def test_a_reference_that_resolves_to_nothing_names_the_step(
    tmp_path: Path, reference: dict[str, Any], message: str
) -> None:
    with pytest.raises(PipelineError, match=message.replace("(", r"\(")):
        _context(tmp_path).resolve("Train", reference)


def test_conditions() -> None:
    assert _condition({"Type": "Equals", "LeftValue": True, "RightValue": True}, "G")
    assert _condition({"Type": "GreaterThan", "LeftValue": 2, "RightValue": 1}, "G")
    assert not _condition(
        {"Type": "Not", "Condition": {"Type": "Equals", "LeftValue": 1, "RightValue": 1}}, "G"
    )
    assert _condition(
        {
            "Type": "Or",
            "Conditions": [
                {"Type": "LessThan", "LeftValue": 2, "RightValue": 1},
                {"Type": "In", "LeftValue": "a", "RightValue": ["a", "b"]},
            ],
        },
        "G",
    )
    with pytest.raises(PipelineError, match="step G: condition type 'Like' is not one SageMaker"):
        _condition({"Type": "Like", "LeftValue": 1, "RightValue": 1}, "G")


def test_container_paths_map_to_the_instance_root(tmp_path: Path) -> None:
    command = ["python3", "-m", "ml.pipeline", "curate", "--work", "/opt/ml/processing/input/w"]
    assert _mapped(command, tmp_path)[-1] == str(tmp_path / "processing/input/w")
    assert _mapped(command, tmp_path)[:5] == command[:5]
