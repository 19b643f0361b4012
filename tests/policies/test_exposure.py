"""Who can reach what: trust policies, resource policies, security groups and resources outside
the VPC. Every policy has a passing and a failing case (`POLICY_CASES`), then the edges each is
about."""

from __future__ import annotations

from typing import Any

import pytest

from policies.core import Resource
from tests.policies.helpers import (
    ACCOUNT,
    KEY_ARN,
    PROD_TAGS,
    TAGS,
    Case,
    check_case,
    doc,
    res,
    skipped,
    tls_policy,
    violations,
)

ROLE = "aws:iam/role:Role"
FOREIGN = "999988887777"
OIDC = f"arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com"
# any resource that names the stack's account in an ARN (how the stack's own account is found)
HOME = res("aws:cloudwatch/logGroup:LogGroup", "logs", {"kmsKeyId": KEY_ARN, "tags": TAGS})


def trust(*statements: dict[str, Any], name: str = "exec") -> Resource:
    return res(ROLE, name, {"assumeRolePolicy": doc(*statements), "tags": TAGS})


def assume(principal: Any, **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole", **extra}


def source_account() -> dict[str, Any]:
    return {"Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}}}


def bucket_policy(*statements: dict[str, Any]) -> Resource:
    return res(
        "aws:s3/bucketPolicy:BucketPolicy",
        "data-policy",
        {"bucket": "data", "policy": doc(*statements)},
    )


TLS = {
    "Sid": "DenyInsecureTransport",
    "Effect": "Deny",
    "Principal": "*",
    "Action": "s3:*",
    "Resource": ["arn:aws:s3:::data", "arn:aws:s3:::data/*"],
    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
}
READ_ALL = {
    "Sid": "PublicRead",
    "Effect": "Allow",
    "Principal": {"AWS": "*"},
    "Action": "s3:GetObject",
    "Resource": "arn:aws:s3:::data/*",
}


def ingress_rule(cidr: Any = "10.40.0.0/16", port: int = 22, **over: Any) -> Resource:
    props: dict[str, Any] = {
        "securityGroupId": "sg-0abc",
        "ipProtocol": "tcp",
        "fromPort": port,
        "toPort": port,
        "cidrIpv4": cidr,
        "tags": TAGS,
        **over,
    }
    return res("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "in", props)


def group(*ingress: dict[str, Any], **over: Any) -> Resource:
    props = {"vpcId": "vpc-01", "ingress": list(ingress), "tags": TAGS, **over}
    return res("aws:ec2/securityGroup:SecurityGroup", "web", props)


def https_from(*cidrs: str) -> dict[str, Any]:
    v4 = [c for c in cidrs if ":" not in c]
    v6 = [c for c in cidrs if ":" in c]
    return {
        "protocol": "tcp",
        "fromPort": 443,
        "toPort": 443,
        "cidrBlocks": v4,
        "ipv6CidrBlocks": v6,
    }


def notebook(**over: Any) -> Resource:
    props: dict[str, Any] = {
        "instanceType": "ml.t3.medium",
        "roleArn": f"arn:aws:iam::{ACCOUNT}:role/notebook",
        "subnetId": "subnet-0aaa",
        "securityGroups": ["sg-0abc"],
        "directInternetAccess": "Disabled",
        "rootAccess": "Disabled",
        "kmsKeyId": KEY_ARN,
        "tags": TAGS,
        **over,
    }
    return res("aws:sagemaker/notebookInstance:NotebookInstance", "explore", props)


def listener(protocol: str, *actions: dict[str, Any], port: int = 80) -> Resource:
    props = {"loadBalancerArn": "arn:lb", "protocol": protocol, "port": port}
    return res(
        "aws:lb/listener:Listener",
        f"{protocol.lower()}-{port}",
        {**props, "defaultActions": list(actions)},
    )


REDIRECT = {
    "type": "redirect",
    "redirect": {"protocol": "HTTPS", "port": "443", "statusCode": "HTTP_301"},
}
FORWARD = {"type": "forward", "targetGroupArn": "arn:tg"}


def load_balancer(internal: bool, tags: dict[str, str] = PROD_TAGS) -> Resource:
    return res(
        "aws:lb/loadBalancer:LoadBalancer",
        "api",
        {"internal": internal, "loadBalancerType": "application", "tags": tags},
    )


POLICY_CASES: dict[str, Case] = {
    "iam-role-trust-not-public": (
        lambda: [
            trust(assume({"Service": "sagemaker.amazonaws.com"}, **source_account())),
            trust(
                assume(
                    {"AWS": "*"},
                    Condition={"StringEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}},
                ),
                name="org",
            ),
        ],
        lambda: [trust(assume({"AWS": "*"}))],
        "lets any AWS principal assume it",
    ),
    "iam-role-trust-cross-account": (
        lambda: [
            HOME,
            trust(assume({"AWS": f"arn:aws:iam::{ACCOUNT}:root"})),
            trust(
                assume(
                    {"AWS": f"arn:aws:iam::{FOREIGN}:root"},
                    Condition={"StringEquals": {"sts:ExternalId": "vendor-7f3a"}},
                ),
                name="vendor",
            ),
        ],
        lambda: [HOME, trust(assume({"AWS": f"arn:aws:iam::{FOREIGN}:root"}))],
        f"lets every principal of account(s) ['arn:aws:iam::{FOREIGN}:root'] assume it",
    ),
    "iam-role-trust-confused-deputy": (
        lambda: [
            trust(assume({"Service": "lambda.amazonaws.com"}, **source_account())),
            trust(assume({"Service": "ec2.amazonaws.com"}), name="node"),
            trust(assume({"Service": "cloudtrail.amazonaws.com"}), name="trail-delivery"),
        ],
        lambda: [trust(assume({"Service": "lambda.amazonaws.com"}))],
        "lets lambda.amazonaws.com assume it for any account's resources",
    ),
    "aws-resourcepolicy-not-public": (
        lambda: [
            bucket_policy(
                TLS,
                {**READ_ALL, "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/reader"}},
            ),
            res(
                "aws:kms/key:Key",
                "lake",
                {
                    "enableKeyRotation": True,
                    "tags": TAGS,
                    "policy": doc(
                        {
                            "Effect": "Allow",
                            "Principal": {"AWS": "*"},
                            "Action": ["kms:Decrypt"],
                            "Resource": "*",
                            "Condition": {"StringEquals": {"kms:CallerAccount": ACCOUNT}},
                        }
                    ),
                },
            ),
        ],
        lambda: [bucket_policy(TLS, READ_ALL)],
        "policy statement PublicRead allows ['s3:GetObject'] to everyone (Principal '*')",
    ),
    "ec2-securitygroup-no-public-ingress": (
        lambda: [ingress_rule(), group(https_from("0.0.0.0/0"))],
        lambda: [ingress_rule("0.0.0.0/0")],
        "ingress opens tcp 22 to the internet (0.0.0.0/0), including SSH (22)",
    ),
    "ec2-securitygroup-public-web-ingress": (
        lambda: [group(https_from("10.40.0.0/16")), ingress_rule("0.0.0.0/0")],
        lambda: [group(https_from("::/0"))],
        "ingress[0] admits tcp 443 from anywhere (::/0)",
    ),
    "ec2-defaultsecuritygroup-no-rules": (
        lambda: [
            res(
                "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup",
                "default",
                {"vpcId": "vpc-01", "ingress": [], "egress": [], "tags": TAGS},
            )
        ],
        lambda: [
            res(
                "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup",
                "default",
                {
                    "vpcId": "vpc-01",
                    "egress": [
                        {"protocol": "-1", "fromPort": 0, "toPort": 0, "cidrBlocks": ["0.0.0.0/0"]}
                    ],
                    "tags": TAGS,
                },
            )
        ],
        "the VPC's default security group keeps egress rules",
    ),
    "sagemaker-notebook-no-direct-internet": (
        lambda: [notebook()],
        lambda: [notebook(directInternetAccess="Enabled")],
        "directInternetAccess is 'Enabled'",
    ),
    "sagemaker-notebook-no-root-access": (
        lambda: [notebook()],
        lambda: [notebook(rootAccess=None)],
        "rootAccess is 'Enabled'",
    ),
    "rds-db-not-public": (
        lambda: [res("aws:rds/instance:Instance", "db", {"publiclyAccessible": False})],
        lambda: [res("aws:rds/instance:Instance", "db", {"publiclyAccessible": True})],
        "publiclyAccessible is true",
    ),
    "lb-loadbalancer-internal": (
        lambda: [load_balancer(internal=True), load_balancer(internal=False, tags=TAGS)],
        lambda: [load_balancer(internal=False)],
        "a prod load balancer is internet-facing",
    ),
    "lb-listener-https-redirect": (
        lambda: [listener("HTTP", REDIRECT), listener("HTTPS", FORWARD, port=443)],
        lambda: [listener("HTTP", FORWARD)],
        "an HTTP listener serves plain HTTP",
    ),
    "opensearch-domain-in-vpc": (
        lambda: [
            res(
                "aws:opensearch/domain:Domain",
                "search",
                {"vpcOptions": {"subnetIds": ["subnet-0aaa"], "securityGroupIds": ["sg-0abc"]}},
            )
        ],
        lambda: [
            res("aws:opensearch/domain:Domain", "search", {"engineVersion": "OpenSearch_2.13"})
        ],
        "has no vpcOptions.subnetIds",
    ),
    "lambda-functionurl-auth": (
        lambda: [
            res("aws:lambda/functionUrl:FunctionUrl", "url", {"authorizationType": "AWS_IAM"})
        ],
        lambda: [res("aws:lambda/functionUrl:FunctionUrl", "url", {"authorizationType": "NONE"})],
        "authorizationType is 'NONE'",
    ),
    "ec2-instance-no-public-ip": (
        lambda: [
            res("aws:ec2/instance:Instance", "box", {"associatePublicIpAddress": False}),
            res(
                "aws:ec2/launchTemplate:LaunchTemplate",
                "lt",
                {"networkInterfaces": [{"associatePublicIpAddress": "false"}]},
            ),
        ],
        lambda: [res("aws:ec2/instance:Instance", "box", {"associatePublicIpAddress": True})],
        "associatePublicIpAddress is true",
    ),
}


@pytest.mark.parametrize("name", sorted(POLICY_CASES))
def test_policy_passes_and_fails(name: str) -> None:
    check_case(name, POLICY_CASES[name])


# --- trust policies --------------------------------------------------------------------------


def test_an_oidc_provider_without_a_subject_condition_trusts_every_identity() -> None:
    web = {"Federated": OIDC}
    audience = {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"}
    loose = trust({**assume(web), "Condition": {"StringEquals": audience}})
    assert violations("iam-role-trust-not-public", [loose]) == [
        "role 'exec': trust statement 0 lets every identity of the OIDC provider "
        "token.actions.githubusercontent.com assume it; require "
        "token.actions.githubusercontent.com:sub (the service account, or the repository and "
        "branch)"
    ]
    pinned = trust(
        {
            **assume(web),
            "Condition": {
                "StringEquals": audience,
                "StringLike": {"token.actions.githubusercontent.com:sub": "repo:acme/ml:*"},
            },
        }
    )
    assert violations("iam-role-trust-not-public", [pinned]) == []


@pytest.mark.parametrize(
    "condition",
    [
        {"StringEqualsIfExists": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}},  # holds when absent
        {"StringNotEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}},
        {"ForAllValues:StringEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}},
        {"StringLike": {"aws:PrincipalArn": "*"}},
        {"Bool": {"aws:SecureTransport": "true"}},
    ],
)
def test_conditions_that_do_not_narrow_everyone(condition: dict[str, Any]) -> None:
    role = trust(assume("*", Condition=condition))
    assert len(violations("iam-role-trust-not-public", [role])) == 1


def test_not_principal_allow_is_everyone_but_a_list() -> None:
    role = trust(
        {
            "Effect": "Allow",
            "NotPrincipal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
            "Action": "sts:AssumeRole",
        }
    )
    assert len(violations("iam-role-trust-not-public", [role])) == 1


def test_a_bare_account_id_is_the_account_root() -> None:
    bare = trust(assume({"AWS": [FOREIGN]}))
    assert len(violations("iam-role-trust-cross-account", [HOME, bare])) == 1
    named_role = trust(assume({"AWS": f"arn:aws:iam::{FOREIGN}:role/ci-deployer"}))
    assert violations("iam-role-trust-cross-account", [HOME, named_role]) == []


def test_the_stack_account_comes_from_arns_and_source_conditions_not_principals() -> None:
    # the only account named is in the principal itself: which account is home cannot be told
    alone = trust(assume({"AWS": f"arn:aws:iam::{FOREIGN}:root"}))
    assert violations("iam-role-trust-cross-account", [alone]) == []
    notes = skipped("iam-role-trust-cross-account", [alone])
    assert len(notes) == 1 and "no ARN of the stack names its account" in notes[0]
    # a service role's aws:SourceAccount condition names it
    service = trust(assume({"Service": "lambda.amazonaws.com"}, **source_account()), name="fn")
    assert len(violations("iam-role-trust-cross-account", [alone, service])) == 1
    own = trust(assume({"AWS": f"arn:aws:iam::{ACCOUNT}:root"}), name="own")
    assert violations("iam-role-trust-cross-account", [own, service]) == []


def test_a_principal_arn_condition_scopes_a_foreign_root() -> None:
    scoped = trust(
        assume(
            {"AWS": f"arn:aws:iam::{FOREIGN}:root"},
            Condition={"ArnEquals": {"aws:PrincipalArn": f"arn:aws:iam::{FOREIGN}:role/ci"}},
        )
    )
    assert violations("iam-role-trust-cross-account", [HOME, scoped]) == []


# --- resource policies -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("type_", "prop"),
    [
        ("aws:sqs/queuePolicy:QueuePolicy", "policy"),
        ("aws:sqs/queue:Queue", "policy"),
        ("aws:sns/topicPolicy:TopicPolicy", "policy"),
        ("aws:kms/key:Key", "policy"),
        ("aws:ecr/repositoryPolicy:RepositoryPolicy", "policy"),
        ("aws:secretsmanager/secretPolicy:SecretPolicy", "policy"),
        ("aws:opensearch/domainPolicy:DomainPolicy", "accessPolicies"),
        ("aws:elasticsearch/domain:Domain", "accessPolicies"),  # an alias: checked as OpenSearch
        ("aws:s3/bucketV2:BucketV2", "policy"),  # the deprecated inline policy, on an alias
    ],
)
def test_every_resource_policy_is_read(type_: str, prop: str) -> None:
    everyone = {"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}
    found = violations(
        "aws-resourcepolicy-not-public", [res(type_, "shared", {prop: doc(everyone)})]
    )
    assert len(found) == 1 and found[0].startswith(f"{type_} 'shared': policy statement 0")
    scoped = {**everyone, "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}}}
    assert (
        violations("aws-resourcepolicy-not-public", [res(type_, "shared", {prop: doc(scoped)})])
        == []
    )


def test_a_vpc_endpoint_condition_narrows_a_bucket_policy() -> None:
    private = {**READ_ALL, "Condition": {"StringEquals": {"aws:SourceVpce": "vpce-0abc"}}}
    assert violations("aws-resourcepolicy-not-public", [bucket_policy(TLS, private)]) == []


def test_the_shipped_tls_deny_is_not_an_allow() -> None:
    policy = res(
        "aws:s3/bucketPolicy:BucketPolicy", "p", {"bucket": "b", "policy": tls_policy("b")}
    )
    assert violations("aws-resourcepolicy-not-public", [policy]) == []


def test_lambda_permissions_to_anyone() -> None:
    def permission(**props: Any) -> Resource:
        base = {"action": "lambda:InvokeFunction", "function": "scorer", **props}
        return res("aws:lambda/permission:Permission", "invoke", base)

    assert violations("aws-resourcepolicy-not-public", [permission(principal="*")]) == [
        "aws:lambda/permission:Permission 'invoke': lets anyone ('*') invoke function 'scorer'; "
        "name the principal, or set sourceAccount / sourceArn / principalOrgId"
    ]
    narrowed = permission(principal="*", sourceArn="arn:aws:execute-api:us-east-1:1:api/*")
    service = permission(principal="events.amazonaws.com", sourceArn="arn:aws:events:rule")
    assert violations("aws-resourcepolicy-not-public", [narrowed, service]) == []


def test_an_unknown_policy_document_is_skipped() -> None:
    unknown = res("aws:sqs/queuePolicy:QueuePolicy", "q", {"policy": {"unknown": True}})
    assert violations("aws-resourcepolicy-not-public", [unknown]) == []
    assert len(skipped("aws-resourcepolicy-not-public", [unknown])) == 1


# --- security groups ---------------------------------------------------------------------------


def test_all_traffic_from_anywhere_names_the_admin_ports() -> None:
    everything = group({"protocol": "-1", "fromPort": 0, "toPort": 0, "cidrBlocks": ["0.0.0.0/0"]})
    (message,) = violations("ec2-securitygroup-no-public-ingress", [everything])
    assert "ingress[0] opens all traffic to the internet (0.0.0.0/0), including FTP (21)" in message
    assert "reach hosts through SSM Session Manager" in message


def test_a_non_admin_port_from_anywhere_is_still_refused() -> None:
    app = ingress_rule("0.0.0.0/0", port=8443)
    assert violations("ec2-securitygroup-no-public-ingress", [app]) == [
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule 'in': ingress opens tcp 8443 "
        "to the internet (0.0.0.0/0); admit the callers' security group or CIDRs instead"
    ]


def test_legacy_rules_ipv6_and_egress() -> None:
    def rule(kind: str, **props: Any) -> Resource:
        base = {"type": kind, "securityGroupId": "sg-0abc", "protocol": "tcp"}
        return res("aws:ec2/securityGroupRule:SecurityGroupRule", kind, {**base, **props})

    rdp = rule("ingress", fromPort=3389, toPort=3389, ipv6CidrBlocks=["::/0"])
    (message,) = violations("ec2-securitygroup-no-public-ingress", [rdp])
    assert "opens tcp 3389 to the internet (::/0), including RDP (3389)" in message
    out = rule("egress", fromPort=0, toPort=65535, cidrBlocks=["0.0.0.0/0"])
    assert violations("ec2-securitygroup-no-public-ingress", [out]) == []


def test_a_port_range_covering_a_database_port() -> None:
    wide = ingress_rule("0.0.0.0/0", fromPort=5000, toPort=6000)
    (message,) = violations("ec2-securitygroup-no-public-ingress", [wide])
    assert "opens tcp 5000-6000 to the internet (0.0.0.0/0), including PostgreSQL (5432)" in message


def test_ports_arrive_as_floats_under_the_cli() -> None:
    rule = ingress_rule("0.0.0.0/0", fromPort=443.0, toPort=443.0)
    assert violations("ec2-securitygroup-no-public-ingress", [rule]) == []
    assert len(violations("ec2-securitygroup-public-web-ingress", [rule])) == 1


def test_an_unknown_cidr_is_skipped() -> None:
    rule = ingress_rule({"unknown": True})
    assert violations("ec2-securitygroup-no-public-ingress", [rule]) == []
    assert len(skipped("ec2-securitygroup-no-public-ingress", [rule])) == 1


# --- outside the VPC ---------------------------------------------------------------------------


def test_a_notebook_outside_the_vpc() -> None:
    assert violations("sagemaker-notebook-no-direct-internet", [notebook(subnetId=None)]) == [
        "notebook 'explore' has no subnetId: it runs outside the VPC"
    ]
    # SageMaker's default is direct internet access, and root
    bare = res(
        "aws:sagemaker/notebookInstance:NotebookInstance",
        "explore",
        {"instanceType": "ml.t3.medium", "roleArn": "arn:role"},
    )
    assert len(violations("sagemaker-notebook-no-direct-internet", [bare])) == 2
    assert len(violations("sagemaker-notebook-no-root-access", [bare])) == 1


def test_an_alb_listener_is_checked_as_an_lb_listener() -> None:
    alb = res(
        "aws:alb/listener:Listener",
        "web",
        {"protocol": "HTTP", "port": 80, "defaultActions": [FORWARD]},
    )
    assert violations("lb-listener-https-redirect", [alb]) == [
        "aws:alb/listener:Listener 'web': an HTTP listener serves plain HTTP; its default action "
        "must redirect to HTTPS (type 'redirect', redirect.protocol 'HTTPS')"
    ]
    unset = res("aws:lb/listener:Listener", "web", {"port": 80, "defaultActions": [FORWARD]})
    assert len(violations("lb-listener-https-redirect", [unset])) == 1  # HTTP is the default


def test_rds_clusters_and_launch_template_public_addresses() -> None:
    cluster = res("aws:rds/clusterInstance:ClusterInstance", "db-1", {"publiclyAccessible": True})
    assert len(violations("rds-db-not-public", [cluster])) == 1
    template = res(
        "aws:ec2/launchTemplate:LaunchTemplate",
        "lt",
        {"networkInterfaces": [{"associatePublicIpAddress": "true"}]},
    )
    assert violations("ec2-instance-no-public-ip", [template]) == [
        "aws:ec2/launchTemplate:LaunchTemplate 'lt': networkInterfaces[0] associates a public IP "
        "address; instances stay in private subnets"
    ]


def _key_with(*statements: dict[str, Any]) -> Resource:
    return res(
        "aws:kms/key:Key",
        "topic-key",
        {"enableKeyRotation": True, "tags": TAGS, "policy": doc(*statements)},
    )


ALARMS_USE_KEY = {
    "Effect": "Allow",
    "Principal": {"Service": "cloudwatch.amazonaws.com"},
    "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
    "Resource": "*",
}
POLICY_CASES["kms-key-service-principal-scoped"] = (
    lambda: [
        _key_with(
            {**ALARMS_USE_KEY, "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}}},
            {
                **ALARMS_USE_KEY,
                "Principal": {"Service": "logs.us-east-1.amazonaws.com"},
                "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": "arn:aws:logs:*"}},
            },
            {**ALARMS_USE_KEY, "Principal": {"Service": "events.amazonaws.com"}},  # exempt
        )
    ],
    lambda: [_key_with(ALARMS_USE_KEY)],
    "lets cloudwatch.amazonaws.com use the key for any account's resources",
)
