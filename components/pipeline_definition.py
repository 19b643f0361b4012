"""The SageMaker Pipeline definition of a model, as a dict (pure: no resources are made here).

`pipeline_definition(args, roles)` builds the JSON document (`Version` 2020-12-01) that
`components.model_pipeline.ModelPipeline` hands to `aws.sagemaker.Pipeline` through
`Output.json_dumps`: the values may be Pulumi inputs (bucket names, ARNs, subnet ids), which
`json_dumps` resolves; with plain strings the dict is plain JSON, which is how the tests read it.

Steps: Window -> Curate -> Features -> Train -> Evaluate -> GatePassed (Condition) -> Register |
GateRefused (Fail). Every Processing and Training request is the CreateProcessingJob /
CreateTrainingJob request without its name: the platform image, `python3 -m ml.pipeline
<command>`, its own role, the private subnets, volume and outputs under the lake key, and the model
the step runs in its environment (`ml.contracts.MODEL_ENV`). Work files
live at `s3://<models>/<artifacts prefix>/pipeline/<execution id>/<command>/`, so one execution's
files sit together and each step's role is scoped to the directories it reads and writes.

Names the three parts share (step names, parameters, container paths, property file) come from
`ml.contracts`; what only the definition and the roles share (a step's work directory) is here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ml.contracts import (
    BASELINE_FILE,
    COMMAND_CURATE,
    COMMAND_EVALUATE,
    COMMAND_FEATURES,
    COMMAND_TRAIN,
    COMMAND_WINDOW,
    EVALUATION_OUTPUT,
    EVALUATION_OUTPUT_PATH,
    FEATURES_CHANNEL,
    GATE_FILE,
    GATE_PROPERTY_FILE,
    LINEAGE_FILE,
    METRICS_FILE,
    MODEL_ENV,
    MODEL_INPUT_PATH,
    PARAM_APPROVAL_STATUS,
    PARAM_SEARCH,
    PARAM_WINDOW_DAYS,
    PARAM_WINDOW_END,
    PARAM_WINDOW_START,
    PARTITIONS_CHANNEL,
    PIPELINE_DEFINITION_VERSION,
    PIPELINE_ENTRYPOINT,
    PIPELINE_ROOT,
    SEARCH_HYPERPARAMETER,
    STEP_CURATE,
    STEP_EVALUATE,
    STEP_FEATURES,
    STEP_GATE,
    STEP_REFUSED,
    STEP_REGISTER,
    STEP_TRAIN,
    STEP_WINDOW,
    WORK_INPUT_PATH,
    WORK_OUTPUT,
    WORK_OUTPUT_PATH,
    register_metadata,
)
from ml.images import image_uri
from ml.models import pipeline_parameter, spec

if TYPE_CHECKING:
    import pulumi

    from components.model_pipeline import ModelPipelineArgs

# The step kinds, each with its own role and work directory: the `ml.pipeline` commands.
STEP_KINDS: tuple[str, ...] = (
    COMMAND_WINDOW,
    COMMAND_CURATE,
    COMMAND_FEATURES,
    COMMAND_TRAIN,
    COMMAND_EVALUATE,
)

TRAINING_SEED = "0"
# ml.registry's (components import only ml's contracts; a test keeps them equal).
SUPPORTED_CONTENT_TYPES = ("application/json", "text/csv")
SERVING_PROGRAM = "inference.py"

CHECKPOINT_DIR = "checkpoints"  # under the train directory: spot checkpoints
CHECKPOINT_LOCAL_PATH = "/opt/ml/checkpoints"
JSON = "application/json"
EXECUTION_ID = {"Get": "Execution.PipelineExecutionId"}


def get(name: str) -> dict[str, str]:
    """A reference: `Parameters.X`, `Execution.X`, `Steps.X....`."""
    return {"Get": name}


def param(name: str) -> dict[str, str]:
    return get(f"Parameters.{name}")


def join(*values: Any, on: str = "/") -> dict[str, Any]:
    return {"Std:Join": {"On": on, "Values": list(values)}}


def gate_report(path: str) -> dict[str, Any]:
    """A value of the evaluate step's property file (the gate report)."""
    return {
        "Std:JsonGet": {
            "PropertyFile": get(f"Steps.{STEP_EVALUATE}.PropertyFiles.{GATE_PROPERTY_FILE}"),
            "Path": path,
        }
    }


def output_uri(step: str, output: str) -> dict[str, str]:
    """The S3 URI a Processing step uploaded one of its outputs to."""
    return get(f"Steps.{step}.ProcessingOutputConfig.Outputs['{output}'].S3Output.S3Uri")


def work_root(artifacts_prefix: str) -> str:
    """The models-bucket prefix (no slashes at the ends) every execution's directory is under."""
    return f"{artifacts_prefix.strip('/')}/{PIPELINE_ROOT}"


