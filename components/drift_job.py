"""The drift job, scheduled: EventBridge rule -> Step Functions -> SageMaker Processing job.

Why this shape: the drift job is the monitoring code of `ml/` (`python -m ml.drift`), and it runs on
managed compute that already exists for the platform (SageMaker Processing, the image the platform
builds), not on a home-made runner. An EventBridge rule cannot start a processing job itself, and an
EventBridge Scheduler universal target (`aws-sdk:sagemaker:createProcessingJob`) sends a static
request, so the second run would collide on the job name. A one-state Step Functions machine
(`arn:aws:states:::sagemaker:createProcessingJob.sync`) gives every run a unique job name
(`drift-<execution id>`), waits for the job and fails the execution when the job fails, which the
failure alarm here turns into a page. Standard workflow, one state: a few state transitions a run.

One job per model: drift, then online quality, training-serving skew and model age. Its role
reads only the model's prefixes of the predictions zone (its endpoint's capture, its prediction
logs, its quality reports), the training baseline and the served artifact (one key each of the
models bucket; the artifact's lineage, its age, travels inside it) and the labels (the outcomes
dataset's prefix of the raw bucket); writes only its prediction logs, drift reports and quality
reports; updates the metadata of its own package group's versions only (the online figures
beside the offline ones); and may put metrics only into the drift and quality namespaces
(`cloudwatch:namespace` condition). Its environment (`MLPLAT_DRIFT_*`,
`ml.drift.job.DriftJobConfig.to_env`) carries buckets, keys, endpoint, thresholds and window; the
window is one schedule period (`schedule_window_hours`).

The job runs in the stack's private subnets (S3 through the gateway endpoint, CloudWatch through
its interface endpoint) with its volume encrypted by the lake key. It is not network-isolated: the
job reads the capture and puts its metrics itself, which an isolated container cannot; it writes
only through the SDK (no processing output for SageMaker to upload), each object with SSE-KMS.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

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
from ml.contracts import (
    CAPTURE_ROOT,
    DRIFT_NAMESPACE,
    MODEL_ENV,
    QUALITY_NAMESPACE,
)
from ml.contracts import DRIFT_ENV_PREFIX as ENV_PREFIX
from ml.schema import CUSTOMER_OUTCOMES

JOB_NAME_PREFIX = "drift-"
STEP_FUNCTIONS_RULE = "StepFunctionsGetEventsForSageMakerProcessingJobsRule"
PROCESSING_LOG_GROUP = "/aws/sagemaker/ProcessingJobs"
ENTRYPOINT = ("python3", "-m", "ml.drift")
_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")


def schedule_window_hours(schedule: str) -> int:
    """Hours of capture one run covers: the rate's period rounded up to whole hours (cron: 24)."""
    match = _RATE.fullmatch(schedule)
    if match is None:
        if schedule.startswith("cron(") and schedule.endswith(")"):
            return 24
        raise ValueError(f"schedule {schedule!r}: expected rate(N unit) or cron(...)")
    n, unit = int(match.group(1)), match.group(2).rstrip("s")
    if n < 1:
        raise ValueError(f"schedule {schedule!r}: the rate must be at least 1")
    minutes = n * {"minute": 1, "hour": 60, "day": 1440}[unit]
    return max(1, math.ceil(minutes / 60))


