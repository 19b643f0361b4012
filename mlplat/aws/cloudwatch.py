"""CloudWatch: metric alarms, dashboards, Logs (groups, streams, metric filters) and EventBridge
rules and targets (pulumi-aws keeps all of them under `aws:cloudwatch/`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlplat.aws.realizing import (
    RealizeContext,
    RealizeError,
    Registration,
    drop_empty,
    pascal,
    tag_list,
)
from mlplat.aws.registry import Arns, AwsType, Fake, Outputs, Service

# --- the plan engine's fakes


# The outputs the plan engine's fake and the sandbox's realizer both answer.
def _alarm_state(at: Arns, name: str) -> dict[str, Any]:
    return {"name": name, "arn": at.arn("cloudwatch", f"alarm:{name}")}


def _log_group_state(at: Arns, name: str) -> dict[str, Any]:
    return {"name": name, "arn": at.arn("logs", f"log-group:{name}")}


def _fake_alarm(f: Fake) -> Outputs:
    return f.physical, _alarm_state(f, f.physical)


def _fake_log_group(f: Fake) -> Outputs:
    return f.physical, _log_group_state(f, f.physical)


def _fake_metric_filter(f: Fake) -> Outputs:
    """Id: the filter's name (unique within its log group); no ARN."""
    return f.physical, {"name": f.physical}


def _fake_event_rule(f: Fake) -> Outputs:
    return f.physical, {"name": f.physical, "arn": f.arn("events", f"rule/{f.physical}")}


# --- the sandbox's realizers and readers


def _alarm_request(reg: Registration, name: str) -> dict[str, Any]:
    dimensions = [{"Name": k, "Value": v} for k, v in sorted((reg.get("dimensions") or {}).items())]
    queries = []
    for query in reg.get("metricQueries", []):
        shaped: dict[str, Any] = drop_empty(
            {
                "Id": query.get("id"),
                "Expression": query.get("expression"),
                "Label": query.get("label"),
                "ReturnData": query.get("returnData"),
                "Period": query.get("period"),
                "AccountId": query.get("accountId"),
            }
        )
        metric = query.get("metric")
        if metric:
            shaped["MetricStat"] = drop_empty(
                {
                    "Metric": drop_empty(
                        {
                            "MetricName": metric.get("metricName"),
                            "Namespace": metric.get("namespace"),
                            "Dimensions": [
                                {"Name": k, "Value": v}
                                for k, v in sorted((metric.get("dimensions") or {}).items())
                            ],
                        }
                    ),
                    "Period": metric.get("period"),
                    "Stat": metric.get("stat"),
                    "Unit": metric.get("unit"),
                }
            )
        queries.append(shaped)
    return drop_empty(
        {
            "AlarmName": name,
            "AlarmDescription": reg.get("alarmDescription"),
            "ActionsEnabled": reg.get("actionsEnabled", True),
            "OKActions": reg.get("okActions"),
            "AlarmActions": reg.get("alarmActions"),
            "InsufficientDataActions": reg.get("insufficientDataActions"),
            "MetricName": reg.get("metricName"),
            "Namespace": reg.get("namespace"),
            "Statistic": reg.get("statistic"),
            "ExtendedStatistic": reg.get("extendedStatistic"),
            "Dimensions": dimensions,
            "Period": reg.get("period"),
            "Unit": reg.get("unit"),
            "EvaluationPeriods": reg.require("evaluationPeriods"),
            "DatapointsToAlarm": reg.get("datapointsToAlarm"),
            "Threshold": reg.get("threshold"),
            "ComparisonOperator": reg.require("comparisonOperator"),
            "TreatMissingData": reg.get("treatMissingData", "missing"),
            "EvaluateLowSampleCountPercentile": reg.get("evaluateLowSampleCountPercentiles"),
            "Metrics": queries,
            "ThresholdMetricId": reg.get("thresholdMetricId"),
            "Tags": tag_list(reg.get("tags")),
        }
    )


def _alarm_matches(current: Mapping[str, Any], request: Mapping[str, Any]) -> bool:
    for key, value in request.items():
        if key == "Tags":
            continue
        have = current.get(key)
        if isinstance(value, float | int) and not isinstance(value, bool) and have is not None:
            if float(have) != float(value):
                return False
        elif key == "Dimensions":
            if sorted((d["Name"], d["Value"]) for d in have or []) != sorted(
                (d["Name"], d["Value"]) for d in value
            ):
                return False
        elif have != value:
            return False
    return True


def _read_alarm(ctx: RealizeContext, ident: str, _: Mapping[str, Any]) -> Any:
    alarms = ctx.client("cloudwatch").describe_alarms(AlarmNames=[ident])["MetricAlarms"]
    if not alarms:
        raise RealizeError(f"alarm {ident} not found")
    return alarms[0]


