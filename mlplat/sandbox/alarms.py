"""CloudWatch alarm evaluation for the sandbox (moto stores alarms but never evaluates them).

`evaluate_alarm(alarm, datapoints, now=...)` decides an alarm's state from per-period datapoints
the way CloudWatch documents it ("How alarm state is evaluated when data is missing", "Avoiding
premature transitions to alarm state", "Percentile-based alarms and low data samples"):

- periods are aligned to multiples of `Period`; the evaluation range is the `EvaluationPeriods`
  most recent periods plus `extra_periods` older ones (CloudWatch retrieves "a higher number of
  data points than Evaluation Periods"; its docs' examples use 3 + 2, the default here);
- with at least N real datapoints in the range, the N most recent are evaluated and missing data
  does not matter; otherwise every real datapoint in the range is used and the gap up to N is
  filled per `TreatMissingData` (`breaching` / `notBreaching` fill; `missing` does not; `ignore`
  keeps the current state where `missing` would need the fill or the premature-alarm rule);
- ALARM when at least M (`DatapointsToAlarm`, default N) evaluated datapoints breach, or (data
  treated as missing) when the oldest breaching datapoint of the last N periods is at least M old
  and every newer one is breaching or missing; INSUFFICIENT_DATA when no data at all is treated
  as missing; OK otherwise;
- percentiles (`ExtendedStatistic` pNN) with `EvaluateLowSampleCountPercentile: ignore` keep the
  current state while a period has fewer than 10/(1-p) samples (10/p below p50).

`evaluate_in_moto(cloudwatch, sns, alarm_name, now=...)` reads the metric from moto, evaluates,
calls `set_alarm_state` and — moto's `set_alarm_state` publishes nothing — publishes CloudWatch's
alarm notification JSON to the SNS topics among the new state's actions when the state changes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

State = Literal["OK", "ALARM", "INSUFFICIENT_DATA"]
Treat = Literal["missing", "ignore", "breaching", "notBreaching"]

COMPARISONS: dict[str, tuple[Callable[[float, float], bool], str]] = {
    "GreaterThanOrEqualToThreshold": (lambda v, t: v >= t, "greater than or equal to"),
    "GreaterThanThreshold": (lambda v, t: v > t, "greater than"),
    "LessThanThreshold": (lambda v, t: v < t, "less than"),
    "LessThanOrEqualToThreshold": (lambda v, t: v <= t, "less than or equal to"),
}
STATISTICS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")
TREATMENTS = ("missing", "ignore", "breaching", "notBreaching")
REGION_NAMES = {
    "us-east-1": "US East (N. Virginia)",
    "us-east-2": "US East (Ohio)",
    "us-west-1": "US West (N. California)",
    "us-west-2": "US West (Oregon)",
    "eu-west-1": "EU (Ireland)",
    "eu-west-2": "EU (London)",
    "eu-west-3": "EU (Paris)",
    "eu-central-1": "EU (Frankfurt)",
    "eu-north-1": "EU (Stockholm)",
    "ap-southeast-1": "Asia Pacific (Singapore)",
    "ap-southeast-2": "Asia Pacific (Sydney)",
    "ap-northeast-1": "Asia Pacific (Tokyo)",
    "ap-south-1": "Asia Pacific (Mumbai)",
    "ca-central-1": "Canada (Central)",
    "sa-east-1": "South America (Sao Paulo)",
}


class AlarmEvaluationError(ValueError):
    """The alarm cannot be evaluated by the sandbox (e.g. metric math, anomaly detection)."""


@dataclass(frozen=True, slots=True)
class Evaluation:
    state: State
    reason: str
    reason_data: dict[str, Any]
    # the evaluated periods, oldest first: (period start, value or None, breaching or None)
    periods: tuple[tuple[datetime, float | None, bool | None], ...] = field(default=())


def _percentile(stat: str) -> float | None:
    if stat.startswith("p") and stat[1:].replace(".", "", 1).isdigit():
        return float(stat[1:])
    return None


def statistic_of(alarm: Mapping[str, Any]) -> str:
    """`Statistic` or `ExtendedStatistic` (p0.0-p100); anything else is refused clearly."""
    if alarm.get("Metrics"):
        raise AlarmEvaluationError(
            f"alarm {alarm.get('AlarmName')!r}: metric-math alarms are not evaluated by the sandbox"
        )
    stat = alarm.get("Statistic") or alarm.get("ExtendedStatistic")
    if not stat:
        raise AlarmEvaluationError(f"alarm {alarm.get('AlarmName')!r} has no statistic")
    if stat in STATISTICS:
        return str(stat)
    p = _percentile(str(stat))
    if p is None or not 0 <= p <= 100:
        raise AlarmEvaluationError(
            f"alarm {alarm.get('AlarmName')!r}: statistic {stat!r} is not supported; expected "
            f"one of {', '.join(STATISTICS)} or a percentile p0-p100"
        )
    return str(stat)


def _low_sample_floor(stat: str) -> float:
    p = (_percentile(stat) or 0.0) / 100
    if p >= 0.5:
        return 10 / (1 - p) if p < 1 else math.inf
    return 10 / p if p > 0 else math.inf


def _aligned(ts: datetime, period: int) -> datetime:
    ts = ts if ts.tzinfo else ts.replace(tzinfo=UTC)
    epoch = int(ts.timestamp())
    return datetime.fromtimestamp(epoch - epoch % period, UTC)


@dataclass(frozen=True, slots=True)
class _Rule:
    """What one alarm checks, validated: statistic, comparison, M of N, missing-data treatment."""

    name: str
    stat: str
    compare: Callable[[float, float], bool]
    words: str
    threshold: float
    period: int
    n: int
    m: int
    treat: str
    current: State
    ignore_low: bool

    @classmethod
    def of(cls, alarm: Mapping[str, Any]) -> _Rule:
        name = alarm.get("AlarmName", "?")
        stat = statistic_of(alarm)
        operator = str(alarm.get("ComparisonOperator", ""))
        if operator not in COMPARISONS:
            raise AlarmEvaluationError(
                f"alarm {name!r}: comparison {operator!r} is not evaluated by the sandbox (anomaly "
                f"detection bands need a model); expected one of {', '.join(COMPARISONS)}"
            )
        if "Threshold" not in alarm:
            raise AlarmEvaluationError(f"alarm {name!r} has no static Threshold")
        compare, words = COMPARISONS[operator]
        period = int(alarm.get("Period") or 0)
        n = int(alarm.get("EvaluationPeriods") or 0)
        m = int(alarm.get("DatapointsToAlarm") or n)
        if period <= 0 or n <= 0 or not 0 < m <= n:
            raise AlarmEvaluationError(
                f"alarm {name!r}: needs Period > 0 and 0 < DatapointsToAlarm <= EvaluationPeriods "
                f"(got Period={period}, EvaluationPeriods={n}, DatapointsToAlarm={m})"
            )
        treat: str = str(alarm.get("TreatMissingData") or "missing")
        if treat not in TREATMENTS:
            raise AlarmEvaluationError(
                f"alarm {name!r}: TreatMissingData {treat!r}; expected one of "
                f"{', '.join(TREATMENTS)}"
            )
        ignore_low = (
            _percentile(stat) is not None
            and alarm.get("EvaluateLowSampleCountPercentile") == "ignore"
        )
        return cls(
            name,
            stat,
            compare,
            words,
            float(alarm["Threshold"]),
            period,
            n,
            m,
            treat,
            alarm.get("StateValue") or "INSUFFICIENT_DATA",
            ignore_low,
        )

    def breaches(self, value: float) -> bool:
        return bool(self.compare(value, self.threshold))


def _bucketed(
    rule: _Rule, datapoints: Iterable[Mapping[str, Any]], slots: Sequence[datetime]
) -> tuple[dict[datetime, float], set[datetime]]:
    """Each period's value, and the periods with too few samples for a percentile."""
    values: dict[datetime, float] = {}
    low_sample: set[datetime] = set()
    for point in datapoints:
        start = _aligned(point["Timestamp"], rule.period)
        if start not in slots:
            continue
        value = (
            (point.get("ExtendedStatistics") or {}).get(rule.stat)
            if _percentile(rule.stat) is not None
            else point.get(rule.stat)
        )
        if value is None:
            continue
        values[start] = float(value)
        count = point.get("SampleCount")
        if rule.ignore_low and count is not None and float(count) < _low_sample_floor(rule.stat):
            low_sample.add(start)
    return values, low_sample


