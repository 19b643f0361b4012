"""CloudTrail trails: logging on, log files validated and KMS-encrypted, every region recorded."""

from __future__ import annotations

from collections.abc import Iterator

from policies.core import Context, PolicySpec, Resource

TRAIL = "aws:cloudtrail/trail:Trail"


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
)
