"""The EKS GPU training cluster, from pulumi-aws resources (no pulumi-eks: its children are
invisible to the offline engines and to policies), and the SageMaker training job role.

`TrainingCluster`:

* control plane: private API endpoint (public access only for `public_access_cidrs`), secrets
  envelope-encrypted with the cluster's own KMS key (rotation on), every control-plane log type
  into a log group created first so it carries a retention and the lake key;
* access: authentication mode `API`; access entries (`AccessEntry` + `AccessPolicyAssociation`)
  for the admin roles given and for a `submitter` role that may run Jobs in the training
  namespace only. The identity running `pulumi up` also gets cluster admin
  (`bootstrap_cluster_creator_admin_permissions`): the Kubernetes provider authenticates as it to
  apply the in-cluster objects;
* IRSA: an IAM OIDC provider from the cluster's issuer;
* managed node groups: a small CPU system group (autoscaler, CoreDNS) and one group per
  `gpu_node_groups` entry on the `AL2023_x86_64_NVIDIA` AMI, ON_DEMAND or SPOT, min 0 / desired 0,
  tainted `nvidia.com/gpu=true:NoSchedule`. Launch templates require IMDSv2 (hop limit 2, so pods
  behind the node's network namespace still reach it) and encrypt gp3 root volumes with the
  cluster key;
* in-cluster objects (`ClusterAddons`, through a Kubernetes provider built from the cluster's
  outputs with `aws eks get-token` exec auth).

GPU scale from zero: the **cluster autoscaler**, not Karpenter. It drives the managed node groups
as they are (one Auto Scaling group each), needs no extra controller CRDs or node IAM plumbing, and
its scale-from-zero is exactly the GPU case: a pending pod that requests `nvidia.com/gpu` and
tolerates the taint makes it raise a GPU group from 0; idle nodes are removed after 10 minutes.
To know what a group at zero would offer, it reads the node-template tags on the group
(`k8s.io/cluster-autoscaler/node-template/label/...`, `.../taint/...`) and, for managed node
groups, `eks:DescribeNodegroup` (labels and taints), which its role may call. Karpenter would pick
instance types per pod more cleverly, but it replaces managed node groups, which this platform
keeps for upgrades handled by EKS.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.cluster_addons import (
    GPU_LABEL,
    GPU_TAINT_KEY,
    GPU_TAINT_VALUE,
    NODE_GROUP_LABEL,
    NODE_ROLE_LABEL,
    ClusterAddons,
    ClusterAddonsArgs,
    cluster_autoscaler_image,
)
from components.iam import (
    Statement,
    assume_role_policy,
    policy_document,
    training_data_statements,
)

CONTROL_PLANE_LOG_TYPES = ("api", "audit", "authenticator", "controllerManager", "scheduler")
GPU_AMI_TYPE = "AL2023_x86_64_NVIDIA"
SYSTEM_AMI_TYPE = "AL2023_x86_64_STANDARD"
CAPACITY_TYPES = ("ON_DEMAND", "SPOT")
# IAM no longer validates the thumbprint of OIDC providers whose issuer is served with a certificate
# from a trusted root CA, which EKS issuers are ("thumbprint not used" in the IAM docs for EKS);
# the API still takes one, so the well-known root CA thumbprint of the EKS issuers is given, as
# eksctl does. Computing it would need a data source (a TLS fetch) the plan cannot make.
EKS_OIDC_THUMBPRINT = "9e99a48a9960b14926bb7f3b02e22da2b0ab7280"
# GPUs per instance of the sizes that have more than one (every other size of these families has 1).
_MULTI_GPU_SIZES: Mapping[str, int] = {
    "12xlarge": 4,
    "24xlarge": 4,
    "48xlarge": 8,
    "metal": 8,
}
_P_FAMILY_GPUS: Mapping[str, int] = {
    "p4d.24xlarge": 8,
    "p4de.24xlarge": 8,
    "p5.48xlarge": 8,
    "p5e.48xlarge": 8,
    "p5en.48xlarge": 8,
    "p5.4xlarge": 1,
}


class TrainingClusterError(ValueError):
    """The training cluster's arguments are inconsistent."""


class GpuNodeGroupSpec(Protocol):
    """What a GPU node group declares (`stacks.settings.GpuNodeGroup` is one)."""

    @property
    def name(self) -> str: ...
    @property
    def instance_types(self) -> tuple[str, ...]: ...
    @property
    def capacity_type(self) -> str: ...
    @property
    def max_size(self) -> int: ...
    @property
    def disk_gb(self) -> int: ...


