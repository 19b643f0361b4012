"""Alarm evaluation: operators, statistics, M of N, missing data, percentiles, notifications."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from mlplat.sandbox.alarms import (
    AlarmEvaluationError,
    evaluate_alarm,
    evaluate_in_moto,
    metric_datapoints,
    percentile,
)

NOW = datetime(2026, 3, 2, 12, 0, 30, tzinfo=UTC)  # inside the 12:00 period
PERIOD = 60


def alarm(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "AlarmName": "errors",
        "AlarmArn": "arn:aws:cloudwatch:us-east-1:123456789012:alarm:errors",
        "Namespace": "AWS/SageMaker",
        "MetricName": "Invocation5XXErrors",
        "Statistic": "Sum",
        "Dimensions": [{"Name": "EndpointName", "Value": "churn"}],
        "Period": PERIOD,
        "EvaluationPeriods": 3,
        "DatapointsToAlarm": 3,
        "Threshold": 5.0,
        "ComparisonOperator": "GreaterThanThreshold",
        "TreatMissingData": "missing",
        "StateValue": "OK",
        "ActionsEnabled": True,
    }
    base.update(overrides)
    return base


def series(
    pattern: str, stat: str = "Sum", bad: float = 10.0, good: float = 1.0
) -> list[dict[str, Any]]:
    """`0 - X - X` as in the CloudWatch docs: oldest first, the last is the current period."""
    tokens = pattern.split()
    start = NOW.replace(second=0) - timedelta(seconds=PERIOD * (len(tokens) - 1))
    points = []
    for i, token in enumerate(tokens):
        if token == "-":
            continue
        ts = start + timedelta(seconds=PERIOD * i + 5)
        points.append({"Timestamp": ts, stat: bad if token == "X" else good, "SampleCount": 1})
    return points


def state(pattern: str, **overrides: Any) -> str:
    return evaluate_alarm(alarm(**overrides), series(pattern), now=NOW).state


# The two tables of "How alarm state is evaluated when data is missing" (evaluation range 5).
THREE_OF_THREE = [
    ("0 - X - X", "OK", "OK", "OK", "OK"),
    ("0 - - - -", "OK", "OK", "OK", "OK"),
    ("- - - - -", "INSUFFICIENT_DATA", "keep", "ALARM", "OK"),
    ("0 X X - X", "ALARM", "ALARM", "ALARM", "ALARM"),
    ("- - X - -", "ALARM", "keep", "ALARM", "OK"),
]
TWO_OF_THREE = [
    ("0 - X - X", "ALARM", "ALARM", "ALARM", "ALARM"),
    ("0 0 X 0 X", "ALARM", "ALARM", "ALARM", "ALARM"),
    ("0 - X - -", "OK", "OK", "ALARM", "OK"),
    ("- - - - 0", "OK", "OK", "ALARM", "OK"),
    ("- - - X -", "ALARM", "keep", "ALARM", "OK"),
]


@pytest.mark.parametrize(("m", "rows"), [(3, THREE_OF_THREE), (2, TWO_OF_THREE)])
@pytest.mark.parametrize("current", ["OK", "INSUFFICIENT_DATA"])
def test_missing_data_tables_from_the_cloudwatch_docs(m, rows, current):
    for pattern, *expected in rows:
        for treat, want in zip(
            ("missing", "ignore", "breaching", "notBreaching"), expected, strict=True
        ):
            got = state(pattern, DatapointsToAlarm=m, TreatMissingData=treat, StateValue=current)
            assert got == (current if want == "keep" else want), (m, pattern, treat)


def test_premature_alarm_needs_the_breach_to_be_old_enough():
    # `- - - - X` with M=3: the next point may be good, so no ALARM yet (one real point: OK)
    assert state("- - - - X") == "OK"
    assert state("- - - X -") == "OK"
    assert state("- - X - -") == "ALARM"


@pytest.mark.parametrize(
    ("operator", "value", "expected"),
    [
        ("GreaterThanThreshold", 5.0, "OK"),
        ("GreaterThanThreshold", 5.1, "ALARM"),
        ("GreaterThanOrEqualToThreshold", 5.0, "ALARM"),
        ("GreaterThanOrEqualToThreshold", 4.9, "OK"),
        ("LessThanThreshold", 5.0, "OK"),
        ("LessThanThreshold", 4.9, "ALARM"),
        ("LessThanOrEqualToThreshold", 5.0, "ALARM"),
        ("LessThanOrEqualToThreshold", 5.1, "OK"),
    ],
)
def test_each_comparison_operator_at_and_around_the_threshold(operator, value, expected):
    points = series("X X X", bad=value)
    result = evaluate_alarm(alarm(ComparisonOperator=operator), points, now=NOW)
    assert result.state == expected


@pytest.mark.parametrize(
    ("stat", "key"),
    [
        ("Average", "Average"),
        ("Maximum", "Maximum"),
        ("Minimum", "Minimum"),
        ("SampleCount", "SampleCount"),
        ("Sum", "Sum"),
    ],
)
def test_the_alarm_reads_its_own_statistic(stat, key):
    points = [{"Timestamp": p["Timestamp"], key: 10.0} for p in series("X X X", stat=key)]
    assert evaluate_alarm(alarm(Statistic=stat), points, now=NOW).state == "ALARM"
    # a datapoint carrying only another statistic is missing data for this alarm
    other = "Sum" if stat != "Sum" else "Maximum"
    points = [{"Timestamp": p["Timestamp"], other: 10.0} for p in points]
    assert evaluate_alarm(alarm(Statistic=stat), points, now=NOW).state == "INSUFFICIENT_DATA"


def test_m_of_n_counts_breaching_datapoints_not_consecutive_ones():
    assert state("X 0 X", DatapointsToAlarm=2) == "ALARM"
    assert state("X 0 0", DatapointsToAlarm=2) == "OK"
    assert state("X 0 X 0 0", DatapointsToAlarm=2, EvaluationPeriods=5) == "ALARM"
    assert state("X 0 0 0 X", DatapointsToAlarm=3, EvaluationPeriods=5) == "OK"


def test_periods_are_aligned_and_old_points_fall_out_of_the_range():
    points = series("X X X")
    later = NOW + timedelta(minutes=10)  # all three now older than the evaluation range
    assert evaluate_alarm(alarm(), points, now=later).state == "INSUFFICIENT_DATA"
    # two samples in one period: the datapoint is per period, the last one given wins
    start = NOW.replace(second=0)
    two = [
        {"Timestamp": start + timedelta(seconds=1), "Sum": 1.0},
        {"Timestamp": start + timedelta(seconds=59), "Sum": 9.0},
    ]
    result = evaluate_alarm(alarm(EvaluationPeriods=1, DatapointsToAlarm=1), two, now=NOW)
    assert result.state == "ALARM"
    assert [v for _, v, _ in result.periods] == [None, None, 9.0]


def test_percentiles_and_low_sample_counts():
    p99 = alarm(
        Statistic=None,
        ExtendedStatistic="p99",
        Threshold=250.0,
        EvaluationPeriods=1,
        DatapointsToAlarm=1,
        StateValue="OK",
    )
    point = [{"Timestamp": NOW, "ExtendedStatistics": {"p99": 300.0}, "SampleCount": 50}]
    assert evaluate_alarm(p99, point, now=NOW).state == "ALARM"
    # p99 needs 10 / (1 - 0.99) = 1000 samples; with `ignore` fewer keep the current state
    ignoring = {**p99, "EvaluateLowSampleCountPercentile": "ignore"}
    assert evaluate_alarm(ignoring, point, now=NOW).state == "OK"
    enough = [{**point[0], "SampleCount": 1000}]
    assert evaluate_alarm(ignoring, enough, now=NOW).state == "ALARM"
    evaluating = {**p99, "EvaluateLowSampleCountPercentile": "evaluate"}
    assert evaluate_alarm(evaluating, point, now=NOW).state == "ALARM"


def test_percentile_is_the_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 99) == 99.0
    assert percentile(values, 50) == 50.0
    assert percentile(values, 100) == 100.0
    assert percentile([7.0], 99) == 7.0
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)


def test_reason_names_the_datapoints_and_the_threshold():
    result = evaluate_alarm(alarm(), series("X X X"), now=NOW)
    assert result.reason.startswith("Threshold Crossed: 3 out of the last 3 datapoints [10 (")
    assert "were greater than the threshold (5)" in result.reason
    assert result.reason_data["recentDatapoints"] == [10.0, 10.0, 10.0]
    assert result.reason_data["statistic"] == "Sum"
    assert result.reason_data["period"] == 60


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"Metrics": [{"Id": "e1", "Expression": "m1/m2"}]}, "metric-math alarms"),
        ({"Statistic": "Median"}, "statistic 'Median' is not supported"),
        ({"Statistic": None, "ExtendedStatistic": "p101"}, "statistic 'p101' is not supported"),
        ({"ComparisonOperator": "LessThanLowerOrGreaterThanUpperThreshold"}, "anomaly detection"),
        ({"DatapointsToAlarm": 4}, "DatapointsToAlarm <= EvaluationPeriods"),
        ({"Period": 0}, "needs Period > 0"),
        ({"TreatMissingData": "sometimes"}, "TreatMissingData 'sometimes'"),
    ],
)
def test_alarms_the_sandbox_cannot_evaluate_are_refused_clearly(overrides, message):
    with pytest.raises(AlarmEvaluationError, match=message):
        evaluate_alarm(alarm(**overrides), [], now=NOW)


# --- against moto: metric data in, state set, notification published


@pytest.fixture
def aws_clients():
    with mock_aws():
        yield {s: boto3.client(s, region_name="us-east-1") for s in ("cloudwatch", "sns", "sqs")}


def _topic_with_queue(clients: dict[str, Any]) -> tuple[str, str]:
    topic = clients["sns"].create_topic(Name="oncall")["TopicArn"]
    url = clients["sqs"].create_queue(QueueName="oncall")["QueueUrl"]
    arn = clients["sqs"].get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    clients["sns"].subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    return topic, url


def _messages(clients: dict[str, Any], url: str) -> list[dict[str, Any]]:
    got = clients["sqs"].receive_message(QueueUrl=url, MaxNumberOfMessages=10)
    return [json.loads(m["Body"]) for m in got.get("Messages", [])]


def test_evaluate_in_moto_sets_the_state_and_publishes_the_alarm_message(aws_clients):
    cw = aws_clients["cloudwatch"]
    topic, url = _topic_with_queue(aws_clients)
    cw.put_metric_alarm(
        AlarmName="errors",
        Namespace="AWS/SageMaker",
        MetricName="Invocation5XXErrors",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=2,
        DatapointsToAlarm=2,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
        Dimensions=[{"Name": "EndpointName", "Value": "churn"}],
        AlarmActions=[topic],
        OKActions=[topic],
        TreatMissingData="notBreaching",
    )
    now = datetime.now(UTC).replace(microsecond=0)
    start = now.replace(second=0) - timedelta(minutes=1)
    cw.put_metric_data(
        Namespace="AWS/SageMaker",
        MetricData=[
            {
                "MetricName": "Invocation5XXErrors",
                "Value": 2.0,
                "Dimensions": [{"Name": "EndpointName", "Value": "churn"}],
                "Timestamp": start + timedelta(minutes=k, seconds=1),
            }
            for k in range(2)
        ]
        + [
            {
                "MetricName": "Invocation5XXErrors",
                "Value": 9.0,  # another endpoint: not counted
                "Dimensions": [{"Name": "EndpointName", "Value": "other"}],
                "Timestamp": start + timedelta(seconds=2),
            }
        ],
    )
    # moto creates alarms in OK (CloudWatch: INSUFFICIENT_DATA, which the realizer sets)
    cw.set_alarm_state(AlarmName="errors", StateValue="INSUFFICIENT_DATA", StateReason="new")
    result = evaluate_in_moto(cw, aws_clients["sns"], "errors", now=now)
    assert result.old_state == "INSUFFICIENT_DATA"
    assert result.state == "ALARM"
    assert result.published == (topic,)
    assert cw.describe_alarms(AlarmNames=["errors"])["MetricAlarms"][0]["StateValue"] == "ALARM"
    [envelope] = _messages(aws_clients, url)
    assert envelope["Subject"] == 'ALARM: "errors" in US East (N. Virginia)'
    message = json.loads(envelope["Message"])
    assert message["NewStateValue"] == "ALARM"
    assert message["OldStateValue"] == "INSUFFICIENT_DATA"
    assert message["AlarmName"] == "errors"
    assert message["Region"] == "US East (N. Virginia)"
    assert message["AWSAccountId"] == "123456789012"
    assert message["Trigger"]["Statistic"] == "SUM"
    assert message["Trigger"]["Dimensions"] == [{"value": "churn", "name": "EndpointName"}]
    assert message["NewStateReason"].startswith("Threshold Crossed: 2 out of the last 2")
    # evaluating again with nothing new: no state change, nothing published
    again = evaluate_in_moto(cw, aws_clients["sns"], "errors", now=now)
    assert again.state == "ALARM" and again.published == ()
    assert _messages(aws_clients, url) == []
    # later, with no errors (missing treated as not breaching): back to OK, OK action published
    calm = evaluate_in_moto(cw, aws_clients["sns"], "errors", now=now + timedelta(minutes=10))
    assert calm.state == "OK" and calm.published == (topic,)
    [ok] = _messages(aws_clients, url)
    assert json.loads(ok["Message"])["NewStateValue"] == "OK"


def test_percentile_alarm_in_moto_reads_the_raw_samples(aws_clients):
    cw = aws_clients["cloudwatch"]
    cw.put_metric_alarm(
        AlarmName="latency",
        Namespace="AWS/SageMaker",
        MetricName="ModelLatency",
        ExtendedStatistic="p99",
        Period=60,
        EvaluationPeriods=1,
        Threshold=250_000,
        ComparisonOperator="GreaterThanThreshold",
        Dimensions=[{"Name": "EndpointName", "Value": "churn"}],
        ActionsEnabled=False,
        AlarmActions=["arn:aws:sns:us-east-1:123456789012:x"],
    )
    now = datetime.now(UTC).replace(microsecond=0)
    t = now.replace(second=0) + timedelta(seconds=1)
    values = [100_000.0] * 98 + [900_000.0] * 2  # p99 of 100 samples is the 99th: 900 ms
    cw.put_metric_data(
        Namespace="AWS/SageMaker",
        MetricData=[
            {
                "MetricName": "ModelLatency",
                "Values": values[i : i + 50],
                "Timestamp": t,
                "Dimensions": [{"Name": "EndpointName", "Value": "churn"}],
            }
            for i in (0, 50)
        ],
    )
    points = metric_datapoints(
        cw, cw.describe_alarms(AlarmNames=["latency"])["MetricAlarms"][0], now=now
    )
    assert points == [
        {
            "Timestamp": now.replace(second=0),
            "SampleCount": 100.0,
            "ExtendedStatistics": {"p99": 900_000.0},
        }
    ]
    result = evaluate_in_moto(cw, aws_clients["sns"], "latency", now=now)
    assert result.state == "ALARM"
    assert result.published == ()  # actions disabled


def test_actions_that_are_not_topics_are_listed_not_run(aws_clients):
    cw = aws_clients["cloudwatch"]
    scale = (
        "arn:aws:autoscaling:us-east-1:123456789012:scalingPolicy:abc:"
        "autoScalingGroupName/g:policyName/p"
    )
    cw.put_metric_alarm(
        AlarmName="cpu",
        Namespace="AWS/EC2",
        MetricName="CPUUtilization",
        Statistic="Average",
        Period=60,
        EvaluationPeriods=1,
        Threshold=80,
        ComparisonOperator="GreaterThanThreshold",
        AlarmActions=[scale],
        TreatMissingData="breaching",
    )
    result = evaluate_in_moto(cw, aws_clients["sns"], "cpu")
    assert result.state == "ALARM"
    assert result.skipped_actions == (scale,)


def test_unknown_alarm_name_is_a_clear_error(aws_clients):
    with pytest.raises(AlarmEvaluationError, match="no alarm named 'nope'"):
        evaluate_in_moto(aws_clients["cloudwatch"], aws_clients["sns"], "nope")
