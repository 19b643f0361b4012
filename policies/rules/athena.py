"""Athena workgroups: the workgroup, not the client, decides where results go and how they are
encrypted."""

from __future__ import annotations

from collections.abc import Iterator

from policies.core import Context, PolicySpec, Resource

WORKGROUP = "aws:athena/workgroup:Workgroup"


def check_enforced(resource: Resource, _ctx: Context) -> Iterator[str]:
    if not resource.get("configuration"):
        yield (
            f"workgroup {resource.name!r} has no configuration: each client picks where query "
            "results go and whether they are encrypted"
        )
    # pulumi-aws defaults enforceWorkgroupConfiguration to true inside a configuration
    elif resource.get("configuration", "enforceWorkgroupConfiguration") is False:
        yield (
            f"workgroup {resource.name!r}: configuration.enforceWorkgroupConfiguration is false: "
            "clients may override its result location and encryption"
        )


def check_results_encrypted(resource: Resource, _ctx: Context) -> Iterator[str]:
    option = resource.get(
        "configuration", "resultConfiguration", "encryptionConfiguration", "encryptionOption"
    )
    if not option:
        yield (
            f"workgroup {resource.name!r}: query results are not encrypted "
            "(configuration.resultConfiguration.encryptionConfiguration)"
        )


POLICIES = (
    PolicySpec(
        name="athena-workgroup-enforce-config",
        description="Athena workgroups enforce their configuration over the clients'.",
        enforcement="mandatory",
        severity="medium",
        reference="CKV_AWS_82",
        types=(WORKGROUP,),
        check=check_enforced,
    ),
    PolicySpec(
        name="athena-workgroup-results-encrypted",
        description="Athena workgroups encrypt query results "
        "(resultConfiguration.encryptionConfiguration).",
        enforcement="mandatory",
        severity="medium",
        reference="CKV_AWS_159",
        types=(WORKGROUP,),
        check=check_results_encrypted,
    ),
)
