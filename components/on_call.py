"""On-call: the SNS topic every alarm notifies, encrypted with its own customer-managed key.

* The key (rotation on) lets CloudWatch alarms (`cloudwatch.amazonaws.com`) use it: SNS encrypts
  each published message with a data key the *publisher* must be allowed to generate. Without that
  statement alarms fire into nothing (the alarm history shows a KMS AccessDenied, nobody is paged).
  AWS-managed `alias/aws/sns` cannot be used for the same reason: its policy cannot be edited. The
  statement is held to this account's alarms (`aws:SourceAccount`, `aws:SourceArn`), which
  CloudWatch sends with its KMS requests. Only alarms publish here: no EventBridge rule targets the
  topic, so EventBridge gets neither key nor topic permission (add both, without source conditions
  on the key, which EventBridge does not send to KMS, if a rule should page).
* The topic policy lets only this account's CloudWatch alarms publish (`aws:SourceAccount` and an
  `aws:SourceArn` of this account's alarms), and refuses publishing without TLS.
* Subscriptions come from settings (`alarmSubscriptions`): email and https endpoints confirm by
  themselves (a pending email subscription is normal until the person clicks); an `sqs` endpoint is
  a queue ARN whose queue policy must let this topic send (and whose key must let SNS use it).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import pulumi
import pulumi_aws as aws

from components.data_lake import KEY_ADMIN_ACTIONS, KEY_POLICY_WILDCARD
from components.iam import Statement, document, with_principal
from components.limits import kms_deletion_window_problems
from components.problems import PROTOCOLS

# What a publisher needs on the topic key (SNS server-side encryption, envelope).
PUBLISH_KEY_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey")
ALARM_PUBLISHER = "cloudwatch.amazonaws.com"


class SubscriptionLike(Protocol):
    """`stacks.settings.Subscription` (components do not import settings)."""

    @property
    def protocol(self) -> str: ...

    @property
    def endpoint(self) -> str: ...


@dataclass(frozen=True, slots=True)
class OnCallArgs:
    subscriptions: Sequence[SubscriptionLike] = ()
    kms_deletion_window_days: int = 30
    tags: Mapping[str, str] = field(default_factory=dict)
    protect: bool = False

    def __post_init__(self) -> None:
        problems: list[str] = []
        for i, sub in enumerate(self.subscriptions):
            if sub.protocol not in PROTOCOLS:
                problems.append(
                    f"subscription {i}: protocol {sub.protocol!r} is not one of {PROTOCOLS}"
                )
            elif sub.protocol == "https" and not sub.endpoint.startswith("https://"):
                problems.append(
                    f"subscription {i}: https endpoint {sub.endpoint!r} must be https://"
                )
            elif sub.protocol == "sqs" and not sub.endpoint.startswith("arn:"):
                problems.append(
                    f"subscription {i}: sqs endpoint {sub.endpoint!r} must be a queue ARN"
                )
            elif sub.protocol == "email" and "@" not in sub.endpoint:
                problems.append(
                    f"subscription {i}: email endpoint {sub.endpoint!r} is not an address"
                )
        ids = [subscription_id(s) for s in self.subscriptions]
        if len(set(ids)) != len(ids):
            problems.append("the same subscription (protocol and endpoint) is listed twice")
        problems += kms_deletion_window_problems(self.kms_deletion_window_days)
        if problems:
            raise ValueError("OnCallArgs: " + "; ".join(problems))


def subscription_id(sub: SubscriptionLike) -> str:
    """A stable logical-name suffix: reordering the settings list replaces nothing."""
    return hashlib.sha256(f"{sub.protocol}:{sub.endpoint}".encode()).hexdigest()[:10]


class OnCall(pulumi.ComponentResource):
    """The alarm topic, its key, its policy and its subscriptions."""

    topic_arn: pulumi.Output[str]
    key_arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: OnCallArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlplatform:monitoring:OnCall", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(args.tags)
        self._account = aws.get_caller_identity_output().account_id
        self._region = aws.get_region_output().region
        self._partition_info = aws.get_partition_output()
        key = self._key(name, args, tags)
        topic = aws.sns.Topic(f"{name}-topic", kms_master_key_id=key.arn, tags=tags, opts=child)
        self._topic_policy(name, topic)
        for sub in args.subscriptions:
            aws.sns.TopicSubscription(
                f"{name}-subscription-{subscription_id(sub)}",
                topic=topic.arn,
                protocol=sub.protocol,
                endpoint=sub.endpoint,
                opts=child,
            )

        self.topic_arn = topic.arn
        self.key_arn = key.arn
        self.register_outputs({"topic_arn": self.topic_arn, "key_arn": self.key_arn})

    # --- builders -------------------------------------------------------------------------------

    def _key(self, name: str, args: OnCallArgs, tags: Mapping[str, str]) -> aws.kms.Key:
        """The topic's key: the account administers it, SNS and the alarm publishers use it."""
        account = self._account
        root = pulumi.Output.concat(
            "arn:", self._partition_info.partition, ":iam::", account, ":root"
        )
        sns_host = pulumi.Output.concat("sns.", self._region, ".", self._partition_info.dns_suffix)
        alarms_of_account = self._alarms_of_account()
        key_policy = document(
            [
                # The account keeps administering the key (else it becomes unmanageable).
                with_principal(
                    Statement(
                        KEY_ADMIN_ACTIONS,
                        ["*"],
                        sid="KeyAdministration",
                        wildcard_reason=KEY_POLICY_WILDCARD,
                    ),
                    {"AWS": root},
                ),
                # Principals of this account (with IAM permission) publish through SNS only.
                with_principal(
                    Statement(
                        PUBLISH_KEY_ACTIONS,
                        ["*"],
                        sid="PublishThroughSns",
                        wildcard_reason=KEY_POLICY_WILDCARD,
                        conditions={
                            "StringEquals": {
                                "kms:CallerAccount": account,
                                "kms:ViaService": sns_host,
                            }
                        },
                    ),
                    {"AWS": root},
                ),
                # This account's CloudWatch alarms publish to the encrypted topic.
                with_principal(
                    Statement(
                        PUBLISH_KEY_ACTIONS,
                        ["*"],
                        sid="AlarmsPublish",
                        wildcard_reason=KEY_POLICY_WILDCARD,
                        conditions={
                            "StringEquals": {"aws:SourceAccount": account},
                            "ArnLike": {"aws:SourceArn": alarms_of_account},
                        },
                    ),
                    {"Service": ALARM_PUBLISHER},
                ),
            ]
        )
        key = aws.kms.Key(
            f"{name}-key",
            description="ml-platform on-call topic (SNS server-side encryption)",
            enable_key_rotation=True,
            deletion_window_in_days=args.kms_deletion_window_days,
            policy=key_policy,
            tags=tags,
            opts=pulumi.ResourceOptions(
                parent=self, protect=args.protect, retain_on_delete=args.protect
            ),
        )
        aws.kms.Alias(
            f"{name}-key-alias",
            name_prefix="alias/mlplatform-on-call-",
            target_key_id=key.key_id,
            opts=pulumi.ResourceOptions(parent=self),
        )
        return key

    def _alarms_of_account(self) -> pulumi.Output[str]:
        return pulumi.Output.concat(
            "arn:",
            self._partition_info.partition,
            ":cloudwatch:",
            self._region,
            ":",
            self._account,
            ":alarm:*",
        )

    def _topic_policy(self, name: str, topic: aws.sns.Topic) -> None:
        """Only this account's alarms publish, and only over TLS."""
        account, alarms_of_account = self._account, self._alarms_of_account()
        aws.sns.TopicPolicy(
            f"{name}-topic-policy",
            arn=topic.arn,
            policy=document(
                [
                    with_principal(
                        Statement(
                            ["sns:Publish"],
                            [topic.arn],
                            sid="CloudWatchAlarmsOfThisAccount",
                            conditions={
                                "StringEquals": {"aws:SourceAccount": account},
                                "ArnLike": {"aws:SourceArn": alarms_of_account},
                            },
                        ),
                        {"Service": ALARM_PUBLISHER},
                    ),
                    {
                        "Sid": "DenyInsecureTransport",
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "sns:Publish",
                        "Resource": topic.arn,
                        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                    },
                ]
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
