"""CloudTrail trails: logging on, log files validated and KMS-encrypted, every region recorded;
watched (delivered to CloudWatch Logs, where metric filters feed alarms that notify someone), and
in prod kept (the trail's bucket has Object Lock)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from policies.core import (
    Context,
    Finding,
    PolicySpec,
    Resource,
    UnknownValueError,
    contains_unknown,
    is_unknown,
    listify,
    of_type,
    resolve,
)

TRAIL = "aws:cloudtrail/trail:Trail"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
METRIC_FILTER = "aws:cloudwatch/logMetricFilter:LogMetricFilter"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
BUCKET = "aws:s3/bucket:Bucket"
OBJECT_LOCK = "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration"


def check_logging(resource: Resource, _ctx: Context) -> Iterator[str]:
    if resource.get("enableLogging") is False:  # default: true
        yield f"trail {resource.name!r}: enableLogging is false: nothing is recorded"


def check_log_validation(resource: Resource, _ctx: Context) -> Iterator[str]:
    if resource.get("enableLogFileValidation") is not True:
        yield (
            f"trail {resource.name!r}: enableLogFileValidation is not true: a log file changed "
            "or deleted after delivery goes unnoticed"
        )


def check_kms(resource: Resource, _ctx: Context) -> Iterator[str]:
    if not resource.get("kmsKeyId"):
        yield f"trail {resource.name!r}: log files are not encrypted with a KMS key (kmsKeyId)"


def check_multi_region(resource: Resource, _ctx: Context) -> Iterator[str]:
    if resource.get("isMultiRegionTrail") is not True:
        yield (
            f"trail {resource.name!r} records one region only (isMultiRegionTrail): activity in "
            "the others goes unrecorded"
        )


def _trail_log_group(trail: Resource, groups: Sequence[Resource]) -> Resource | None:
    """The log group `cloudWatchLogsGroupArn` names (`arn:...:log-group:<name>:*`)."""
    ref = trail.get("cloudWatchLogsGroupArn")
    urns = trail.deps.get("cloudWatchLogsGroupArn", ())
    for group in groups:
        if group.urn in urns:
            return group
    if isinstance(ref, str):
        name = ref.split(":log-group:", 1)[-1].removesuffix(":*")
        return next((g for g in groups if name in (g.id, g.get("name"))), None)
    if is_unknown(ref) or contains_unknown(ref):
        raise UnknownValueError(f".cloudWatchLogsGroupArn of {trail.where()}")
    return None


def _watched_metrics(
    group: Resource, resources: Sequence[Resource]
) -> tuple[list[tuple[str, str]], set[tuple[str, str]]]:
    """The (namespace, metric) pairs the group's filters publish, and those an alarm with
    actions watches."""
    published = []
    for f in of_type(resources, METRIC_FILTER):
        if resolve(f.get("logGroupName"), "logGroupName", f, [group], "name") is not group:
            continue
        for t in listify(f.get("metricTransformation")):
            if isinstance(t, dict):
                published.append((str(t.get("namespace")), str(t.get("name"))))
    alarmed = {
        (str(a.get("namespace")), str(a.get("metricName")))
        for a in of_type(resources, ALARM)
        if [x for x in listify(a.get("alarmActions")) if x]
    }
    return published, alarmed


def check_watched(resources: Sequence[Resource], _ctx: Context) -> Iterable[Finding]:
    groups = of_type(resources, LOG_GROUP)
    for trail in of_type(resources, TRAIL):
        who = f"trail {trail.name!r}"
        if not trail.get("cloudWatchLogsGroupArn"):
            yield Finding(
                trail.urn,
                f"{who} writes to S3 only: deliver it to a CloudWatch Logs group "
                "(cloudWatchLogsGroupArn, cloudWatchLogsRoleArn) with metric filters and alarms, "
                "or a stopped trail or a deleted key goes unnoticed",
            )
            continue
        try:
            group = _trail_log_group(trail, groups)
            if group is None:  # another stack's group: not this stack's to judge
                continue
            published, alarmed = _watched_metrics(group, resources)
        except UnknownValueError as exc:
            yield Finding(trail.urn, f"skipped {who}: {exc}", skipped=True)
            continue
        if not published:
            yield Finding(
                trail.urn,
                f"{who}: no metric filter on its log group {group.name!r}: nothing turns a "
                "security event into an alarm",
            )
        unalarmed = sorted({m for m in published if m not in alarmed})
        if unalarmed:
            shown = ", ".join(f"{ns}/{name}" for ns, name in unalarmed)
            yield Finding(
                trail.urn, f"{who}: no alarm with actions on the filtered metric(s) {shown}"
            )


def check_kept(resources: Sequence[Resource], ctx: Context) -> Iterable[Finding]:
    buckets, locks = of_type(resources, BUCKET), of_type(resources, OBJECT_LOCK)
    for trail in of_type(resources, TRAIL):
        if not ctx.is_prod(trail):
            continue
        who = f"trail {trail.name!r}"
        try:
            bucket = resolve(trail.get("s3BucketName"), "s3BucketName", trail, buckets, "bucket")
            if bucket is None:  # another stack's (a log archive account's) bucket
                continue
            locked = bucket.get("objectLockEnabled") is True or any(
                resolve(lock.get("bucket"), "bucket", lock, [bucket], "bucket") is bucket
                for lock in locks
            )
        except UnknownValueError as exc:
            yield Finding(trail.urn, f"skipped {who}: {exc}", skipped=True)
            continue
        if not locked:
            yield Finding(
                trail.urn,
                f"{who}: its bucket {bucket.name!r} has no Object Lock: in prod, log files "
                "must not be deletable from inside the account (an "
                "aws.s3.BucketObjectLockConfiguration with a default retention)",
            )


POLICIES = (
    PolicySpec(
        name="cloudtrail-trail-logging-enabled",
        description="Trails are logging (enableLogging not false).",
        enforcement="mandatory",
        severity="high",
        reference="CIS AWS Foundations v3.0.0 3.1; AWS Config cloudtrail-enabled",
        types=(TRAIL,),
        check=check_logging,
    ),
    PolicySpec(
        name="cloudtrail-trail-log-validation",
        description="Trails validate their log files (enableLogFileValidation).",
        enforcement="mandatory",
        severity="medium",
        reference="CKV_AWS_36; AWS Security Hub CloudTrail.4",
        types=(TRAIL,),
        check=check_log_validation,
    ),
    PolicySpec(
        name="cloudtrail-trail-kms",
        description="Trails encrypt their log files with a KMS key (kmsKeyId).",
        enforcement="mandatory",
        severity="medium",
        reference="CKV_AWS_35; AWS Security Hub CloudTrail.2",
        types=(TRAIL,),
        check=check_kms,
    ),
    PolicySpec(
        name="cloudtrail-trail-multi-region",
        description="Trails record every region (isMultiRegionTrail).",
        enforcement="advisory",
        severity="low",
        reference="CKV_AWS_67; AWS Security Hub CloudTrail.1",
        types=(TRAIL,),
        check=check_multi_region,
    ),
    PolicySpec(
        name="cloudtrail-trail-watched",
        description="Trails deliver to a CloudWatch Logs group whose metric filters feed alarms "
        "that notify someone.",
        enforcement="mandatory",
        severity="medium",
        reference="CIS AWS Foundations v1.4.0 3.4 and 4.1-4.15; AWS Security Hub CloudTrail.5",
        stack_check=check_watched,
    ),
    PolicySpec(
        name="cloudtrail-trail-bucket-locked",
        description="In prod, the bucket a trail writes to has Object Lock.",
        enforcement="mandatory",
        severity="medium",
        reference="AWS Well-Architected SEC04-BP01 (immutable log storage)",
        stack_check=check_kept,
    ),
)
