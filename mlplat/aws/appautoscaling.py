"""Application Auto Scaling: scalable targets and scaling policies (an endpoint's variants)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlplat.aws.realizing import (
    RealizeContext,
    RealizeError,
    Registration,
    drop_empty,
    pascal,
)
from mlplat.aws.registry import AwsType, Fake, Outputs, Service

# --- the sandbox's realizers and readers


def _read_scalable_target(ctx: RealizeContext, ident: str, state: Mapping[str, Any]) -> Any:
    found = ctx.client("application-autoscaling").describe_scalable_targets(
        ServiceNamespace=state["serviceNamespace"],
        ResourceIds=[ident],
        ScalableDimension=state["scalableDimension"],
    )["ScalableTargets"]
    if not found:
        raise RealizeError(f"scalable target {ident} not found")
    return found[0]


def _scalable_target(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    resource_id = str(reg.require("resourceId"))
    response = ctx.client("application-autoscaling").register_scalable_target(
        **drop_empty(
            {
                "ServiceNamespace": reg.require("serviceNamespace"),
                "ResourceId": resource_id,
                "ScalableDimension": reg.require("scalableDimension"),
                "MinCapacity": reg.require("minCapacity"),
                "MaxCapacity": reg.require("maxCapacity"),
                "RoleARN": reg.get("roleArn"),
                "SuspendedState": pascal(reg.get("suspendedState")),
                "Tags": reg.get("tags"),
            }
        )
    )
    arn = response.get("ScalableTargetARN") or ctx.arn(
        "application-autoscaling", f"scalable-target/{resource_id}"
    )
    return resource_id, {"arn": arn}


def _step_configuration(config: Mapping[str, Any]) -> dict[str, Any]:
    shaped: dict[str, Any] = pascal(dict(config))
    for step in shaped.get("StepAdjustments", []):
        for bound in ("MetricIntervalLowerBound", "MetricIntervalUpperBound"):
            if step.get(bound) not in (None, ""):
                step[bound] = float(step[bound])  # the provider carries them as strings
            else:
                step.pop(bound, None)
    return shaped


def _read_scaling_policy(ctx: RealizeContext, ident: str, state: Mapping[str, Any]) -> Any:
    found = ctx.client("application-autoscaling").describe_scaling_policies(
        ServiceNamespace=state["serviceNamespace"],
        PolicyNames=[ident],
        ResourceId=state["resourceId"],
    )["ScalingPolicies"]
    if not found:
        raise RealizeError(f"scaling policy {ident} not found")
    return found[0]


def _scaling_policy(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    name = reg.physical(max_len=256)
    target = reg.get("targetTrackingScalingPolicyConfiguration")
    step = reg.get("stepScalingPolicyConfiguration")
    if reg.get("predictiveScalingPolicyConfiguration"):
        raise RealizeError(f"{reg.name}: predictive scaling is not realized by the sandbox")
    response = ctx.client("application-autoscaling").put_scaling_policy(
        **drop_empty(
            {
                "PolicyName": name,
                "ServiceNamespace": reg.require("serviceNamespace"),
                "ResourceId": reg.require("resourceId"),
                "ScalableDimension": reg.require("scalableDimension"),
                "PolicyType": reg.get("policyType", "StepScaling"),
                "TargetTrackingScalingPolicyConfiguration": pascal(target) if target else None,
                "StepScalingPolicyConfiguration": _step_configuration(step) if step else None,
            }
        )
    )
    return name, {
        "name": name,
        "arn": response["PolicyARN"],
        "alarmArns": [a["AlarmARN"] for a in response.get("Alarms", [])],
    }


def _fake_target(f: Fake) -> Outputs:
    """Id: the scalable resource (`endpoint/<name>/variant/<variant>`); a `scalable-target` ARN."""
    return f.input("resourceId") or f.physical, {
        "arn": f.arn("application-autoscaling", f"scalable-target/{f.digest(36, 'target')}")
    }


def _fake_policy(f: Fake) -> Outputs:
    """Id: the policy name; the ARN names the policy through the resource it scales."""
    name = f.input("name") or f.physical
    resource = f"{f.input('serviceNamespace')}/{f.input('resourceId')}"
    arn = f.arn("autoscaling", f"scalingPolicy:{f.uuid()}:resource/{resource}:policyName/{name}")
    return name, {"arn": arn, "name": name}


# --- the registry entries

SERVICE = Service(
    owns=("appautoscaling",),
    types=(
        AwsType(
            "aws:appautoscaling/target:Target",
            fake=_fake_target,
            realize=_scalable_target,
            read=_read_scalable_target,
        ),
        AwsType(
            "aws:appautoscaling/policy:Policy",
            fake=_fake_policy,
            realize=_scaling_policy,
            read=_read_scaling_policy,
        ),
    ),
)
