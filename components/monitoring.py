"""Monitoring: the stack's data-freshness alarm, and its dashboard with one section per model.

A model's own alarms (endpoint health, drift per feature) are its `ModelAlarms`
(`components.model_alarms`); this component adds what the stack shares, and draws the dashboard:
a section per model (its endpoint's traffic, latency and instances, its drift per feature, its
online quality per version, its skew share and age, its drift job's runs, its alarms), then the
lake and the training jobs.

Freshness: nothing delivered to the raw zone for `freshness_hours`. S3 request metrics are not on by
default (and cost per bucket), so the alarm watches what does exist: the ingestion stream's Firehose
`DeliveryToS3.Records`, Sum per hour, below 1 for `freshness_hours` consecutive hours. Firehose
publishes no datapoint for an hour in which nothing was delivered, so missing data is breaching:
silence IS the condition. (Batch uploads land without Firehose; the stream is the steady feed.)
CloudWatch allows at most 7 days of evaluation for hourly periods, hence `freshness_hours <= 168`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from components.model_alarms import (
    INSTANCE_NAMESPACE,
    MISSING_DATA,
    SAGEMAKER_NAMESPACE,
    VARIANT_DIMENSION,
)
from ml.contracts import (
    DRIFT_NAMESPACE,
    ENDPOINT_DIMENSION,
    FEATURE_DIMENSION,
    FEATURE_PSI_METRIC,
    LABELED_ROWS_METRIC,
    MODEL_AGE_METRIC,
    MODEL_VERSION_DIMENSION,
    PREDICTION_PSI_METRIC,
    QUALITY_NAMESPACE,
    QUALITY_SHORTFALL_METRIC,
    SCORED_ROWS_METRIC,
    SKEW_SHARE_METRIC,
)

__all__ = ["MAX_FRESHNESS_HOURS", "MISSING_DATA", "ModelPanel", "Monitoring", "MonitoringArgs"]

FIREHOSE_NAMESPACE = "AWS/Firehose"
MAX_FRESHNESS_HOURS = 168  # 7 days of hourly periods: CloudWatch's longest evaluation window


@dataclass(frozen=True, slots=True)
class ModelPanel:
    """One model's section of the dashboard."""

    model: str
    # None: the stack serves no endpoint (no endpoint or drift charts).
    endpoint_name: pulumi.Input[str] | None = None
    features: Sequence[str] = ()
    variant_name: str = "primary"
    serverless: bool = False
    gpu: bool = False
    latency_p99_ms: int = 250  # drawn as a line on the latency chart
    drift_psi_threshold: float = 0.2  # drawn as a line on the PSI charts
    drift_period_seconds: int = 3600
    # drawn as lines on the online quality, skew and age charts
    quality_margin: float = 0.05
    skew_share_threshold: float = 0.01
    max_model_age_days: int = 14
    drift_state_machine_arn: pulumi.Input[str] | None = None
    # The model's alarms (`ModelAlarms.alarm_arns`), shown in its section.
    alarm_arns: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MonitoringArgs:
    topic_arn: pulumi.Input[str]
    dashboard_name: str
    # One section each, in this order.
    models: Sequence[ModelPanel] = ()
    # The Firehose stream that feeds the raw zone (freshness alarm); None: no freshness alarm.
    ingest_stream_name: pulumi.Input[str] | None = None
    # The other streams into the raw zone, by dataset (e.g. the outcomes: labels come back in
    # bursts, weeks after the prediction, so no freshness alarm): charted only.
    other_stream_names: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    # Dashboard only: zone -> bucket name.
    lake_bucket_names: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    freshness_hours: int = 24
    tags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problems = []
        if not self.dashboard_name or len(self.dashboard_name) > 255:
            problems.append(f"dashboard_name {self.dashboard_name!r}: 1 to 255 characters")
        if not 1 <= self.freshness_hours <= MAX_FRESHNESS_HOURS:
            problems.append(
                f"freshness_hours {self.freshness_hours}: 1 to {MAX_FRESHNESS_HOURS} (hourly "
                "periods; CloudWatch evaluates at most 7 days)"
            )
        names = [m.model for m in self.models]
        if len(set(names)) != len(names):
            problems.append(f"models repeat a name: {names}")
        for m in self.models:
            if not re.fullmatch(r"[a-z][a-z0-9]{1,19}", m.model):
                problems.append(f"model {m.model!r}: the name of a model package under ml/models/")
            if m.endpoint_name is not None and not m.features:
                problems.append(f"model {m.model!r}: an endpoint's section charts its features")
        if problems:
            raise ValueError("MonitoringArgs: " + "; ".join(problems))


