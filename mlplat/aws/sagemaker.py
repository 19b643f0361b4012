"""SageMaker: the model registry's package groups, models, endpoint configurations,
endpoints and model pipelines.

moto has no UpdateEndpoint and SageMaker models and endpoint configurations are immutable: a
changed one is replaced, and the sandbox says so in its notes. A pipeline is created with the
definition the program gave, and updated in place when it changes (as UpdatePipeline does): the
sandbox reads it back (`DescribePipeline`) to execute it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlplat.aws.realizing import (
    RealizeContext,
    Registration,
    drop_empty,
    exists,
    pascal,
    same_json,
    tag_list,
)
from mlplat.aws.registry import Arns, AwsType, Fake, Outputs, Service

# --- the plan engine's fakes


_SAGEMAKER_NOUNS = {
    "ModelPackageGroup": "model-package-group",
    "Model": "model",
    "EndpointConfiguration": "endpoint-config",
    "Endpoint": "endpoint",
}


def _fake_sagemaker(f: Fake) -> Outputs:
    arn = f.arn("sagemaker", f"{_SAGEMAKER_NOUNS[f.kind]}/{f.physical}").lower()
    out: dict[str, Any] = {"arn": arn, "name": f.physical}
    if f.kind == "ModelPackageGroup":
        out["modelPackageGroupName"] = f.physical
    return f.physical, out


def _pipeline_state(at: Arns, name: str) -> dict[str, Any]:
    """A pipeline's ARN (SageMaker lower-cases the name in it); its id is its name."""
    return {"arn": at.arn("sagemaker", f"pipeline/{name.lower()}")}


def _fake_pipeline(f: Fake) -> Outputs:
    return f.physical, _pipeline_state(f, f.physical)


# --- the sandbox's realizers and readers


def _read_package_group(ctx: RealizeContext, ident: str, _: Mapping[str, Any]) -> Any:
    return ctx.client("sagemaker").describe_model_package_group(ModelPackageGroupName=ident)