@dataclass(frozen=True, slots=True)
class _Decision:
    state: State
    evaluated: list[tuple[datetime, float]]
    breaching: int
    filled: int
    real: int


def _decide(
    rule: _Rule,
    slots: Sequence[datetime],
    values: Mapping[datetime, float],
    low_sample: set[datetime],
) -> _Decision:
    """The state: M of the last N real datapoints, missing ones treated as the alarm says."""
    n, m, treat = rule.n, rule.m, rule.treat
    real = [(s, values[s]) for s in slots if s in values]
    recent = slots[-n:]
    filled = 0
    premature = False
    if len(real) >= n:
        evaluated = real[-n:]
        breaching = sum(rule.breaches(v) for _, v in evaluated)
        state: State = "ALARM" if breaching >= m else "OK"
    else:
        evaluated = real
        filled = n - len(real)
        breaching = sum(rule.breaches(v) for _, v in real)
        if treat == "breaching":
            breaching += filled
        # the premature-alarm rule: the oldest breaching point of the last N periods is at least
        # M periods old, every newer one is breaching or missing, and no real point disagrees
        # (the docs' M-of-N table: `0 - X - -` stays OK, `- - - X -` goes to ALARM)
        ages = [(n - i, values.get(s)) for i, s in enumerate(recent)]  # age n .. 1
        oldest = next((age for age, v in ages if v is not None and rule.breaches(v)), None)
        if (
            treat in ("missing", "ignore")
            and breaching < m
            and oldest is not None
            and oldest >= m
            and all(rule.breaches(v) for _, v in real)
            and all(v is None or rule.breaches(v) for age, v in ages if age < oldest)
        ):
            premature = True
        if breaching >= m or premature:
            state = "ALARM"
        elif treat == "breaching" or treat == "notBreaching" or real:
            state = "OK"
        else:
            state = "INSUFFICIENT_DATA"
        if treat == "ignore" and (not real or premature):
            state = rule.current
    if low_sample & {s for s, _ in evaluated}:
        state = rule.current
    return _Decision(state, evaluated, breaching, filled, len(real))


