"""One model's on-call alarms: its endpoint's health, its drift (one alarm per feature), its online
quality, training-serving skew and age.

Every alarm sends its ALARM and OK transitions to the on-call topic (`components.on_call`), and
treats missing data deliberately (`MISSING_DATA`, and the reason next to each alarm below):

Endpoint (`AWS/SageMaker`, dimensions `EndpointName`, `VariantName`):

* `ModelLatency` p99 > `latency_p99_ms` x 1000 (the metric is in MICROseconds), 3 of 5 minutes;
* `Invocation5XXErrors` Sum >= `error_5xx_threshold` per minute, 2 of 3 minutes;
* 4XX rate: metric math `100 * Invocation4XXErrors / Invocations` > `error_4xx_rate_percent`, 3 of
  5 five-minute periods (a rate, so a traffic spike alone does not page);
* invocations dropping: `Invocations` Sum below the lower edge of an `ANOMALY_DETECTION_BAND`
  (2 standard deviations) for 3 consecutive 5-minute periods;
* instance endpoints only: `CPUUtilization`, `MemoryUtilization` (and `GPUUtilization`,
  `GPUMemoryUtilization` on GPU instances) in `/aws/sagemaker/Endpoints`, 3 of 3 five-minute
  periods.
  Serverless variants publish no instance metrics (no instances: AWS reports `ModelSetupTime` and
  memory per invocation instead), so they get none of these.

Drift (`ml.drift`'s namespace and names, imported, so the job and the alarms cannot disagree):
`FeaturePSI` per feature of THIS model (`EndpointName`, `Feature`) and `PredictionPSI`
(`EndpointName`), Maximum over one period of the drift schedule > `drift_psi_threshold`.

Online quality, skew and age (`ml.contracts.QUALITY_NAMESPACE`, dimension `EndpointName`; the same
scheduled job puts them), Maximum over one period of the job's schedule:

* `QualityShortfall` > `quality_margin`: online quality (predictions joined with the labels that
  came back) below the serving version's registered offline figure by more than the margin;
* `SkewShare` > `skew_share_threshold`: captured requests whose score, re-computed through the
  training path, differs from what the endpoint answered (training-serving skew);
* `ModelAgeDays` > `max_model_age_days`: the serving version is older than the model may be.

Alarms are named `<name>-<role>`. Where a model's alarms lived before under another parent with
other names (the stack-wide `Monitoring` of a stack that served one model, `monitoring-<role>`),
`previous_parent` and `previous_prefix` give each alarm an alias to its former URN, so the update
moves the alarm instead of replacing it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pulumi
import pulumi_aws as aws

from ml.contracts import (
    DRIFT_NAMESPACE,
    ENDPOINT_DIMENSION,
    FEATURE_DIMENSION,
    FEATURE_PSI_METRIC,
    MODEL_AGE_METRIC,
    PREDICTION_PSI_METRIC,
    QUALITY_NAMESPACE,
    QUALITY_SHORTFALL_METRIC,
    SKEW_SHARE_METRIC,
)

SAGEMAKER_NAMESPACE = "AWS/SageMaker"
INSTANCE_NAMESPACE = "/aws/sagemaker/Endpoints"
VARIANT_DIMENSION = "VariantName"
ANOMALY_BAND_WIDTH = 2

TreatMissing = Literal["breaching", "notBreaching", "ignore", "missing"]

_INSTANCE_GAP = (
    "instances report every minute; a gap (deployment, replacement) keeps the last state "
    "instead of flapping to OK or ALARM"
)

# How each alarm treats a period without data, and why (the stack's freshness alarm included).
MISSING_DATA: dict[str, tuple[TreatMissing, str]] = {
    "latency-p99": (
        "notBreaching",
        "no invocations means no latency to judge; silence is the invocations alarm's job",
    ),
    "5xx": ("notBreaching", "no invocations, no errors"),
    "4xx-rate": ("notBreaching", "without invocations the rate is undefined, not high"),
    "invocations-low": (
        "breaching",
        "SageMaker publishes no Invocations datapoint when nothing is invoked: a missing datapoint "
        "is traffic dropping to zero, the strongest drop",
    ),
    "invocations-low-serverless": (
        "notBreaching",
        "a serverless (dev) endpoint is idle most of the time: idle is normal there",
    ),
    "cpu": ("ignore", _INSTANCE_GAP),
    "memory": ("ignore", _INSTANCE_GAP),
    "gpu": ("ignore", _INSTANCE_GAP),
    "gpu-memory": ("ignore", _INSTANCE_GAP),
    "drift": (
        "ignore",
        "the drift job reports once per schedule period; between reports (or for "
        "a window without traffic) the alarm keeps its state rather than clearing itself; a "
        "job that stops running is the drift job's own failure alarm",
    ),
    "quality": (
        "ignore",
        "the job puts a shortfall only for runs with labelled predictions past the label "
        "horizon (labels come back in batches, weeks after the prediction); between them the "
        "alarm keeps its state rather than clearing a real shortfall for want of labels "
        "(LabeledRows on the dashboard shows labels stopping; a job that stops running is its "
        "failure alarm's page)",
    ),
    "skew": (
        "ignore",
        "the job re-scores only captured traffic: a window without requests says nothing about "
        "skew, so the alarm keeps its state",
    ),
    "model-age": (
        "ignore",
        "the job puts the age on every run; a run that does not happen is the job's failure "
        "alarm's page, not a sign of a fresher or older model",
    ),
    "freshness": (
        "breaching",
        "Firehose publishes nothing for an hour without deliveries: "
        "missing is exactly 'nothing new'",
    ),
}


@dataclass(frozen=True, slots=True)
class ModelAlarmsArgs:
    topic_arn: pulumi.Input[str]
    endpoint_name: pulumi.Input[str]
    # The model's feature names (`ml.models.spec(name).feature_names`): one drift alarm each.
    features: Sequence[str]
    variant_name: str = "primary"
    serverless: bool = False
    gpu: bool = False
    latency_p99_ms: int = 250
    error_5xx_threshold: int = 1
    error_4xx_rate_percent: int = 5
    cpu_threshold_percent: int = 80
    memory_threshold_percent: int = 85
    drift_psi_threshold: float = 0.2
    # One drift-job period: how far apart the PSI datapoints are.
    drift_period_seconds: int = 3600
    # The same job's online quality, skew and age (their datapoints are one period apart too).
    quality_margin: float = 0.05
    skew_share_threshold: float = 0.01
    max_model_age_days: int = 14
    # The alarms' former parent (its URN) and name prefix: each alarm `<name>-<role>` keeps the
    # resource it was as `<previous_prefix>-<role>` under `previous_parent`. None: no former place.
    previous_parent: pulumi.Input[str] | None = None
    previous_prefix: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problems = []
        if not self.features:
            problems.append("features is empty: drift alarms need the model's feature names")
        if len(set(self.features)) != len(self.features):
            problems.append(f"features repeat a name: {list(self.features)}")
        if self.drift_period_seconds % 60 or not 60 <= self.drift_period_seconds <= 86400:
            problems.append(
                f"drift_period_seconds {self.drift_period_seconds}: a multiple of 60 up to 86400"
            )
        for knob in (
            "latency_p99_ms",
            "error_5xx_threshold",
            "error_4xx_rate_percent",
            "cpu_threshold_percent",
            "memory_threshold_percent",
        ):
            if getattr(self, knob) <= 0:
                problems.append(f"{knob} must be > 0, got {getattr(self, knob)}")
        if not self.drift_psi_threshold > 0:
            problems.append(f"drift_psi_threshold must be > 0, got {self.drift_psi_threshold}")
        if not self.quality_margin > 0:
            problems.append(f"quality_margin must be > 0, got {self.quality_margin}")
        if not 0 <= self.skew_share_threshold < 1:
            problems.append(
                f"skew_share_threshold must be >= 0 and < 1 (a share), got "
                f"{self.skew_share_threshold}"
            )
        if self.max_model_age_days < 1:
            problems.append(f"max_model_age_days must be >= 1, got {self.max_model_age_days}")
        if (self.previous_parent is None) != (not self.previous_prefix):
            problems.append("previous_parent and previous_prefix go together (the former place)")
        if problems:
            raise ValueError("ModelAlarmsArgs: " + "; ".join(problems))


class ModelAlarms(pulumi.ComponentResource):
    """A model's endpoint and drift alarms, each paging the on-call topic."""

    alarm_arns: dict[str, pulumi.Output[str]]

    def __init__(
        self, name: str, args: ModelAlarmsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlplatform:monitoring:ModelAlarms", name, None, opts)
        self._name = name
        self._args = args
        self.alarm_arns = {}
        self._endpoint_alarms()
        self._drift_alarms()
        self._quality_alarms()
        self.register_outputs({"alarm_arns": self.alarm_arns})

    def _alarm(
        self, role: str, missing_key: str, description: str, *, new: bool = False, **kwargs: Any
    ) -> None:
        """`new`: an alarm the former place never had (no alias to where it never was)."""
        a = self._args
        treat, why = MISSING_DATA[missing_key]
        aliases: list[pulumi.Input[str | pulumi.Alias]] = []
        if a.previous_parent is not None and not new:
            aliases.append(
                pulumi.Alias(name=f"{a.previous_prefix}-{role}", parent=a.previous_parent)
            )
        alarm = aws.cloudwatch.MetricAlarm(
            f"{self._name}-{role}",
            alarm_description=f"{description} Missing data: {treat} ({why}).",
            alarm_actions=[a.topic_arn],
            ok_actions=[a.topic_arn],
            actions_enabled=True,
            treat_missing_data=treat,
            tags=dict(a.tags),
            opts=pulumi.ResourceOptions(parent=self, aliases=aliases),
            **kwargs,
        )
        self.alarm_arns[role] = alarm.arn

    def _endpoint_alarms(self) -> None:
        a = self._args
        dims = {ENDPOINT_DIMENSION: a.endpoint_name, VARIANT_DIMENSION: a.variant_name}
        self._alarm(
            "latency-p99",
            "latency-p99",
            f"p99 model latency above {a.latency_p99_ms} ms (ModelLatency is in microseconds).",
            namespace=SAGEMAKER_NAMESPACE,
            metric_name="ModelLatency",
            dimensions=dims,
            extended_statistic="p99",
            period=60,
            evaluation_periods=5,
            datapoints_to_alarm=3,
            comparison_operator="GreaterThanThreshold",
            threshold=a.latency_p99_ms * 1000,
        )
        self._alarm(
            "5xx",
            "5xx",
            f"{a.error_5xx_threshold}+ model 5XX errors a minute.",
            namespace=SAGEMAKER_NAMESPACE,
            metric_name="Invocation5XXErrors",
            dimensions=dims,
            statistic="Sum",
            period=60,
            evaluation_periods=3,
            datapoints_to_alarm=2,
            comparison_operator="GreaterThanOrEqualToThreshold",
            threshold=a.error_5xx_threshold,
        )

        def metric(
            metric_id: str, metric_name: str, return_data: bool = False
        ) -> aws.cloudwatch.MetricAlarmMetricQueryArgs:
            return aws.cloudwatch.MetricAlarmMetricQueryArgs(
                id=metric_id,
                return_data=return_data,
                metric=aws.cloudwatch.MetricAlarmMetricQueryMetricArgs(
                    namespace=SAGEMAKER_NAMESPACE,
                    metric_name=metric_name,
                    dimensions=dims,
                    stat="Sum",
                    period=300,
                ),
            )

        self._alarm(
            "4xx-rate",
            "4xx-rate",
            f"More than {a.error_4xx_rate_percent}% of invocations answered 4XX.",
            metric_queries=[
                metric("errors", "Invocation4XXErrors"),
                metric("invocations", "Invocations"),
                aws.cloudwatch.MetricAlarmMetricQueryArgs(
                    id="rate",
                    expression="100 * errors / invocations",
                    label="4XX rate (%)",
                    return_data=True,
                ),
            ],
            evaluation_periods=5,
            datapoints_to_alarm=3,
            comparison_operator="GreaterThanThreshold",
            threshold=a.error_4xx_rate_percent,
        )
        self._alarm(
            "invocations-low",
            "invocations-low-serverless" if a.serverless else "invocations-low",
            "Invocations dropped below their anomaly-detection band.",
            metric_queries=[
                metric("invocations", "Invocations", return_data=True),
                aws.cloudwatch.MetricAlarmMetricQueryArgs(
                    id="band",
                    expression=f"ANOMALY_DETECTION_BAND(invocations, {ANOMALY_BAND_WIDTH})",
                    label="expected invocations",
                    return_data=True,
                ),
            ],
            threshold_metric_id="band",
            evaluation_periods=3,
            datapoints_to_alarm=3,
            comparison_operator="LessThanLowerThreshold",
        )
        if not a.serverless:
            self._instance_alarms(dims)

    def _instance_alarms(self, dims: Mapping[str, pulumi.Input[str]]) -> None:
        a = self._args
        instance = [
            ("cpu", "CPUUtilization", a.cpu_threshold_percent),
            ("memory", "MemoryUtilization", a.memory_threshold_percent),
        ]
        if a.gpu:
            instance += [
                ("gpu", "GPUUtilization", a.cpu_threshold_percent),
                ("gpu-memory", "GPUMemoryUtilization", a.memory_threshold_percent),
            ]
        for role, metric_name, threshold in instance:
            self._alarm(
                role,
                role,
                f"{metric_name} above {threshold}% (per instance average).",
                namespace=INSTANCE_NAMESPACE,
                metric_name=metric_name,
                dimensions=dict(dims),
                statistic="Average",
                period=300,
                evaluation_periods=3,
                datapoints_to_alarm=3,
                comparison_operator="GreaterThanThreshold",
                threshold=threshold,
            )

    def _drift_alarms(self) -> None:
        a = self._args
        common: dict[str, Any] = dict(
            namespace=DRIFT_NAMESPACE,
            statistic="Maximum",
            period=a.drift_period_seconds,
            evaluation_periods=1,
            datapoints_to_alarm=1,
            comparison_operator="GreaterThanThreshold",
            threshold=a.drift_psi_threshold,
        )
        for feature in a.features:
            self._alarm(
                f"drift-{feature}",
                "drift",
                f"Feature {feature!r} drifted: PSI above {a.drift_psi_threshold:g}.",
                metric_name=FEATURE_PSI_METRIC,
                dimensions={ENDPOINT_DIMENSION: a.endpoint_name, FEATURE_DIMENSION: feature},
                **common,
            )
        self._alarm(
            "drift-prediction",
            "drift",
            f"The score distribution drifted: PSI above {a.drift_psi_threshold:g}.",
            metric_name=PREDICTION_PSI_METRIC,
            dimensions={ENDPOINT_DIMENSION: a.endpoint_name},
            **common,
        )

    def _quality_alarms(self) -> None:
        a = self._args
        common: dict[str, Any] = dict(
            namespace=QUALITY_NAMESPACE,
            dimensions={ENDPOINT_DIMENSION: a.endpoint_name},
            statistic="Maximum",
            period=a.drift_period_seconds,
            evaluation_periods=1,
            datapoints_to_alarm=1,
            comparison_operator="GreaterThanThreshold",
        )
        self._alarm(
            "quality-shortfall",
            "quality",
            f"Online quality fell below the serving version's offline figure by more than "
            f"{a.quality_margin:g}.",
            metric_name=QUALITY_SHORTFALL_METRIC,
            threshold=a.quality_margin,
            new=True,
            **common,
        )
        self._alarm(
            "skew",
            "skew",
            f"Training-serving skew: more than {a.skew_share_threshold:.2%} of re-scored "
            "captured requests differ from what the endpoint answered.",
            metric_name=SKEW_SHARE_METRIC,
            threshold=a.skew_share_threshold,
            new=True,
            **common,
        )
        self._alarm(
            "model-age",
            "model-age",
            f"The serving version was trained more than {a.max_model_age_days} days ago.",
            metric_name=MODEL_AGE_METRIC,
            threshold=a.max_model_age_days,
            new=True,
            **common,
        )
