"""The model endpoint: a SageMaker model, its endpoint config and the endpoint, with autoscaling and
blue/green deployments that roll back on the endpoint's own alarms.

What serves:

* an approved model package (`model_package_arn`: the container comes from the package), or
  while none is set an artifact in the models bucket (`model_key`) in the scikit-learn `1.9-0`
  container of the stack's region, found in the sagemaker SDK's image table without importing the
  SDK. Either way the container environment points the scikit-learn container at the handler
  inside the artifact (`code/inference.py`).
* an execution role that reads only its model prefix, writes only its capture prefix, uses the
  lake key through S3, writes its own log group and metrics, pulls its image, and (in a VPC)
  manages its network interfaces.

How it changes: endpoint configs and models are autonamed and replaced create-before-delete, so a
new config is live before the one the endpoint uses is deleted; the variant keeps one fixed name
(`primary`), so SageMaker's deployment guardrails (canary / linear / all-at-once traffic shifting,
baking period, auto-rollback on the two alarms created here) apply to every update.

Instances scale with a target-tracking policy on `SageMakerVariantInvocationsPerInstance`; a
serverless variant (dev) has no scalable target, no data capture, no VPC and no isolation.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import pulumi
import pulumi_aws as aws

from components.iam import (
    SAGEMAKER_ENI_ACTIONS,
    Statement,
    assume_role_policy,
    network_interface_statements,
    policy_document,
    prefix_arn,
)
from components.names import default_endpoint_name
from components.problems import instance_count_problems, instance_family, serverless_problems
from ml.contracts import MODEL_VERSION_ENV
from ml.images import REPOSITORIES, image_uri, registry_account
from ml.models import Framework

VARIANT_NAME = "primary"
CAPTURE_PREFIX = "capture"
METRICS_NAMESPACE = "/aws/sagemaker/Endpoints"
JSON_CONTENT_TYPES = ("application/json",)
CSV_CONTENT_TYPES = ("text/csv",)
# BlueGreenUpdatePolicy.MaximumExecutionTimeoutInSeconds bounds (AWS API reference).
_MIN_DEPLOY_TIMEOUT, _MAX_DEPLOY_TIMEOUT = 600, 28_800
# Time a new fleet needs to come up, on top of the waits we configure.
_PROVISIONING_SECONDS = 1_800
# Instance families with local NVMe storage: CreateEndpointConfig refuses a KmsKeyId for them.
_LOCAL_STORAGE_FAMILIES = frozenset({"g5", "g6", "g6e", "p5", "p5e", "inf2", "trn1"})


def has_local_storage(instance_type: str) -> bool:
    """`ml.m5d.large` -> True: instance families whose volumes are local NVMe (no KMS key)."""
    family = instance_family(instance_type)
    return family in _LOCAL_STORAGE_FAMILIES or bool(
        re.fullmatch(r"[a-z]+\d+[a-z]*d[a-z]*", family)
    )


__all__ = [
    "CAPTURE_PREFIX",
    "VARIANT_NAME",
    "ModelEndpoint",
    "ModelEndpointArgs",
    "capture_prefix",
    "default_endpoint_name",
    "deployment_timeout_seconds",
    "has_local_storage",
]


def capture_prefix(endpoint_name: str) -> str:
    """Where SageMaker writes an endpoint's data capture in the predictions bucket (it appends the
    endpoint's name to the destination): the endpoint's own prefix."""
    return f"{CAPTURE_PREFIX}/{endpoint_name}"


@dataclass(frozen=True, slots=True)
class ModelEndpointArgs:
    # Explicit: the alarms, the autoscaling target and the log group name the endpoint before it
    # exists, and the monitoring component and `ml/` find it by this name.
    endpoint_name: str
    models_bucket_name: pulumi.Input[str]
    models_bucket_arn: pulumi.Input[str]
    predictions_bucket_name: pulumi.Input[str]
    predictions_bucket_arn: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    # The prefix the model artifacts live under (the registry's `models/<group>`): the role reads
    # only this prefix (and `model_key` when serving an artifact outside it).
    model_prefix: str
    # The on-call topic the two rollback alarms notify (alarm and recovery).
    alarm_topic_arn: pulumi.Input[str]
    model_package_arn: str | None = None
    # The SageMaker framework container that serves the model (`ModelSpec.framework`).
    framework: Framework = "sklearn"
    # The artifact served while no package is set (e.g. `<model>/current/model.tar.gz`).
    model_key: str | None = None
    instance_type: str = "ml.m5.large"
    min_instances: int = 1
    max_instances: int = 2
    serverless: bool = False
    serverless_memory_mb: int = 2048
    serverless_max_concurrency: int = 5
    data_capture_enabled: bool = True
    data_capture_percent: int = 100
    network_isolation: bool = False
    in_vpc: bool = False
    # In the VPC: its id (ENIs are confined to it), the private subnets (a list or an Output of
    # one, e.g. the network's `private_subnet_ids`) and the model containers' security groups.
    vpc_id: pulumi.Input[str] | None = None
    subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]] | None = None
    security_group_ids: Sequence[pulumi.Input[str]] = ()
    deployment_strategy: Literal["canary", "linear", "all-at-once"] = "canary"
    traffic_step_percent: int = 10
    traffic_wait_seconds: int = 600
    termination_wait_seconds: int = 300
    autoscaling_target_invocations: int = 200
    scale_in_cooldown_seconds: int = 300
    scale_out_cooldown_seconds: int = 60
    latency_p99_ms: int = 250
    error_5xx_threshold: int = 1
    log_retention_days: int = 30
    container_log_level: int = 20  # logging.INFO
    tags: Mapping[str, str] = field(default_factory=dict)
    protect: bool = False


def _check(name: str, args: ModelEndpointArgs) -> None:
    """Every combination AWS would refuse at deploy time, refused now with the reason."""
    problems: list[str] = []
    if not re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", args.endpoint_name):
        problems.append(
            f"endpoint_name {args.endpoint_name!r}: expected 1-63 letters, digits "
            "and '-' starting and ending with a letter or digit"
        )
    if not re.fullmatch(r"[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*", args.model_prefix):
        problems.append(
            f"model_prefix {args.model_prefix!r}: expected a key prefix such as "
            "'models/churn' (no leading or trailing '/')"
        )
    if args.model_package_arn is None and not (args.model_key or "").endswith(".tar.gz"):
        problems.append(
            f"model_key {args.model_key!r}: expected the key of a model.tar.gz (the artifact "
            "served while no model_package_arn is set)"
        )
    problems += serverless_problems(
        args.serverless,
        args.data_capture_enabled,
        args.in_vpc,
        args.network_isolation,
        args.instance_type,
    )
    if not args.serverless:
        problems += instance_count_problems(args.min_instances, args.max_instances)
    if not args.serverless and has_local_storage(args.instance_type):
        problems.append(
            f"instance_type {args.instance_type!r} has local NVMe storage: "
            "SageMaker refuses the endpoint config's KMS key for it; choose a "
            "family without local storage (e.g. ml.m5.large)"
        )
    if args.in_vpc and (
        args.vpc_id is None
        or args.subnet_ids is None
        or (isinstance(args.subnet_ids, Sequence) and not args.subnet_ids)
        or not args.security_group_ids
    ):
        problems.append(
            "in_vpc needs vpc_id, subnet_ids and security_group_ids (the VPC, its private "
            "subnets and the model containers' security group)"
        )
    if args.deployment_strategy == "linear" and not 10 <= args.traffic_step_percent <= 50:
        problems.append(
            f"traffic_step_percent {args.traffic_step_percent}: a linear step must be "
            "10-50% of the fleet (SageMaker LinearStepSize)"
        )
    if args.deployment_strategy == "canary" and not 1 <= args.traffic_step_percent <= 50:
        problems.append(
            f"traffic_step_percent {args.traffic_step_percent}: a canary must be "
            "1-50% of the fleet (SageMaker CanarySize)"
        )
    if not 0 <= args.traffic_wait_seconds <= 3600 or not 0 <= args.termination_wait_seconds <= 3600:
        problems.append("traffic_wait_seconds and termination_wait_seconds must be 0-3600")
    elif _waits_seconds(args) >= _MAX_DEPLOY_TIMEOUT:
        problems.append(
            f"a {args.deployment_strategy} deployment would wait "
            f"{_waits_seconds(args)} s, more than SageMaker's {_MAX_DEPLOY_TIMEOUT} s "
            "deployment limit; shorten traffic_wait_seconds or widen the step"
        )
    if not 1 <= args.data_capture_percent <= 100:
        problems.append(f"data_capture_percent {args.data_capture_percent}: expected 1-100")
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise ValueError(f"ModelEndpoint {name!r}: {len(problems)} problem(s):\n{lines}")


def _waits_seconds(args: ModelEndpointArgs) -> int:
    """Seconds a blue/green update spends waiting (baking) before and after shifting traffic."""
    steps = {
        "all-at-once": 1,
        "canary": 2,
        "linear": math.ceil(100 / max(args.traffic_step_percent, 1)),
    }[args.deployment_strategy]
    return steps * args.traffic_wait_seconds + args.termination_wait_seconds


def deployment_timeout_seconds(args: ModelEndpointArgs) -> int:
    """MaximumExecutionTimeoutInSeconds: the waits plus provisioning, within SageMaker's bounds."""
    total = _waits_seconds(args) + _PROVISIONING_SECONDS
    return max(_MIN_DEPLOY_TIMEOUT, min(_MAX_DEPLOY_TIMEOUT, total))