@dataclass(frozen=True, slots=True)
class DriftJobArgs:
    schedule: str
    # An image with this repository's `ml` package installed (the platform's training image).
    image_uri: pulumi.Input[str]
    # The model whose endpoint the job watches (`ml.models.<model>`, in the job's environment).
    model: str
    endpoint_name: pulumi.Input[str]
    # The model's own key prefixes in the predictions bucket: its endpoint's capture
    # (`capture/<endpoint>`), its prediction logs (its predictions table) and its drift reports
    # (`drift-reports/<endpoint>`). The job reads and writes nothing else there.
    capture_prefix: str
    predictions_prefix: str
    report_prefix: str
    predictions_bucket_name: pulumi.Input[str]
    predictions_bucket_arn: pulumi.Input[str]
    models_bucket_name: pulumi.Input[str]
    models_bucket_arn: pulumi.Input[str]
    # Key of the training baseline in the models bucket (`ml.train.BASELINE_FILE` beside the model).
    baseline_key: str
    kms_key_arn: pulumi.Input[str]
    topic_arn: pulumi.Input[str]
    drift_psi_threshold: float
    log_retention_days: int
    variant_name: str = "primary"
    # ECR repository of `image_uri` (pull permission); None: the image needs no grant.
    image_repository_arn: pulumi.Input[str] | None = None
    # The private network the job runs in (its subnets and security groups); None: outside a VPC.
    vpc_id: pulumi.Input[str] | None = None
    subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]] | None = None
    security_group_ids: Sequence[pulumi.Input[str]] = ()
    instance_type: str = "ml.m5.large"
    volume_gb: int = 30
    max_runtime_seconds: int = 3600
    tags: Mapping[str, str] = field(default_factory=dict)
    # Online quality, skew and age (`ml.quality`, `ml.skew`), each configured when its inputs are
    # given (the job skips and says so otherwise). The served artifact (`model_key` in the models
    # bucket, its lineage inside it): skew re-scores through it, age reads its training time.
    model_key: str | None = None
    # The labels: the outcomes dataset's prefix of the raw bucket (`ml.schema.CUSTOMER_OUTCOMES`).
    labels_bucket_name: pulumi.Input[str] | None = None
    labels_bucket_arn: pulumi.Input[str] | None = None
    labels_prefix: str = CUSTOMER_OUTCOMES.prefix
    # The model's own prefix of the predictions bucket for quality reports (`quality-reports/<ep>`).
    quality_prefix: str | None = None
    # The model's package group: online figures go into its versions' metadata.
    model_package_group_arn: pulumi.Input[str] | None = None
    quality_margin: float = 0.05
    quality_lookback_days: int = 7
    skew_tolerance: float = 1e-6
    skew_sample: int = 1000

    @property
    def labels(self) -> bool:
        """Online quality is configured: labels to read and a prefix to write its reports to."""
        return self.labels_bucket_name is not None

    def __post_init__(self) -> None:
        problems = self._quality_problems()
        try:
            schedule_window_hours(self.schedule)
        except ValueError as exc:
            problems.append(str(exc))
        if not self.baseline_key or self.baseline_key.startswith("/"):
            problems.append(f"baseline_key {self.baseline_key!r}: a key inside the models bucket")
        if not self.drift_psi_threshold > 0:
            problems.append(f"drift_psi_threshold must be > 0, got {self.drift_psi_threshold}")
        if not re.fullmatch(r"ml\.[a-z0-9]+\.[a-z0-9]+", self.instance_type):
            problems.append(f"instance_type {self.instance_type!r}: expected ml.<family>.<size>")
        if not 1 <= self.volume_gb <= 16384:
            problems.append(f"volume_gb {self.volume_gb}: 1 to 16384")
        if not 60 <= self.max_runtime_seconds <= 5 * 86400:
            problems.append(f"max_runtime_seconds {self.max_runtime_seconds}: 60 to 432000")
        if self.log_retention_days <= 0:
            problems.append(f"log_retention_days must be > 0, got {self.log_retention_days}")
        if not re.fullmatch(r"[a-z][a-z0-9]{1,19}", self.model):
            problems.append(f"model {self.model!r}: the name of a model package under ml/models/")
        for knob in ("capture_prefix", "predictions_prefix", "report_prefix"):
            value = getattr(self, knob)
            if not value or value != value.strip("/") or "*" in value:
                problems.append(f"{knob} {value!r}: a key prefix without slashes at the ends")
        if problems:
            raise ValueError("DriftJobArgs: " + "; ".join(problems))

    def _quality_problems(self) -> list[str]:
        problems = []
        if (self.labels_bucket_name is None) != (self.labels_bucket_arn is None):
            problems.append("labels_bucket_name and labels_bucket_arn go together (the raw bucket)")
        if self.labels and self.quality_prefix is None:
            problems.append("quality_prefix: online quality writes its reports there (labels set)")
        for knob in ("labels_prefix", "quality_prefix"):
            value = getattr(self, knob)
            if value is not None and (not value or value != value.strip("/") or "*" in value):
                problems.append(f"{knob} {value!r}: a key prefix without slashes at the ends")
        if self.model_key is not None and (
            not self.model_key.endswith(".tar.gz") or self.model_key.startswith("/")
        ):
            problems.append(f"model_key {self.model_key!r}: the key of a model.tar.gz")
        if not self.quality_margin > 0:
            problems.append(f"quality_margin must be > 0, got {self.quality_margin}")
        if not 1 <= self.quality_lookback_days <= 365:
            problems.append(f"quality_lookback_days {self.quality_lookback_days}: 1 to 365")
        if not self.skew_tolerance >= 0:
            problems.append(f"skew_tolerance must be >= 0, got {self.skew_tolerance}")
        if not 1 <= self.skew_sample <= 1_000_000:
            problems.append(f"skew_sample {self.skew_sample}: 1 to 1000000")
        return problems


