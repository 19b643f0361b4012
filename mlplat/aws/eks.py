"""EKS: the GPU training cluster, its node groups and access entries.

The sandbox realizes none of them: moto records clusters but runs no control plane or nodes.
"""

from __future__ import annotations

from collections.abc import Mapping

from mlplat.aws.registry import AwsType, Fake, Outputs, Service

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


def _fake_node_group(f: Fake) -> Outputs:
    cluster, name = f.input("clusterName"), f.input("nodeGroupName") or f.physical
    return f"{cluster}:{name}", {
        "nodeGroupName": name,
        "arn": f.arn("eks", f"nodegroup/{cluster}/{name}/{f.uuid()}"),
        "status": "ACTIVE",
    }


def _fake_access_entry(f: Fake) -> Outputs:
    cluster, principal = f.input("clusterName"), f.input("principalArn")
    kind_and_name = principal.split(":", 5)[-1] if principal.count(":") >= 5 else "role/unknown"
    return f"{cluster}:{principal}", {
        "accessEntryArn": f.arn(
            "eks",
            f"access-entry/{cluster}/{kind_and_name.split('/', 1)[0]}/{f.account}/"
            f"{kind_and_name.rsplit('/', 1)[-1]}/{f.uuid()}",
        ),
    }


def _fake_association(f: Fake) -> Outputs:
    """Id `<cluster>#<principal>#<policy>`; no ARN of its own."""
    parts = (f.input("clusterName"), f.input("principalArn"), f.input("policyArn"))
    return "#".join(parts), {}


def _fake_addon(f: Fake) -> Outputs:
    cluster, addon = f.input("clusterName"), f.input("addonName")
    return f"{cluster}:{addon}", {"arn": f.arn("eks", f"addon/{cluster}/{addon}/{f.uuid()}")}


# --- the registry entries

SERVICE = Service(
    owns=("eks",),
    types=(
        AwsType("aws:eks/cluster:Cluster", fake=_fake_cluster, force_new=frozenset({"name"})),
        AwsType("aws:eks/nodeGroup:NodeGroup", fake=_fake_node_group),
        AwsType("aws:eks/accessEntry:AccessEntry", fake=_fake_access_entry),
        AwsType("aws:eks/accessPolicyAssociation:AccessPolicyAssociation", fake=_fake_association),
        AwsType("aws:eks/addon:Addon", fake=_fake_addon),
    ),
    not_emulated=(
        "EKS: moto records clusters but runs no control plane or nodes, so nothing "
        "scheduled on the cluster could run"
    ),
)
