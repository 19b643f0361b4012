"""SageMaker Pipelines: every job a pipeline definition starts runs privately.

A pipeline definition (`pipelineDefinition`, JSON) lists its steps; a Condition step holds more
in its `IfSteps` and `ElseSteps`. The `Arguments` of a Processing step are a CreateProcessingJob
request and those of a Training step a CreateTrainingJob request (without the job name), so the
checks read the request fields by name:

* `sagemaker-pipeline-steps-private`: each Processing and Training step runs in the VPC (subnets
  and security groups: `NetworkConfig.VpcConfig` / `VpcConfig`), with its volume
  (`ProcessingResources.ClusterConfig.VolumeKmsKeyId` / `ResourceConfig.VolumeKmsKeyId`) and what
  SageMaker uploads (`ProcessingOutputConfig.KmsKeyId` when it has outputs /
  `OutputDataConfig.KmsKeyId`) encrypted with a KMS key the program names;
* `sagemaker-pipeline-traffic-encrypted`: a step that runs on more than one instance encrypts the
  traffic between them (`EnableInterContainerTrafficEncryption`). An instance count that is not a
  number (a pipeline parameter) may be more than one, so it needs the encryption too.

A value given as a reference (`{"Get": "Parameters.X"}`, `Std:Join`) counts as set: the
definition names it, the execution fills it in.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from policies.core import Context, PolicySpec, Resource, json_document, listify

PIPELINE = "aws:sagemaker/pipeline:Pipeline"
JOB_STEP_TYPES = ("Processing", "Training")


def pipeline_steps(definition: Any) -> Iterator[Mapping[str, Any]]:
    """Every step of a definition, the branches of Condition steps included."""
    if not isinstance(definition, Mapping):
        return
    for step in listify(definition.get("Steps")):
        if not isinstance(step, Mapping):
            continue
        yield step
        if step.get("Type") == "Condition":
            arguments = step.get("Arguments")
            if isinstance(arguments, Mapping):
                for branch in ("IfSteps", "ElseSteps"):
                    yield from pipeline_steps({"Steps": arguments.get(branch)})


def _at(value: Any, path: Sequence[str]) -> Any:
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _set(value: Any) -> bool:
    """Named by the definition: a non-empty value or a reference."""
    return value not in (None, "", [], {})


def _job_steps(resource: Resource) -> Iterator[tuple[str, str, Mapping[str, Any]]]:
    """(step name, step type, its request) of every Processing and Training step."""
    definition = json_document(
        resource.get("pipelineDefinition"), f".pipelineDefinition of {resource.where()}"
    )
    for step in pipeline_steps(definition):
        kind = step.get("Type")
        request = step.get("Arguments")
        if kind in JOB_STEP_TYPES and isinstance(request, Mapping):
            yield str(step.get("Name") or "?"), str(kind), request


def step_privacy_problems(kind: str, request: Mapping[str, Any]) -> list[str]:
    """What a Processing or Training request lacks to run in the VPC with KMS."""
    processing = kind == "Processing"
    vpc = _at(request, ("NetworkConfig", "VpcConfig") if processing else ("VpcConfig",))
    where = "NetworkConfig.VpcConfig" if processing else "VpcConfig"
    problems = []
    if not _set(vpc):
        problems.append(f"runs outside the VPC (no {where})")
    else:
        if not _set(_at(vpc, ("Subnets",))):
            problems.append(f"runs outside the VPC (no {where}.Subnets)")
        if not _set(_at(vpc, ("SecurityGroupIds",))):
            problems.append(f"has no security groups ({where}.SecurityGroupIds)")
    volume = (
        ("ProcessingResources", "ClusterConfig", "VolumeKmsKeyId")
        if processing
        else ("ResourceConfig", "VolumeKmsKeyId")
    )
    if not _set(_at(request, volume)):
        problems.append(f"its volume has no KMS key ({'.'.join(volume)})")
    if processing:
        outputs = _at(request, ("ProcessingOutputConfig", "Outputs"))
        if _set(outputs) and not _set(_at(request, ("ProcessingOutputConfig", "KmsKeyId"))):
            problems.append("its outputs have no KMS key (ProcessingOutputConfig.KmsKeyId)")
    elif not _set(_at(request, ("OutputDataConfig", "KmsKeyId"))):
        problems.append("its model artifacts have no KMS key (OutputDataConfig.KmsKeyId)")
    return problems


def check_steps_private(resource: Resource, _ctx: Context) -> Iterator[str]:
    for name, kind, request in _job_steps(resource):
        problems = step_privacy_problems(kind, request)
        if problems:
            yield f"{resource.where()}: {kind} step {name!r}: " + "; ".join(problems)


def check_traffic_encrypted(resource: Resource, _ctx: Context) -> Iterator[str]:
    for name, kind, request in _job_steps(resource):
        flag: tuple[str, ...]
        if kind == "Processing":
            count = _at(request, ("ProcessingResources", "ClusterConfig", "InstanceCount"))
            flag = ("NetworkConfig", "EnableInterContainerTrafficEncryption")
        else:
            count = _at(request, ("ResourceConfig", "InstanceCount"))
            flag = ("EnableInterContainerTrafficEncryption",)
        single = isinstance(count, int) and not isinstance(count, bool) and count <= 1
        if count is None or single or _at(request, flag) is True:
            continue
        yield (
            f"{resource.where()}: {kind} step {name!r} runs on {count!r} instances without "
            f"encrypting the traffic between them ({'.'.join(flag)} true)"
        )


POLICIES = (
    PolicySpec(
        name="sagemaker-pipeline-steps-private",
        description="Every Processing and Training step of a SageMaker pipeline runs in the VPC "
        "(subnets and security groups) with KMS-encrypted volumes and outputs.",
        enforcement="mandatory",
        severity="high",
        reference="AWS Security Hub SageMaker controls; CKV_AWS_367 (processing in VPC); "
        "Well-Architected ML Lens, security",
        types=(PIPELINE,),
        check=check_steps_private,
    ),
    PolicySpec(
        name="sagemaker-pipeline-traffic-encrypted",
        description="A SageMaker pipeline step on more than one instance encrypts the traffic "
        "between its instances.",
        enforcement="mandatory",
        severity="medium",
        reference="SageMaker developer guide: protect communications between ML compute "
        "instances in a distributed training job",
        types=(PIPELINE,),
        check=check_traffic_encrypted,
    ),
)