def gpus_per_instance(instance_type: str) -> int:
    """GPUs on one instance of a GPU type (g4dn/g5/g6/g6e sizes, the p4/p5 sizes listed)."""
    if instance_type in _P_FAMILY_GPUS:
        return _P_FAMILY_GPUS[instance_type]
    family, _, size = instance_type.partition(".")
    if family.startswith("g") and size:
        return _MULTI_GPU_SIZES.get(size, 1)
    raise TrainingClusterError(
        f"instance type {instance_type!r}: GPU count unknown; known: g* families and "
        f"{', '.join(sorted(_P_FAMILY_GPUS))}"
    )


def check_gpu_groups(groups: Sequence[GpuNodeGroupSpec], allowed_families: Sequence[str]) -> None:
    """Refuse node groups that are not GPU groups of the allowed families (clear errors)."""
    problems: list[str] = []
    if not groups:
        problems.append("gpu_node_groups is empty: a training cluster needs one GPU node group")
    names = [g.name for g in groups]
    if len(set(names)) != len(names):
        problems.append(f"gpu_node_groups names must be unique: {names}")
    for g in groups:
        if not re.fullmatch(r"[a-z][a-z0-9-]{0,30}", g.name):
            problems.append(f"node group {g.name!r}: name must be lowercase letters, digits, '-'")
        if g.capacity_type not in CAPACITY_TYPES:
            problems.append(
                f"node group {g.name!r}: capacity_type {g.capacity_type!r} is not one "
                f"of {', '.join(CAPACITY_TYPES)}"
            )
        if g.max_size < 1:
            problems.append(f"node group {g.name!r}: max_size {g.max_size} must be >= 1")
        if not g.instance_types:
            problems.append(f"node group {g.name!r}: no instance types")
        for itype in g.instance_types:
            family = itype.split(".")[0]
            if family not in allowed_families:
                problems.append(
                    f"node group {g.name!r}: instance type {itype!r} is not in an allowed GPU "
                    f"family ({', '.join(sorted(allowed_families))})"
                )
            else:
                try:
                    gpus_per_instance(itype)
                except TrainingClusterError as exc:
                    problems.append(f"node group {g.name!r}: {exc}")
    if problems:
        raise TrainingClusterError("; ".join(problems))


def gpu_capacity(groups: Sequence[GpuNodeGroupSpec]) -> tuple[int, int]:
    """(GPUs all groups hold at max size, most GPUs on one node)."""
    per_node = [max(gpus_per_instance(t) for t in g.instance_types) for g in groups]
    return sum(n * g.max_size for n, g in zip(per_node, groups, strict=True)), max(per_node)


@dataclass(frozen=True, slots=True)
class TrainingClusterArgs:
    cluster_name: str  # physical name: the control-plane log group is named after it
    subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]]  # private subnets
    node_security_group_id: pulumi.Input[str]  # the network's compute group
    lake_kms_key_arn: pulumi.Input[str]
    features_bucket_arn: pulumi.Input[str]
    models_bucket_arn: pulumi.Input[str]
    gpu_node_groups: Sequence[GpuNodeGroupSpec]
    gpu_instance_families: Sequence[str]
    eks_version: str = "1.33"
    public_access_cidrs: Sequence[str] = ()
    system_node_instance_type: str = "m6i.large"
    system_node_count: int = 2
    admin_role_arns: Sequence[str] = ()
    models_prefix: str = "training"
    namespace: str = "training"
    service_account: str = "trainer"
    log_retention_days: int = 30
    kms_deletion_window_days: int = 30
    tags: Mapping[str, str] = field(default_factory=dict)
    protect: bool = False


def _managed_policy(partition: pulumi.Output[str], name: str) -> pulumi.Output[str]:
    return pulumi.Output.concat("arn:", partition, ":iam::aws:policy/", name)


