"""A model's SageMaker Pipeline: curate -> features -> train -> evaluate -> register, scheduled
and paged.

The definition (`components.pipeline_definition`) runs the platform image's `python3 -m
ml.pipeline <command>` in each Processing and Training step; this component gives it what it runs
with:

* one role per step kind (window, curate, features, train, evaluate), trusting SageMaker for this
  account only, each scoped to the lake prefixes and work directories its step touches. SageMaker
  downloads a job's inputs and uploads its outputs *as the job's role*, so a step's role reads the
  work directory of the step before it and writes its own; every role writes its job's logs,
  places network interfaces in the platform's VPC only, pulls the platform image and uses the
  lake key (for S3 and, through grants for AWS resources, the job's volume);
* the pipeline's own role: start, watch and stop the jobs the pipeline names (`pipelines-*`),
  register versions of the model's group, and pass the step roles to SageMaker only;
* the schedule: an EventBridge rule (`schedule`, the retraining cadence) whose target starts the
  pipeline with a role that may start this pipeline only;
* the failure rule: SageMaker's "Pipeline Execution Status Change" events of this pipeline with
  status Failed, sent to the on-call topic. A curate step above the rejected-share threshold fails
  the execution, so it pages too. Its name is fixed (`failure_rule_name`), so the on-call topic's
  policy can name it before the rule exists (no dependency cycle).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components.drift_job import schedule_window_hours
from components.iam import (
    SAGEMAKER_ENI_ACTIONS,
    Statement,
    assume_role_policy,
    image_pull_statements,
    network_interface_statements,
    policy_document,
    prefix_arn,
    service_arn,
)
from components.names import default_pipeline_name, failure_rule_name
from components.pipeline_definition import (
    STEP_KINDS,
    pipeline_definition,
    work_pattern,
)
from ml.contracts import (
    COMMAND_CURATE,
    COMMAND_EVALUATE,
    COMMAND_FEATURES,
    COMMAND_TRAIN,
    COMMAND_WINDOW,
    GATE_FILE,
    METRICS_FILE,
    PARAM_WINDOW_DAYS,
    PIPELINE_NAMESPACE,
    REJECTED_ROOT,
)

__all__ = [
    "APPROVAL_STATUSES",
    "ModelPipeline",
    "ModelPipelineArgs",
    "default_pipeline_name",
    "failure_rule_name",
]

PIPELINE_NAME_PATTERN = r"[a-z0-9](-*[a-z0-9]){0,255}"
APPROVAL_STATUSES = ("PendingManualApproval", "Approved")
# SageMaker names the jobs of a pipeline execution `pipelines-<execution id>-<step>-<random>`.
JOB_NAME_PREFIX = "pipelines-"
PROCESSING_LOG_GROUP = "/aws/sagemaker/ProcessingJobs"
TRAINING_LOG_GROUP = "/aws/sagemaker/TrainingJobs"
TRAINING_METRICS_NAMESPACE = "/aws/sagemaker/TrainingJobs"
SAGEMAKER = "sagemaker.amazonaws.com"
FAILED_EVENT = "SageMaker Model Building Pipeline Execution Status Change"
MAX_PROCESSING_SECONDS = 777_600  # CreateProcessingJob's bound
MAX_TRAINING_SECONDS = 28 * 86400  # CreateTrainingJob's bound
# ml.lake commits a partition by its manifest (read, put) and removes the files it replaced.
LAKE_WRITE = ("s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload")


@dataclass(frozen=True, slots=True)
class ModelPipelineArgs:
    pipeline_name: str  # plain: the failure rule's name and the platform outputs follow from it
    stack: str  # the stack whose serving version the evaluate step compares with
    region: str
    # The model the steps run (`ml.models.<model>`, in every step's environment) and the datasets
    # they read and write: the raw dataset's name, and each dataset's key prefix in its zone's
    # bucket (the raw and curated datasets are shared by every model; the features are its own).
    model: str
    raw_dataset: str
    raw_prefix: str
    curated_prefix: str
    features_prefix: str
    schedule: str  # EventBridge rate(...) or cron(...): the retraining cadence
    # the platform image (`ml` installed) and its repository (pull permission)
    image_uri: pulumi.Input[str]
    image_repository_arn: pulumi.Input[str]
    raw_bucket_name: pulumi.Input[str]
    raw_bucket_arn: pulumi.Input[str]
    curated_bucket_name: pulumi.Input[str]
    curated_bucket_arn: pulumi.Input[str]
    features_bucket_name: pulumi.Input[str]
    features_bucket_arn: pulumi.Input[str]
    models_bucket_name: pulumi.Input[str]
    models_bucket_arn: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]  # the lake key: volumes, outputs, the lake's objects
    # the private network every step runs in
    vpc_id: pulumi.Input[str]
    subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    security_group_ids: Sequence[pulumi.Input[str]]
    # the registry: the group versions are registered in and its artifacts prefix (models bucket)
    group_name: pulumi.Input[str]
    artifacts_prefix: str
    topic_arn: pulumi.Input[str]  # on-call: failed executions page
    window_days: int = 30
    approval_status: str = "PendingManualApproval"
    max_rejected_share: float = 0.05
    processing_instance_type: str = "ml.m5.xlarge"
    processing_instance_count: int = 1  # curate and features (sharded); window and evaluate: 1
    processing_max_runtime_seconds: int = 4 * 3600
    volume_gb: int = 30
    training_instance_type: str = "ml.m5.xlarge"
    training_use_spot: bool = True
    training_max_runtime_seconds: int = 4 * 3600
    training_max_wait_seconds: int = 8 * 3600
    tags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problems = _name_problems(self) + _knob_problems(self)
        if problems:
            raise ValueError("ModelPipelineArgs: " + "; ".join(problems))


def _name_problems(a: ModelPipelineArgs) -> list[str]:
    problems = []
    if not re.fullmatch(PIPELINE_NAME_PATTERN, a.pipeline_name):
        problems.append(
            f"pipeline_name {a.pipeline_name!r}: 1-256 lower-case letters, digits and '-', "
            f"starting and ending with a letter or digit (e.g. "
            f"{default_pipeline_name('dev', 'churn')!r})"
        )
    if not a.stack:
        problems.append("stack: the name of the stack (the evaluate step compares with its model)")
    if not re.fullmatch(r"[a-z]{2}(-gov)?-[a-z]+-\d", a.region):
        problems.append(f"region {a.region!r}: an AWS region, e.g. 'us-east-1'")
    try:
        schedule_window_hours(a.schedule)
    except ValueError as exc:
        problems.append(str(exc))
    prefix = a.artifacts_prefix
    if not prefix or prefix != prefix.strip("/") or "*" in prefix:
        problems.append(
            f"artifacts_prefix {prefix!r}: a key prefix of the models bucket without slashes at "
            "the ends or '*' (e.g. 'models/ml-platform-dev-churn')"
        )
    if not a.security_group_ids:
        problems.append("security_group_ids: at least one group (the steps run in the VPC)")
    if not re.fullmatch(r"[a-z][a-z0-9]{1,19}", a.model):
        problems.append(f"model {a.model!r}: the name of a model package under ml/models/")
    for knob in ("raw_dataset", "raw_prefix", "curated_prefix", "features_prefix"):
        value = getattr(a, knob)
        if not value or value != value.strip("/") or "*" in value:
            problems.append(f"{knob} {value!r}: a key prefix without slashes at the ends or '*'")
    return problems


def _knob_problems(a: ModelPipelineArgs) -> list[str]:
    problems = []
    if not 1 <= a.window_days <= 3650:
        problems.append(f"window_days {a.window_days}: 1 to 3650")
    if a.approval_status not in APPROVAL_STATUSES:
        problems.append(f"approval_status {a.approval_status!r}: one of {APPROVAL_STATUSES}")
    if not 0 <= a.max_rejected_share <= 1:
        problems.append(f"max_rejected_share {a.max_rejected_share}: a share from 0 to 1")
    for knob in ("processing_instance_type", "training_instance_type"):
        value = getattr(a, knob)
        if not re.fullmatch(r"ml\.[a-z0-9]+\.[a-z0-9]+", value):
            problems.append(f"{knob} {value!r}: expected ml.<family>.<size>")
    if not 1 <= a.processing_instance_count <= 100:
        problems.append(f"processing_instance_count {a.processing_instance_count}: 1 to 100")
    if not 1 <= a.volume_gb <= 16384:
        problems.append(f"volume_gb {a.volume_gb}: 1 to 16384")
    if not 60 <= a.processing_max_runtime_seconds <= MAX_PROCESSING_SECONDS:
        problems.append(
            f"processing_max_runtime_seconds {a.processing_max_runtime_seconds}: 60 to "
            f"{MAX_PROCESSING_SECONDS}"
        )
    if not 60 <= a.training_max_runtime_seconds <= MAX_TRAINING_SECONDS:
        problems.append(
            f"training_max_runtime_seconds {a.training_max_runtime_seconds}: 60 to "
            f"{MAX_TRAINING_SECONDS}"
        )
    if a.training_use_spot and a.training_max_wait_seconds < a.training_max_runtime_seconds:
        problems.append(
            f"training_max_wait_seconds {a.training_max_wait_seconds}: at least "
            f"training_max_runtime_seconds ({a.training_max_runtime_seconds}) with spot training"
        )
    return problems


class ModelPipeline(pulumi.ComponentResource):
    """The pipeline, its roles, its schedule and its failure rule."""

    pipeline_name: pulumi.Output[str]
    pipeline_arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: ModelPipelineArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlplatform:training:ModelPipeline", name, None, opts)
        self.role_names: list[pulumi.Output[str]] = []  # every role made here (audited)
        self._name = name
        self._args = args
        self._tags = dict(args.tags)
        self._account = aws.get_caller_identity_output().account_id
        self._region = aws.get_region_output().region
        self._partition = aws.get_partition_output().partition
        step_roles, step_policies = self._step_roles()
        pipeline_role, pipeline_policy = self._pipeline_role(step_roles)
        pipeline = self._pipeline(pipeline_role, step_roles, [*step_policies, pipeline_policy])
        self._schedule(pipeline)
        self._failure_rule(pipeline)

        self.pipeline_name = pipeline.pipeline_name
        self.pipeline_arn = pipeline.arn
        self.register_outputs(
            {"pipeline_name": self.pipeline_name, "pipeline_arn": self.pipeline_arn}
        )

    # --- helpers --------------------------------------------------------------------------------

    def _arn(self, service: str, resource: pulumi.Input[str]) -> pulumi.Output[str]:
        return service_arn(self._partition, self._region, self._account, service, resource)

    def _role(self, role: str, service: str, description: str) -> aws.iam.Role:
        made = aws.iam.Role(
            f"{self._name}-{role}-role",
            assume_role_policy=assume_role_policy(service, source_account=self._account),
            description=description,
            tags=self._tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.role_names.append(made.name)
        return made

    def _policy(
        self, role: str, made: aws.iam.Role, statements: list[Statement]
    ) -> aws.iam.RolePolicy:
        return aws.iam.RolePolicy(
            f"{self._name}-{role}-policy",
            role=made.id,
            policy=policy_document(statements),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _group_arn(self) -> pulumi.Output[str]:
        return self._arn(
            "sagemaker", pulumi.Output.concat("model-package-group/", self._args.group_name)
        )

    def _versions_arn(self) -> pulumi.Output[str]:
        return self._arn(
            "sagemaker", pulumi.Output.concat("model-package/", self._args.group_name, "/*")
        )

    # --- the step roles -------------------------------------------------------------------------

    def _step_roles(self) -> tuple[dict[str, aws.iam.Role], list[aws.iam.RolePolicy]]:
        roles: dict[str, aws.iam.Role] = {}
        policies = []
        for kind in STEP_KINDS:
            roles[kind] = self._role(
                kind, SAGEMAKER, f"SageMaker pipeline {self._args.pipeline_name}: the {kind} step"
            )
            statements = self._data_statements(kind) + self._job_statements(kind)
            policies.append(self._policy(kind, roles[kind], statements))
        return roles, policies

    def _work_objects(self, kind: str) -> pulumi.Output[str]:
        """Every object of every execution's `kind` directory."""
        pattern = work_pattern(self._args.artifacts_prefix, kind)
        return pulumi.Output.concat(self._args.models_bucket_arn, "/", pattern, "/*")

    def _list(self, sid: str, bucket_arn: pulumi.Input[str], prefixes: Sequence[str]) -> Statement:
        """ListBucket on exactly these prefixes (each one and what is under it)."""
        patterns = sorted({p for prefix in prefixes for p in (prefix, f"{prefix}/*")})
        return Statement(
            ["s3:ListBucket"],
            [bucket_arn],
            sid=sid,
            conditions={"StringLike": {"s3:prefix": patterns}},
        )

    def _download(self, kind: str) -> list[Statement]:
        """What SageMaker needs, as the job's role, to download the `kind` step's work."""
        a, title = self._args, kind.title()
        return [
            self._list(
                f"List{title}Work", a.models_bucket_arn, [work_pattern(a.artifacts_prefix, kind)]
            ),
            Statement(["s3:GetObject"], [self._work_objects(kind)], sid=f"Read{title}Work"),
        ]

    def _upload(self, kind: str) -> Statement:
        """What SageMaker needs, as the job's role, to upload this step's output."""
        return Statement(
            ["s3:PutObject", "s3:AbortMultipartUpload"],
            [self._work_objects(kind)],
            sid=f"Write{kind.title()}Work",
        )

    def _data_statements(self, kind: str) -> list[Statement]:
        """The lake prefixes and work directories the step reads and writes, nothing else."""
        by_kind = {
            COMMAND_WINDOW: self._window_statements,
            COMMAND_CURATE: self._curate_statements,
            COMMAND_FEATURES: self._features_statements,
            COMMAND_TRAIN: self._train_statements,
            COMMAND_EVALUATE: self._evaluate_statements,
        }
        return by_kind[kind]()

    def _read(self, zone: str, bucket_arn: pulumi.Input[str], prefix: str) -> list[Statement]:
        """List and read one dataset of a lake zone."""
        return [
            self._list(f"List{zone}Dataset", bucket_arn, [prefix]),
            Statement(["s3:GetObject"], [prefix_arn(bucket_arn, prefix)], sid=f"Read{zone}Dataset"),
        ]

    def _window_statements(self) -> list[Statement]:
        a = self._args
        return [*self._read("Raw", a.raw_bucket_arn, a.raw_prefix), self._upload(COMMAND_WINDOW)]

    def _curate_statements(self) -> list[Statement]:
        a = self._args
        rejected = f"{REJECTED_ROOT}/{a.raw_prefix}"  # the refused rows, in the curated bucket
        return [
            *self._download(COMMAND_WINDOW),
            *self._read("Raw", a.raw_bucket_arn, a.raw_prefix),
            self._list("ListCuratedZone", a.curated_bucket_arn, [a.curated_prefix, rejected]),
            Statement(
                LAKE_WRITE,
                [prefix_arn(a.curated_bucket_arn, a.curated_prefix)],
                sid="WriteCuratedDataset",
            ),
            Statement(
                ["s3:PutObject", "s3:AbortMultipartUpload"],
                [prefix_arn(a.curated_bucket_arn, rejected)],
                sid="WriteRejectedRows",
            ),
            Statement(
                ["cloudwatch:PutMetricData"],
                ["*"],
                sid="RejectedRowMetrics",
                wildcard_reason="PutMetricData has no resource-level permissions",
                conditions={"StringEquals": {"cloudwatch:namespace": PIPELINE_NAMESPACE}},
            ),
            self._upload(COMMAND_CURATE),
        ]

    def _features_statements(self) -> list[Statement]:
        a = self._args
        return [
            *self._download(COMMAND_CURATE),
            *self._read("Curated", a.curated_bucket_arn, a.curated_prefix),
            self._list("ListFeaturesDataset", a.features_bucket_arn, [a.features_prefix]),
            Statement(
                LAKE_WRITE,
                [prefix_arn(a.features_bucket_arn, a.features_prefix)],
                sid="WriteFeaturesDataset",
            ),
            self._upload(COMMAND_FEATURES),
        ]

    def _train_statements(self) -> list[Statement]:
        a = self._args
        return [
            *self._download(COMMAND_FEATURES),  # the `partitions` channel
            *self._read("Features", a.features_bucket_arn, a.features_prefix),  # `features` channel
            # the model and, with spot training, the checkpoints (read back after a restart)
            self._list(
                "ListTrainWork",
                a.models_bucket_arn,
                [work_pattern(a.artifacts_prefix, COMMAND_TRAIN)],
            ),
            Statement(
                ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"],
                [self._work_objects(COMMAND_TRAIN)],
                sid="WriteTrainWork",
            ),
            Statement(
                ["cloudwatch:PutMetricData"],
                ["*"],
                sid="TrainingMetrics",
                wildcard_reason="PutMetricData has no resource-level permissions",
                conditions={"StringEquals": {"cloudwatch:namespace": TRAINING_METRICS_NAMESPACE}},
            ),
        ]

    def _evaluate_statements(self) -> list[Statement]:
        a = self._args
        return [
            *self._download(COMMAND_TRAIN),  # the candidate's model.tar.gz
            # The serving version's metrics: its ModelQuality statistics, wherever it was
            # registered from (a pipeline run's evaluation, or beside an uploaded model).
            Statement(
                ["s3:GetObject"],
                [pulumi.Output.concat(a.models_bucket_arn, "/*/", METRICS_FILE)],
                sid="ReadServingMetrics",
            ),
            Statement(
                ["sagemaker:DescribeModelPackageGroup"], [self._group_arn()], sid="ReadGroup"
            ),
            # which version serves the stack: the deploy history on the group's versions
            Statement(
                ["sagemaker:ListModelPackages", "sagemaker:DescribeModelPackage"],
                [self._versions_arn()],
                sid="ReadVersions",
            ),
            self._upload(COMMAND_EVALUATE),
        ]

    def _job_statements(self, kind: str) -> list[Statement]:
        """What every job needs: the lake key, its logs, its network interfaces, the image."""
        a = self._args
        group = TRAINING_LOG_GROUP if kind == COMMAND_TRAIN else PROCESSING_LOG_GROUP
        return [
            Statement(
                ["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
                [a.kms_key_arn],
                sid="LakeKey",
            ),
            Statement(
                ["kms:CreateGrant"],
                [a.kms_key_arn],
                sid="VolumeKeyGrant",
                conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}},
            ),
            Statement(
                ["logs:CreateLogGroup"],
                [self._arn("logs", f"log-group:{group}")],
                sid="JobLogGroup",
            ),
            Statement(
                ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                [self._arn("logs", f"log-group:{group}:log-stream:{JOB_NAME_PREFIX}*")],
                sid="JobLogStreams",
            ),
            *network_interface_statements(
                "JobNetworkInterfaces",
                SAGEMAKER_ENI_ACTIONS,
                partition=self._partition,
                region=self._region,
                account=self._account,
                vpc_id=a.vpc_id,
                security_group_ids=list(a.security_group_ids),
            ),
            *image_pull_statements(a.image_repository_arn, "PullPlatformImage"),
        ]

    # --- the pipeline ---------------------------------------------------------------------------

    def _pipeline_role(
        self, step_roles: Mapping[str, aws.iam.Role]
    ) -> tuple[aws.iam.Role, aws.iam.RolePolicy]:
        """Run the pipeline's jobs, register versions of the group, pass the step roles."""
        role = self._role("pipeline", SAGEMAKER, f"SageMaker pipeline {self._args.pipeline_name}")
        jobs = f"{JOB_NAME_PREFIX}*"
        statements = [
            Statement(
                [
                    "sagemaker:CreateProcessingJob",
                    "sagemaker:DescribeProcessingJob",
                    "sagemaker:StopProcessingJob",
                    "sagemaker:AddTags",
                ],
                [self._arn("sagemaker", f"processing-job/{jobs}")],
                sid="RunProcessingSteps",
            ),
            Statement(
                [
                    "sagemaker:CreateTrainingJob",
                    "sagemaker:DescribeTrainingJob",
                    "sagemaker:StopTrainingJob",
                    "sagemaker:AddTags",
                ],
                [self._arn("sagemaker", f"training-job/{jobs}")],
                sid="RunTrainingSteps",
            ),
            Statement(
                [
                    "sagemaker:CreateModelPackage",
                    "sagemaker:DescribeModelPackage",
                    "sagemaker:AddTags",
                ],
                [self._versions_arn()],
                sid="RegisterVersions",
            ),
            Statement(
                ["sagemaker:DescribeModelPackageGroup"], [self._group_arn()], sid="ReadGroup"
            ),
            # The service reads the evaluation's property file (JsonGet) as the pipeline's role.
            Statement(
                ["s3:GetObject"],
                [
                    pulumi.Output.concat(
                        self._args.models_bucket_arn,
                        "/",
                        work_pattern(self._args.artifacts_prefix, COMMAND_EVALUATE),
                        "/",
                        GATE_FILE,
                    )
                ],
                sid="ReadPropertyFiles",
            ),
            Statement(["kms:Decrypt"], [self._args.kms_key_arn], sid="PropertyFilesKey"),
            Statement(
                ["iam:PassRole"],
                [step_roles[k].arn for k in STEP_KINDS],
                sid="PassStepRoles",
                conditions={"StringEquals": {"iam:PassedToService": SAGEMAKER}},
            ),
        ]
        return role, self._policy("pipeline", role, statements)

    def _pipeline(
        self,
        role: aws.iam.Role,
        step_roles: Mapping[str, aws.iam.Role],
        policies: Sequence[pulumi.Resource],
    ) -> aws.sagemaker.Pipeline:
        a = self._args
        definition = pipeline_definition(a, {k: r.arn for k, r in step_roles.items()})
        return aws.sagemaker.Pipeline(
            f"{self._name}-pipeline",
            pipeline_name=a.pipeline_name,
            pipeline_display_name=a.pipeline_name,
            pipeline_description="Curate, features, train, evaluate against the serving "
            "version, register (ml.pipeline)",
            role_arn=role.arn,
            pipeline_definition=pulumi.Output.json_dumps(definition),
            tags=self._tags,
            # its roles may act before anything starts an execution
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(policies)),
        )

    # --- triggers and paging --------------------------------------------------------------------

    def _schedule(self, pipeline: aws.sagemaker.Pipeline) -> aws.cloudwatch.EventRule:
        a, child = self._args, pulumi.ResourceOptions(parent=self)
        role = self._role(
            "schedule", "events.amazonaws.com", f"Starts SageMaker pipeline {a.pipeline_name}"
        )
        policy = self._policy(
            "schedule",
            role,
            [Statement(["sagemaker:StartPipelineExecution"], [pipeline.arn], sid="StartPipeline")],
        )
        rule = aws.cloudwatch.EventRule(
            f"{self._name}-schedule",
            description=f"Retrains the model: starts SageMaker pipeline {a.pipeline_name}",
            schedule_expression=a.schedule,
            tags=self._tags,
            opts=child,
        )
        aws.cloudwatch.EventTarget(
            f"{self._name}-schedule-target",
            rule=rule.name,
            arn=pipeline.arn,
            role_arn=role.arn,
            sagemaker_pipeline_target=aws.cloudwatch.EventTargetSagemakerPipelineTargetArgs(
                # a scheduled run covers the window up to the day it starts
                pipeline_parameter_lists=[
                    aws.cloudwatch.EventTargetSagemakerPipelineTargetPipelineParameterListArgs(
                        name=PARAM_WINDOW_DAYS, value=str(a.window_days)
                    )
                ]
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]),
        )
        return rule

    def _failure_rule(self, pipeline: aws.sagemaker.Pipeline) -> aws.cloudwatch.EventRule:
        a, child = self._args, pulumi.ResourceOptions(parent=self)
        rule = aws.cloudwatch.EventRule(
            f"{self._name}-failed",
            name=failure_rule_name(a.pipeline_name),
            description=f"Pages on-call when an execution of SageMaker pipeline "
            f"{a.pipeline_name} fails",
            event_pattern=pulumi.Output.json_dumps(
                {
                    "source": ["aws.sagemaker"],
                    "detail-type": [FAILED_EVENT],
                    "detail": {
                        "currentPipelineExecutionStatus": ["Failed"],
                        "pipelineArn": [pipeline.arn],
                    },
                }
            ),
            tags=self._tags,
            opts=child,
        )
        aws.cloudwatch.EventTarget(
            f"{self._name}-failed-target",
            rule=rule.name,
            arn=a.topic_arn,
            input_transformer=aws.cloudwatch.EventTargetInputTransformerArgs(
                input_paths={"execution": "$.detail.pipelineExecutionArn"},
                input_template=f'"SageMaker pipeline {a.pipeline_name} (stack {a.stack}) failed: '
                "execution <execution>. `mlplat pipeline status` names the failing step and "
                'its reason."',
            ),
            opts=child,
        )
        return rule