def _metric_alarm(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    cloudwatch = ctx.client("cloudwatch")
    name = reg.physical(max_len=255)
    request = _alarm_request(reg, name)
    current = cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"]
    # moto resets an alarm's state when it is put again: only put what changed.
    if not current or not _alarm_matches(current[0], request):
        cloudwatch.put_metric_alarm(**request)
        # moto starts alarms in OK; CloudWatch starts them with no data to judge
        cloudwatch.set_alarm_state(
            AlarmName=name,
            StateValue="INSUFFICIENT_DATA",
            StateReason="Unchecked: Initial alarm creation",
        )
    return name, _alarm_state(ctx, name)


def _read_dashboard(ctx: RealizeContext, ident: str, _: Mapping[str, Any]) -> Any:
    return ctx.client("cloudwatch").get_dashboard(DashboardName=ident)


def _dashboard(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    name = str(reg.require("dashboardName"))
    ctx.client("cloudwatch").put_dashboard(
        DashboardName=name, DashboardBody=str(reg.require("dashboardBody"))
    )
    return name, {"dashboardArn": ctx.arn("cloudwatch", f"dashboard/{name}", region=False)}


def _read_log_group(ctx: RealizeContext, ident: str, _: Mapping[str, Any]) -> Any:
    groups = ctx.client("logs").describe_log_groups(logGroupNamePrefix=ident)["logGroups"]
    found = [g for g in groups if g["logGroupName"] == ident]
    if not found:
        raise RealizeError(f"log group {ident} not found")
    return found[0]


def _log_group(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    logs = ctx.client("logs")
    name = reg.physical(max_len=512)
    groups = logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"]
    current = next((g for g in groups if g["logGroupName"] == name), None)
    if current is None:
        logs.create_log_group(
            **drop_empty(
                {
                    "logGroupName": name,
                    "kmsKeyId": reg.get("kmsKeyId"),
                    "logGroupClass": reg.get("logGroupClass"),
                    "tags": reg.get("tags"),
                }
            )
        )
    retention = reg.get("retentionInDays")
    if retention and (current is None or current.get("retentionInDays") != retention):
        logs.put_retention_policy(logGroupName=name, retentionInDays=retention)
    return name, _log_group_state(ctx, name)


def _read_log_stream(ctx: RealizeContext, ident: str, state: Mapping[str, Any]) -> Any:
    streams = ctx.client("logs").describe_log_streams(
        logGroupName=state["logGroupName"], logStreamNamePrefix=ident
    )["logStreams"]
    if not any(s["logStreamName"] == ident for s in streams):
        raise RealizeError(f"log stream {ident} not found")
    return streams


def _log_stream(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    logs = ctx.client("logs")
    group = str(reg.require("logGroupName"))
    name = reg.physical(max_len=512)
    streams = logs.describe_log_streams(logGroupName=group, logStreamNamePrefix=name)["logStreams"]
    if not any(s["logStreamName"] == name for s in streams):
        logs.create_log_stream(logGroupName=group, logStreamName=name)
    return name, {"name": name, "arn": ctx.arn("logs", f"log-group:{group}:log-stream:{name}")}


def _read_metric_filter(ctx: RealizeContext, ident: str, state: Mapping[str, Any]) -> Any:
    found = ctx.client("logs").describe_metric_filters(
        logGroupName=state["logGroupName"], filterNamePrefix=ident
    )["metricFilters"]
    if not any(f["filterName"] == ident for f in found):
        raise RealizeError(f"metric filter {ident} not found")
    return found


def _metric_filter(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    logs = ctx.client("logs")
    name = reg.physical(max_len=512)
    group = str(reg.require("logGroupName"))
    metric = reg.require("metricTransformation")
    default = metric.get("defaultValue")
    request = {
        "filterName": name,
        "filterPattern": str(reg.require("pattern")),
        "metricTransformations": [
            drop_empty(
                {
                    "metricName": metric["name"],
                    "metricNamespace": metric["namespace"],
                    "metricValue": metric["value"],
                    "defaultValue": float(default) if default is not None else None,
                    "unit": metric.get("unit"),
                }
            )
        ],
    }
    current = [
        f
        for f in logs.describe_metric_filters(logGroupName=group, filterNamePrefix=name)[
            "metricFilters"
        ]
        if f["filterName"] == name
    ]
    unchanged = len(current) == 1 and all(current[0].get(k) == v for k, v in request.items())
    if not unchanged:  # a put replaces a filter of the same name
        logs.put_metric_filter(logGroupName=group, **request)
    return name, {"name": name, "logGroupName": group}


def _read_rule(ctx: RealizeContext, ident: str, state: Mapping[str, Any]) -> Any:
    return ctx.client("events").describe_rule(
        Name=state["name"], EventBusName=state.get("eventBusName") or "default"
    )


def _event_rule(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    name = reg.physical(max_len=64)
    bus = reg.get("eventBusName", "default")
    state = reg.get("state") or ("DISABLED" if reg.get("isEnabled") is False else "ENABLED")
    arn = ctx.client("events").put_rule(
        **drop_empty(
            {
                "Name": name,
                "ScheduleExpression": reg.get("scheduleExpression"),
                "EventPattern": reg.get("eventPattern"),
                "State": state,
                "Description": reg.get("description"),
                "RoleArn": reg.get("roleArn"),
                "EventBusName": bus,
                "Tags": tag_list(reg.get("tags")),
            }
        )
    )["RuleArn"]
    ident = name if bus == "default" else f"{bus}/{name}"
    return ident, {"name": name, "arn": arn, "eventBusName": bus}


_TARGET_RENAMES = {
    "sqsTarget": "SqsParameters",
    "kinesisTarget": "KinesisParameters",
    "sagemakerPipelineTarget": "SageMakerPipelineParameters",
    "ecsTarget": "EcsParameters",
    "batchTarget": "BatchParameters",
    "httpTarget": "HttpParameters",
}
_TARGET_OPAQUE = frozenset({"inputPaths", "headerParameters", "queryStringParameters"})
# fields inside a target's parameters whose boto3 name is not their PascalCase
_TARGET_FIELD_RENAMES = {"pipelineParameterLists": "PipelineParameterList"}


def _read_target(ctx: RealizeContext, ident: str, state: Mapping[str, Any]) -> Any:
    targets = ctx.client("events").list_targets_by_rule(
        Rule=state["rule"], EventBusName=state.get("eventBusName") or "default"
    )["Targets"]
    found = [t for t in targets if t["Id"] == state["targetId"]]
    if not found:
        raise RealizeError(f"target {state['targetId']} not on rule {state['rule']}")
    return found[0]


def _event_target(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    rule = str(reg.require("rule"))
    bus = reg.get("eventBusName", "default")
    target_id = reg.physical(key="targetId", max_len=64)
    target: dict[str, Any] = drop_empty(
        {
            "Id": target_id,
            "Arn": reg.require("arn"),
            "RoleArn": reg.get("roleArn"),
            "Input": reg.get("input"),
            "InputPath": reg.get("inputPath"),
            "RetryPolicy": pascal(reg.get("retryPolicy")),
            "DeadLetterConfig": pascal(reg.get("deadLetterConfig")),
        }
    )
    transformer = reg.get("inputTransformer")
    if transformer:
        target["InputTransformer"] = drop_empty(
            {
                "InputPathsMap": transformer.get("inputPaths"),
                "InputTemplate": transformer.get("inputTemplate"),
            }
        )
    for key, boto in _TARGET_RENAMES.items():
        if reg.get(key):
            target[boto] = pascal(reg.get(key), _TARGET_FIELD_RENAMES, _TARGET_OPAQUE)
    result = ctx.client("events").put_targets(Rule=rule, EventBusName=bus, Targets=[target])
    if result.get("FailedEntryCount"):
        raise RealizeError(f"put_targets failed: {result['FailedEntries']}")
    return f"{rule}-{target_id}", {"targetId": target_id, "rule": rule, "eventBusName": bus}


def _fake_dashboard(f: Fake) -> Outputs:
    """Dashboards are global: no region in the ARN."""
    name = f.input("dashboardName") or f.physical
    return name, {"dashboardArn": f"arn:aws:cloudwatch::{f.account}:dashboard/{name}"}


def _fake_log_stream(f: Fake) -> Outputs:
    name = f.input("name") or f.physical
    group = f.input("logGroupName")
    return name, {"arn": f.arn("logs", f"log-group:{group}:log-stream:{name}")}


def _fake_event_target(f: Fake) -> Outputs:
    """Id `<rule>-<target id>`; its `arn` is the target's, an input."""
    target = f.input("targetId") or f.physical
    return f"{f.input('rule')}-{target}", {"targetId": target}


# --- the registry entries

SERVICE = Service(
    owns=("cloudwatch",),
    types=(
        AwsType(
            "aws:cloudwatch/metricAlarm:MetricAlarm",
            fake=_fake_alarm,
            realize=_metric_alarm,
            read=_read_alarm,
        ),
        AwsType(
            "aws:cloudwatch/dashboard:Dashboard",
            fake=_fake_dashboard,
            realize=_dashboard,
            read=_read_dashboard,
        ),
        AwsType(
            "aws:cloudwatch/logGroup:LogGroup",
            fake=_fake_log_group,
            realize=_log_group,
            read=_read_log_group,
        ),
        AwsType(
            "aws:cloudwatch/logStream:LogStream",
            fake=_fake_log_stream,
            realize=_log_stream,
            read=_read_log_stream,
        ),
        AwsType(
            "aws:cloudwatch/logMetricFilter:LogMetricFilter",
            fake=_fake_metric_filter,
            realize=_metric_filter,
            read=_read_metric_filter,
        ),
        AwsType(
            "aws:cloudwatch/eventRule:EventRule",
            fake=_fake_event_rule,
            realize=_event_rule,
            read=_read_rule,
        ),
        AwsType(
            "aws:cloudwatch/eventTarget:EventTarget",
            fake=_fake_event_target,
            realize=_event_target,
            read=_read_target,
        ),
    ),
)