class TrainingCluster(pulumi.ComponentResource):
    cluster_name: pulumi.Output[str]
    oidc_provider_arn: pulumi.Output[str]
    trainer_role_arn: pulumi.Output[str]
    submitter_role_arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: TrainingClusterArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlplatform:training:TrainingCluster", name, None, opts)
        if not re.fullmatch(r"[0-9A-Za-z][A-Za-z0-9_-]{0,99}", args.cluster_name):
            raise TrainingClusterError(
                f"cluster_name {args.cluster_name!r}: letters, digits, '-' and '_', 1-100 chars, "
                "starting with a letter or digit"
            )
        check_gpu_groups(args.gpu_node_groups, args.gpu_instance_families)
        cluster_autoscaler_image(args.eks_version)  # refuse an unpinned version before any work
        for cidr in args.public_access_cidrs:
            if cidr in ("0.0.0.0/0", "::/0"):
                raise TrainingClusterError(
                    f"public_access_cidrs: {cidr} opens the cluster API to the internet"
                )
        gpu_quota, max_gpus = gpu_capacity(args.gpu_node_groups)
        tags = dict(args.tags)
        child = pulumi.ResourceOptions(parent=self)
        stateful = pulumi.ResourceOptions(parent=self, protect=args.protect)
        partition = aws.get_partition_output().partition
        region = aws.get_region_output().region
        account = aws.get_caller_identity_output().account_id

        # --- keys, roles, logs ------------------------------------------------------------------
        key = aws.kms.Key(
            f"{name}-key",
            description=f"EKS {args.cluster_name}: secrets envelope encryption and node volumes",
            enable_key_rotation=True,
            deletion_window_in_days=args.kms_deletion_window_days,
            tags=tags,
            opts=stateful,
        )
        # Auto Scaling launches the nodes: its service-linked role must use the key for the
        # encrypted volumes (a grant, so the default key policy stays).
        volume_grant = aws.kms.Grant(
            f"{name}-volume-grant",
            key_id=key.key_id,
            grantee_principal=pulumi.Output.format(
                "arn:{0}:iam::{1}:role/aws-service-role/autoscaling.amazonaws.com/"
                "AWSServiceRoleForAutoScaling",
                partition,
                account,
            ),
            operations=[
                "Encrypt",
                "Decrypt",
                "ReEncryptFrom",
                "ReEncryptTo",
                "GenerateDataKey",
                "GenerateDataKeyWithoutPlaintext",
                "DescribeKey",
                "CreateGrant",
            ],
            opts=child,
        )
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-control-plane",
            # EKS writes to exactly this name; creating it first sets retention and encryption.
            name=f"/aws/eks/{args.cluster_name}/cluster",
            retention_in_days=args.log_retention_days,
            kms_key_id=args.lake_kms_key_arn,
            tags=tags,
            opts=stateful,
        )
        cluster_role = aws.iam.Role(
            f"{name}-cluster",
            assume_role_policy=assume_role_policy("eks.amazonaws.com", source_account=account),
            description=f"EKS control plane of {args.cluster_name}",
            tags=tags,
            opts=child,
        )
        cluster_policy = aws.iam.RolePolicyAttachment(
            f"{name}-cluster",
            role=cluster_role.name,
            policy_arn=_managed_policy(partition, "AmazonEKSClusterPolicy"),
            opts=child,
        )
        cluster_key_policy = aws.iam.RolePolicy(
            f"{name}-cluster-key",
            role=cluster_role.id,
            policy=policy_document(
                [
                    Statement(
                        ["kms:Encrypt", "kms:Decrypt", "kms:ListGrants", "kms:DescribeKey"],
                        [key.arn],
                        sid="EnvelopeEncryptSecrets",
                    ),
                ]
            ),
            opts=child,
        )

        # --- the control plane ------------------------------------------------------------------
        public = bool(args.public_access_cidrs)
        cluster = aws.eks.Cluster(
            f"{name}-cluster",
            name=args.cluster_name,
            version=args.eks_version,
            role_arn=cluster_role.arn,
            vpc_config=aws.eks.ClusterVpcConfigArgs(
                subnet_ids=args.subnet_ids,
                endpoint_private_access=True,
                endpoint_public_access=public,
                public_access_cidrs=list(args.public_access_cidrs) if public else None,
            ),
            encryption_config=aws.eks.ClusterEncryptionConfigArgs(
                provider=aws.eks.ClusterEncryptionConfigProviderArgs(key_arn=key.arn),
                resources=["secrets"],
            ),
            enabled_cluster_log_types=list(CONTROL_PLANE_LOG_TYPES),
            access_config=aws.eks.ClusterAccessConfigArgs(
                authentication_mode="API",
                bootstrap_cluster_creator_admin_permissions=True,
            ),
            tags=tags,
            opts=pulumi.ResourceOptions(
                parent=self,
                protect=args.protect,
                depends_on=[log_group, cluster_policy, cluster_key_policy],
            ),
        )
        issuer = cluster.identities.apply(lambda ids: ids[0].oidcs[0].issuer)  # type: ignore[index]
        oidc = aws.iam.OpenIdConnectProvider(
            f"{name}-oidc",
            url=issuer,
            client_id_lists=["sts.amazonaws.com"],
            thumbprint_lists=[EKS_OIDC_THUMBPRINT],
            tags=tags,
            opts=child,
        )

        # --- access entries ----------------------------------------------------------------------
        def access(
            role: str, principal: pulumi.Input[str], policy: str, namespaces: Sequence[str] = ()
        ) -> aws.eks.AccessPolicyAssociation:
            entry = aws.eks.AccessEntry(
                f"{name}-{role}",
                cluster_name=cluster.name,
                principal_arn=principal,
                type="STANDARD",
                tags=tags,
                opts=child,
            )
            return aws.eks.AccessPolicyAssociation(
                f"{name}-{role}",
                cluster_name=cluster.name,
                principal_arn=entry.principal_arn,
                policy_arn=pulumi.Output.concat(
                    "arn:", partition, ":eks::aws:cluster-access-policy/", policy
                ),
                access_scope=aws.eks.AccessPolicyAssociationAccessScopeArgs(
                    type="namespace" if namespaces else "cluster",
                    namespaces=list(namespaces) if namespaces else None,
                ),
                opts=child,
            )

        for arn in args.admin_role_arns:
            access(
                f"admin-{hashlib.sha256(arn.encode()).hexdigest()[:8]}",
                arn,
                "AmazonEKSClusterAdminPolicy",
            )
        # Who submits training Jobs (`mlplat train --on eks`): edit rights in the training
        # namespace only, and DescribeCluster to build a kubeconfig.
        submitter = aws.iam.Role(
            f"{name}-submitter",
            assume_role_policy=pulumi.Output.json_dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {
                                "AWS": pulumi.Output.format(
                                    "arn:{0}:iam::{1}:root", partition, account
                                )
                            },
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            ),
            description=f"Submit training Jobs to the {args.namespace} namespace",
            tags=tags,
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-submitter",
            role=submitter.id,
            policy=policy_document(
                [
                    Statement(["eks:DescribeCluster"], [cluster.arn], sid="Kubeconfig"),
                ]
            ),
            opts=child,
        )
        access("submitter", submitter.arn, "AmazonEKSEditPolicy", namespaces=[args.namespace])

        # --- nodes ------------------------------------------------------------------------------
        node_role = aws.iam.Role(
            f"{name}-node",
            assume_role_policy=assume_role_policy("ec2.amazonaws.com"),
            description=f"EKS nodes of {args.cluster_name}",
            tags=tags,
            opts=child,
        )
        node_policies = [
            aws.iam.RolePolicyAttachment(
                f"{name}-node-{suffix}",
                role=node_role.name,
                policy_arn=_managed_policy(partition, policy),
                opts=child,
            )
            for suffix, policy in (
                ("worker", "AmazonEKSWorkerNodePolicy"),
                ("cni", "AmazonEKS_CNI_Policy"),
                ("ecr", "AmazonEC2ContainerRegistryPullOnly"),
            )
        ]
        node_sgs = [cluster.vpc_config.cluster_security_group_id, args.node_security_group_id]

        def launch_template(role: str, disk_gb: int) -> aws.ec2.LaunchTemplate:
            return aws.ec2.LaunchTemplate(
                f"{name}-{role}",
                description=f"{args.cluster_name} {role} nodes: IMDSv2, encrypted gp3 root",
                update_default_version=True,
                metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
                    http_endpoint="enabled",
                    http_tokens="required",
                    http_put_response_hop_limit=2,
                ),
                block_device_mappings=[
                    aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                        device_name="/dev/xvda",
                        ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                            volume_size=disk_gb,
                            volume_type="gp3",
                            encrypted="true",
                            kms_key_id=key.arn,
                            delete_on_termination="true",
                        ),
                    )
                ],
                # with groups in the template EKS adds none: the cluster group is listed here
                vpc_security_group_ids=node_sgs,
                tag_specifications=[
                    aws.ec2.LaunchTemplateTagSpecificationArgs(resource_type=kind, tags=tags)
                    for kind in ("instance", "volume")
                ],
                tags=tags,
                opts=child,
            )

        node_deps: list[pulumi.Resource] = [*node_policies, volume_grant]
        system_lt = launch_template("system", 50)
        system = aws.eks.NodeGroup(
            f"{name}-system",
            cluster_name=cluster.name,
            node_role_arn=node_role.arn,
            subnet_ids=args.subnet_ids,
            ami_type=SYSTEM_AMI_TYPE,
            capacity_type="ON_DEMAND",
            instance_types=[args.system_node_instance_type],
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                min_size=1,
                desired_size=args.system_node_count,
                max_size=max(args.system_node_count, 3),
            ),
            launch_template=aws.eks.NodeGroupLaunchTemplateArgs(
                id=system_lt.id, version=system_lt.latest_version.apply(str)
            ),
            labels={NODE_ROLE_LABEL: "system"},
            update_config=aws.eks.NodeGroupUpdateConfigArgs(max_unavailable=1),
            tags=tags,
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=node_deps, ignore_changes=["scalingConfig.desiredSize"]
            ),
        )
        gpu_groups: list[aws.eks.NodeGroup] = []
        for g in args.gpu_node_groups:
            gpu_labels = {NODE_ROLE_LABEL: "gpu", NODE_GROUP_LABEL: g.name, GPU_LABEL: "true"}
            template = "k8s.io/cluster-autoscaler/node-template"
            lt = launch_template(f"gpu-{g.name}", g.disk_gb)
            gpu_groups.append(
                aws.eks.NodeGroup(
                    f"{name}-gpu-{g.name}",
                    cluster_name=cluster.name,
                    node_role_arn=node_role.arn,
                    subnet_ids=args.subnet_ids,
                    ami_type=GPU_AMI_TYPE,
                    capacity_type=g.capacity_type,
                    instance_types=list(g.instance_types),
                    scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                        min_size=0, desired_size=0, max_size=g.max_size
                    ),
                    launch_template=aws.eks.NodeGroupLaunchTemplateArgs(
                        id=lt.id, version=lt.latest_version.apply(str)
                    ),
                    labels=gpu_labels,
                    taints=[
                        aws.eks.NodeGroupTaintArgs(
                            key=GPU_TAINT_KEY, value=GPU_TAINT_VALUE, effect="NO_SCHEDULE"
                        )
                    ],
                    update_config=aws.eks.NodeGroupUpdateConfigArgs(max_unavailable=1),
                    tags={
                        **tags,
                        "k8s.io/cluster-autoscaler/enabled": "true",
                        f"k8s.io/cluster-autoscaler/{args.cluster_name}": "owned",
                        **{f"{template}/label/{k}": v for k, v in gpu_labels.items()},
                        f"{template}/taint/{GPU_TAINT_KEY}": f"{GPU_TAINT_VALUE}:NoSchedule",
                    },
                    # the autoscaler owns the size: a later `pulumi up` must not reset it to 0
                    opts=pulumi.ResourceOptions(
                        parent=self,
                        depends_on=node_deps,
                        ignore_changes=["scalingConfig.desiredSize"],
                    ),
                )
            )

        # --- in-cluster objects -----------------------------------------------------------------
        kubeconfig = pulumi.Output.json_dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": args.cluster_name,
                        "cluster": {
                            "server": cluster.endpoint,
                            "certificate-authority-data": cluster.certificate_authority.data,
                        },
                    }
                ],
                "contexts": [
                    {
                        "name": args.cluster_name,
                        "context": {"cluster": args.cluster_name, "user": args.cluster_name},
                    }
                ],
                "current-context": args.cluster_name,
                "users": [
                    {
                        "name": args.cluster_name,
                        "user": {
                            "exec": {
                                "apiVersion": "client.authentication.k8s.io/v1beta1",
                                "command": "aws",
                                "args": [
                                    "eks",
                                    "get-token",
                                    "--cluster-name",
                                    cluster.name,
                                    "--region",
                                    region,
                                    "--output",
                                    "json",
                                ],
                                "interactiveMode": "Never",
                            }
                        },
                    }
                ],
            }
        )
        provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=kubeconfig,
            # in-cluster objects need the system nodes (the autoscaler's Deployment runs there)
            opts=pulumi.ResourceOptions(parent=self, depends_on=[system]),
        )
        addons = ClusterAddons(
            f"{name}-addons",
            ClusterAddonsArgs(
                cluster_name=args.cluster_name,
                eks_version=args.eks_version,
                oidc_provider_arn=oidc.arn,
                oidc_issuer_url=issuer,
                lake_kms_key_arn=args.lake_kms_key_arn,
                features_bucket_arn=args.features_bucket_arn,
                models_bucket_arn=args.models_bucket_arn,
                gpu_quota=gpu_quota,
                max_gpus_per_pod=max_gpus,
                models_prefix=args.models_prefix,
                namespace=args.namespace,
                service_account=args.service_account,
                tags=tags,
            ),
            opts=pulumi.ResourceOptions(parent=self, providers={"kubernetes": provider}),
        )

        self.cluster_name = cluster.name
        self.cluster_arn = cluster.arn
        self.oidc_provider_arn = oidc.arn
        self.trainer_role_arn = addons.trainer_role_arn
        self.submitter_role_arn = submitter.arn
        self.namespace = args.namespace
        self.service_account = args.service_account
        self.gpu_node_group_names = [ng.node_group_name for ng in gpu_groups]
        self.register_outputs(
            {
                "cluster_name": self.cluster_name,
                "oidc_provider_arn": self.oidc_provider_arn,
                "trainer_role_arn": self.trainer_role_arn,
                "submitter_role_arn": self.submitter_role_arn,
            }
        )


