"""The audit trail, watched: metric filters on the trail's log group and alarms to on-call.

Each watched event class is a CloudWatch Logs metric filter (a JSON filter pattern over the
CloudTrail records) publishing a count to `MLPlatform/Audit/<trail>`, and an alarm on that count
that notifies the on-call topic. The classes, after the CIS AWS Foundations monitoring controls,
narrowed to what this platform owns where the event names it:

* `TrailChanged`: a trail is stopped, deleted or has its logging or selectors changed (any trail of
  the account: a second trail is not a reason to stop watching the first).
* `KeyDisabledOrDeleted`: a KMS key is disabled or scheduled for deletion (the platform's data is
  unreadable once its key is gone; the waiting period is the time to cancel).
* `RootUsed`: the root user called an API (not a service acting for it).
* `ConsoleSignInFailures`: failed console sign-ins (3 in 5 minutes).
* `BucketControlsChanged`: a policy, ACL, public access block, encryption, versioning, lifecycle or
  replication change on one of the platform's buckets (the lake zones, the trail's).
* `RolePermissionsChanged`: an inline or attached policy, trust policy or boundary change on one of
  the platform's roles (every role the components make, by name).
* `LakeBulkDeletes` (with data events only): object deletions in the lake zones; a DeleteObjects
  call counts once, however many keys it names.

A filter pattern is at most 1024 characters; the bucket and role lists are split over several
filters that publish to the same metric (`chunk_size` is worked out for the longest names AWS
allows, so a list of any names fits).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

MAX_PATTERN = 1024  # CloudWatch Logs' limit on a filter pattern
NAMESPACE = "MLPlatform/Audit"
PERIOD_SECONDS = 300

BUCKET_CONTROL_EVENTS = (
    "PutBucketPolicy",
    "DeleteBucketPolicy",
    "PutBucketAcl",
    "PutBucketPublicAccessBlock",
    "DeleteBucketPublicAccessBlock",
    "PutBucketEncryption",
    "DeleteBucketEncryption",
    "PutBucketVersioning",
    "PutBucketLifecycle",
    "DeleteBucketLifecycle",
    "PutBucketReplication",
    "DeleteBucketReplication",
    "DeleteBucket",
)
ROLE_PERMISSION_EVENTS = (
    "PutRolePolicy",
    "DeleteRolePolicy",
    "AttachRolePolicy",
    "DetachRolePolicy",
    "UpdateAssumeRolePolicy",
    "PutRolePermissionsBoundary",
    "DeleteRolePermissionsBoundary",
    "DeleteRole",
)
OBJECT_DELETE_EVENTS = ("DeleteObject", "DeleteObjects")
LONGEST_NAME = {"bucketName": 63, "roleName": 64}  # S3 and IAM name limits


def any_of(field: str, values: Sequence[str]) -> str:
    """`(($.f = "a") || ($.f = "b"))`: a JSON filter term matching any of the values."""
    if not values:
        raise ValueError(f"any_of({field!r}): no values")
    return "(" + " || ".join(f'($.{field} = "{v}")' for v in values) + ")"


def pattern(*terms: str) -> str:
    return "{ " + " && ".join(terms) + " }"


def events_of(source: str, names: Sequence[str]) -> tuple[str, str]:
    return f'($.eventSource = "{source}")', any_of("eventName", names)


def chunk_size(source: str, events: Sequence[str], field: str) -> int:
    """How many names one filter can list next to these events and still fit in 1024 chars."""
    longest = "x" * LONGEST_NAME[field.split(".")[-1]]
    fixed = len(pattern(*events_of(source, events), any_of(field, [longest])))
    per_name = len(any_of(field, [longest, longest])) - len(any_of(field, [longest]))
    size = (MAX_PATTERN - fixed) // per_name + 1
    if size < 1:
        raise ValueError(f"{source} {events}: no room for a single {field}")
    return size


FIXED_PATTERNS = {
    "TrailChanged": pattern(
        *events_of(
            "cloudtrail.amazonaws.com",
            (
                "StopLogging",
                "DeleteTrail",
                "UpdateTrail",
                "PutEventSelectors",
                "PutInsightSelectors",
            ),
        )
    ),
    "KeyDisabledOrDeleted": pattern(
        *events_of("kms.amazonaws.com", ("DisableKey", "ScheduleKeyDeletion"))
    ),
    "RootUsed": pattern(
        '($.userIdentity.type = "Root")',
        "($.userIdentity.invokedBy NOT EXISTS)",
        '($.eventType != "AwsServiceEvent")',
    ),
    "ConsoleSignInFailures": pattern(
        '($.eventName = "ConsoleLogin")', '($.errorMessage = "Failed authentication")'
    ),
}


@dataclass(frozen=True, slots=True)
class Watch:
    """One watched event class: its metric, how many events in 5 minutes page, and why."""

    metric: str
    threshold: int
    description: str


WATCHES = (
    Watch("TrailChanged", 1, "A CloudTrail trail was stopped, deleted or reconfigured"),
    Watch("KeyDisabledOrDeleted", 1, "A KMS key was disabled or scheduled for deletion"),
    Watch("RootUsed", 1, "The root user called an AWS API"),
    Watch("ConsoleSignInFailures", 3, "Console sign-ins failed 3 or more times in 5 minutes"),
    Watch(
        "BucketControlsChanged",
        1,
        "A policy, ACL, public access, encryption, versioning, lifecycle or replication setting "
        "of a platform bucket changed",
    ),
    Watch(
        "RolePermissionsChanged",
        1,
        "A policy, trust policy or boundary of a platform role changed",
    ),
)


def lake_deletes_watch(threshold: int) -> Watch:
    return Watch(
        "LakeBulkDeletes",
        threshold,
        f"{threshold} or more object deletions in the lake zones in 5 minutes",
    )


def _listing(source: str, events: Sequence[str], field: str) -> Callable[[list[Any]], str]:
    def build(values: list[Any]) -> str:
        return pattern(*events_of(source, events), any_of(field, [str(v) for v in values]))

    return build


def watch_trail(
    parent: pulumi.Resource,
    name: str,
    *,
    trail_name: str,
    log_group_name: pulumi.Input[str],
    topic_arn: pulumi.Input[str],
    bucket_names: Sequence[pulumi.Input[str]],
    role_names: Sequence[pulumi.Input[str]],
    lake_bucket_names: Sequence[pulumi.Input[str]],
    bulk_delete_threshold: int | None,
    tags: dict[str, str],
) -> list[aws.cloudwatch.MetricAlarm]:
    """The metric filters and alarms; `bulk_delete_threshold` None: no lake deletes watch (the
    trail records no data events)."""
    namespace = f"{NAMESPACE}/{trail_name}"
    child = pulumi.ResourceOptions(parent=parent)

    def metric_filter(metric: str, index: int, filter_pattern: pulumi.Input[str]) -> None:
        aws.cloudwatch.LogMetricFilter(
            f"{name}-{metric.lower()}-{index}",
            log_group_name=log_group_name,
            pattern=filter_pattern,
            metric_transformation=aws.cloudwatch.LogMetricFilterMetricTransformationArgs(
                name=metric, namespace=namespace, value="1", default_value="0", unit="Count"
            ),
            opts=child,
        )

    for metric, fixed in FIXED_PATTERNS.items():
        metric_filter(metric, 0, fixed)
    listed: list[tuple[str, str, Sequence[str], str, Sequence[pulumi.Input[str]]]] = [
        (
            "BucketControlsChanged",
            "s3.amazonaws.com",
            BUCKET_CONTROL_EVENTS,
            "requestParameters.bucketName",
            bucket_names,
        ),
        (
            "RolePermissionsChanged",
            "iam.amazonaws.com",
            ROLE_PERMISSION_EVENTS,
            "requestParameters.roleName",
            role_names,
        ),
    ]
    watches = list(WATCHES)
    if bulk_delete_threshold is not None:
        listed.append(
            (
                "LakeBulkDeletes",
                "s3.amazonaws.com",
                OBJECT_DELETE_EVENTS,
                "requestParameters.bucketName",
                lake_bucket_names,
            )
        )
        watches.append(lake_deletes_watch(bulk_delete_threshold))
    for metric, source, events, field, names in listed:
        size = chunk_size(source, events, field)
        for index, start in enumerate(range(0, len(names), size)):
            chunk = pulumi.Output.all(*names[start : start + size])
            metric_filter(metric, index, chunk.apply(_listing(source, events, field)))
    return [
        aws.cloudwatch.MetricAlarm(
            f"{name}-{w.metric.lower()}",
            alarm_description=f"Audit: {w.description} (see the trail's log group).",
            namespace=namespace,
            metric_name=w.metric,
            statistic="Sum",
            period=PERIOD_SECONDS,
            evaluation_periods=1,
            datapoints_to_alarm=1,
            threshold=w.threshold,
            comparison_operator="GreaterThanOrEqualToThreshold",
            treat_missing_data="notBreaching",
            alarm_actions=[topic_arn],
            actions_enabled=True,
            tags=tags,
            opts=child,
        )
        for w in watches
    ]
