"""SNS: topics, topic policies and subscriptions."""

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
    tag_list,
)
from mlplat.aws.registry import AwsType, Fake, Outputs, Service, id_of_input

# --- the plan engine's fakes


def _fake_topic(f: Fake) -> Outputs:
    arn = f.arn("sns", f.physical)
    return arn, {"arn": arn, "name": f.physical}


# --- the sandbox's realizers and readers


_TOPIC_ATTRIBUTES = {
    "displayName": "DisplayName",
    "kmsMasterKeyId": "KmsMasterKeyId",
    "policy": "Policy",
    "deliveryPolicy": "DeliveryPolicy",
    "signatureVersion": "SignatureVersion",
    "tracingConfig": "TracingConfig",
    "contentBasedDeduplication": "ContentBasedDeduplication",
    "archivePolicy": "ArchivePolicy",
}


def _read_topic(ctx: RealizeContext, ident: str, _: Mapping[str, Any]) -> Any:
    return ctx.client("sns").get_topic_attributes(TopicArn=ident)


def _sns_topic(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    sns = ctx.client("sns")
    fifo = bool(reg.get("fifoTopic"))
    name = reg.physical(max_len=256, suffix=".fifo" if fifo and not reg.get("name") else "")
    arn = ctx.arn("sns", name)
    wanted = {
        boto: attr(reg.get(key))
        for key, boto in _TOPIC_ATTRIBUTES.items()
        if reg.get(key) is not None
    }
    found = exists(lambda: sns.get_topic_attributes(TopicArn=arn), "NotFound")
    if found is None:
        attributes = {**wanted, **({"FifoTopic": "true"} if fifo else {})}
        arn = sns.create_topic(Name=name, Attributes=attributes, Tags=tag_list(reg.get("tags")))[
            "TopicArn"
        ]
    else:
        current = found["Attributes"]
        for key, value in wanted.items():
            if not same_json(current.get(key), value):
                sns.set_topic_attributes(TopicArn=arn, AttributeName=key, AttributeValue=value)
    return str(arn), {"arn": arn, "name": name, "owner": ctx.account_id}


def _read_topic_policy(ctx: RealizeContext, ident: str, _: Mapping[str, Any]) -> Any:
    attributes = ctx.client("sns").get_topic_attributes(TopicArn=ident)["Attributes"]
    return json.loads(attributes["Policy"])


def _sns_topic_policy(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    arn = str(reg.require("arn"))
    ctx.client("sns").set_topic_attributes(
        TopicArn=arn, AttributeName="Policy", AttributeValue=str(reg.require("policy"))
    )
    return arn, {"owner": ctx.account_id}


_SUBSCRIPTION_ATTRIBUTES = {
    "rawMessageDelivery": "RawMessageDelivery",
    "filterPolicy": "FilterPolicy",
    "filterPolicyScope": "FilterPolicyScope",
    "deliveryPolicy": "DeliveryPolicy",
    "redrivePolicy": "RedrivePolicy",
    "subscriptionRoleArn": "SubscriptionRoleArn",
}


def _read_subscription(ctx: RealizeContext, ident: str, _: Mapping[str, Any]) -> Any:
    return ctx.client("sns").get_subscription_attributes(SubscriptionArn=ident)


def _sns_subscription(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    sns = ctx.client("sns")
    topic, protocol = str(reg.require("topic")), str(reg.require("protocol"))
    endpoint = str(reg.require("endpoint"))
    attributes = {
        boto: attr(reg.get(key))
        for key, boto in _SUBSCRIPTION_ATTRIBUTES.items()
        if reg.get(key) is not None
    }
    existing = [
        s
        for page in sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic)
        for s in page["Subscriptions"]
        if s["Protocol"] == protocol and s["Endpoint"] == endpoint
    ]
    if existing:
        arn = existing[0]["SubscriptionArn"]
        for key, value in attributes.items():
            sns.set_subscription_attributes(
                SubscriptionArn=arn, AttributeName=key, AttributeValue=value
            )
    else:
        arn = sns.subscribe(
            TopicArn=topic,
            Protocol=protocol,
            Endpoint=endpoint,
            Attributes=attributes,
            ReturnSubscriptionArn=True,
        )["SubscriptionArn"]
    if protocol in ("email", "email-json", "https", "http"):
        ctx.note(
            reg,
            f"{protocol} subscription to {endpoint}: moto confirms it but delivers "
            "nothing outside the sandbox",
        )
    return str(arn), {
        "arn": arn,
        "ownerId": ctx.account_id,
        "pendingConfirmation": False,
        "confirmationWasAuthenticated": True,
    }


def _fake_subscription(f: Fake) -> Outputs:
    """`arn:aws:sns:<region>:<account>:<topic>:<uuid>`, also its id."""
    topic = f.input("topic").rsplit(":", 1)[-1] or "topic"
    arn = f.arn("sns", f"{topic}:{f.uuid()}")
    return arn, {"arn": arn}


# --- the registry entries

SERVICE = Service(
    owns=("sns",),
    types=(
        AwsType("aws:sns/topic:Topic", fake=_fake_topic, realize=_sns_topic, read=_read_topic),
        AwsType(
            "aws:sns/topicPolicy:TopicPolicy",
            fake=id_of_input("arn"),  # its `arn` is the topic's, an input
            realize=_sns_topic_policy,
            read=_read_topic_policy,
        ),
        AwsType(
            "aws:sns/topicSubscription:TopicSubscription",
            fake=_fake_subscription,
            realize=_sns_subscription,
            read=_read_subscription,
        ),
    ),
)
