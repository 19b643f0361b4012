"""The policies hold for every model of a stack: a lapse in one model's resources is that model's
violation, named by its resource, while the other model stays clean."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from policies.core import evaluate_plan
from policies.rules import BY_NAME

Resources = list[dict[str, Any]]


@pytest.fixture(scope="module")
def prod(shipped_plans) -> Resources:
    return [r.to_json() for r in shipped_plans["prod"].resources]


def found(resources: Resources, policy: str) -> list[str]:
    report = evaluate_plan(resources, {"environment": "prod"}, [BY_NAME[policy]])
    return [v.message for v in report.violations]


def test_both_models_pass_every_policy(prod: Resources) -> None:
    report = evaluate_plan(prod, {"environment": "prod"})
    assert [v.policy for v in report.violations if v.enforcement == "mandatory"] == []
    endpoints = [r for r in prod if r["type"] == "aws:sagemaker/endpoint:Endpoint"]
    assert sorted(r["name"] for r in endpoints) == [
        "churn-serving-endpoint",
        "spend-serving-endpoint",
    ]


def test_one_models_missing_drift_alarms_are_its_violation(prod: Resources) -> None:
    without = [r for r in prod if not r["name"].startswith("spend-alarms-drift-")]
    (message,) = found(without, "sagemaker-endpoint-alarms")
    assert message == (
        "endpoint 'spend-serving-endpoint': no drift alarm(s) on "
        "EndpointName=ml-platform-prod-spend"
    )


def test_one_models_capture_off_is_its_violation(prod: Resources) -> None:
    broken = copy.deepcopy(prod)
    (config,) = [r for r in broken if r["name"] == "churn-serving-config"]
    config["inputs"]["dataCaptureConfig"]["enableCapture"] = False
    (message,) = found(broken, "sagemaker-endpointconfig-data-capture")
    assert message.startswith("endpoint config 'churn-serving-config': prod endpoints capture")


def test_one_models_wildcard_is_its_violation(prod: Resources) -> None:
    broken = copy.deepcopy(prod)
    (policy,) = [r for r in broken if r["name"] == "spend-training-policy"]
    document = json.loads(policy["inputs"]["policy"])
    document["Statement"].append({"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "*"})
    policy["inputs"]["policy"] = json.dumps(document)
    (message,) = found(broken, "iam-policy-no-wildcard-resources")
    assert "spend-training-policy" in message