def work_pattern(artifacts_prefix: str, kind: str) -> str:
    """Every execution's directory of one step kind: `<root>/*/<kind>` (an IAM/S3 pattern)."""
    return f"{work_root(artifacts_prefix)}/*/{kind}"


def parameters(args: ModelPipelineArgs) -> list[dict[str, str]]:
    defaults = {
        PARAM_WINDOW_START: "",
        PARAM_WINDOW_END: "",
        PARAM_WINDOW_DAYS: str(args.window_days),
        PARAM_APPROVAL_STATUS: args.approval_status,
        # the Train step cross-validates the model's search space first (`ml.tuning`)
        PARAM_SEARCH: "true",
        **{
            pipeline_parameter(name): default
            for name, default in spec(args.model).pipeline_hyperparameters.items()
        },
    }
    return [{"Name": k, "Type": "String", "DefaultValue": v} for k, v in defaults.items()]


def pipeline_definition(
    args: ModelPipelineArgs, roles: Mapping[str, pulumi.Input[str]]
) -> dict[str, Any]:
    """The whole definition; `roles` holds each step kind's role ARN (`STEP_KINDS`)."""
    missing = [k for k in STEP_KINDS if k not in roles]
    if missing:
        raise ValueError(f"pipeline_definition: no role for step kind(s) {missing}")
    build = _Steps(args, roles)
    return {
        "Version": PIPELINE_DEFINITION_VERSION,
        "Metadata": {},
        "Parameters": parameters(args),
        # No PipelineExperimentConfig: the execution's lineage is the registry's metadata, and an
        # experiment per pipeline would need experiment and trial rights for the pipeline role.
        "Steps": [
            build.window(),
            build.curate(),
            build.features(),
            build.train(),
            build.evaluate(),
            build.gate(),
        ],
    }


