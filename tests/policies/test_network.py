"""The reachability check on the prod plan: it passes as shipped, and each broken path fails it."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from policies.core import evaluate_plan
from policies.rules import BY_NAME
from policies.rules.network import images, needs_of_image, registry_of

POLICY = "vpc-network-paths-reachable"
Resources = list[dict[str, Any]]


@pytest.fixture(scope="module")
def prod(shipped_plans) -> Resources:
    return [r.to_json() for r in shipped_plans["prod"].resources]


def violations(resources: Resources) -> list[str]:
    report = evaluate_plan(resources, {"environment": "prod"}, [BY_NAME[POLICY]])
    assert report.skipped == ()
    return [v.message for v in report.violations]


def mutated(resources: Resources, change: Callable[[Resources], None]) -> Resources:
    copied = copy.deepcopy(resources)
    change(copied)
    return copied


def named(resources: Resources, name: str) -> dict[str, Any]:
    (found,) = [r for r in resources if r["name"] == name]
    return found


def objects_of(resources: Resources) -> tuple[dict[str, Any], dict[str, Any]]:
    (invocation,) = [r for r in resources if r["type"] == "aws:lambda/invocation:Invocation"]
    return invocation, json.loads(invocation["inputs"]["input"])


def set_autoscaler_image(resources: Resources, image: str) -> None:
    invocation, payload = objects_of(resources)
    for obj in payload["objects"]:
        if obj["kind"] == "Deployment":
            obj["spec"]["template"]["spec"]["containers"][0]["image"] = image
    invocation["inputs"]["input"] = json.dumps(payload)


def test_every_shipped_plan_passes(shipped_plans):
    for stack, plan in shipped_plans.items():
        report = evaluate_plan(
            [r.to_json() for r in plan.resources], {"environment": stack}, [BY_NAME[POLICY]]
        )
        assert report.violations == (), stack


def test_the_check_sees_the_prod_paths(prod):
    """Not vacuous: the prod plan has node groups, declared callers and in-cluster images."""
    types = {r["type"] for r in prod}
    assert {"aws:eks/nodeGroup:NodeGroup", "aws:lambda/function:Function"} <= types
    _, payload = objects_of(prod)
    found = [i for o in payload["objects"] for i in images(o)]
    assert len(found) == 1 and ".dkr.ecr.us-east-1.amazonaws.com/" in found[0]
    assert violations(prod) == []


def test_an_image_from_the_internet_without_nat_fails(prod):
    image = "registry.k8s.io/autoscaling/cluster-autoscaler:v1.33.0"
    broken = mutated(prod, lambda rs: set_autoscaler_image(rs, image))
    found = violations(broken)
    assert len(found) == 3  # the system group and both GPU groups, nothing else
    assert any(f"cannot run image {image}: no route" in m and "internet" in m for m in found)
    assert all("node group" in m for m in found)


def test_an_image_from_the_internet_passes_with_nat(record):
    from tests.conftest import make_config

    plan = record(config=make_config("prod", natGateway=True))
    assert plan.of_type("aws:ec2/natGateway:NatGateway")
    resources = [r.to_json() for r in plan.resources]
    image = "registry.k8s.io/autoscaling/cluster-autoscaler:v1.33.0"
    assert violations(mutated(resources, lambda rs: set_autoscaler_image(rs, image))) == []


def test_a_missing_endpoint_fails(prod):
    def drop_ecr_dkr(resources: Resources) -> None:
        resources.remove(named(resources, "network-endpoint-ecr-dkr"))

    found = violations(mutated(prod, drop_ecr_dkr))
    assert found and all("the ecr.dkr API" in m for m in found)


def test_the_deployer_outside_the_vpc_cannot_reach_the_private_api(prod):
    def no_vpc(resources: Resources) -> None:
        del named(resources, "gpu-gateway-deployer-fn")["inputs"]["vpcConfig"]

    (message,) = violations(mutated(prod, no_vpc))
    assert "gpu-gateway-deployer-fn" in message
    assert "runs outside the VPC, so it cannot reach the private API" in message


def test_the_deployer_must_be_admitted_by_the_cluster_security_group(prod):
    def no_ingress(resources: Resources) -> None:
        resources.remove(named(resources, "gpu-gateway-api-in"))

    found = violations(mutated(prod, no_ingress))
    assert len(found) == 2  # deployer and jobs
    assert all("no security group rule admits its groups" in m for m in found)


def test_the_cluster_private_endpoint_off_fails(prod):
    def public_only(resources: Resources) -> None:
        (cluster,) = [r for r in resources if r["type"] == "aws:eks/cluster:Cluster"]
        cluster["inputs"]["vpcConfig"]["endpointPrivateAccess"] = False
        cluster["inputs"]["vpcConfig"]["endpointPublicAccess"] = True

    found = violations(mutated(prod, public_only))
    assert any("no route to the EKS API" in m and "node group" in m for m in found)
    assert any("no route to the API of cluster" in m for m in found)


def test_objects_applied_by_the_engine_need_a_reachable_api(prod):
    """What this project shipped before the gateway: pulumi-kubernetes against a private API."""
    namespace = {
        "urn": "urn:pulumi:prod::ml-platform::kubernetes:core/v1:Namespace::training",
        "id": "training",
        "type": "kubernetes:core/v1:Namespace",
        "name": "training",
        "parent": "",
        "custom": True,
        "inputs": {"metadata": {"name": "training"}},
        "options": {},
    }
    (message,) = violations([*prod, namespace])
    assert "applied by the Pulumi engine" in message and "private only" in message


def test_sagemaker_model_in_a_vpc_needs_s3(prod):
    def drop_s3(resources: Resources) -> None:
        resources.remove(named(resources, "network-endpoint-s3"))

    found = violations(mutated(prod, drop_s3))
    assert any("serving-model" in m and "route to S3" in m for m in found)
    assert any("the s3 API" in m for m in found)


@pytest.mark.parametrize(
    ("image", "registry", "needs"),
    [
        ("nvcr.io/nvidia/k8s-device-plugin:v0.17.0", "nvcr.io", ("internet",)),
        ("busybox", "docker.io", ("internet",)),
        ("library/python:3.12", "docker.io", ("internet",)),
        ("localhost:5000/x", "localhost:5000", ("internet",)),
        (
            "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.9-0-cpu-py3",
            "683313688378.dkr.ecr.us-east-1.amazonaws.com",
            ("ecr.api", "ecr.dkr", "s3"),
        ),
    ],
)
def test_registries(image, registry, needs):
    assert registry_of(image) == registry
    assert needs_of_image(image) == needs
