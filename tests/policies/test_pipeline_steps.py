"""SageMaker pipeline policies: a passing and a failing case each (`POLICY_CASES`), the steps a
Condition holds, and the shipped prod pipeline broken on purpose."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from policies.core import Resource, evaluate_plan
from policies.rules.pipeline import POLICIES, pipeline_steps, step_privacy_problems
from tests.policies.helpers import KEY_ARN, TAGS, Case, res, violations

BY_NAME = {p.name: p for p in POLICIES}
PIPELINE = "aws:sagemaker/pipeline:Pipeline"
SUBNETS = ["subnet-0aaa", "subnet-0bbb"]
GROUPS = ["sg-0abc"]


def processing(count: Any = 1, **changes: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "ProcessingResources": {
            "ClusterConfig": {
                "InstanceCount": count,
                "InstanceType": "ml.m5.xlarge",
                "VolumeSizeInGB": 30,
                "VolumeKmsKeyId": KEY_ARN,
            }
        },
        "ProcessingOutputConfig": {
            "Outputs": [{"OutputName": "work", "S3Output": {"S3Uri": "s3://m/w"}}],
            "KmsKeyId": KEY_ARN,
        },
        "NetworkConfig": {
            "EnableInterContainerTrafficEncryption": True,
            "VpcConfig": {"Subnets": SUBNETS, "SecurityGroupIds": GROUPS},
        },
    }
    request.update(changes)
    return request


def training(count: Any = 1, **changes: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "ResourceConfig": {
            "InstanceType": "ml.m5.xlarge",
            "InstanceCount": count,
            "VolumeKmsKeyId": KEY_ARN,
        },
        "OutputDataConfig": {"S3OutputPath": "s3://m/train", "KmsKeyId": KEY_ARN},
        "VpcConfig": {"Subnets": SUBNETS, "SecurityGroupIds": GROUPS},
        "EnableInterContainerTrafficEncryption": True,
    }
    request.update(changes)
    return request


def step(name: str, type_: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"Name": name, "Type": type_, "Arguments": arguments}


def pipeline(*steps: dict[str, Any]) -> Resource:
    definition = {"Version": "2020-12-01", "Steps": list(steps)}
    return res(PIPELINE, "model", {"pipelineDefinition": json.dumps(definition), "tags": TAGS})


def gated(inner: dict[str, Any]) -> dict[str, Any]:
    """A Condition step whose else branch holds `inner`."""
    return step(
        "Gate",
        "Condition",
        {
            "Conditions": [{"Type": "Equals", "LeftValue": True, "RightValue": True}],
            "IfSteps": [step("Done", "Fail", {"ErrorMessage": "x"})],
            "ElseSteps": [inner],
        },
    )


def without(request: dict[str, Any], *path: str) -> dict[str, Any]:
    copied = copy.deepcopy(request)
    node = copied
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return copied


POLICY_CASES: dict[str, Case] = {
    "sagemaker-pipeline-steps-private": (
        lambda: [
            pipeline(
                step("Curate", "Processing", processing()), step("Train", "Training", training())
            )
        ],
        lambda: [
            pipeline(
                step("Curate", "Processing", processing()),
                step("Train", "Training", without(training(), "VpcConfig")),
            )
        ],
        "Training step 'Train': runs outside the VPC (no VpcConfig)",
    ),
    "sagemaker-pipeline-traffic-encrypted": (
        lambda: [pipeline(step("Train", "Training", training(count=2)))],
        lambda: [
            pipeline(
                step(
                    "Train",
                    "Training",
                    training(count=2, EnableInterContainerTrafficEncryption=False),
                )
            )
        ],
        "Training step 'Train' runs on 2 instances without encrypting the traffic",
    ),
}


@pytest.mark.parametrize("name", sorted(POLICY_CASES))
def test_policy_passes_and_fails(name: str) -> None:
    from tests.policies.helpers import check_case

    check_case(name, POLICY_CASES[name])


@pytest.mark.parametrize(
    ("request_", "kind", "problem"),
    [
        (
            without(processing(), "NetworkConfig", "VpcConfig", "SecurityGroupIds"),
            "Processing",
            "has no security groups (NetworkConfig.VpcConfig.SecurityGroupIds)",
        ),
        (
            without(processing(), "NetworkConfig", "VpcConfig"),
            "Processing",
            "runs outside the VPC (no NetworkConfig.VpcConfig)",
        ),
        (
            without(processing(), "NetworkConfig", "VpcConfig", "Subnets"),
            "Processing",
            "runs outside the VPC (no NetworkConfig.VpcConfig.Subnets)",
        ),
        (
            without(processing(), "ProcessingResources", "ClusterConfig", "VolumeKmsKeyId"),
            "Processing",
            "its volume has no KMS key (ProcessingResources.ClusterConfig.VolumeKmsKeyId)",
        ),
        (
            without(processing(), "ProcessingOutputConfig", "KmsKeyId"),
            "Processing",
            "its outputs have no KMS key (ProcessingOutputConfig.KmsKeyId)",
        ),
        (
            without(training(), "ResourceConfig", "VolumeKmsKeyId"),
            "Training",
            "its volume has no KMS key (ResourceConfig.VolumeKmsKeyId)",
        ),
        (
            without(training(), "OutputDataConfig", "KmsKeyId"),
            "Training",
            "its model artifacts have no KMS key (OutputDataConfig.KmsKeyId)",
        ),
        (
            training(VpcConfig={"Subnets": SUBNETS, "SecurityGroupIds": []}),
            "Training",
            "has no security groups (VpcConfig.SecurityGroupIds)",
        ),
    ],
)
def test_each_missing_part_is_named(request_: dict[str, Any], kind: str, problem: str) -> None:
    assert step_privacy_problems(kind, request_) == [problem]


def test_a_processing_step_without_outputs_needs_no_output_key() -> None:
    request = without(processing(), "ProcessingOutputConfig")
    assert step_privacy_problems("Processing", request) == []


def test_references_count_as_set() -> None:
    request = training(
        VpcConfig={"Subnets": {"Get": "Parameters.Subnets"}, "SecurityGroupIds": GROUPS},
        OutputDataConfig={"S3OutputPath": "s3://m", "KmsKeyId": {"Get": "Parameters.Key"}},
    )
    assert step_privacy_problems("Training", request) == []


def test_steps_inside_a_condition_are_checked() -> None:
    bare = step("Retrain", "Training", without(training(), "ResourceConfig", "VolumeKmsKeyId"))
    resource = pipeline(step("Curate", "Processing", processing()), gated(bare))
    assert [
        s["Name"] for s in pipeline_steps(json.loads(resource.props["pipelineDefinition"]))
    ] == [
        "Curate",
        "Gate",
        "Done",
        "Retrain",
    ]
    (message,) = violations("sagemaker-pipeline-steps-private", [resource])
    assert "Training step 'Retrain': its volume has no KMS key" in message


@pytest.mark.parametrize(
    ("request_", "caught"),
    [
        (processing(count=2), False),
        (
            processing(
                count=2,
                NetworkConfig={"VpcConfig": {"Subnets": SUBNETS, "SecurityGroupIds": GROUPS}},
            ),
            True,
        ),
        (processing(count=1, NetworkConfig={"VpcConfig": {"Subnets": SUBNETS}}), False),
        # a parameter may be more than one instance
        (
            training(
                count={"Get": "Parameters.Instances"}, EnableInterContainerTrafficEncryption=False
            ),
            True,
        ),
        (training(count=1, EnableInterContainerTrafficEncryption=False), False),
    ],
)
def test_traffic_encryption_when_a_step_may_run_on_several_instances(
    request_: dict[str, Any], caught: bool
) -> None:
    kind = "Processing" if "ProcessingResources" in request_ else "Training"
    messages = violations(
        "sagemaker-pipeline-traffic-encrypted", [pipeline(step("S", kind, request_))]
    )
    assert bool(messages) is caught, messages


# --- the shipped prod pipeline -----------------------------------------------------------------


@pytest.fixture(scope="module")
def prod(shipped_plans) -> list[dict[str, Any]]:
    return [r.to_json() for r in shipped_plans["prod"].resources]


def found(resources: list[dict[str, Any]], policy: str) -> list[str]:
    report = evaluate_plan(resources, {"environment": "prod"}, [BY_NAME[policy]])
    assert report.skipped == ()
    return [v.message for v in report.violations]


def test_the_prod_pipelines_pass_and_run_sharded_steps(prod) -> None:
    pipelines = [r for r in prod if r["type"] == PIPELINE]
    assert sorted(r["name"] for r in pipelines) == ["churn-pipeline", "spend-pipeline"]
    for resource in pipelines:
        definition = json.loads(resource["inputs"]["pipelineDefinition"])
        counts = {
            s["Name"]: s["Arguments"]["ProcessingResources"]["ClusterConfig"]["InstanceCount"]
            for s in pipeline_steps(definition)
            if s["Type"] == "Processing"
        }
        assert counts == {"Window": 1, "Curate": 2, "Features": 2, "Evaluate": 1}
    for policy in BY_NAME:
        assert found(prod, policy) == []


def test_the_prod_pipeline_broken_on_purpose_fails(prod) -> None:
    broken = copy.deepcopy(prod)
    (resource,) = [r for r in broken if r["name"] == "spend-pipeline"]
    definition = json.loads(resource["inputs"]["pipelineDefinition"])
    steps = {s["Name"]: s for s in pipeline_steps(definition)}
    del steps["Curate"]["Arguments"]["NetworkConfig"]["VpcConfig"]
    steps["Curate"]["Arguments"]["NetworkConfig"]["EnableInterContainerTrafficEncryption"] = False
    del steps["Train"]["Arguments"]["OutputDataConfig"]["KmsKeyId"]
    resource["inputs"]["pipelineDefinition"] = json.dumps(definition)

    private = found(broken, "sagemaker-pipeline-steps-private")
    assert len(private) == 2
    assert any("Processing step 'Curate': runs outside the VPC" in m for m in private)
    assert any("Training step 'Train': its model artifacts have no KMS key" in m for m in private)
    (traffic,) = found(broken, "sagemaker-pipeline-traffic-encrypted")
    assert "Processing step 'Curate' runs on 2 instances" in traffic