def _package_group(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    sagemaker = ctx.client("sagemaker")
    name = reg.physical(key="modelPackageGroupName", max_len=63)
    found = exists(
        lambda: sagemaker.describe_model_package_group(ModelPackageGroupName=name),
        "ValidationException",
    )
    if found is None:
        sagemaker.create_model_package_group(
            **drop_empty(
                {
                    "ModelPackageGroupName": name,
                    "ModelPackageGroupDescription": reg.get("modelPackageGroupDescription"),
                    "Tags": tag_list(reg.get("tags")),
                }
            )
        )
        found = sagemaker.describe_model_package_group(ModelPackageGroupName=name)
    return name, {"modelPackageGroupName": name, "arn": found["ModelPackageGroupArn"]}


_MODEL_OPAQUE = frozenset({"environment"})
_MODEL_RENAMES = {
    "securityGroupIds": "SecurityGroupIds",
    "s3Uri": "S3Uri",
    "s3DataType": "S3DataType",
    "s3DataSources": "S3DataSource",
}


def _container(container: Mapping[str, Any]) -> dict[str, Any]:
    shaped: dict[str, Any] = pascal(dict(container), _MODEL_RENAMES, _MODEL_OPAQUE)
    source = shaped.get("ModelDataSource")
    if isinstance(source, dict) and isinstance(source.get("S3DataSource"), list):
        source["S3DataSource"] = source["S3DataSource"][0]  # the API takes one
    return shaped


def _read_model(ctx: RealizeContext, ident: str, _: Mapping[str, Any]) -> Any:
    return ctx.client("sagemaker").describe_model(ModelName=ident)


def _sm_model(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    sagemaker = ctx.client("sagemaker")
    name = reg.physical(max_len=63)
    request = drop_empty(
        {
            "ModelName": name,
            "ExecutionRoleArn": reg.require("executionRoleArn"),
            "PrimaryContainer": _container(reg.get("primaryContainer"))
            if reg.get("primaryContainer")
            else None,
            "Containers": [_container(c) for c in reg.get("containers", [])],
            "VpcConfig": pascal(reg.get("vpcConfig"), _MODEL_RENAMES),
            "Tags": tag_list(reg.get("tags")),
        }
    )
    if reg.get("enableNetworkIsolation"):
        ctx.note(
            reg,
            "enableNetworkIsolation dropped: moto does not store it (the sandbox runs "
            "no containers)",
        )
    if reg.get("inferenceExecutionConfig"):
        ctx.note(reg, "inferenceExecutionConfig dropped: moto does not store it")
    found = exists(lambda: sagemaker.describe_model(ModelName=name), "ValidationException")
    if found is not None:
        same = all(found.get(k) == v for k, v in request.items() if k not in ("Tags",))
        if same:
            return name, {"name": name, "arn": found["ModelArn"]}
        ctx.note(reg, "model changed: replaced (SageMaker models are immutable)")
        sagemaker.delete_model(ModelName=name)
    arn = sagemaker.create_model(**request)["ModelArn"]
    return name, {"name": name, "arn": arn}


_VARIANT_RENAMES = {
    "memorySizeInMb": "MemorySizeInMB",
    "volumeSizeInGb": "VolumeSizeInGB",
    "s3OutputPath": "S3OutputPath",
    "s3FailurePath": "S3FailurePath",
}
_VARIANT_DROPPED = (
    "coreDumpConfig",
    "enableSsmAccess",
    "inferenceAmiVersion",
    "managedInstanceScaling",
    "routingConfigs",
    "acceleratorType",
)


def _variant(ctx: RealizeContext, reg: Registration, variant: Mapping[str, Any]) -> dict[str, Any]:
    kept = dict(variant)
    for key in _VARIANT_DROPPED:
        if kept.pop(key, None) is not None:
            ctx.note(
                reg, f"variant {variant.get('variantName')}: {key} dropped (moto does not store it)"
            )
    shaped: dict[str, Any] = pascal(kept, _VARIANT_RENAMES)
    if "ServerlessConfig" in shaped:  # a serverless variant has no instances
        shaped.pop("InstanceType", None)
        shaped.pop("InitialInstanceCount", None)
    return shaped


def _read_endpoint_config(ctx: RealizeContext, ident: str, _: Mapping[str, Any]) -> Any:
    return ctx.client("sagemaker").describe_endpoint_config(EndpointConfigName=ident)


def _sm_endpoint_config(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    sagemaker = ctx.client("sagemaker")
    name = reg.physical(max_len=63)
    capture = reg.get("dataCaptureConfig")
    request = drop_empty(
        {
            "EndpointConfigName": name,
            "ProductionVariants": [
                _variant(ctx, reg, v) for v in reg.require("productionVariants")
            ],
            "DataCaptureConfig": pascal(capture) if capture else None,
            "AsyncInferenceConfig": pascal(reg.get("asyncInferenceConfig"), _VARIANT_RENAMES)
            if reg.get("asyncInferenceConfig")
            else None,
            "KmsKeyId": reg.get("kmsKeyArn"),
            "Tags": tag_list(reg.get("tags")),
        }
    )
    if capture and "EnableCapture" not in request["DataCaptureConfig"]:
        request["DataCaptureConfig"]["EnableCapture"] = True  # the provider's default
    for dropped in ("shadowProductionVariants", "executionRoleArn"):
        if reg.get(dropped):
            ctx.note(reg, f"{dropped} dropped: moto does not store it")
    found = exists(
        lambda: sagemaker.describe_endpoint_config(EndpointConfigName=name), "ValidationException"
    )
    if found is not None:
        if found.get("ProductionVariants") == request["ProductionVariants"]:
            return name, {"name": name, "arn": found["EndpointConfigArn"]}
        ctx.note(reg, "endpoint configuration changed: replaced (they are immutable)")
        sagemaker.delete_endpoint_config(EndpointConfigName=name)
    arn = sagemaker.create_endpoint_config(**request)["EndpointConfigArn"]
    return name, {"name": name, "arn": arn}


def _read_endpoint(ctx: RealizeContext, ident: str, _: Mapping[str, Any]) -> Any:
    return ctx.client("sagemaker").describe_endpoint(EndpointName=ident)


def _sm_endpoint(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    sagemaker = ctx.client("sagemaker")
    name = reg.physical(max_len=63)
    config = str(reg.require("endpointConfigName"))
    if reg.get("deploymentConfig"):
        ctx.note(
            reg,
            "deploymentConfig (blue/green, auto-rollback alarms) dropped: moto has no "
            "UpdateEndpoint, so there is no deployment to guard (the lifecycle's deploy "
            "re-creates the endpoint on the new configuration)",
        )
    found = exists(lambda: sagemaker.describe_endpoint(EndpointName=name), "ValidationException")
    if found is not None:
        if found.get("EndpointConfigName") == config:
            return name, {"name": name, "arn": found["EndpointArn"]}
        ctx.note(
            reg, "endpoint configuration changed: endpoint recreated (moto has no UpdateEndpoint)"
        )
        sagemaker.delete_endpoint(EndpointName=name)
    arn = sagemaker.create_endpoint(
        EndpointName=name, EndpointConfigName=config, Tags=tag_list(reg.get("tags"))
    )["EndpointArn"]
    return name, {"name": name, "arn": arn}


def _read_pipeline(ctx: RealizeContext, ident: str, _: Mapping[str, Any]) -> Any:
    return ctx.client("sagemaker").describe_pipeline(PipelineName=ident)


def _sm_pipeline(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    sagemaker = ctx.client("sagemaker")
    name = str(reg.require("pipelineName"))
    location = reg.get("pipelineDefinitionS3Location")
    request = drop_empty(
        {
            "PipelineName": name,
            "PipelineDisplayName": reg.get("pipelineDisplayName"),
            "PipelineDefinition": reg.get("pipelineDefinition"),
            "PipelineDefinitionS3Location": pascal(location) if location else None,
            "PipelineDescription": reg.get("pipelineDescription"),
            "RoleArn": reg.require("roleArn"),
            "ParallelismConfiguration": pascal(reg.get("parallelismConfiguration")),
        }
    )
    found = exists(lambda: sagemaker.describe_pipeline(PipelineName=name), "ValidationException")
    if found is None:
        sagemaker.create_pipeline(**request, Tags=tag_list(reg.get("tags")))
    else:
        changed = {
            k: v
            for k, v in request.items()
            if k != "PipelineDefinitionS3Location"
            and not (same_json(found.get(k), v) if k == "PipelineDefinition" else found.get(k) == v)
        }
        if changed or location:
            sagemaker.update_pipeline(**request)
    return name, _pipeline_state(ctx, name)


# --- the registry entries

SERVICE = Service(
    owns=("sagemaker",),
    types=(
        AwsType(
            "aws:sagemaker/modelPackageGroup:ModelPackageGroup",
            fake=_fake_sagemaker,
            realize=_package_group,
            read=_read_package_group,
            # SageMaker has no call that updates a group's description: the provider replaces it
            force_new=frozenset({"modelPackageGroupName", "modelPackageGroupDescription"}),
        ),
        AwsType(
            "aws:sagemaker/model:Model", fake=_fake_sagemaker, realize=_sm_model, read=_read_model
        ),
        AwsType(
            "aws:sagemaker/endpointConfiguration:EndpointConfiguration",
            fake=_fake_sagemaker,
            realize=_sm_endpoint_config,
            read=_read_endpoint_config,
        ),
        AwsType(
            "aws:sagemaker/endpoint:Endpoint",
            fake=_fake_sagemaker,
            realize=_sm_endpoint,
            read=_read_endpoint,
            force_new=frozenset({"name"}),
        ),
        AwsType(
            "aws:sagemaker/pipeline:Pipeline",
            fake=_fake_pipeline,
            realize=_sm_pipeline,
            read=_read_pipeline,
        ),
    ),
)