def _reason(rule: _Rule, decision: _Decision, extra_periods: int, low_sample: bool) -> str:
    """CloudWatch's StateReason wording for the decision."""
    n, m = rule.n, rule.m
    if decision.state == "INSUFFICIENT_DATA":
        return (
            f"Insufficient Data: {decision.real} datapoints were unknown."
            if decision.real
            else f"Insufficient Data: no datapoints in the last {n + extra_periods} periods."
        )
    if decision.state == rule.current and (rule.treat == "ignore" or low_sample):
        return "Unchecked: state kept (missing data ignored or too few samples)"
    shown = ", ".join(f"{v:g} ({s:%d/%m/%y %H:%M:%S})" for s, v in reversed(decision.evaluated))
    verb = "were" if decision.state == "ALARM" else "were not"
    reason = (
        f"Threshold Crossed: {decision.breaching} out of the last {n} datapoints [{shown}] "
        f"{verb} {rule.words} the threshold ({rule.threshold:g}) (minimum {m} datapoint"
        f"{'s' if m > 1 else ''} for OK -> ALARM transition)."
    )
    if decision.filled:
        filled = decision.filled
        reason += f" {filled} missing datapoint{'s' if filled > 1 else ''} treated as {rule.treat}."
    return reason


def evaluate_alarm(
    alarm: Mapping[str, Any],
    datapoints: Iterable[Mapping[str, Any]],
    *,
    now: datetime,
    extra_periods: int = 2,
) -> Evaluation:
    """The state CloudWatch would give `alarm` (a `describe_alarms` MetricAlarm) given `datapoints`
    (`get_metric_statistics` Datapoints: `Timestamp`, the statistic's key or `ExtendedStatistics`,
    optionally `SampleCount`) at time `now`. Datapoints outside the evaluation range are ignored."""
    rule = _Rule.of(alarm)
    last = _aligned(now, rule.period)
    slots = [last - timedelta(seconds=rule.period * k) for k in range(rule.n + extra_periods)]
    slots.reverse()
    values, low_sample = _bucketed(rule, datapoints, slots)
    decision = _decide(rule, slots, values, low_sample)
    periods = tuple(
        (s, values.get(s), rule.breaches(values[s]) if s in values else None) for s in slots
    )
    evaluated = decision.evaluated
    reason_data = {
        "version": "1.0",
        "queryDate": _iso(now),
        "startDate": _iso(evaluated[0][0]) if evaluated else _iso(slots[0]),
        "statistic" if _percentile(rule.stat) is None else "extendedStatistic": rule.stat,
        "period": rule.period,
        "recentDatapoints": [v for _, v in evaluated],
        "threshold": rule.threshold,
        "evaluatedDatapoints": [{"timestamp": _iso(s), "value": v} for s, v in evaluated],
    }
    reason = _reason(rule, decision, extra_periods, bool(low_sample))
    return Evaluation(decision.state, reason, reason_data, periods)


