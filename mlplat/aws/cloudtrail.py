"""CloudTrail: trails (the audit log)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlplat.aws.realizing import (
    RealizeContext,
    Registration,
    drop_empty,
    exists,
    pascal,
    tag_list,
)
from mlplat.aws.registry import AwsType, Fake, Outputs, Service

# --- the plan engine's fakes


def _fake_trail(f: Fake) -> Outputs:
    arn = f.arn("cloudtrail", f"trail/{f.physical}")
    return arn, {"name": f.physical, "arn": arn}


# --- the sandbox's realizers and readers


def _read_trail(ctx: RealizeContext, ident: str, _: Mapping[str, Any]) -> Any:
    return ctx.client("cloudtrail").get_trail(Name=ident)


def _trail(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    cloudtrail = ctx.client("cloudtrail")
    name = reg.physical(max_len=128)
    settings = drop_empty(
        {
            "Name": name,
            "S3BucketName": reg.require("s3BucketName"),
            "S3KeyPrefix": reg.get("s3KeyPrefix"),
            "SnsTopicName": reg.get("snsTopicName"),
            "IncludeGlobalServiceEvents": reg.get("includeGlobalServiceEvents", True),
            "IsMultiRegionTrail": reg.get("isMultiRegionTrail", False),
            "EnableLogFileValidation": reg.get("enableLogFileValidation", False),
            "CloudWatchLogsLogGroupArn": reg.get("cloudWatchLogsGroupArn"),
            "CloudWatchLogsRoleArn": reg.get("cloudWatchLogsRoleArn"),
            "KmsKeyId": reg.get("kmsKeyId"),
            "IsOrganizationTrail": reg.get("isOrganizationTrail"),
        }
    )
    found = exists(lambda: cloudtrail.get_trail(Name=name), "TrailNotFoundException")
    if found is None:
        arn = cloudtrail.create_trail(**settings, TagsList=tag_list(reg.get("tags")))["TrailARN"]
    else:
        arn = found["Trail"]["TrailARN"]
        current = found["Trail"]
        if any(
            current.get(k) != v
            for k, v in settings.items()
            if k not in ("Name", "CloudWatchLogsLogGroupArn")
        ):
            cloudtrail.update_trail(**settings)
    if reg.get("advancedEventSelectors"):
        cloudtrail.put_event_selectors(
            TrailName=name, AdvancedEventSelectors=pascal(reg.get("advancedEventSelectors"))
        )
    elif reg.get("eventSelectors"):
        cloudtrail.put_event_selectors(
            TrailName=name, EventSelectors=pascal(reg.get("eventSelectors"))
        )
    if reg.get("insightSelectors"):
        cloudtrail.put_insight_selectors(
            TrailName=name, InsightSelectors=pascal(reg.get("insightSelectors"))
        )
    if reg.get("enableLogging", True):
        cloudtrail.start_logging(Name=name)
    else:
        cloudtrail.stop_logging(Name=name)
    return str(arn), {"name": name, "arn": arn, "homeRegion": ctx.region}


# --- the registry entries

SERVICE = Service(
    owns=("cloudtrail",),
    types=(
        AwsType("aws:cloudtrail/trail:Trail", fake=_fake_trail, realize=_trail, read=_read_trail),
    ),
)