class Monitoring(pulumi.ComponentResource):
    """The freshness alarm and the stack's dashboard."""

    alarm_arns: dict[str, pulumi.Output[str]]
    dashboard_name: pulumi.Output[str]

    def __init__(
        self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlplatform:monitoring:Monitoring", name, None, opts)
        self._name = name
        self._args = args
        self.alarm_arns = {}
        region = aws.get_region_output().region
        if args.ingest_stream_name is not None:
            self._freshness_alarm(args.ingest_stream_name)

        dashboard = aws.cloudwatch.Dashboard(
            f"{name}-dashboard",
            dashboard_name=args.dashboard_name,
            dashboard_body=pulumi.Output.json_dumps({"widgets": self._widgets(region)}),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.dashboard_name = dashboard.dashboard_name
        self.register_outputs(
            {"alarm_arns": self.alarm_arns, "dashboard_name": self.dashboard_name}
        )

    def _freshness_alarm(self, stream: pulumi.Input[str]) -> None:
        a, hours = self._args, self._args.freshness_hours
        treat, why = MISSING_DATA["freshness"]
        alarm = aws.cloudwatch.MetricAlarm(
            f"{self._name}-freshness",
            alarm_description=f"Nothing delivered to the raw zone for {hours} h. "
            f"Missing data: {treat} ({why}).",
            alarm_actions=[a.topic_arn],
            ok_actions=[a.topic_arn],
            actions_enabled=True,
            treat_missing_data=treat,
            tags=dict(a.tags),
            namespace=FIREHOSE_NAMESPACE,
            metric_name="DeliveryToS3.Records",
            dimensions={"DeliveryStreamName": stream},
            statistic="Sum",
            period=3600,
            evaluation_periods=hours,
            datapoints_to_alarm=hours,
            comparison_operator="LessThanThreshold",
            threshold=1,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.alarm_arns["freshness"] = alarm.arn

    # --- dashboard -------------------------------------------------------------------------------

    def _widgets(self, region: pulumi.Output[str]) -> list[dict[str, Any]]:
        widgets: list[dict[str, Any]] = []
        for model in self._args.models:
            widgets += _model_widgets(region, model)
        widgets += [_text("## Lake"), *self._lake_widgets(region)]
        widgets += [_text("## Training jobs"), _training_widget(region)]
        if self.alarm_arns:
            widgets.append(_alarms("Platform alarms", self.alarm_arns))
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
        for dataset, name in sorted(a.other_stream_names.items()):
            stream = ["DeliveryStreamName", name]
            widgets.append(
                _metric(
                    f"Ingestion: {dataset} records delivered to the raw zone",
                    region,
                    [
                        [FIREHOSE_NAMESPACE, "IncomingRecords", *stream],
                        [FIREHOSE_NAMESPACE, "DeliveryToS3.Records", *stream],
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


def _model_widgets(region: pulumi.Output[str], m: ModelPanel) -> list[dict[str, Any]]:
    """A model's section: its endpoint, its drift and its drift job's runs, its alarms."""
    widgets = [_text(f"## Model `{m.model}`")]
    if m.endpoint_name is not None:
        widgets += _endpoint_widgets(region, m, m.endpoint_name)
        widgets += _drift_widgets(region, m, m.endpoint_name)
        widgets += _quality_widgets(region, m, m.endpoint_name)
    if m.drift_state_machine_arn is not None:
        sm = ["StateMachineArn", m.drift_state_machine_arn]
        widgets.append(
            _metric(
                f"{m.model}: drift job runs",
                region,
                [
                    ["AWS/States", "ExecutionsSucceeded", *sm],
                    ["AWS/States", "ExecutionsFailed", *sm],
                    ["AWS/States", "ExecutionsTimedOut", *sm],
                ],
                period=3600,
            )
        )
    if m.alarm_arns:
        widgets.append(_alarms(f"{m.model}: alarms", m.alarm_arns))
    return widgets


def _endpoint_widgets(
    region: pulumi.Output[str], m: ModelPanel, ep: pulumi.Input[str]
) -> list[dict[str, Any]]:
    dims = [ENDPOINT_DIMENSION, ep, VARIANT_DIMENSION, m.variant_name]
    widgets = [
        _metric(
            f"{m.model}: invocations and errors",
            region,
            [
                [SAGEMAKER_NAMESPACE, "Invocations", *dims],
                [SAGEMAKER_NAMESPACE, "Invocation4XXErrors", *dims],
                [SAGEMAKER_NAMESPACE, "Invocation5XXErrors", *dims],
            ],
        ),
        _metric(
            f"{m.model}: latency p99 (microseconds)",
            region,
            [
                [SAGEMAKER_NAMESPACE, "ModelLatency", *dims],
                [SAGEMAKER_NAMESPACE, "OverheadLatency", *dims],
            ],
            stat="p99",
            period=60,
            annotations={"horizontal": [{"label": "alarm", "value": m.latency_p99_ms * 1000}]},
        ),
    ]
    if not m.serverless:
        names = ["CPUUtilization", "MemoryUtilization", "DiskUtilization"]
        if m.gpu:
            names += ["GPUUtilization", "GPUMemoryUtilization"]
        widgets.append(
            _metric(
                f"{m.model}: instances (%)",
                region,
                [[INSTANCE_NAMESPACE, n, *dims] for n in names],
                stat="Average",
                width=24,
            )
        )
    return widgets


def _drift_widgets(
    region: pulumi.Output[str], m: ModelPanel, ep: pulumi.Input[str]
) -> list[dict[str, Any]]:
    psi_line = {"horizontal": [{"label": "PSI threshold", "value": m.drift_psi_threshold}]}
    return [
        _metric(
            f"{m.model}: feature PSI",
            region,
            [
                [DRIFT_NAMESPACE, FEATURE_PSI_METRIC, ENDPOINT_DIMENSION, ep, FEATURE_DIMENSION, f]
                for f in m.features
            ],
            stat="Maximum",
            period=m.drift_period_seconds,
            annotations=psi_line,
        ),
        _metric(
            f"{m.model}: prediction PSI and scored rows",
            region,
            [
                [DRIFT_NAMESPACE, PREDICTION_PSI_METRIC, ENDPOINT_DIMENSION, ep],
                [DRIFT_NAMESPACE, SCORED_ROWS_METRIC, ENDPOINT_DIMENSION, ep, {"yAxis": "right"}],
            ],
            stat="Maximum",
            period=m.drift_period_seconds,
            annotations=psi_line,
        ),
    ]


def _quality_widgets(
    region: pulumi.Output[str], m: ModelPanel, ep: pulumi.Input[str]
) -> list[dict[str, Any]]:
    """Online quality per version (every metric the job puts with a `ModelVersion` dimension,
    found by a search: versions come and go), the shortfall against the offline figure with the
    labelled rows it rests on, and the skew share beside the model's age."""
    period = m.drift_period_seconds
    schema = f"{{{QUALITY_NAMESPACE},{ENDPOINT_DIMENSION},{MODEL_VERSION_DIMENSION}}}"
    per_version = pulumi.Output.concat(
        f"SEARCH('{schema} {ENDPOINT_DIMENSION}=\"", ep, f"\"', 'Maximum', {period})"
    )
    return [
        _metric(
            f"{m.model}: online quality per version",
            region,
            [[{"expression": per_version, "id": "online"}]],
            stat="Maximum",
            period=period,
        ),
        _metric(
            f"{m.model}: quality shortfall vs offline, labelled rows",
            region,
            [
                [QUALITY_NAMESPACE, QUALITY_SHORTFALL_METRIC, ENDPOINT_DIMENSION, ep],
                [
                    QUALITY_NAMESPACE,
                    LABELED_ROWS_METRIC,
                    ENDPOINT_DIMENSION,
                    ep,
                    {"yAxis": "right"},
                ],
            ],
            stat="Maximum",
            period=period,
            annotations={"horizontal": [{"label": "margin", "value": m.quality_margin}]},
        ),
        _metric(
            f"{m.model}: skew share and model age (days)",
            region,
            [
                [QUALITY_NAMESPACE, SKEW_SHARE_METRIC, ENDPOINT_DIMENSION, ep],
                [QUALITY_NAMESPACE, MODEL_AGE_METRIC, ENDPOINT_DIMENSION, ep, {"yAxis": "right"}],
            ],
            stat="Maximum",
            period=period,
            width=24,
            annotations={
                "horizontal": [
                    {"label": "skew threshold", "value": m.skew_share_threshold},
                    {"label": "max age", "value": m.max_model_age_days, "yAxis": "right"},
                ]
            },
        ),
    ]


def _training_widget(region: pulumi.Output[str]) -> dict[str, Any]:
    return _metric(
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


def _alarms(title: str, arns: Mapping[str, pulumi.Input[str]]) -> dict[str, Any]:
    return {
        "type": "alarm",
        "width": 24,
        "height": 4,
        "properties": {"title": title, "alarms": [arns[k] for k in sorted(arns)]},
    }


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