def _iso(ts: datetime) -> str:
    ts = ts if ts.tzinfo else ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


# --- against moto


def _dimensions(alarm: Mapping[str, Any]) -> list[dict[str, str]]:
    return [{"Name": d["Name"], "Value": d["Value"]} for d in alarm.get("Dimensions", [])]


def metric_datapoints(
    cloudwatch: Any,
    alarm: Mapping[str, Any],
    *,
    now: datetime,
    extra_periods: int = 2,
    raw_samples: Sequence[tuple[datetime, float]] | None = None,
) -> list[dict[str, Any]]:
    """Per-period datapoints of the alarm's metric over its evaluation range, from moto.

    Plain statistics come from `get_metric_data` (periods aligned to the range start, as
    CloudWatch aligns them). moto computes no percentiles, so for `ExtendedStatistic` the values
    come from `raw_samples` when given, else from the samples moto holds (read from its backend:
    the sandbox's server runs in this process)."""
    stat = statistic_of(alarm)
    period = int(alarm["Period"])
    n = int(alarm["EvaluationPeriods"]) + extra_periods
    end = _aligned(now, period) + timedelta(seconds=period)
    start = end - timedelta(seconds=period * n)
    if _percentile(stat) is None:
        metric = {
            "Namespace": alarm["Namespace"],
            "MetricName": alarm["MetricName"],
            "Dimensions": _dimensions(alarm),
        }
        response = cloudwatch.get_metric_data(
            MetricDataQueries=[
                {"Id": "v", "MetricStat": {"Metric": metric, "Period": period, "Stat": stat}},
                {
                    "Id": "n",
                    "MetricStat": {"Metric": metric, "Period": period, "Stat": "SampleCount"},
                },
            ],
            StartTime=start,
            EndTime=end,
        )
        results = {
            r["Id"]: dict(zip(r["Timestamps"], r["Values"], strict=True))
            for r in response["MetricDataResults"]
        }
        return [
            {"Timestamp": ts, stat: value, "SampleCount": results["n"].get(ts)}
            for ts, value in sorted(results["v"].items())
        ]
    samples = raw_samples if raw_samples is not None else moto_samples(alarm, cloudwatch)
    buckets: dict[datetime, list[float]] = {}
    for ts, value in samples:
        slot = _aligned(ts, period)
        if start <= slot < end:
            buckets.setdefault(slot, []).append(float(value))
    return [
        {
            "Timestamp": slot,
            "SampleCount": float(len(vals)),
            "ExtendedStatistics": {stat: percentile(vals, _percentile(stat) or 0.0)},
        }
        for slot, vals in sorted(buckets.items())
    ]


