"""Governance policies: required tags on every taggable resource, protected state in prod."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from policies.core import STATEFUL_TYPES, Context, PolicySpec, Resource, UnknownValueError
from policies.taggable import is_taggable

REQUIRED_TAGS = ("owner", "environment", "cost-center")


def taggable(resource: Resource) -> bool:
    """AWS resources whose SDK args accept `tags` (the shipped list), or that carry `tags`."""
    if not resource.type.startswith("aws:") or resource.type.startswith("pulumi:providers:"):
        return False
    return is_taggable(resource.type) or "tags" in resource.props


def check_required_tags(resource: Resource, _ctx: Context) -> Iterator[str]:
    if not taggable(resource):
        return
    if not isinstance(resource.get("tags", default={}), Mapping):
        return
    missing = []
    for key in REQUIRED_TAGS:
        value = resource.get("tags", key)
        if not isinstance(value, str) or not value.strip():
            missing.append(key)
    if missing:
        yield f"{resource.where()} lacks required tag(s): {', '.join(missing)}"


def check_protected(resource: Resource, ctx: Context) -> Iterator[str]:
    if resource.type not in STATEFUL_TYPES or not ctx.is_prod(resource):
        return
    if resource.protect is None:
        raise UnknownValueError(
            "protect", f"the resource options of {resource.where()} are not visible here"
        )
    if not resource.protect:
        yield (
            f"{resource.where()} holds state in prod but is not protected "
            "(ResourceOptions(protect=True))"
        )


POLICIES = (
    PolicySpec(
        name="aws-resource-required-tags",
        description="Every taggable AWS resource carries the owner, environment and cost-center "
        "tags.",
        enforcement="mandatory",
        severity="medium",
        reference="Well-Architected Cost Optimization COST03 (cost attribution by tags)",
        check=check_required_tags,
    ),
    PolicySpec(
        name="aws-stateful-protected",
        description="Prod buckets, keys, Glue catalogs, clusters, endpoints, registries... are "
        "protected (resource option protect; from the plan's options in mlplat preview).",
        enforcement="mandatory",
        severity="high",
        reference="Well-Architected Reliability REL09 (protect data); Pulumi protect option",
        types=tuple(sorted(STATEFUL_TYPES)),
        check=check_protected,
    ),
)
