"""The GPU cluster key's policy: explicit and least-use, like the lake's, not KMS's default.

KMS's default key policy lets every principal of the account with an IAM permission do anything
with the key (`kms:*` for the account root). The cluster key instead allows:

* `KeyAdministration`: the account (through IAM) administers the key, never uses it; AWS requires
  the account to keep administering a key, else it becomes unmanageable;
* `ClusterRoleEnvelopeEncryption`: the EKS cluster role (`aws:PrincipalArn`) encrypts and
  decrypts the secrets' data keys, as EKS documents for envelope encryption;
* `UseThroughClusterServices`: principals of this account use the key only through EC2 (the node
  volumes), Lambda (the gateway functions' environment) and EKS;
* `GrantsForAwsResources`: those services take grants only for the AWS resources they manage
  (`kms:GrantIsForAWSResource`);
* `AutoScalingVolumeGrant`: the deployer grants the Auto Scaling service-linked role, which
  launches the nodes with encrypted volumes, the use of the key (`kms:GranteePrincipal`), as
  `aws.kms.Grant` does in `components.training_cluster`.
"""

from __future__ import annotations

from typing import Any

import pulumi

from components.data_lake import KEY_ADMIN_ACTIONS, KEY_POLICY_WILDCARD, KEY_USE_ACTIONS
from components.iam import Statement, document, with_principal

CLUSTER_KEY_SERVICES = ("ec2", "lambda", "eks")
ENVELOPE_ACTIONS = ("kms:Encrypt", "kms:Decrypt", "kms:ListGrants", "kms:DescribeKey")


def cluster_key_policy(
    *,
    partition: pulumi.Input[str],
    dns_suffix: pulumi.Input[str],
    region: pulumi.Input[str],
    account: pulumi.Input[str],
    cluster_role_arn: pulumi.Input[str],
    autoscaling_role_arn: pulumi.Input[str],
) -> pulumi.Output[str]:
    root = {"AWS": pulumi.Output.concat("arn:", partition, ":iam::", account, ":root")}
    via = [
        pulumi.Output.concat(service, ".", region, ".", dns_suffix)
        for service in CLUSTER_KEY_SERVICES
    ]

    def statement(
        actions: tuple[str, ...], sid: str, conditions: dict[str, dict[str, Any]]
    ) -> dict[str, Any]:
        return with_principal(
            Statement(
                actions, ["*"], sid=sid, wildcard_reason=KEY_POLICY_WILDCARD, conditions=conditions
            ),
            root,
        )

    in_account = {"kms:CallerAccount": account}
    return document(
        [
            statement(KEY_ADMIN_ACTIONS, "KeyAdministration", {}),
            statement(
                ENVELOPE_ACTIONS,
                "ClusterRoleEnvelopeEncryption",
                {"ArnEquals": {"aws:PrincipalArn": cluster_role_arn}},
            ),
            statement(
                KEY_USE_ACTIONS,
                "UseThroughClusterServices",
                {"StringEquals": {**in_account, "kms:ViaService": via}},
            ),
            statement(
                ("kms:CreateGrant",),
                "GrantsForAwsResources",
                {
                    "StringEquals": {**in_account, "kms:ViaService": via},
                    "Bool": {"kms:GrantIsForAWSResource": "true"},
                },
            ),
            statement(
                ("kms:CreateGrant",),
                "AutoScalingVolumeGrant",
                {"StringEquals": {**in_account, "kms:GranteePrincipal": autoscaling_role_arn}},
            ),
        ]
    )
