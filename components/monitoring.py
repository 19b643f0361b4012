"""Monitoring: the on-call alarms of an endpoint, drift and the lake's freshness, and a dashboard.

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
`FeaturePSI` per feature (`EndpointName`, `Feature`) and `PredictionPSI` (`EndpointName`), Maximum
over one period of the drift schedule > `drift_psi_threshold`.

Freshness: nothing delivered to the raw zone for `freshness_hours`. S3 request metrics are not on by
default (and cost per bucket), so the alarm watches what does exist: the ingestion stream's Firehose
`DeliveryToS3.Records`, Sum per hour, below 1 for `freshness_hours` consecutive hours. Firehose
publishes no datapoint for an hour in which nothing was delivered, so missing data is breaching:
silence IS the condition. (Batch uploads land without Firehose; the stream is the steady feed.)
CloudWatch allows at most 7 days of evaluation for hourly periods, hence `freshness_hours <= 168`.
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
    PREDICTION_PSI_METRIC,
    SCORED_ROWS_METRIC,
)

SAGEMAKER_NAMESPACE = "AWS/SageMaker"
INSTANCE_NAMESPACE = "/aws/sagemaker/Endpoints"
FIREHOSE_NAMESPACE = "AWS/Firehose"
VARIANT_DIMENSION = "VariantName"
ANOMALY_BAND_WIDTH = 2
MAX_FRESHNESS_HOURS = 168  # 7 days of hourly periods: CloudWatch's longest evaluation window

TreatMissing = Literal["breaching", "notBreaching", "ignore", "missing"]

_INSTANCE_GAP = (
    "instances report every minute; a gap (deployment, replacement) keeps the last state "
    "instead of flapping to OK or ALARM"
)

# How each alarm treats a period without data, and why.
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
    "freshness": (
        "breaching",
        "Firehose publishes nothing for an hour without deliveries: "
        "missing is exactly 'nothing new'",
    ),
}


@dataclass(frozen=True, slots=True)
class MonitoringArgs:
    topic_arn: pulumi.Input[str]
    dashboard_name: str
    # The model's feature names (`ml.features.FEATURE_NAMES`): one drift alarm each.
    features: Sequence[str] = ()
    # None: no endpoint in this stack (no endpoint or drift alarms).
    endpoint_name: pulumi.Input[str] | None = None
    variant_name: str = "primary"
    serverless: bool = False
    gpu: bool = False
    # The Firehose stream that feeds the raw zone (freshness alarm); None: no freshness alarm.
    ingest_stream_name: pulumi.Input[str] | None = None
    # Dashboard only: zone -> bucket name, the drift job's state machine, the training namespace.
    lake_bucket_names: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    drift_state_machine_arn: pulumi.Input[str] | None = None
    latency_p99_ms: int = 250
    error_5xx_threshold: int = 1
    error_4xx_rate_percent: int = 5
    cpu_threshold_percent: int = 80
    memory_threshold_percent: int = 85
    drift_psi_threshold: float = 0.2
    # One drift-job period: how far apart the PSI datapoints are.
    drift_period_seconds: int = 3600
    freshness_hours: int = 24
    tags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problems = []
        if self.endpoint_name is not None and not self.features:
            problems.append("features is empty: drift alarms need the model's feature names")
        if len(set(self.features)) != len(self.features):
            problems.append(f"features repeat a name: {list(self.features)}")
        if not self.dashboard_name or len(self.dashboard_name) > 255:
            problems.append(f"dashboard_name {self.dashboard_name!r}: 1 to 255 characters")
        if not 1 <= self.freshness_hours <= MAX_FRESHNESS_HOURS:
            problems.append(
                f"freshness_hours {self.freshness_hours}: 1 to {MAX_FRESHNESS_HOURS} (hourly "
                "periods; CloudWatch evaluates at most 7 days)"
            )
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
        if problems:
            raise ValueError("MonitoringArgs: " + "; ".join(problems))


class Monitoring(pulumi.ComponentResource):
    """The alarms (endpoint, drift, freshness) and the stack's dashboard."""

    alarm_arns: dict[str, pulumi.Output[str]]
    dashboard_name: pulumi.Output[str]

    def __init__(
        self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlplatform:monitoring:Monitoring", name, None, opts)
        self._name = name
        self._args = args
        self._child = pulumi.ResourceOptions(parent=self)
        self.alarm_arns = {}
        region = aws.get_region_output().region

        if args.endpoint_name is not None:
            self._endpoint_alarms(args.endpoint_name)
            self._drift_alarms(args.endpoint_name)
        if args.ingest_stream_name is not None:
            self._freshness_alarm(args.ingest_stream_name)

        dashboard = aws.cloudwatch.Dashboard(
            f"{name}-dashboard",
            dashboard_name=args.dashboard_name,
            dashboard_body=pulumi.Output.json_dumps({"widgets": self._widgets(region)}),
            opts=self._child,
        )
        self.dashboard_name = dashboard.dashboard_name
        self.register_outputs(
            {"alarm_arns": self.alarm_arns, "dashboard_name": self.dashboard_name}
        )

    # --- alarms ----------------------------------------------------------------------------------

    def _alarm(self, role: str, missing_key: str, description: str, **kwargs: Any) -> None:
        treat, why = MISSING_DATA[missing_key]
        alarm = aws.cloudwatch.MetricAlarm(
            f"{self._name}-{role}",
            alarm_description=f"{description} Missing data: {treat} ({why}).",
            alarm_actions=[self._args.topic_arn],
            ok_actions=[self._args.topic_arn],
            actions_enabled=True,
            treat_missing_data=treat,
            tags=dict(self._args.tags),
            opts=self._child,
            **kwargs,
        )
        self.alarm_arns[role] = alarm.arn

    def _endpoint_alarms(self, endpoint: pulumi.Input[str]) -> None:
        a = self._args
        dims = {ENDPOINT_DIMENSION: endpoint, VARIANT_DIMENSION: a.variant_name}
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
        if a.serverless:
            return
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
                dimensions=dims,
                statistic="Average",
                period=300,
                evaluation_periods=3,
                datapoints_to_alarm=3,
                comparison_operator="GreaterThanThreshold",
                threshold=threshold,
            )

    def _drift_alarms(self, endpoint: pulumi.Input[str]) -> None:
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
                dimensions={ENDPOINT_DIMENSION: endpoint, FEATURE_DIMENSION: feature},
                **common,
            )
        self._alarm(
            "drift-prediction",
            "drift",
            f"The score distribution drifted: PSI above {a.drift_psi_threshold:g}.",
            metric_name=PREDICTION_PSI_METRIC,
            dimensions={ENDPOINT_DIMENSION: endpoint},
            **common,
        )

    def _freshness_alarm(self, stream: pulumi.Input[str]) -> None:
        hours = self._args.freshness_hours
        self._alarm(
            "freshness",
            "freshness",
            f"Nothing delivered to the raw zone for {hours} h.",
            namespace=FIREHOSE_NAMESPACE,
            metric_name="DeliveryToS3.Records",
            dimensions={"DeliveryStreamName": stream},
            statistic="Sum",
            period=3600,
            evaluation_periods=hours,
            datapoints_to_alarm=hours,
            comparison_operator="LessThanThreshold",
            threshold=1,
        )

    # --- dashboard -------------------------------------------------------------------------------

    def _widgets(self, region: pulumi.Output[str]) -> list[dict[str, Any]]:
        widgets: list[dict[str, Any]] = []
        if self._args.endpoint_name is not None:
            widgets += self._endpoint_widgets(region, self._args.endpoint_name)
        widgets += [_text("## Lake"), *self._lake_widgets(region)]
        widgets += [_text("## Training and jobs"), *self._job_widgets(region)]
        if self.alarm_arns:
            widgets.append(
                {
                    "type": "alarm",
                    "width": 24,
                    "height": 4,
                    "properties": {
                        "title": "Alarms",
                        "alarms": [self.alarm_arns[k] for k in sorted(self.alarm_arns)],
                    },
                }
            )
        return widgets

    def _endpoint_widgets(
        self, region: pulumi.Output[str], ep: pulumi.Input[str]
    ) -> list[dict[str, Any]]:
        a = self._args
        dims = [ENDPOINT_DIMENSION, ep, VARIANT_DIMENSION, a.variant_name]
        widgets = [
            _text("## Endpoint"),
            _metric(
                "Invocations and errors",
                region,
                [
                    [SAGEMAKER_NAMESPACE, "Invocations", *dims],
                    [SAGEMAKER_NAMESPACE, "Invocation4XXErrors", *dims],
                    [SAGEMAKER_NAMESPACE, "Invocation5XXErrors", *dims],
                ],
            ),
            _metric(
                "Latency p99 (microseconds)",
                region,
                [
                    [SAGEMAKER_NAMESPACE, "ModelLatency", *dims],
                    [SAGEMAKER_NAMESPACE, "OverheadLatency", *dims],
                ],
                stat="p99",
                period=60,
                annotations={"horizontal": [{"label": "alarm", "value": a.latency_p99_ms * 1000}]},
            ),
        ]
        if not a.serverless:
            names = ["CPUUtilization", "MemoryUtilization", "DiskUtilization"]
            if a.gpu:
                names += ["GPUUtilization", "GPUMemoryUtilization"]
            widgets.append(
                _metric(
                    "Instances (%)",
                    region,
                    [[INSTANCE_NAMESPACE, n, *dims] for n in names],
                    stat="Average",
                    width=24,
                )
            )
        psi_line = {"horizontal": [{"label": "PSI threshold", "value": a.drift_psi_threshold}]}
        widgets += [
            _text("## Drift"),
            _metric(
                "Feature PSI",
                region,
                [
                    [
                        DRIFT_NAMESPACE,
                        FEATURE_PSI_METRIC,
                        ENDPOINT_DIMENSION,
                        ep,
                        FEATURE_DIMENSION,
                        f,
                    ]
                    for f in a.features
                ],
                stat="Maximum",
                period=a.drift_period_seconds,
                annotations=psi_line,
            ),
            _metric(
                "Prediction PSI and scored rows",
                region,
                [
                    [DRIFT_NAMESPACE, PREDICTION_PSI_METRIC, ENDPOINT_DIMENSION, ep],
                    [
                        DRIFT_NAMESPACE,
                        SCORED_ROWS_METRIC,
                        ENDPOINT_DIMENSION,
                        ep,
                        {"yAxis": "right"},
                    ],
                ],
                stat="Maximum",
                period=a.drift_period_seconds,
                annotations=psi_line,
            ),
        ]
        return widgets

    def _lake_widgets(self, region: pulumi.Output[str]) -> list[dict[str, Any]]:
        a = self._args
        widgets = []
        if a.ingest_stream_name is not None:
            stream = ["DeliveryStreamName", a.ingest_stream_name]
            widgets.append(
                _metric(
                    "Ingestion: records delivered to the raw zone",
                    region,
                    [
                        [FIREHOSE_NAMESPACE, "IncomingRecords", *stream],
                        [FIREHOSE_NAMESPACE, "DeliveryToS3.Records", *stream],
                        [
                            FIREHOSE_NAMESPACE,
                            "DeliveryToS3.DataFreshness",
                            *stream,
                            {"yAxis": "right", "stat": "Maximum"},
                        ],
                    ],
                    period=3600,
                )
            )
        if a.lake_bucket_names:
            widgets.append(
                _metric(
                    "Lake size (bytes, daily)",
                    region,
                    [
                        [
                            "AWS/S3",
                            "BucketSizeBytes",
                            "BucketName",
                            bucket,
                            "StorageType",
                            "StandardStorage",
                            {"label": zone},
                        ]
                        for zone, bucket in sorted(a.lake_bucket_names.items())
                    ],
                    stat="Average",
                    period=86400,
                )
            )
        return widgets

    def _job_widgets(self, region: pulumi.Output[str]) -> list[dict[str, Any]]:
        widgets = [
            _metric(
                "Training jobs (CPU / GPU %)",
                region,
                [
                    [
                        {
                            "expression": "SEARCH('{/aws/sagemaker/TrainingJobs,Host} "
                            "MetricName=\"CPUUtilization\"', 'Average', 300)",
                            "id": "cpu",
                            "label": "CPU",
                        }
                    ],
                    [
                        {
                            "expression": "SEARCH('{/aws/sagemaker/TrainingJobs,Host} "
                            "MetricName=\"GPUUtilization\"', 'Average', 300)",
                            "id": "gpu",
                            "label": "GPU",
                        }
                    ],
                ],
                stat="Average",
            )
        ]
        if self._args.drift_state_machine_arn is not None:
            sm = ["StateMachineArn", self._args.drift_state_machine_arn]
            widgets.append(
                _metric(
                    "Drift job runs",
                    region,
                    [
                        ["AWS/States", "ExecutionsSucceeded", *sm],
                        ["AWS/States", "ExecutionsFailed", *sm],
                        ["AWS/States", "ExecutionsTimedOut", *sm],
                    ],
                    period=3600,
                )
            )
        return widgets


def _metric(
    title: str,
    region: pulumi.Output[str],
    metrics: list[list[Any]],
    *,
    stat: str = "Sum",
    period: int = 300,
    width: int = 12,
    annotations: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A time-series widget of the dashboard."""
    props: dict[str, Any] = {
        "title": title,
        "region": region,
        "metrics": metrics,
        "stat": stat,
        "period": period,
        "view": "timeSeries",
    }
    if annotations:
        props["annotations"] = annotations
    return {"type": "metric", "width": width, "height": 6, "properties": props}


def _text(markdown: str) -> dict[str, Any]:
    return {"type": "text", "width": 24, "height": 1, "properties": {"markdown": markdown}}