class DriftJob(pulumi.ComponentResource):
    """Schedule, state machine, roles, log group and failure alarm of the drift job."""

    state_machine_arn: pulumi.Output[str]
    job_role_arn: pulumi.Output[str]
    rule_name: pulumi.Output[str]

    def __init__(
        self, name: str, args: DriftJobArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlplatform:monitoring:DriftJob", name, None, opts)
        self.role_names: list[pulumi.Output[str]] = []  # every role made here (audited)
        self._name = name
        self._args = args
        self._tags = dict(args.tags)
        self._account = aws.get_caller_identity_output().account_id
        self._region = aws.get_region_output().region
        self._partition = aws.get_partition_output().partition
        job_role = self._job_role()
        machine = self._state_machine(job_role)
        rule = self._schedule(machine)
        self._failure_alarm(machine)

        self.state_machine_arn = machine.arn
        self.job_role_arn = job_role.arn
        self.rule_name = rule.name
        self.register_outputs(
            {
                "state_machine_arn": self.state_machine_arn,
                "job_role_arn": self.job_role_arn,
                "rule_name": self.rule_name,
            }
        )

    # --- builders -------------------------------------------------------------------------------

    def _arn(self, service: str, resource: str) -> pulumi.Output[str]:
        return service_arn(self._partition, self._region, self._account, service, resource)

    def _role(self, role: str, service: str) -> aws.iam.Role:
        made = aws.iam.Role(
            f"{self._name}-{role}",
            assume_role_policy=assume_role_policy(service, source_account=self._account),
            tags=self._tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.role_names.append(made.name)
        return made

    def _job_role(self) -> aws.iam.Role:
        """Read predictions and the baseline, write logs and reports, put the drift metrics."""
        job_role = self._role("job-role", "sagemaker.amazonaws.com")
        aws.iam.RolePolicy(
            f"{self._name}-job-policy",
            role=job_role.id,
            policy=policy_document(self._job_statements()),
            opts=pulumi.ResourceOptions(parent=self),
        )
        return job_role

    def _job_statements(self) -> list[Statement]:
        args = self._args
        predictions = args.predictions_bucket_arn
        statements = [
            Statement(
                ["s3:ListBucket"],
                [predictions],
                sid="ListPredictionsZone",
                conditions={"StringLike": {"s3:prefix": self._listed_prefixes()}},
            ),
            Statement(
                ["s3:GetObject"],
                [
                    prefix_arn(predictions, args.capture_prefix),
                    prefix_arn(predictions, args.predictions_prefix),
                ],
                sid="ReadCaptureAndPredictionLogs",
            ),
            Statement(
                ["s3:GetObject"],
                [pulumi.Output.concat(args.models_bucket_arn, "/", args.baseline_key)],
                sid="ReadTrainingBaseline",
            ),
            # ml.lake replaces a day's partition whole: it puts the new files, then deletes the old.
            Statement(
                ["s3:PutObject", "s3:DeleteObject"],
                [prefix_arn(predictions, args.predictions_prefix)],
                sid="WritePredictionLogs",
            ),
            Statement(
                ["s3:PutObject"],
                [prefix_arn(predictions, args.report_prefix)],
                sid="WriteDriftReports",
            ),
            Statement(["kms:Decrypt", "kms:GenerateDataKey"], [args.kms_key_arn], sid="LakeKey"),
            Statement(
                ["cloudwatch:PutMetricData"],
                ["*"],
                wildcard_reason="PutMetricData has no resource-level permissions",
                conditions={"StringEquals": {"cloudwatch:namespace": self._namespaces()}},
            ),
            Statement(
                ["logs:CreateLogGroup"],
                [self._arn("logs", f"log-group:{PROCESSING_LOG_GROUP}")],
                sid="ProcessingLogGroup",
            ),
            Statement(
                ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                [
                    self._arn(
                        "logs", f"log-group:{PROCESSING_LOG_GROUP}:log-stream:{JOB_NAME_PREFIX}*"
                    )
                ],
                sid="ProcessingLogStreams",
            ),
        ]
        statements += self._quality_statements()
        if args.vpc_id is not None:
            statements += network_interface_statements(
                "JobNetworkInterfaces",
                SAGEMAKER_ENI_ACTIONS,
                partition=self._partition,
                region=self._region,
                account=self._account,
                vpc_id=args.vpc_id,
                security_group_ids=list(args.security_group_ids),
            )
        if args.image_repository_arn is not None:
            statements += image_pull_statements(args.image_repository_arn, "PullImage")
        return statements

    def _listed_prefixes(self) -> list[str]:
        """What the job lists in the predictions bucket: its capture, its prediction logs and,
        with online quality, its quality reports."""
        args = self._args
        prefixes = [args.capture_prefix, args.predictions_prefix]
        if args.labels and args.quality_prefix is not None:
            prefixes.append(args.quality_prefix)
        return [f"{p}/*" for p in prefixes]

    def _namespaces(self) -> str | list[str]:
        """The metric namespaces the job puts into: drift's, and quality's once it measures any
        of online quality, skew or age."""
        args = self._args
        if args.labels or args.model_key is not None:
            return [DRIFT_NAMESPACE, QUALITY_NAMESPACE]
        return DRIFT_NAMESPACE

    def _quality_statements(self) -> list[Statement]:
        """Online quality, skew and age: the served artifact (one key: its lineage travels inside
        it), the labels (the outcomes dataset's prefix of the raw bucket), the model's own quality
        reports (a lake dataset: its day's partition is rewritten whole, and the job reads the
        history back for its page), and the metadata of its own package group's versions."""
        args = self._args
        statements = []
        if args.model_key is not None:
            statements.append(
                Statement(
                    ["s3:GetObject"],
                    [pulumi.Output.concat(args.models_bucket_arn, "/", args.model_key)],
                    sid="ReadServedModel",
                )
            )
        if args.labels_bucket_arn is not None and args.quality_prefix is not None:
            labels, predictions = args.labels_bucket_arn, args.predictions_bucket_arn
            statements += [
                Statement(
                    ["s3:ListBucket"],
                    [labels],
                    sid="ListLabels",
                    conditions={"StringLike": {"s3:prefix": [f"{args.labels_prefix}/*"]}},
                ),
                Statement(
                    ["s3:GetObject"], [prefix_arn(labels, args.labels_prefix)], sid="ReadLabels"
                ),
                Statement(
                    ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                    [prefix_arn(predictions, args.quality_prefix)],
                    sid="QualityReports",
                ),
            ]
        if args.model_package_group_arn is not None:
            # `.../model-package-group/<group>` -> its versions `.../model-package/<group>/<n>`
            versions = pulumi.Output.from_input(args.model_package_group_arn).apply(
                lambda arn: arn.replace(":model-package-group/", ":model-package/", 1) + "/*"
            )
            statements.append(
                Statement(
                    ["sagemaker:DescribeModelPackage", "sagemaker:UpdateModelPackage"],
                    [versions],
                    sid="OwnVersionsOnlineMetadata",
                )
            )
        return statements

    def _state_machine(self, job_role: aws.iam.Role) -> aws.sfn.StateMachine:
        """One state: start the processing job, wait for it, fail when it fails."""
        name, args, child = self._name, self._args, pulumi.ResourceOptions(parent=self)
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-log-group",
            name_prefix="/aws/vendedlogs/states/mlplatform-drift-",
            retention_in_days=args.log_retention_days,
            kms_key_id=args.kms_key_arn,
            tags=self._tags,
            opts=child,
        )
        machine_role = self._role("machine-role", "states.amazonaws.com")
        aws.iam.RolePolicy(
            f"{name}-machine-policy",
            role=machine_role.id,
            policy=policy_document(self._machine_statements(job_role)),
            opts=child,
        )
        return aws.sfn.StateMachine(
            f"{name}-machine",
            role_arn=machine_role.arn,
            type="STANDARD",
            definition=self._definition(job_role),
            logging_configuration=aws.sfn.StateMachineLoggingConfigurationArgs(
                level="ERROR",
                include_execution_data=False,
                log_destination=pulumi.Output.concat(log_group.arn, ":*"),
            ),
            tags=self._tags,
            opts=child,
        )

    def _machine_statements(self, job_role: aws.iam.Role) -> list[Statement]:
        return [
            Statement(
                [
                    "sagemaker:CreateProcessingJob",
                    "sagemaker:DescribeProcessingJob",
                    "sagemaker:StopProcessingJob",
                    "sagemaker:AddTags",
                ],
                [self._arn("sagemaker", f"processing-job/{JOB_NAME_PREFIX}*")],
                sid="RunDriftProcessingJobs",
            ),
            Statement(
                ["iam:PassRole"],
                [job_role.arn],
                sid="PassJobRole",
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            ),
            # `.sync` waits on the job through this managed rule (Step Functions makes it).
            Statement(
                ["events:PutTargets", "events:PutRule", "events:DescribeRule"],
                [self._arn("events", f"rule/{STEP_FUNCTIONS_RULE}")],
                sid="SyncRule",
            ),
            Statement(
                [
                    "logs:CreateLogDelivery",
                    "logs:GetLogDelivery",
                    "logs:UpdateLogDelivery",
                    "logs:DeleteLogDelivery",
                    "logs:ListLogDeliveries",
                    "logs:PutResourcePolicy",
                    "logs:DescribeResourcePolicies",
                    "logs:DescribeLogGroups",
                ],
                ["*"],
                wildcard_reason="CloudWatch Logs vended log delivery has no resource-level "
                "permissions",
            ),
        ]

    def _definition(self, job_role: aws.iam.Role) -> pulumi.Output[str]:
        """The state machine: a processing job named after the execution (a unique job name)."""
        args = self._args
        config_env = {
            f"{ENV_PREFIX}PREDICTIONS_BUCKET": args.predictions_bucket_name,
            f"{ENV_PREFIX}MODELS_BUCKET": args.models_bucket_name,
            f"{ENV_PREFIX}BASELINE_KEY": args.baseline_key,
            f"{ENV_PREFIX}ENDPOINT_NAME": args.endpoint_name,
            f"{ENV_PREFIX}VARIANT_NAME": args.variant_name,
            f"{ENV_PREFIX}THRESHOLD": repr(float(args.drift_psi_threshold)),
            f"{ENV_PREFIX}WINDOW_HOURS": str(schedule_window_hours(args.schedule)),
            f"{ENV_PREFIX}KMS_KEY_ARN": args.kms_key_arn,
            f"{ENV_PREFIX}CAPTURE_ROOT": CAPTURE_ROOT,
            MODEL_ENV: args.model,
        }
        config_env |= self._quality_env()
        return pulumi.Output.json_dumps(
            {
                "Comment": "Drift monitoring: one SageMaker Processing job per scheduled run",
                "StartAt": "Drift",
                "States": {
                    "Drift": {
                        "Type": "Task",
                        "Resource": pulumi.Output.concat(
                            "arn:", self._partition, ":states:::sagemaker:createProcessingJob.sync"
                        ),
                        "Parameters": {
                            "ProcessingJobName.$": f"States.Format('{JOB_NAME_PREFIX}{{}}', "
                            "$$.Execution.Name)",
                            "RoleArn": job_role.arn,
                            "AppSpecification": {
                                "ImageUri": args.image_uri,
                                "ContainerEntrypoint": list(ENTRYPOINT),
                            },
                            "Environment": config_env,
                            "ProcessingResources": {
                                "ClusterConfig": {
                                    "InstanceCount": 1,
                                    "InstanceType": args.instance_type,
                                    "VolumeSizeInGB": args.volume_gb,
                                    "VolumeKmsKeyId": args.kms_key_arn,
                                }
                            },
                            "StoppingCondition": {"MaxRuntimeInSeconds": args.max_runtime_seconds},
                            "NetworkConfig": self._network_config(),
                            "Tags": [{"Key": k, "Value": v} for k, v in sorted(self._tags.items())],
                        },
                        "Retry": [
                            {
                                "ErrorEquals": ["SageMaker.AmazonSageMakerException"],
                                "IntervalSeconds": 60,
                                "MaxAttempts": 2,
                                "BackoffRate": 2.0,
                            }
                        ],
                        "End": True,
                    }
                },
            }
        )

    def _quality_env(self) -> dict[str, pulumi.Input[str]]:
        """What the job measures besides drift (`ml.drift.job.DriftJobConfig`): each input only
        when given, the knobs whenever one of them is."""
        args = self._args
        env: dict[str, pulumi.Input[str]] = {}
        if args.model_key is not None:
            env[f"{ENV_PREFIX}MODEL_KEY"] = args.model_key
        if args.labels_bucket_name is not None:
            env[f"{ENV_PREFIX}LABELS_BUCKET"] = args.labels_bucket_name
        if args.model_package_group_arn is not None:
            env[f"{ENV_PREFIX}MODEL_PACKAGE_GROUP_ARN"] = args.model_package_group_arn
        if env:
            env |= {
                f"{ENV_PREFIX}QUALITY_MARGIN": repr(float(args.quality_margin)),
                f"{ENV_PREFIX}QUALITY_LOOKBACK_DAYS": str(args.quality_lookback_days),
                f"{ENV_PREFIX}SKEW_TOLERANCE": repr(float(args.skew_tolerance)),
                f"{ENV_PREFIX}SKEW_SAMPLE": str(args.skew_sample),
            }
        return env

    def _network_config(self) -> dict[str, Any]:
        """In the private subnets when given. Not network-isolated: the job itself reads the
        capture and puts metrics (S3 and CloudWatch, through the VPC endpoints), which an
        isolated container cannot."""
        args = self._args
        config: dict[str, Any] = {"EnableInterContainerTrafficEncryption": True}
        if args.subnet_ids is not None:
            config["VpcConfig"] = {
                "Subnets": args.subnet_ids,
                "SecurityGroupIds": list(args.security_group_ids),
            }
        return config

    def _schedule(self, machine: aws.sfn.StateMachine) -> aws.cloudwatch.EventRule:
        name, child = self._name, pulumi.ResourceOptions(parent=self)
        events_role = self._role("schedule-role", "events.amazonaws.com")
        aws.iam.RolePolicy(
            f"{name}-schedule-policy",
            role=events_role.id,
            policy=policy_document(
                [Statement(["states:StartExecution"], [machine.arn], sid="StartDriftRuns")]
            ),
            opts=child,
        )
        rule = aws.cloudwatch.EventRule(
            f"{name}-schedule",
            description="Runs the drift job (ml.drift) on the platform's schedule",
            schedule_expression=self._args.schedule,
            tags=self._tags,
            opts=child,
        )
        aws.cloudwatch.EventTarget(
            f"{name}-target",
            rule=rule.name,
            arn=machine.arn,
            role_arn=events_role.arn,
            opts=child,
        )
        return rule

    def _failure_alarm(self, machine: aws.sfn.StateMachine) -> None:
        """A run that fails pages: the PSI alarms keep their state while no metrics arrive."""
        topic = self._args.topic_arn
        aws.cloudwatch.MetricAlarm(
            f"{self._name}-failed",
            alarm_description="A drift job run failed. Missing data: notBreaching "
            "(Step Functions publishes the metric only when executions end).",
            namespace="AWS/States",
            metric_name="ExecutionsFailed",
            dimensions={"StateMachineArn": machine.arn},
            statistic="Sum",
            period=300,
            evaluation_periods=1,
            datapoints_to_alarm=1,
            threshold=1,
            comparison_operator="GreaterThanOrEqualToThreshold",
            treat_missing_data="notBreaching",
            alarm_actions=[topic],
            ok_actions=[topic],
            actions_enabled=True,
            tags=self._tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
