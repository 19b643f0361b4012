"""The whole platform, as each shipped stack records it: policies, wiring, stable names."""

from __future__ import annotations

import pytest

from mlplat.plan.preview import load_stack, policy_config
from policies.core import STATEFUL_TYPES, evaluate_plan
from tests.conftest import ROOT

STACKS = ("dev", "staging", "prod", "local")


@pytest.mark.parametrize("stack", STACKS)
def test_every_shipped_stack_passes_every_mandatory_policy(shipped_plans, stack):
    settings, _ = load_stack(stack, ROOT)
    plan = shipped_plans[stack]
    report = evaluate_plan([r.to_json() for r in plan.resources], policy_config(settings))
    assert [v.to_json() for v in report.violations if v.enforcement == "mandatory"] == []


def _as_the_cli_sends(value):
    """The Pulumi CLI hands policies every number as a float (`2` arrives as `2.0`)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return float(value)
    if isinstance(value, dict):
        return {k: _as_the_cli_sends(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_the_cli_sends(v) for v in value]
    return value


@pytest.mark.parametrize("stack", STACKS)
def test_every_shipped_stack_passes_with_numbers_as_the_cli_sends_them(shipped_plans, stack):
    settings, _ = load_stack(stack, ROOT)
    resources = [r.to_json() for r in shipped_plans[stack].resources]
    as_sent = [{**r, "inputs": _as_the_cli_sends(r["inputs"])} for r in resources]
    assert any(  # the conversion did something (a hop limit, a capacity...)
        isinstance(v, float) for r in as_sent for v in r["inputs"].values()
    )
    report = evaluate_plan(as_sent, policy_config(settings))
    assert [v.to_json() for v in report.violations if v.enforcement == "mandatory"] == []


def test_prod_serves_isolated_in_the_vpc_with_capture_and_autoscaling(shipped_plans):
    plan = shipped_plans["prod"]
    models = plan.of_type("aws:sagemaker/model:Model")
    assert len(models) == 2  # churn and spend, each its own
    for model in models:
        assert model.inputs["enableNetworkIsolation"] is True
        assert len(model.inputs["vpcConfig"]["subnets"]) == 3
    lake_key = plan.named("lake-key")
    predictions = plan.named("lake-predictions")
    configs = plan.of_type("aws:sagemaker/endpointConfiguration:EndpointConfiguration")
    assert len(configs) == 2
    for config in configs:
        assert config.inputs["kmsKeyArn"] == lake_key.state["arn"]
        capture = config.inputs["dataCaptureConfig"]
        assert capture["destinationS3Uri"].startswith(f"s3://{predictions.id}/")
        assert capture["initialSamplingPercentage"] == 100
    targets = plan.of_type("aws:appautoscaling/target:Target")
    assert len(targets) == 2 and all(t.inputs["minCapacity"] >= 2 for t in targets)
    endpoints = plan.of_type("aws:sagemaker/endpoint:Endpoint")
    assert sorted(e.inputs["name"] for e in endpoints) == [
        "ml-platform-prod",
        "ml-platform-prod-spend",
    ]
    for endpoint in endpoints:
        blue_green = endpoint.inputs["deploymentConfig"]["blueGreenUpdatePolicy"]
        assert blue_green["trafficRoutingConfiguration"]["type"] == "CANARY"
        alarms = endpoint.inputs["deploymentConfig"]["autoRollbackConfiguration"]["alarms"]
        assert len(alarms) == 2


def test_dev_is_serverless_without_a_gpu_cluster(shipped_plans):
    plan = shipped_plans["dev"]
    configs = plan.of_type("aws:sagemaker/endpointConfiguration:EndpointConfiguration")
    assert len(configs) == 2
    for config in configs:
        (variant,) = config.inputs["productionVariants"]
        assert "serverlessConfig" in variant
    assert plan.of_type("aws:appautoscaling/target:Target") == []
    assert plan.of_type("aws:eks/cluster:Cluster") == []
    assert plan.outputs["training_cluster_name"] is None


def test_prod_has_the_gpu_cluster_and_protects_stateful_resources(shipped_plans):
    plan = shipped_plans["prod"]
    (cluster,) = plan.of_type("aws:eks/cluster:Cluster")
    assert cluster.inputs["vpcConfig"]["endpointPublicAccess"] is False
    assert plan.outputs["training_cluster_name"] == cluster.inputs["name"]
    stateful = [r for r in plan.resources if r.type in STATEFUL_TYPES]
    assert stateful
    assert [r.name for r in stateful if not r.options["protect"]] == []
    dev_stateful = [r for r in shipped_plans["dev"].resources if r.type in STATEFUL_TYPES]
    assert dev_stateful
    assert not any(r.options["protect"] for r in dev_stateful)


# Renaming a stateful resource (or moving it to another parent) replaces it: data is lost. These
# are the logical names the shipped prod stack gives its stateful resources; a change here must
# come with a migration (aliases), never by accident. (churn's endpoint and group moved under the
# model's group when stacks started listing `models`: aliases keep them, see test_upgrade.py.)
PROD_STATEFUL = {
    "aws:ecr/repository:Repository": ["platform-image-repository"],
    "aws:eks/cluster:Cluster": ["gpu-cluster"],
    "aws:glue/catalogDatabase:CatalogDatabase": ["lake-db"],
    "aws:glue/catalogTable:CatalogTable": [
        "lake-table-customer-features",
        "lake-table-customer-outcomes",
        "lake-table-customers",
        "lake-table-customers-curated",
        "lake-table-predictions",
        "lake-table-spend-features",
        "lake-table-spend-predictions",
    ],
    "aws:kms/key:Key": ["audit-key", "gpu-key", "lake-key", "on-call-key"],
    "aws:sagemaker/endpoint:Endpoint": ["churn-serving-endpoint", "spend-serving-endpoint"],
    "aws:sagemaker/modelPackageGroup:ModelPackageGroup": [
        "churn-registry-group",
        "spend-registry-group",
    ],
}


def test_logical_names_of_stateful_resources_stay_put(shipped_plans):
    plan = shipped_plans["prod"]
    found: dict[str, list[str]] = {}
    for r in plan.resources:
        if r.type in PROD_STATEFUL:
            found.setdefault(r.type, []).append(r.name)
    assert {k: sorted(v) for k, v in found.items()} == PROD_STATEFUL
    buckets = {r.name for r in plan.of_type("aws:s3/bucket:Bucket")}
    assert {
        "lake-raw",
        "lake-curated",
        "lake-features",
        "lake-models",
        "lake-predictions",
    } <= buckets
