"""Observability policies: alarms notify someone, logs expire, topics are encrypted."""

from __future__ import annotations

from collections.abc import Iterator

from policies.core import Context, PolicySpec, Resource, listify

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
COMPOSITE_ALARM = "aws:cloudwatch/compositeAlarm:CompositeAlarm"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
TOPIC = "aws:sns/topic:Topic"


def check_alarm_actions(resource: Resource, _ctx: Context) -> Iterator[str]:
    if resource.get("actionsEnabled") is False:
        yield f"alarm {resource.name!r}: actionsEnabled is false"
    if not [a for a in listify(resource.get("alarmActions")) if a]:
        yield f"alarm {resource.name!r} has no alarmActions: nobody is told when it fires"


def check_log_retention(resource: Resource, _ctx: Context) -> Iterator[str]:
    days = resource.get("retentionInDays")
    if not isinstance(days, int) or days <= 0:
        yield f"log group {resource.name!r}: retentionInDays is {days!r}; logs would never expire"


def check_topic_encrypted(resource: Resource, _ctx: Context) -> Iterator[str]:
    if not resource.get("kmsMasterKeyId"):
        yield f"SNS topic {resource.name!r} is not encrypted (kmsMasterKeyId)"


POLICIES = (
    PolicySpec(
        name="cloudwatch-alarm-actions",
        description="Every alarm has actions enabled and at least one alarm action.",
        enforcement="mandatory",
        severity="medium",
        reference="CKV_AWS_319",
        types=(ALARM, COMPOSITE_ALARM),
        check=check_alarm_actions,
    ),
    PolicySpec(
        name="cloudwatch-loggroup-retention",
        description="Every log group sets a retention period.",
        enforcement="mandatory",
        severity="low",
        reference="CKV_AWS_66",
        types=(LOG_GROUP,),
        check=check_log_retention,
    ),
    PolicySpec(
        name="sns-topic-encrypted",
        description="SNS topics are encrypted with KMS.",
        enforcement="mandatory",
        severity="medium",
        reference="CKV_AWS_26",
        types=(TOPIC,),
        check=check_topic_encrypted,
    ),
)
