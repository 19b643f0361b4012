"""Isolation policies: on the prod plan as shipped (passing), and each broken on purpose."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from ml import remote_training
from policies.core import evaluate_plan
from policies.rules import isolation
from policies.rules.isolation import POLICIES, restricted_problems
from tests.policies.helpers import doc, res, violations

BY_NAME = {p.name: p for p in POLICIES}
Resources = list[dict[str, Any]]


@pytest.fixture(scope="module")
def prod(shipped_plans) -> Resources:
    return [r.to_json() for r in shipped_plans["prod"].resources]


def found(resources: Resources, policy: str) -> list[str]:
    report = evaluate_plan(resources, {"environment": "prod"}, [BY_NAME[policy]])
    assert report.skipped == ()
    return [v.message for v in report.violations]


def mutated(resources: Resources, change: Callable[[Resources], None]) -> Resources:
    copied = copy.deepcopy(resources)
    change(copied)
    return copied


def objects(resources: Resources) -> tuple[dict[str, Any], dict[str, Any]]:
    (inv,) = [r for r in resources if r["type"] == "aws:lambda/invocation:Invocation"]
    return inv, json.loads(inv["inputs"]["input"])


def edit_objects(change: Callable[[list[dict[str, Any]]], None]) -> Callable[[Resources], None]:
    def apply(resources: Resources) -> None:
        inv, payload = objects(resources)
        change(payload["objects"])
        inv["inputs"]["input"] = json.dumps(payload)

    return apply


# The shipped stacks pull the autoscaler by tag: its digest cannot be looked up offline here, and
# `autoscalerImageDigest` pins it (README, security). The advisory says so on every preview.
KNOWN_ADVISORIES = {"kubernetes-image-digest-pinned": "cluster-autoscaler"}


@pytest.mark.parametrize("policy", sorted(BY_NAME))
def test_every_shipped_plan_passes(shipped_plans, policy):
    for stack, plan in shipped_plans.items():
        report = evaluate_plan(
            [r.to_json() for r in plan.resources], {"environment": stack}, [BY_NAME[policy]]
        )
        has_cluster = bool(plan.of_type("aws:eks/cluster:Cluster"))
        if policy in KNOWN_ADVISORIES and has_cluster:
            (known,) = report.violations
            assert known.enforcement == "advisory" and KNOWN_ADVISORIES[policy] in known.message
            continue
        assert report.violations == (), (stack, report.violations)


def test_a_digest_in_the_settings_pins_the_autoscaler(record, settings_for):
    from stacks.composition import build

    digest = "sha256:" + "ab" * 32
    settings = settings_for("prod", autoscalerImageDigest=digest)
    plan = record(lambda: build(settings) and None, settings=settings)
    resources = [r.to_json() for r in plan.resources]
    _, payload = objects(resources)
    (deployment,) = [o for o in payload["objects"] if o["kind"] == "Deployment"]
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image.endswith(f"/autoscaling/cluster-autoscaler:v1.33.0@{digest}")
    report = evaluate_plan(
        resources, {"environment": "prod"}, [BY_NAME["kubernetes-image-digest-pinned"]]
    )
    assert report.violations == ()


def test_the_prod_plan_has_what_they_check(prod):
    types = {r["type"] for r in prod}
    assert {"aws:ec2/launchTemplate:LaunchTemplate", "aws:eks/addon:Addon"} <= types
    _, payload = objects(prod)
    kinds = [o["kind"] for o in payload["objects"]]
    assert "Namespace" in kinds and kinds.count("NetworkPolicy") == 2


def test_a_hop_limit_of_two_lets_pods_reach_the_node_role(prod):
    def two(resources: Resources) -> None:
        for r in resources:
            if r["type"] == "aws:ec2/launchTemplate:LaunchTemplate":
                r["inputs"]["metadataOptions"]["httpPutResponseHopLimit"] = 2

    messages = found(mutated(prod, two), "ec2-launchtemplate-imds-hop-limit")
    assert len(messages) == 3  # the system and both GPU templates
    assert all("httpPutResponseHopLimit is 2" in m for m in messages)


def test_a_namespace_without_default_deny_or_restricted_fails(prod):
    def loosen(objs: list[dict[str, Any]]) -> None:
        objs[:] = [o for o in objs if o["metadata"]["name"] != "default-deny"]
        ns = next(o for o in objs if o["kind"] == "Namespace")
        ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] = "baseline"

    messages = found(mutated(prod, edit_objects(loosen)), "kubernetes-namespace-isolated")
    assert sorted(messages) == sorted(
        [
            "namespace 'training': Pod Security pod-security.kubernetes.io/enforce is "
            "'baseline'; enforce 'restricted'",
            "namespace 'training': no default-deny NetworkPolicy (podSelector {}, policyTypes "
            "Ingress and Egress, no rules): every pod may talk to any other",
        ]
    )


def test_network_policies_without_the_cni_agent_are_not_enforced(prod):
    def drop_addon(resources: Resources) -> None:
        resources[:] = [r for r in resources if r["type"] != "aws:eks/addon:Addon"]

    (message,) = found(mutated(prod, drop_addon), "kubernetes-namespace-isolated")
    assert "does not enforce NetworkPolicies" in message


def test_a_root_workload_in_a_restricted_namespace_fails(prod):
    def add_job(objs: list[dict[str, Any]]) -> None:
        objs.append(
            {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": {"name": "debug", "namespace": "training"},
                "spec": {
                    "template": {
                        "spec": {
                            "restartPolicy": "Never",
                            "containers": [{"name": "sh", "image": "busybox"}],
                            "volumes": [{"name": "host", "hostPath": {"path": "/"}}],
                        }
                    }
                },
            }
        )

    messages = found(mutated(prod, edit_objects(add_job)), "kubernetes-pod-restricted")
    assert len(messages) == 5
    assert all(m.startswith("Job training/debug: ") for m in messages)
    assert any("volume 'host' is hostPath" in m for m in messages)
    assert any("may run as root" in m for m in messages)


def test_the_training_job_meets_the_restricted_profile():
    """What `mlplat train --on eks` submits is admitted in the restricted namespace."""
    target = remote_training.TrainingTarget(
        model="churn",
        region="us-east-1",
        features_bucket="f",
        models_bucket="m",
        lake_kms_key_arn="arn:aws:kms:us-east-1:123456789012:key/k",
        training_role_arn="arn:aws:iam::123456789012:role/t",
        training_subnet_ids=("subnet-1",),
        training_security_group_ids=("sg-1",),
    )
    job = remote_training.kubernetes_training_job(target, job_name="churn-1", image="img")
    pod = isolation.pod_template(job)
    assert pod is not None and restricted_problems(pod) == []


ENI_WILDCARD = {
    "Effect": "Allow",
    "Action": ["ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface"],
    "Resource": "*",
}


@pytest.mark.parametrize(
    ("statement", "caught"),
    [
        (ENI_WILDCARD, True),
        ({**ENI_WILDCARD, "Action": "ec2:*"}, True),
        (
            {
                **ENI_WILDCARD,
                "Condition": {"ArnEquals": {"ec2:Vpc": "arn:aws:ec2:us-east-1:1:vpc/vpc-1"}},
            },
            False,
        ),
        (
            {
                **ENI_WILDCARD,
                "Resource": ["arn:aws:ec2:us-east-1:1:network-interface/*"],
            },
            False,
        ),
        ({**ENI_WILDCARD, "Action": ["ec2:DescribeNetworkInterfaces"]}, False),
    ],
)
def test_network_interface_rights_are_scoped(statement, caught):
    policy = res("aws:iam/rolePolicy:RolePolicy", "p", {"policy": doc(statement)})
    messages = violations("iam-policy-eni-scoped", [policy])
    assert bool(messages) is caught, messages
    if caught:
        assert "on any network interface in the account" in messages[0]


def test_a_drift_job_outside_the_vpc_fails(prod):
    def public(resources: Resources) -> None:
        (machine,) = [r for r in resources if r["name"] == "churn-drift-machine"]
        definition = json.loads(machine["inputs"]["definition"])
        params = definition["States"]["Drift"]["Parameters"]
        del params["NetworkConfig"]["VpcConfig"]
        del params["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"]
        machine["inputs"]["definition"] = json.dumps(definition)

    (message,) = found(mutated(prod, public), "sagemaker-job-private")
    assert "runs outside the VPC (no VpcConfig with subnets)" in message
    assert "its volume has no KMS key (ProcessingResources.ClusterConfig.VolumeKmsKeyId)" in message


@pytest.mark.parametrize(
    ("request_", "problems"),
    [
        (
            {
                "ResourceConfig": {"VolumeKmsKeyId": "k"},
                "VpcConfig": {"Subnets": ["s"]},
                "OutputDataConfig": {"S3OutputPath": "s3://b/p"},
            },
            ["its outputs have no KMS key (OutputDataConfig.KmsKeyId)"],
        ),
        (
            {
                "ResourceConfig": {"VolumeKmsKeyId": "k"},
                "VpcConfig": {"Subnets": ["s"]},
                "OutputDataConfig": {"S3OutputPath": "s3://b/p", "KmsKeyId": "k"},
            },
            [],
        ),
        (
            {"TransformResources": {}},
            [
                "runs outside the VPC (no VpcConfig with subnets)",
                "its volume has no KMS key (TransformResources.VolumeKmsKeyId)",
            ],
        ),
        ({"Something": "else"}, []),
    ],
)
def test_job_shapes(request_, problems):
    assert isolation.job_problems(request_) == problems