# --- the SageMaker training job role ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TrainingJobRoleArgs:
    lake_kms_key_arn: pulumi.Input[str]
    features_bucket_arn: pulumi.Input[str]
    models_bucket_arn: pulumi.Input[str]
    models_prefix: str = "training"  # code, checkpoints and model artifacts of training jobs
    tags: Mapping[str, str] = field(default_factory=dict)


class TrainingJobRole(pulumi.ComponentResource):
    """The execution role of SageMaker training jobs (`ml.remote_training`), in the VPC."""

    role_arn: pulumi.Output[str]
    role_name: pulumi.Output[str]

    def __init__(
        self, name: str, args: TrainingJobRoleArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlplatform:training:TrainingJobRole", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        partition = aws.get_partition_output().partition
        region = aws.get_region_output().region
        account = aws.get_caller_identity_output().account_id
        prefix = args.models_prefix.strip("/")
        if not prefix:
            raise TrainingClusterError("models_prefix must name a prefix of the models bucket")
        role = aws.iam.Role(
            f"{name}-role",
            assume_role_policy=assume_role_policy(
                "sagemaker.amazonaws.com", source_account=account
            ),
            description="SageMaker training jobs: features in, model artifacts out",
            tags=dict(args.tags),
            opts=child,
        )
        log_group = pulumi.Output.format(
            "arn:{0}:logs:{1}:{2}:log-group:/aws/sagemaker/TrainingJobs", partition, region, account
        )
        aws.iam.RolePolicy(
            f"{name}-policy",
            role=role.id,
            policy=policy_document(
                [
                    *training_data_statements(
                        args.features_bucket_arn,
                        args.models_bucket_arn,
                        prefix,
                        args.lake_kms_key_arn,
                        key_actions=("kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"),
                    ),
                    Statement(
                        ["kms:CreateGrant"],
                        [args.lake_kms_key_arn],
                        sid="VolumeKeyGrant",
                        conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}},
                    ),
                    Statement(
                        [
                            "logs:CreateLogGroup",
                            "logs:CreateLogStream",
                            "logs:PutLogEvents",
                            "logs:DescribeLogStreams",
                        ],
                        [log_group, pulumi.Output.concat(log_group, ":*")],
                        sid="JobLogs",
                    ),
                    Statement(
                        ["cloudwatch:PutMetricData"],
                        ["*"],
                        conditions={
                            "StringEquals": {"cloudwatch:namespace": "/aws/sagemaker/TrainingJobs"}
                        },
                        wildcard_reason="PutMetricData supports no resource-level permissions",
                    ),
                    Statement(
                        [
                            "ec2:CreateNetworkInterface",
                            "ec2:CreateNetworkInterfacePermission",
                            "ec2:DeleteNetworkInterface",
                            "ec2:DeleteNetworkInterfacePermission",
                            "ec2:DescribeNetworkInterfaces",
                            "ec2:DescribeVpcs",
                            "ec2:DescribeDhcpOptions",
                            "ec2:DescribeSubnets",
                            "ec2:DescribeSecurityGroups",
                        ],
                        ["*"],
                        wildcard_reason="SageMaker creates job network interfaces whose ids are "
                        "unknown in advance and Describe actions take no resource",
                    ),
                ]
            ),
            opts=child,
        )
        self.role_arn = role.arn
        self.role_name = role.name
        self.register_outputs({"role_arn": self.role_arn, "role_name": self.role_name})