def percentile(values: Sequence[float], p: float) -> float:
    """The nearest-rank percentile (CloudWatch's are approximations of the same order statistic)."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def moto_samples(alarm: Mapping[str, Any], cloudwatch: Any) -> list[tuple[datetime, float]]:
    """Raw samples of the alarm's metric held by the in-process moto backend. Statistic sets
    (`StatisticValues`) have no samples: like CloudWatch, percentiles skip them unless their
    minimum equals their maximum."""
    from moto.cloudwatch.models import MetricAggregatedDatum, MetricDatum, cloudwatch_backends

    region = cloudwatch.meta.region_name
    account = alarm.get("AlarmArn", "::::123456789012").split(":")[4]
    backend = cloudwatch_backends[account][region]
    wanted = sorted((d["Name"], d["Value"]) for d in alarm.get("Dimensions", []))
    out: list[tuple[datetime, float]] = []
    for datum in backend.metric_data:
        if datum.namespace != alarm["Namespace"] or datum.name != alarm["MetricName"]:
            continue
        if sorted((d.name, d.value) for d in datum.dimensions) != wanted:
            continue
        if isinstance(datum, MetricDatum):
            out.append((datum.timestamp, float(datum.value)))
        elif isinstance(datum, MetricAggregatedDatum) and datum.min == datum.max:
            out.extend([(datum.timestamp, float(datum.min))] * int(datum.sample_count))
    return out


def notification(
    alarm: Mapping[str, Any], evaluation: Evaluation, old_state: str, now: datetime, region: str
) -> dict[str, Any]:
    """The JSON CloudWatch publishes to an alarm's SNS actions."""
    stat = statistic_of(alarm)
    extended = _percentile(stat) is not None
    return {
        "AlarmName": alarm["AlarmName"],
        "AlarmDescription": alarm.get("AlarmDescription"),
        "AWSAccountId": alarm["AlarmArn"].split(":")[4] if alarm.get("AlarmArn") else None,
        "AlarmConfigurationUpdatedTimestamp": _iso(
            alarm.get("AlarmConfigurationUpdatedTimestamp") or now
        ),
        "NewStateValue": evaluation.state,
        "NewStateReason": evaluation.reason,
        "StateChangeTime": _iso(now),
        "Region": REGION_NAMES.get(region, region),
        "AlarmArn": alarm.get("AlarmArn"),
        "OldStateValue": old_state,
        "OKActions": list(alarm.get("OKActions", [])),
        "AlarmActions": list(alarm.get("AlarmActions", [])),
        "InsufficientDataActions": list(alarm.get("InsufficientDataActions", [])),
        "Trigger": {
            "MetricName": alarm.get("MetricName"),
            "Namespace": alarm.get("Namespace"),
            "StatisticType": "ExtendedStatistic" if extended else "Statistic",
            **({"ExtendedStatistic": stat} if extended else {"Statistic": stat.upper()}),
            "Unit": alarm.get("Unit"),
            "Dimensions": [
                {"value": d["Value"], "name": d["Name"]} for d in alarm.get("Dimensions", [])
            ],
            "Period": alarm.get("Period"),
            "EvaluationPeriods": alarm.get("EvaluationPeriods"),
            "DatapointsToAlarm": alarm.get("DatapointsToAlarm", alarm.get("EvaluationPeriods")),
            "ComparisonOperator": alarm.get("ComparisonOperator"),
            "Threshold": alarm.get("Threshold"),
            "TreatMissingData": alarm.get("TreatMissingData", "missing"),
            "EvaluateLowSampleCountPercentile": alarm.get("EvaluateLowSampleCountPercentile", ""),
        },
    }


@dataclass(frozen=True, slots=True)
class AlarmResult:
    name: str
    old_state: str
    evaluation: Evaluation
    published: tuple[str, ...]  # SNS topic ARNs the notification went to
    skipped_actions: tuple[str, ...]  # actions that are not SNS topics (not run in the sandbox)

    @property
    def state(self) -> State:
        return self.evaluation.state


def evaluate_in_moto(
    cloudwatch: Any,
    sns: Any,
    alarm_name: str,
    *,
    now: datetime | None = None,
    raw_samples: Sequence[tuple[datetime, float]] | None = None,
    described: Mapping[str, Any] | None = None,
) -> AlarmResult:
    """Evaluate one alarm from the metrics moto holds, set its state in moto, and on a state
    change publish the notification to the new state's SNS actions (when actions are enabled).
    `described`: the alarm as `DescribeAlarms` gave it just before (saves asking again, when
    many alarms are evaluated at once)."""
    now = now or datetime.now(UTC)
    if described is None:
        found = cloudwatch.describe_alarms(AlarmNames=[alarm_name])["MetricAlarms"]
        if not found:
            raise AlarmEvaluationError(f"no alarm named {alarm_name!r}")
        described = found[0]
    alarm = described
    points = metric_datapoints(cloudwatch, alarm, now=now, raw_samples=raw_samples)
    evaluation = evaluate_alarm(alarm, points, now=now)
    old = str(alarm.get("StateValue", "INSUFFICIENT_DATA"))
    published: list[str] = []
    skipped: list[str] = []
    if evaluation.state != old:
        cloudwatch.set_alarm_state(
            AlarmName=alarm_name,
            StateValue=evaluation.state,
            StateReason=evaluation.reason[:1023],
            StateReasonData=json.dumps(evaluation.reason_data),
        )
        actions_key = {
            "ALARM": "AlarmActions",
            "OK": "OKActions",
            "INSUFFICIENT_DATA": "InsufficientDataActions",
        }[evaluation.state]
        if alarm.get("ActionsEnabled", True):
            message = notification(alarm, evaluation, old, now, cloudwatch.meta.region_name)
            for action in alarm.get(actions_key, []):
                if action.startswith("arn:aws:sns:"):
                    sns.publish(
                        TopicArn=action,
                        Message=json.dumps(message),
                        Subject=(
                            f'{evaluation.state}: "{alarm_name}" in '
                            f"{REGION_NAMES.get(cloudwatch.meta.region_name, '')}"
                        )[:100],
                    )
                    published.append(action)
                else:
                    skipped.append(action)
    return AlarmResult(alarm_name, old, evaluation, tuple(published), tuple(skipped))