def _traffic_routing(
    args: ModelEndpointArgs,
) -> aws.sagemaker.EndpointDeploymentConfigBlueGreenUpdatePolicyTrafficRoutingConfigurationArgs:
    routing = aws.sagemaker
    if args.deployment_strategy == "canary":
        return routing.EndpointDeploymentConfigBlueGreenUpdatePolicyTrafficRoutingConfigurationArgs(
            type="CANARY",
            wait_interval_in_seconds=args.traffic_wait_seconds,
            canary_size=routing.EndpointDeploymentConfigBlueGreenUpdatePolicyTrafficRoutingConfigurationCanarySizeArgs(
                type="CAPACITY_PERCENT", value=args.traffic_step_percent
            ),
        )
    if args.deployment_strategy == "linear":
        return routing.EndpointDeploymentConfigBlueGreenUpdatePolicyTrafficRoutingConfigurationArgs(
            type="LINEAR",
            wait_interval_in_seconds=args.traffic_wait_seconds,
            linear_step_size=routing.EndpointDeploymentConfigBlueGreenUpdatePolicyTrafficRoutingConfigurationLinearStepSizeArgs(
                type="CAPACITY_PERCENT", value=args.traffic_step_percent
            ),
        )
    return routing.EndpointDeploymentConfigBlueGreenUpdatePolicyTrafficRoutingConfigurationArgs(
        type="ALL_AT_ONCE", wait_interval_in_seconds=args.traffic_wait_seconds
    )


