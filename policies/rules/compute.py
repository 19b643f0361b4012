"""Compute policies: EKS control plane, instance metadata, GPU allow-list, spot checkpoints."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from policies.core import Context, PolicySpec, Resource, json_document, listify

CLUSTER = "aws:eks/cluster:Cluster"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
INSTANCE = "aws:ec2/instance:Instance"
ENDPOINT_CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
PIPELINE = "aws:sagemaker/pipeline:Pipeline"
STATE_MACHINE = "aws:sfn/stateMachine:StateMachine"
CONTROL_PLANE_LOGS = ("api", "audit", "authenticator", "controllerManager", "scheduler")
OPEN = ("0.0.0.0/0", "::/0")
GPU_FAMILY = re.compile(r"^[gp]\d+[a-z]*$")


def check_private_endpoint(resource: Resource, ctx: Context) -> Iterator[str]:
    name = resource.name
    if resource.get("vpcConfig", "endpointPrivateAccess") is not True:
        yield f"cluster {name!r}: vpcConfig.endpointPrivateAccess is not true"
    # AWS defaults endpointPublicAccess to true and publicAccessCidrs to 0.0.0.0/0.
    public = resource.get("vpcConfig", "endpointPublicAccess", default=True)
    if public is False:
        return
    if ctx.is_prod(resource):
        yield f"cluster {name!r}: the prod cluster API must not be public (endpointPublicAccess)"
        return
    cidrs = listify(resource.get("vpcConfig", "publicAccessCidrs", default=list(OPEN[:1])))
    if not cidrs or any(c in OPEN for c in cidrs):
        yield f"cluster {name!r}: public API endpoint open to the internet ({cidrs or OPEN[0]})"


def check_secrets_encryption(resource: Resource, _ctx: Context) -> Iterator[str]:
    config = resource.get("encryptionConfig", default=None)
    config = config[0] if isinstance(config, list) and config else config
    resources = listify(config.get("resources")) if isinstance(config, dict) else []
    key = (config.get("provider") or {}).get("keyArn") if isinstance(config, dict) else None
    if "secrets" not in resources or not key:
        yield (
            f"cluster {resource.name!r}: Kubernetes secrets are not envelope-encrypted with a "
            "KMS key (encryptionConfig.resources ['secrets'], provider.keyArn)"
        )


def check_control_plane_logging(resource: Resource, _ctx: Context) -> Iterator[str]:
    enabled = set(listify(resource.get("enabledClusterLogTypes")))
    missing = [t for t in CONTROL_PLANE_LOGS if t not in enabled]
    if missing:
        yield f"cluster {resource.name!r}: control-plane log types missing: {', '.join(missing)}"


def check_imdsv2(resource: Resource, _ctx: Context) -> Iterator[str]:
    tokens = resource.get("metadataOptions", "httpTokens")
    if tokens != "required":
        yield (
            f"{resource.where()}: metadataOptions.httpTokens is {tokens!r}; "
            "require IMDSv2 ('required')"
        )


def family(instance_type: str) -> str:
    return instance_type.removeprefix("ml.").split(".")[0]


def is_gpu(instance_type: str) -> bool:
    return bool(GPU_FAMILY.match(family(instance_type)))


def _walk(document: Any) -> Iterator[dict[str, Any]]:
    if isinstance(document, dict):
        yield document
        for value in document.values():
            yield from _walk(value)
    elif isinstance(document, list):
        for value in document:
            yield from _walk(value)


def _definition(resource: Resource) -> Any:
    prop = "pipelineDefinition" if resource.type == PIPELINE else "definition"
    return json_document(resource.get(prop), f".{prop} of {resource.where()}")


def instance_types(resource: Resource) -> list[str]:
    """Every EC2 / SageMaker instance type the resource asks for."""
    found: list[Any]
    if resource.type == NODE_GROUP:
        found = listify(resource.get("instanceTypes"))
    elif resource.type in (LAUNCH_TEMPLATE, INSTANCE):
        found = [resource.get("instanceType")]
    elif resource.type == ENDPOINT_CONFIG:
        found = [
            v.get("instanceType")
            for v in listify(resource.get("productionVariants"))
            if isinstance(v, dict)
        ]
    else:  # pipeline and state machine definitions
        found = [d.get("InstanceType") for d in _walk(_definition(resource))]
    return [t for t in found if isinstance(t, str) and t]


def check_gpu_allowlist(resource: Resource, ctx: Context) -> Iterator[str]:
    for instance_type in instance_types(resource):
        if is_gpu(instance_type) and family(instance_type) not in ctx.allowed_gpu_families:
            yield (
                f"{resource.where()}: GPU instance type {instance_type} is not in the allow-list "
                f"({', '.join(ctx.allowed_gpu_families)})"
            )


def check_spot_checkpoints(resource: Resource, _ctx: Context) -> Iterator[str]:
    for step in _walk(_definition(resource)):
        spot = step.get("EnableManagedSpotTraining")
        if spot is not True and str(spot).lower() != "true":
            continue
        checkpoint = step.get("CheckpointConfig")
        uri = checkpoint.get("S3Uri") if isinstance(checkpoint, dict) else None
        if not uri:
            yield (
                f"{resource.where()}: a managed spot training job has no CheckpointConfig.S3Uri "
                "(an interrupted job restarts from scratch)"
            )


POLICIES = (
    PolicySpec(
        name="eks-cluster-private-endpoint",
        description="The EKS API has a private endpoint; a public one is CIDR-restricted, and "
        "off in prod.",
        enforcement="mandatory",
        severity="high",
        reference="CKV_AWS_39; CKV_AWS_38",
        types=(CLUSTER,),
        check=check_private_endpoint,
    ),
    PolicySpec(
        name="eks-cluster-secrets-encryption",
        description="EKS envelope-encrypts Kubernetes secrets with a KMS key.",
        enforcement="mandatory",
        severity="high",
        reference="CKV_AWS_58",
        types=(CLUSTER,),
        check=check_secrets_encryption,
    ),
    PolicySpec(
        name="eks-cluster-control-plane-logging",
        description="EKS sends all five control-plane log types (api, audit, authenticator, "
        "controllerManager, scheduler).",
        enforcement="mandatory",
        severity="medium",
        reference="CKV_AWS_37",
        types=(CLUSTER,),
        check=check_control_plane_logging,
    ),
    PolicySpec(
        name="ec2-launchtemplate-imdsv2",
        description="Launch templates and instances require IMDSv2 (httpTokens 'required').",
        enforcement="mandatory",
        severity="high",
        reference="CKV_AWS_79; AWS Security Hub EC2.8",
        types=(LAUNCH_TEMPLATE, INSTANCE),
        check=check_imdsv2,
    ),
    PolicySpec(
        name="ec2-instance-gpu-allowlist",
        description="GPU instance types (EKS node groups, instances, endpoints, pipelines) come "
        "from the allow-list (pack config allowedGpuFamilies).",
        enforcement="mandatory",
        severity="medium",
        reference="Well-Architected ML Lens, cost optimization: select optimal instance types",
        types=(NODE_GROUP, LAUNCH_TEMPLATE, INSTANCE, ENDPOINT_CONFIG, PIPELINE, STATE_MACHINE),
        check=check_gpu_allowlist,
        config_keys=("environment", "allowedGpuFamilies"),
    ),
    PolicySpec(
        name="sagemaker-training-spot-checkpoints",
        description="Managed spot training jobs (pipeline / state machine definitions) "
        "checkpoint to S3.",
        enforcement="mandatory",
        severity="medium",
        reference="Well-Architected ML Lens, cost optimization: managed spot training with "
        "checkpoints",
        types=(PIPELINE, STATE_MACHINE),
        check=check_spot_checkpoints,
    ),
)
