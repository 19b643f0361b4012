"""Athena: workgroups (where queries run, and where their results go)."""

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
from mlplat.aws.registry import Arns, AwsType, Fake, Outputs, Service

# --- the plan engine's fakes


# The outputs the plan engine's fake and the sandbox's realizer both answer.
def _workgroup_state(at: Arns, name: str) -> dict[str, Any]:
    return {"name": name, "arn": at.arn("athena", f"workgroup/{name}")}


def _fake_workgroup(f: Fake) -> Outputs:
    return f.physical, _workgroup_state(f, f.physical)


# --- the sandbox's realizers and readers


_WORKGROUP_RENAMES = {
    "enforceWorkgroupConfiguration": "EnforceWorkGroupConfiguration",
    "publishCloudwatchMetricsEnabled": "PublishCloudWatchMetricsEnabled",
    "kmsKeyArn": "KmsKey",
}


def _read_workgroup(ctx: RealizeContext, ident: str, _: Mapping[str, Any]) -> Any:
    return ctx.client("athena").get_work_group(WorkGroup=ident)


def _athena_workgroup(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    athena = ctx.client("athena")
    name = reg.physical(max_len=128)
    config = pascal(reg.get("configuration", {}), _WORKGROUP_RENAMES)
    engine = config.get("EngineVersion")
    if isinstance(engine, dict):
        config["EngineVersion"] = {
            "SelectedEngineVersion": engine.get("SelectedEngineVersion", "AUTO")
        }
    request = drop_empty(
        {
            "Name": name,
            "Description": reg.get("description"),
            "Configuration": config,
            "Tags": tag_list(reg.get("tags")),
        }
    )
    found = exists(lambda: athena.get_work_group(WorkGroup=name), "InvalidRequestException")
    if found is not None and found.get("WorkGroup"):
        current = found["WorkGroup"]
        if current.get("Configuration") == config and current.get("Description") == reg.get(
            "description"
        ):
            return name, _workgroup_state(ctx, name)
        # moto has no UpdateWorkGroup: replace it (the provider would update in place)
        ctx.note(reg, "configuration changed: replaced (moto has no UpdateWorkGroup)")
        athena.delete_work_group(WorkGroup=name, RecursiveDeleteOption=True)
    if reg.get("state") == "DISABLED":
        ctx.note(reg, "state DISABLED dropped: moto keeps every workgroup enabled")
    athena.create_work_group(**request)
    return name, _workgroup_state(ctx, name)


# --- the registry entries

SERVICE = Service(
    owns=("athena",),
    types=(
        AwsType(
            "aws:athena/workgroup:Workgroup",
            fake=_fake_workgroup,
            realize=_athena_workgroup,
            read=_read_workgroup,
        ),
    ),
)
