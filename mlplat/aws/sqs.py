"""SQS: queues and queue policies."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from mlplat.aws.realizing import (
    RealizeContext,
    Registration,
    attr,
    exists,
    same_json,
)
from mlplat.aws.registry import AwsType, Fake, Outputs, Service, id_of_input

# --- the plan engine's fakes


def _fake_queue(f: Fake) -> Outputs:
    url = f"https://sqs.{f.region}.amazonaws.com/{f.account}/{f.physical}"
    return url, {"arn": f.arn("sqs", f.physical), "name": f.physical, "url": url}


# --- the sandbox's realizers and readers


_QUEUE_ATTRIBUTES = {
    "delaySeconds": "DelaySeconds",
    "maxMessageSize": "MaximumMessageSize",
    "messageRetentionSeconds": "MessageRetentionPeriod",
    "receiveWaitTimeSeconds": "ReceiveMessageWaitTimeSeconds",
    "visibilityTimeoutSeconds": "VisibilityTimeout",
    "policy": "Policy",
    "redrivePolicy": "RedrivePolicy",
    "redriveAllowPolicy": "RedriveAllowPolicy",
    "contentBasedDeduplication": "ContentBasedDeduplication",
    "kmsMasterKeyId": "KmsMasterKeyId",
    "kmsDataKeyReusePeriodSeconds": "KmsDataKeyReusePeriodSeconds",
    "sqsManagedSseEnabled": "SqsManagedSseEnabled",
    "deduplicationScope": "DeduplicationScope",
    "fifoThroughputLimit": "FifoThroughputLimit",
}


def _read_queue(ctx: RealizeContext, ident: str, _: Mapping[str, Any]) -> Any:
    return ctx.client("sqs").get_queue_attributes(QueueUrl=ident, AttributeNames=["All"])


def _sqs_queue(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    sqs = ctx.client("sqs")
    fifo = bool(reg.get("fifoQueue"))
    name = reg.physical(max_len=80, suffix=".fifo" if fifo and not reg.get("name") else "")
    wanted = {
        boto: attr(reg.get(key))
        for key, boto in _QUEUE_ATTRIBUTES.items()
        if reg.get(key) is not None
    }
    found = exists(
        lambda: sqs.get_queue_url(QueueName=name),
        "AWS.SimpleQueueService.NonExistentQueue",
        "QueueDoesNotExist",
    )
    if found is None:
        request: dict[str, Any] = {
            "QueueName": name,
            "Attributes": {**wanted, **({"FifoQueue": "true"} if fifo else {})},
        }
        if reg.get("tags"):
            request["tags"] = dict(reg.get("tags"))
        url = sqs.create_queue(**request)["QueueUrl"]
    else:
        url = found["QueueUrl"]
        current = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        changed = {k: v for k, v in wanted.items() if not same_json(current.get(k), v)}
        if changed:
            sqs.set_queue_attributes(QueueUrl=url, Attributes=changed)
    return str(url), {"arn": ctx.arn("sqs", name), "url": url, "name": name}


def _read_queue_policy(ctx: RealizeContext, ident: str, _: Mapping[str, Any]) -> Any:
    attributes = ctx.client("sqs").get_queue_attributes(QueueUrl=ident, AttributeNames=["Policy"])
    return json.loads(attributes["Attributes"]["Policy"])


def _sqs_queue_policy(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    url = str(reg.require("queueUrl"))
    ctx.client("sqs").set_queue_attributes(
        QueueUrl=url, Attributes={"Policy": str(reg.require("policy"))}
    )
    return url, {}


# --- the registry entries

SERVICE = Service(
    owns=("sqs",),
    types=(
        AwsType("aws:sqs/queue:Queue", fake=_fake_queue, realize=_sqs_queue, read=_read_queue),
        AwsType(
            "aws:sqs/queuePolicy:QueuePolicy",
            fake=id_of_input("queueUrl"),
            realize=_sqs_queue_policy,
            read=_read_queue_policy,
        ),
    ),
)