class _Steps:
    """One method per step; the shared request parts are built once here."""

    def __init__(self, args: ModelPipelineArgs, roles: Mapping[str, pulumi.Input[str]]) -> None:
        self.args = args
        self.roles = roles
        self.vpc = {"Subnets": args.subnet_ids, "SecurityGroupIds": list(args.security_group_ids)}

    def work_dir(self, kind: str, *under: str) -> dict[str, Any]:
        """`s3://<models>/<prefix>/pipeline/<execution id>/<kind>[/<under>...]`."""
        a = self.args
        root = work_root(a.artifacts_prefix)
        return join("s3:/", a.models_bucket_name, root, EXECUTION_ID, kind, *under)

    # --- Processing -----------------------------------------------------------------------

    def processing(
        self,
        name: str,
        kind: str,
        arguments: Sequence[Any],
        *,
        inputs: Sequence[dict[str, Any]] = (),
        output: tuple[str, str] = (WORK_OUTPUT, WORK_OUTPUT_PATH),
        instance_count: int = 1,
    ) -> dict[str, Any]:
        """A Processing step whose one output (OutputName, LocalPath) is uploaded to the step's
        work directory when the job ends."""
        a = self.args
        upload = {
            "OutputName": output[0],
            "S3Output": {
                "S3Uri": self.work_dir(kind),
                "LocalPath": output[1],
                "S3UploadMode": "EndOfJob",
            },
        }
        request: dict[str, Any] = {
            "ProcessingResources": {
                "ClusterConfig": {
                    "InstanceCount": instance_count,
                    "InstanceType": a.processing_instance_type,
                    "VolumeSizeInGB": a.volume_gb,
                    "VolumeKmsKeyId": a.kms_key_arn,
                }
            },
            "AppSpecification": {
                "ImageUri": a.image_uri,
                "ContainerEntrypoint": [*PIPELINE_ENTRYPOINT, kind],
                "ContainerArguments": list(arguments),
            },
            "RoleArn": self.roles[kind],
            "ProcessingInputs": list(inputs),
            "ProcessingOutputConfig": {"Outputs": [upload], "KmsKeyId": a.kms_key_arn},
            # Not network-isolated: the commands read and write the lake, the registry and
            # CloudWatch themselves (through the VPC endpoints), which an isolated container
            # cannot. Traffic between instances of a sharded step is encrypted.
            "NetworkConfig": {
                "EnableNetworkIsolation": False,
                "EnableInterContainerTrafficEncryption": True,
                "VpcConfig": self.vpc,
            },
            "StoppingCondition": {"MaxRuntimeInSeconds": a.processing_max_runtime_seconds},
            "Environment": {
                "AWS_DEFAULT_REGION": a.region,
                "PYTHONUNBUFFERED": "1",
                MODEL_ENV: a.model,
            },
        }
        if not inputs:
            del request["ProcessingInputs"]
        return {"Name": name, "Type": "Processing", "Arguments": request}

    @staticmethod
    def s3_input(name: str, uri: Any, local: str, *, sharded: bool = False) -> dict[str, Any]:
        return {
            "InputName": name,
            "S3Input": {
                "S3Uri": uri,
                "LocalPath": local,
                "S3DataType": "S3Prefix",
                "S3InputMode": "File",
                # sharded: each instance gets its share of the work items (one per partition)
                "S3DataDistributionType": "ShardedByS3Key" if sharded else "FullyReplicated",
            },
        }

    def window(self) -> dict[str, Any]:
        a = self.args
        return self.processing(
            STEP_WINDOW,
            COMMAND_WINDOW,
            [
                "--raw-bucket", a.raw_bucket_name,
                "--dataset", a.raw_dataset,
                "--start", param(PARAM_WINDOW_START),
                "--end", param(PARAM_WINDOW_END),
                "--days", param(PARAM_WINDOW_DAYS),
                "--as-of", get("Execution.StartDateTime"),
                "--out", WORK_OUTPUT_PATH,
            ],
        )  # fmt: skip

    def curate(self) -> dict[str, Any]:
        a = self.args
        return self.processing(
            STEP_CURATE,
            COMMAND_CURATE,
            [
                "--raw-bucket", a.raw_bucket_name,
                "--curated-bucket", a.curated_bucket_name,
                "--kms-key-arn", a.kms_key_arn,
                "--region", a.region,
                "--pipeline", a.pipeline_name,
                "--max-rejected-share", repr(float(a.max_rejected_share)),
                "--work", WORK_INPUT_PATH,
                "--out", WORK_OUTPUT_PATH,
            ],
            inputs=[
                self.s3_input(
                    WORK_OUTPUT,
                    output_uri(STEP_WINDOW, WORK_OUTPUT),
                    WORK_INPUT_PATH,
                    sharded=True,
                )
            ],
            instance_count=a.processing_instance_count,
        )  # fmt: skip

    def features(self) -> dict[str, Any]:
        a = self.args
        return self.processing(
            STEP_FEATURES,
            COMMAND_FEATURES,
            [
                "--curated-bucket", a.curated_bucket_name,
                "--features-bucket", a.features_bucket_name,
                "--kms-key-arn", a.kms_key_arn,
                "--region", a.region,
                "--work", WORK_INPUT_PATH,
                "--out", WORK_OUTPUT_PATH,
            ],
            inputs=[
                self.s3_input(
                    WORK_OUTPUT,
                    output_uri(STEP_CURATE, WORK_OUTPUT),
                    WORK_INPUT_PATH,
                    sharded=True,
                )
            ],
            instance_count=a.processing_instance_count,
        )  # fmt: skip

    def evaluate(self) -> dict[str, Any]:
        a = self.args
        step = self.processing(
            STEP_EVALUATE,
            COMMAND_EVALUATE,
            [
                "--group", a.group_name,
                "--stack", a.stack,
                "--region", a.region,
                "--model", MODEL_INPUT_PATH,
                "--out", EVALUATION_OUTPUT_PATH,
            ],
            inputs=[
                self.s3_input(
                    "model", get(f"Steps.{STEP_TRAIN}.ModelArtifacts.S3ModelArtifacts"),
                    MODEL_INPUT_PATH,
                )
            ],
            output=(EVALUATION_OUTPUT, EVALUATION_OUTPUT_PATH),
        )  # fmt: skip
        step["PropertyFiles"] = [
            {
                "PropertyFileName": GATE_PROPERTY_FILE,
                "OutputName": EVALUATION_OUTPUT,
                "FilePath": GATE_FILE,
            }
        ]
        return step

    # --- Training -------------------------------------------------------------------------

    def train(self) -> dict[str, Any]:
        a = self.args
        output = self.work_dir(COMMAND_TRAIN)
        request: dict[str, Any] = {
            "AlgorithmSpecification": {
                "TrainingImage": a.image_uri,
                "TrainingInputMode": "File",
                "ContainerEntrypoint": [*PIPELINE_ENTRYPOINT, COMMAND_TRAIN],
            },
            "RoleArn": self.roles[COMMAND_TRAIN],
            "InputDataConfig": [
                _channel(PARTITIONS_CHANNEL, output_uri(STEP_FEATURES, WORK_OUTPUT), "File"),
                # only the files the command reads are fetched (the window's partitions)
                _channel(
                    FEATURES_CHANNEL,
                    join("s3:/", a.features_bucket_name, f"{a.features_prefix}/"),
                    "FastFile",
                ),
            ],
            "HyperParameters": {
                **{
                    name: param(pipeline_parameter(name))
                    for name in spec(a.model).pipeline_hyperparameters
                },
                "seed": TRAINING_SEED,
                SEARCH_HYPERPARAMETER: param(PARAM_SEARCH),
            },
            "OutputDataConfig": {"S3OutputPath": output, "KmsKeyId": a.kms_key_arn},
            "Environment": {MODEL_ENV: a.model},
            "ResourceConfig": {
                "InstanceCount": 1,
                "InstanceType": a.training_instance_type,
                "VolumeSizeInGB": a.volume_gb,
                "VolumeKmsKeyId": a.kms_key_arn,
            },
            "VpcConfig": self.vpc,
            "StoppingCondition": {"MaxRuntimeInSeconds": a.training_max_runtime_seconds},
            # The channels are all the command reads: no network.
            "EnableNetworkIsolation": True,
            "EnableInterContainerTrafficEncryption": True,
            "EnableManagedSpotTraining": a.training_use_spot,
        }
        if a.training_use_spot:
            request["StoppingCondition"]["MaxWaitTimeInSeconds"] = a.training_max_wait_seconds
            request["CheckpointConfig"] = {
                "S3Uri": self.work_dir(COMMAND_TRAIN, CHECKPOINT_DIR),
                "LocalPath": CHECKPOINT_LOCAL_PATH,
            }
        return {"Name": STEP_TRAIN, "Type": "Training", "Arguments": request}

    # --- the gate -------------------------------------------------------------------------

    def gate(self) -> dict[str, Any]:
        return {
            "Name": STEP_GATE,
            "Type": "Condition",
            "Arguments": {
                "Conditions": [
                    {"Type": "Equals", "LeftValue": gate_report("passed"), "RightValue": True}
                ],
                "IfSteps": [self.register()],
                "ElseSteps": [
                    {
                        "Name": STEP_REFUSED,
                        "Type": "Fail",
                        "Arguments": {"ErrorMessage": gate_report("message")},
                    }
                ],
            },
        }

    def register(self) -> dict[str, Any]:
        """CreateModelPackage, as `ml.registry.register_model` makes it, with the reports."""
        a = self.args
        evaluation = output_uri(STEP_EVALUATE, EVALUATION_OUTPUT)

        def report(name: str) -> dict[str, Any]:
            return {"ContentType": JSON, "S3Uri": join(evaluation, name)}

        metadata: dict[str, Any] = {
            name: gate_report(f"metadata.{key}")
            for name, key in register_metadata(spec(a.model).metrics).items()
        }
        metadata["pipeline-execution"] = get("Execution.PipelineExecutionArn")
        metadata["lineage"] = join(evaluation, LINEAGE_FILE)
        metadata["gate"] = "passed"
        return {
            "Name": STEP_REGISTER,
            "Type": "RegisterModel",
            "Arguments": {
                "ModelPackageGroupName": a.group_name,
                "ModelPackageDescription": f"Trained by SageMaker pipeline {a.pipeline_name}",
                "ModelApprovalStatus": param(PARAM_APPROVAL_STATUS),
                "InferenceSpecification": {
                    "Containers": [
                        {
                            "Image": image_uri(spec(a.model).framework, a.region),
                            "ModelDataUrl": get(
                                f"Steps.{STEP_TRAIN}.ModelArtifacts.S3ModelArtifacts"
                            ),
                            "Environment": {"SAGEMAKER_PROGRAM": SERVING_PROGRAM},
                        }
                    ],
                    "SupportedContentTypes": list(SUPPORTED_CONTENT_TYPES),
                    "SupportedResponseMIMETypes": list(SUPPORTED_CONTENT_TYPES),
                },
                "ModelMetrics": {
                    "ModelQuality": {
                        "Statistics": report(METRICS_FILE),
                        "Constraints": report(GATE_FILE),
                    },
                    "ModelDataQuality": {"Statistics": report(BASELINE_FILE)},
                },
                "CustomerMetadataProperties": metadata,
            },
        }


def _channel(name: str, uri: Any, mode: str) -> dict[str, Any]:
    return {
        "ChannelName": name,
        "DataSource": {
            "S3DataSource": {
                "S3DataType": "S3Prefix",
                "S3Uri": uri,
                "S3DataDistributionType": "FullyReplicated",
            }
        },
        "InputMode": mode,
    }


def steps_of(definition: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every step, those inside a Condition's branches included, in definition order."""
    found: list[dict[str, Any]] = []
    for step in definition.get("Steps", []):
        found.append(step)
        if step.get("Type") == "Condition":
            arguments = step.get("Arguments", {})
            found += steps_of({"Steps": arguments.get("IfSteps", [])})
            found += steps_of({"Steps": arguments.get("ElseSteps", [])})
    return found
