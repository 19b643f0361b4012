"""Step Functions: state machines."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlplat.aws.realizing import (
    RealizeContext,
    Registration,
    drop_empty,
    exists,
    same_json,
)
from mlplat.aws.registry import AwsType, Fake, Outputs, Service

# --- the sandbox's realizers and readers


def _read_state_machine(ctx: RealizeContext, ident: str, _: Mapping[str, Any]) -> Any:
    return ctx.client("stepfunctions").describe_state_machine(stateMachineArn=ident)


def _state_machine(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    sfn = ctx.client("stepfunctions")
    name = reg.physical(max_len=80)
    arn = ctx.arn("states", f"stateMachine:{name}")
    definition = str(reg.require("definition"))
    logging_config = reg.get("loggingConfiguration")
    extra = drop_empty(
        {
            "loggingConfiguration": drop_empty(
                {
                    "level": logging_config.get("level"),
                    "includeExecutionData": logging_config.get("includeExecutionData"),
                    "destinations": [
                        {
                            "cloudWatchLogsLogGroup": {
                                "logGroupArn": logging_config["logDestination"]
                            }
                        }
                    ]
                    if logging_config.get("logDestination")
                    else None,
                }
            )
            if logging_config
            else None,
            "tracingConfiguration": reg.get("tracingConfiguration"),
        }
    )
    found = exists(
        lambda: sfn.describe_state_machine(stateMachineArn=arn), "StateMachineDoesNotExist"
    )
    if found is None:
        arn = sfn.create_state_machine(
            name=name,
            definition=definition,
            roleArn=reg.require("roleArn"),
            type=reg.get("type", "STANDARD"),
            tags=[{"key": k, "value": v} for k, v in sorted((reg.get("tags") or {}).items())],
            **extra,
        )["stateMachineArn"]
    elif not same_json(found["definition"], definition) or found["roleArn"] != reg.get("roleArn"):
        sfn.update_state_machine(
            stateMachineArn=arn, definition=definition, roleArn=reg.require("roleArn"), **extra
        )
    return str(arn), {"name": name, "arn": arn, "status": "ACTIVE"}


def _fake_state_machine(f: Fake) -> Outputs:
    """`arn:aws:states:<region>:<account>:stateMachine:<name>`, also its id."""
    name = f.input("name") or f.physical
    arn = f.arn("states", f"stateMachine:{name}")
    return arn, {"arn": arn, "name": name}


# --- the registry entries

SERVICE = Service(
    owns=("sfn",),
    types=(
        AwsType(
            "aws:sfn/stateMachine:StateMachine",
            fake=_fake_state_machine,
            realize=_state_machine,
            read=_read_state_machine,
        ),
    ),
)
