"""EKS: the GPU training cluster, its node groups and access entries.

The sandbox realizes none of them: moto records clusters but runs no control plane or nodes.
"""

from __future__ import annotations

from collections.abc import Mapping

from mlplat.aws.registry import AwsType, Fake, Outputs, Service, generic_fake

# --- the plan engine's fakes


def _fake_cluster(f: Fake) -> Outputs:
    oidc = f"https://oidc.eks.{f.region}.amazonaws.com/id/{f.digest(32).upper()}"
    vpc_config = f.inputs.get("vpcConfig")
    return f.physical, {
        # EKS creates a security group for the control plane's network interfaces
        "vpcConfig": {
            **(vpc_config if isinstance(vpc_config, Mapping) else {}),
            "clusterSecurityGroupId": f"sg-{f.digest(17, 'cluster-sg')}",
        },
        "name": f.physical,
        "arn": f.arn("eks", f"cluster/{f.physical}"),
        "endpoint": f"https://{f.digest(32).upper()}.gr7.{f.region}.eks.amazonaws.com",
        "certificateAuthority": {"data": "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t"},
        "identities": [{"oidcs": [{"issuer": oidc}]}],
        "version": f.inputs.get("version", "1.33"),
    }


# --- the registry entries

SERVICE = Service(
    owns=("eks",),
    types=(
        AwsType("aws:eks/cluster:Cluster", fake=_fake_cluster, force_new=frozenset({"name"})),
        AwsType("aws:eks/nodeGroup:NodeGroup", fake=generic_fake),
        AwsType("aws:eks/accessEntry:AccessEntry", fake=generic_fake),
        AwsType("aws:eks/accessPolicyAssociation:AccessPolicyAssociation", fake=generic_fake),
    ),
    not_emulated=(
        "EKS: moto records clusters but runs no control plane or nodes, so nothing "
        "scheduled on the cluster could run"
    ),
)
