"""On-call: the SNS topic every alarm notifies, encrypted with its own customer-managed key.

* The key (rotation on) lets CloudWatch alarms (`cloudwatch.amazonaws.com`) use it: SNS encrypts
  each published message with a data key the *publisher* must be allowed to generate. Without that
  statement alarms fire into nothing (the alarm history shows a KMS AccessDenied, nobody is paged).
  AWS-managed `alias/aws/sns` cannot be used for the same reason: its policy cannot be edited. The
  statement is held to this account's alarms (`aws:SourceAccount`, `aws:SourceArn`), which
  CloudWatch sends with its KMS requests.
* EventBridge rules that page (`event_rule_names`: the model pipelines' failure rules) publish
  too. Their names are fixed, so the topic policy names each rule's ARN (`aws:SourceArn`, with
  `aws:SourceAccount`) before the rules exist and nothing here depends on them. The key statement
  for `events.amazonaws.com` carries no source condition: EventBridge sends none to KMS when it
  delivers to an encrypted topic, and a data key alone publishes nothing (the topic policy
  decides who may publish). Without rule names EventBridge gets neither statement.
* The topic policy lets only this account's CloudWatch alarms (`aws:SourceAccount` and an
  `aws:SourceArn` of this account's alarms) and the named rules publish, and refuses publishing
  without TLS.
* Subscriptions come from settings (`alarmSubscriptions`): email and https endpoints confirm by
  themselves (a pending email subscription is normal until the person clicks); an `sqs` endpoint is
  a queue ARN whose queue policy must let this topic send (and whose key must let SNS use it).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import pulumi
import pulumi_aws as aws

from components.data_lake import KEY_ADMIN_ACTIONS, KEY_POLICY_WILDCARD
from components.iam import Statement, document, with_principal
from components.limits import kms_deletion_window_problems
from components.problems import PROTOCOLS

# What a publisher needs on the topic key (SNS server-side encryption, envelope).
PUBLISH_KEY_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey")
ALARM_PUBLISHER = "cloudwatch.amazonaws.com"
RULE_PUBLISHER = "events.amazonaws.com"
# What SNS needs of an EventBridge publisher on the topic key (AWS's EventBridge-to-SNS guidance).
RULE_KEY_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey*")


class SubscriptionLike(Protocol):
    """`stacks.settings.Subscription` (components do not import settings)."""

    @property
    def protocol(self) -> str: ...

    @property
    def endpoint(self) -> str: ...


@dataclass(frozen=True, slots=True)
class OnCallArgs:
    subscriptions: Sequence[SubscriptionLike] = ()
    # EventBridge rules (default bus, this account and region) that may publish: names, known
    # before the rules are made.
    event_rule_names: Sequence[str] = ()
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
        for rule in self.event_rule_names:
            if not re.fullmatch(r"[.\-_A-Za-z0-9]{1,64}", rule):
                problems.append(
                    f"event rule name {rule!r}: 1-64 letters, digits, '.', '-' or '_' "
                    "(an EventBridge rule name)"
                )
        if len(set(self.event_rule_names)) != len(self.event_rule_names):
            problems.append("the same event rule is listed twice")
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
        self._topic_policy(name, topic, args.event_rule_names)
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
                *self._rule_key_statements(args.event_rule_names),
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

    def _rule_arns(self, rule_names: Sequence[str]) -> list[pulumi.Output[str]]:
        return [
            pulumi.Output.concat(
                "arn:",
                self._partition_info.partition,
                ":events:",
                self._region,
                ":",
                self._account,
                ":rule/",
                rule,
            )
            for rule in rule_names
        ]

    def _rule_key_statements(self, rule_names: Sequence[str]) -> list[dict[str, Any]]:
        """EventBridge encrypts what its rules deliver to the topic; no source condition, which
        EventBridge does not send to KMS (the topic policy holds publishing to the named rules)."""
        if not rule_names:
            return []
        return [
            with_principal(
                Statement(
                    RULE_KEY_ACTIONS,
                    ["*"],
                    sid="EventRulesPublish",
                    wildcard_reason=KEY_POLICY_WILDCARD,
                ),
                {"Service": RULE_PUBLISHER},
            )
        ]

    def _topic_policy(self, name: str, topic: aws.sns.Topic, rule_names: Sequence[str]) -> None:
        """Only this account's alarms and the named rules publish, and only over TLS."""
        account, alarms_of_account = self._account, self._alarms_of_account()
        rules: list[dict[str, Any]] = []
        if rule_names:
            rules.append(
                with_principal(
                    Statement(
                        ["sns:Publish"],
                        [topic.arn],
                        sid="EventRulesOfThisAccount",
                        conditions={
                            "StringEquals": {"aws:SourceAccount": account},
                            "ArnEquals": {"aws:SourceArn": self._rule_arns(rule_names)},
                        },
                    ),
                    {"Service": RULE_PUBLISHER},
                )
            )
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
                    *rules,
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