class ModelEndpoint(pulumi.ComponentResource):
    """A SageMaker endpoint serving one model, its role, alarms and autoscaling."""

    endpoint_name: pulumi.Output[str]
    endpoint_arn: pulumi.Output[str]
    execution_role_arn: pulumi.Output[str]
    capture_prefix: str | None  # None: no data capture
    model_name: pulumi.Output[str]
    variant_name: str
    error_alarm_name: pulumi.Output[str]
    latency_alarm_name: pulumi.Output[str]

    def __init__(
        self, name: str, args: ModelEndpointArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlplatform:serving:ModelEndpoint", name, None, opts)
        self.role_names: list[pulumi.Output[str]] = []  # every role made here (audited)
        _check(name, args)
        self._tags = dict(args.tags)
        self._region = aws.get_region_output().region
        self._account = aws.get_caller_identity_output().account_id
        self._partition_info = aws.get_partition_output()
        logs = self._log_group(name, args)
        role, role_policy = self._execution_role(name, args, logs)
        model = self._model(name, args, role, role_policy)
        config = self._endpoint_config(name, args, model)
        errors, latency = self._rollback_alarms(name, args)
        endpoint = self._endpoint(name, args, config, (errors, latency), logs)
        if not args.serverless:
            self._autoscaling(name, args, endpoint)

        self.endpoint_name = endpoint.name
        self.endpoint_arn = endpoint.arn
        self.execution_role_arn = role.arn
        self.capture_prefix = (
            capture_prefix(args.endpoint_name) if args.data_capture_enabled else None
        )
        self.model_name = model.name
        self.variant_name = VARIANT_NAME
        self.error_alarm_name = errors.name
        self.latency_alarm_name = latency.name
        self.register_outputs(
            {
                "endpoint_name": self.endpoint_name,
                "endpoint_arn": self.endpoint_arn,
                "execution_role_arn": self.execution_role_arn,
                "capture_prefix": self.capture_prefix,
                "model_name": self.model_name,
                "variant_name": VARIANT_NAME,
                "error_alarm_name": self.error_alarm_name,
                "latency_alarm_name": self.latency_alarm_name,
            }
        )

    # --- builders -------------------------------------------------------------------------------

    def _log_group(self, name: str, args: ModelEndpointArgs) -> aws.cloudwatch.LogGroup:
        return aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=f"/aws/sagemaker/Endpoints/{args.endpoint_name}",
            # The lake key, like every log group of the platform: the model's logs may quote
            # request payloads.
            kms_key_id=args.kms_key_arn,
            retention_in_days=args.log_retention_days,
            tags=self._tags,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _execution_role(
        self, name: str, args: ModelEndpointArgs, logs: aws.cloudwatch.LogGroup
    ) -> tuple[aws.iam.Role, aws.iam.RolePolicy]:
        child = pulumi.ResourceOptions(parent=self)
        role = aws.iam.Role(
            f"{name}-exec",
            description=f"SageMaker execution role of endpoint {args.endpoint_name}",
            assume_role_policy=assume_role_policy(
                "sagemaker.amazonaws.com", source_account=self._account
            ),
            tags=self._tags,
            opts=child,
        )
        self.role_names.append(role.name)
        statements = self._role_statements(args, logs)
        if args.in_vpc:
            statements += self._network_interface_statements(args)
        role_policy = aws.iam.RolePolicy(
            f"{name}-exec-policy", role=role.id, policy=policy_document(statements), opts=child
        )
        return role, role_policy

    def _role_statements(
        self, args: ModelEndpointArgs, logs: aws.cloudwatch.LogGroup
    ) -> list[Statement]:
        """Read the model, write the capture, use the lake key through S3, log, pull the image."""
        region, partition = self._region, self._partition_info.partition
        model_objects: list[pulumi.Input[str]] = [
            prefix_arn(args.models_bucket_arn, args.model_prefix)
        ]
        model_key = args.model_key or ""
        if args.model_package_arn is None and not model_key.startswith(args.model_prefix + "/"):
            model_objects.append(pulumi.Output.concat(args.models_bucket_arn, "/", model_key))
        image_registry = region.apply(lambda r: registry_account(args.framework, r))
        return [
            Statement(sid="ReadModel", actions=["s3:GetObject"], resources=model_objects),
            Statement(
                sid="ListModelPrefix",
                actions=["s3:ListBucket"],
                resources=[args.models_bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{args.model_prefix}/*"]}},
            ),
            Statement(
                sid="WriteCapture",
                actions=["s3:PutObject"],
                resources=[
                    prefix_arn(args.predictions_bucket_arn, capture_prefix(args.endpoint_name))
                ],
            ),
            Statement(
                sid="LakeKeyViaS3",
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=[args.kms_key_arn],
                conditions={
                    "StringEquals": {
                        "kms:ViaService": pulumi.Output.concat(
                            "s3.", region, ".", self._partition_info.dns_suffix
                        )
                    }
                },
            ),
            Statement(
                sid="WriteOwnLogs",
                actions=["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                resources=[pulumi.Output.concat(logs.arn, ":*")],
            ),
            Statement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={
                    "StringLike": {
                        "cloudwatch:namespace": [METRICS_NAMESPACE, f"{METRICS_NAMESPACE}/*"]
                    }
                },
                wildcard_reason="PutMetricData supports no resource-level permissions",
            ),
            Statement(
                sid="PullImage",
                actions=[
                    "ecr:BatchCheckLayerAvailability",
                    "ecr:BatchGetImage",
                    "ecr:GetDownloadUrlForLayer",
                ],
                resources=[
                    pulumi.Output.concat(
                        "arn:",
                        partition,
                        ":ecr:",
                        region,
                        ":",
                        image_registry,
                        ":repository/",
                        REPOSITORIES[args.framework],
                    )
                ],
            ),
            Statement(
                actions=["ecr:GetAuthorizationToken"],
                resources=["*"],
                wildcard_reason="GetAuthorizationToken supports no resource-level permissions",
            ),
        ]

    def _network_interface_statements(self, args: ModelEndpointArgs) -> list[Statement]:
        """In the VPC: the model containers' network interfaces, in this VPC only."""
        return network_interface_statements(
            "EndpointNetworkInterfaces",
            SAGEMAKER_ENI_ACTIONS,
            partition=self._partition_info.partition,
            region=self._region,
            account=self._account,
            vpc_id=args.vpc_id or "",
            security_group_ids=list(args.security_group_ids),
        )

    def _model(
        self,
        name: str,
        args: ModelEndpointArgs,
        role: aws.iam.Role,
        role_policy: aws.iam.RolePolicy,
    ) -> aws.sagemaker.Model:
        """The approved package, or the artifact in the scikit-learn container of the region."""
        region = self._region
        environment: dict[str, pulumi.Input[str]] = {
            "SAGEMAKER_PROGRAM": "inference.py",
            "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
            "SAGEMAKER_REGION": region,
            "SAGEMAKER_CONTAINER_LOG_LEVEL": str(args.container_log_level),
        }
        if args.model_package_arn is not None:
            # the version it serves, for the handler's responses (`ml.contracts`)
            environment[MODEL_VERSION_ENV] = args.model_package_arn
            container = aws.sagemaker.ModelPrimaryContainerArgs(
                model_package_name=args.model_package_arn, environment=environment
            )
        else:
            container = aws.sagemaker.ModelPrimaryContainerArgs(
                image=pulumi.Output.all(region, self._partition_info.dns_suffix).apply(
                    lambda v: image_uri(args.framework, v[0], v[1])
                ),
                model_data_url=pulumi.Output.concat(
                    "s3://", args.models_bucket_name, "/", args.model_key or ""
                ),
                environment=environment,
            )
        return aws.sagemaker.Model(
            f"{name}-model",
            execution_role_arn=role.arn,
            primary_container=container,
            enable_network_isolation=args.network_isolation,
            vpc_config=aws.sagemaker.ModelVpcConfigArgs(
                subnets=args.subnet_ids or [], security_group_ids=list(args.security_group_ids)
            )
            if args.in_vpc
            else None,
            tags=self._tags,
            # SageMaker checks the role can read the artifact and pull the image on create.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[role_policy]),
        )

    def _endpoint_config(
        self, name: str, args: ModelEndpointArgs, model: aws.sagemaker.Model
    ) -> aws.sagemaker.EndpointConfiguration:
        """Autonamed: replaced create-before-delete, so the new config is live first."""
        if args.serverless:
            variant = aws.sagemaker.EndpointConfigurationProductionVariantArgs(
                variant_name=VARIANT_NAME,
                model_name=model.name,
                serverless_config=aws.sagemaker.EndpointConfigurationProductionVariantServerlessConfigArgs(
                    memory_size_in_mb=args.serverless_memory_mb,
                    max_concurrency=args.serverless_max_concurrency,
                ),
            )
        else:
            variant = aws.sagemaker.EndpointConfigurationProductionVariantArgs(
                variant_name=VARIANT_NAME,
                model_name=model.name,
                instance_type=args.instance_type,
                initial_instance_count=args.min_instances,
                initial_variant_weight=1.0,
            )
        return aws.sagemaker.EndpointConfiguration(
            f"{name}-config",
            production_variants=[variant],
            kms_key_arn=args.kms_key_arn,
            data_capture_config=_data_capture(args) if args.data_capture_enabled else None,
            tags=self._tags,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _rollback_alarms(
        self, name: str, args: ModelEndpointArgs
    ) -> tuple[aws.cloudwatch.MetricAlarm, aws.cloudwatch.MetricAlarm]:
        """The endpoint's own alarms: either one rolls a deployment back."""
        child = pulumi.ResourceOptions(parent=self)
        endpoint_name = args.endpoint_name
        dimensions = {"EndpointName": endpoint_name, "VariantName": VARIANT_NAME}
        errors = aws.cloudwatch.MetricAlarm(
            f"{name}-5xx",
            alarm_description=f"{endpoint_name}: model 5XX errors (rolls a deployment back)",
            namespace="AWS/SageMaker",
            metric_name="Invocation5XXErrors",
            dimensions=dimensions,
            statistic="Sum",
            period=60,
            evaluation_periods=1,
            datapoints_to_alarm=1,
            threshold=args.error_5xx_threshold,
            comparison_operator="GreaterThanOrEqualToThreshold",
            treat_missing_data="notBreaching",
            alarm_actions=[args.alarm_topic_arn],
            ok_actions=[args.alarm_topic_arn],
            tags=self._tags,
            opts=child,
        )
        latency = aws.cloudwatch.MetricAlarm(
            f"{name}-latency",
            alarm_description=f"{endpoint_name}: p99 model latency above {args.latency_p99_ms} ms "
            "(rolls a deployment back)",
            namespace="AWS/SageMaker",
            metric_name="ModelLatency",
            dimensions=dimensions,
            extended_statistic="p99",
            period=60,
            evaluation_periods=3,
            datapoints_to_alarm=2,
            threshold=args.latency_p99_ms * 1000,  # ModelLatency is in microseconds
            comparison_operator="GreaterThanThreshold",
            treat_missing_data="notBreaching",
            alarm_actions=[args.alarm_topic_arn],
            ok_actions=[args.alarm_topic_arn],
            tags=self._tags,
            opts=child,
        )
        return errors, latency

    def _endpoint(
        self,
        name: str,
        args: ModelEndpointArgs,
        config: aws.sagemaker.EndpointConfiguration,
        rollback_alarms: Sequence[aws.cloudwatch.MetricAlarm],
        logs: aws.cloudwatch.LogGroup,
    ) -> aws.sagemaker.Endpoint:
        """Blue/green updates that roll back on the endpoint's own alarms."""
        return aws.sagemaker.Endpoint(
            f"{name}-endpoint",
            name=args.endpoint_name,
            endpoint_config_name=config.name,
            deployment_config=aws.sagemaker.EndpointDeploymentConfigArgs(
                blue_green_update_policy=aws.sagemaker.EndpointDeploymentConfigBlueGreenUpdatePolicyArgs(
                    traffic_routing_configuration=_traffic_routing(args),
                    termination_wait_in_seconds=args.termination_wait_seconds,
                    maximum_execution_timeout_in_seconds=deployment_timeout_seconds(args),
                ),
                auto_rollback_configuration=aws.sagemaker.EndpointDeploymentConfigAutoRollbackConfigurationArgs(
                    alarms=[
                        aws.sagemaker.EndpointDeploymentConfigAutoRollbackConfigurationAlarmArgs(
                            alarm_name=alarm.name
                        )
                        for alarm in rollback_alarms
                    ]
                ),
            ),
            tags=self._tags,
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect, depends_on=[logs]),
        )

    def _autoscaling(
        self, name: str, args: ModelEndpointArgs, endpoint: aws.sagemaker.Endpoint
    ) -> None:
        """Instances only: target tracking on invocations per instance."""
        child = pulumi.ResourceOptions(parent=self)
        resource_id = pulumi.Output.concat("endpoint/", endpoint.name, f"/variant/{VARIANT_NAME}")
        target = aws.appautoscaling.Target(
            f"{name}-scaling",
            service_namespace="sagemaker",
            scalable_dimension="sagemaker:variant:DesiredInstanceCount",
            resource_id=resource_id,
            min_capacity=args.min_instances,
            max_capacity=args.max_instances,
            tags=self._tags,
            opts=child,
        )
        aws.appautoscaling.Policy(
            f"{name}-scaling-policy",
            policy_type="TargetTrackingScaling",
            service_namespace=target.service_namespace,
            scalable_dimension=target.scalable_dimension,
            resource_id=target.resource_id,
            target_tracking_scaling_policy_configuration=aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationArgs(
                target_value=float(args.autoscaling_target_invocations),
                predefined_metric_specification=aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationPredefinedMetricSpecificationArgs(
                    predefined_metric_type="SageMakerVariantInvocationsPerInstance"
                ),
                scale_in_cooldown=args.scale_in_cooldown_seconds,
                scale_out_cooldown=args.scale_out_cooldown_seconds,
            ),
            opts=child,
        )


def _data_capture(
    args: ModelEndpointArgs,
) -> aws.sagemaker.EndpointConfigurationDataCaptureConfigArgs:
    """Requests and responses into the predictions zone, under the lake key."""
    return aws.sagemaker.EndpointConfigurationDataCaptureConfigArgs(
        enable_capture=True,
        initial_sampling_percentage=args.data_capture_percent,
        destination_s3_uri=pulumi.Output.concat(
            "s3://", args.predictions_bucket_name, f"/{CAPTURE_PREFIX}/"
        ),
        kms_key_id=args.kms_key_arn,
        capture_options=[
            aws.sagemaker.EndpointConfigurationDataCaptureConfigCaptureOptionArgs(
                capture_mode="Input"
            ),
            aws.sagemaker.EndpointConfigurationDataCaptureConfigCaptureOptionArgs(
                capture_mode="Output"
            ),
        ],
        capture_content_type_header=aws.sagemaker.EndpointConfigurationDataCaptureConfigCaptureContentTypeHeaderArgs(
            json_content_types=list(JSON_CONTENT_TYPES),
            csv_content_types=list(CSV_CONTENT_TYPES),
        ),
    )
