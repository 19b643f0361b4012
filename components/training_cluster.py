"""The EKS GPU training cluster, from pulumi-aws resources (no pulumi-eks: its children are
invisible to the offline engines and to policies). The SageMaker training job role is
`components.training_role`.

`TrainingCluster`:

* control plane: private API endpoint (public access only for `public_access_cidrs`), secrets
  envelope-encrypted with the cluster's own KMS key (rotation on, an explicit least-use policy:
  `components.cluster_key`), every control-plane log type
  into a log group created first so it carries a retention and the lake key;
* access: authentication mode `API`; access entries (`AccessEntry` + `AccessPolicyAssociation`)
  for the admin roles given and for the cluster gateway's two functions;
* the cluster gateway (`components.cluster_gateway`): Lambda functions in the private subnets that
  apply the in-cluster objects (`components.cluster_addons`) on every `pulumi up` and submit
  training Jobs for the `submitter` role, so nothing outside the VPC needs a route to the API;
* IRSA: an IAM OIDC provider from the cluster's issuer;
* images without internet: registry.k8s.io is cached in the account's ECR (a pull-through cache
  rule), which the nodes reach through the VPC endpoints;
* managed node groups: a small CPU system group (autoscaler, CoreDNS) on AL2023, and one group per
  `gpu_node_groups` entry on Bottlerocket's NVIDIA variant (its image carries the NVIDIA driver
  and device plugin), ON_DEMAND or SPOT, min 0 / desired 0, tainted
  `nvidia.com/gpu=true:NoSchedule`. Launch templates require IMDSv2 with a hop limit of 1, so no
  pod can read the node role's credentials (IRSA gives each workload its own role), and encrypt
  every gp3 volume with the cluster key;
* the VPC CNI as a managed add-on with its network policy agent on, so the training namespace's
  network policies are enforced.

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
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components.cluster_addons import (
    GPU_LABEL,
    GPU_TAINT_KEY,
    GPU_TAINT_VALUE,
    K8S_REGISTRY,
    NODE_GROUP_LABEL,
    NODE_ROLE_LABEL,
    ClusterAddons,
    ClusterAddonsArgs,
    cluster_autoscaler_image,
)
from components.cluster_gateway import ClusterGateway, ClusterGatewayArgs
from components.cluster_key import cluster_key_policy
from components.iam import Statement, assume_role_policy, policy_document
from components.limits import kms_deletion_window_problems
from components.problems import (
    GpuNodeGroupSpec,
    gpu_family_problems,
    job_submitter_problems,
    node_group_problems,
    public_access_problems,
)

CONTROL_PLANE_LOG_TYPES = ("api", "audit", "authenticator", "controllerManager", "scheduler")
# Bottlerocket's NVIDIA variant ships the driver and the Kubernetes device plugin in its image.
GPU_AMI_TYPE = "BOTTLEROCKET_x86_64_NVIDIA"
SYSTEM_AMI_TYPE = "AL2023_x86_64_STANDARD"
AL2023_ROOT_DEVICE = "/dev/xvda"
# Bottlerocket boots from a small OS volume; images and pods live on the data volume.
BOTTLEROCKET_OS_DEVICE, BOTTLEROCKET_OS_GB = "/dev/xvda", 4
BOTTLEROCKET_DATA_DEVICE = "/dev/xvdb"
# The label the cluster gateway puts on every object it applies (and prunes by).
APPLY_SET = "training-cluster"
# ECR repository name prefixes (the pull-through cache rule's `ecrRepositoryPrefix`).
_ECR_PREFIX = r"(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*"
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
    for i, g in enumerate(groups):
        problems += node_group_problems(
            i, g.name, g.instance_types, g.capacity_type, g.max_size, g.disk_gb
        )
    problems += gpu_family_problems(groups, allowed_families)
    for g in groups:
        for itype in g.instance_types:
            if itype.split(".")[0] in allowed_families:
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
    vpc_id: pulumi.Input[str]
    subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]]  # private subnets
    node_security_group_id: pulumi.Input[str]  # the network's compute group
    lake_kms_key_arn: pulumi.Input[str]
    features_bucket_arn: pulumi.Input[str]
    models_bucket_arn: pulumi.Input[str]
    # what training pods read and write: the features tables and the models-bucket prefixes of the
    # stack's models (each model's artifacts prefix)
    features_prefixes: Sequence[str]
    models_prefixes: Sequence[str]
    gpu_node_groups: Sequence[GpuNodeGroupSpec]
    gpu_instance_families: Sequence[str]
    # ECR pull-through cache prefix for registry.k8s.io; a registry-wide name, so one per stack
    image_cache_prefix: str
    eks_version: str = "1.33"
    # The autoscaler image's digest ("" pulls it by tag); see ClusterAddonsArgs.
    autoscaler_image_digest: str = ""
    public_access_cidrs: Sequence[str] = ()
    system_node_instance_type: str = "m6i.large"
    system_node_count: int = 2
    admin_role_arns: Sequence[str] = ()
    # who may submit training Jobs (assume the submitter role); none: no submitter role
    job_submitter_arns: Sequence[str] = ()
    namespace: str = "training"
    service_account: str = "trainer"
    log_retention_days: int = 30
    kms_deletion_window_days: int = 30
    tags: Mapping[str, str] = field(default_factory=dict)
    protect: bool = False

    def __post_init__(self) -> None:
        problems: list[str] = []
        if not re.fullmatch(r"[0-9A-Za-z][A-Za-z0-9_-]{0,99}", self.cluster_name):
            problems.append(
                f"cluster_name {self.cluster_name!r}: letters, digits, '-' and '_', 1-100 chars, "
                "starting with a letter or digit"
            )
        # (its length, 2 to 30, is checked with every other AWS name by the policy pack)
        if not re.fullmatch(_ECR_PREFIX, self.image_cache_prefix):
            problems.append(
                f"image_cache_prefix {self.image_cache_prefix!r}: lowercase letters, digits, "
                "'.', '_', '-' and '/' (an ECR pull-through cache prefix)"
            )
        problems += public_access_problems(self.public_access_cidrs)
        problems += job_submitter_problems(self.job_submitter_arns)
        problems += kms_deletion_window_problems(self.kms_deletion_window_days)
        for knob in ("features_prefixes", "models_prefixes"):
            prefixes = getattr(self, knob)
            if not prefixes or any(not p.strip("/") or "*" in p for p in prefixes):
                problems.append(
                    f"{knob} {list(prefixes)}: at least one key prefix, none empty or with '*' "
                    "(what training pods may read and write)"
                )
        if problems:
            raise TrainingClusterError("; ".join(problems))
        check_gpu_groups(self.gpu_node_groups, self.gpu_instance_families)
        cluster_autoscaler_image(self.eks_version)  # refuse an unpinned version before any work


def _managed_policy(partition: pulumi.Output[str], name: str) -> pulumi.Output[str]:
    return pulumi.Output.concat("arn:", partition, ":iam::aws:policy/", name)


class TrainingCluster(pulumi.ComponentResource):
    cluster_name: pulumi.Output[str]
    oidc_provider_arn: pulumi.Output[str]
    trainer_role_arn: pulumi.Output[str]
    submitter_role_arn: pulumi.Output[str] | None
    jobs_function_name: pulumi.Output[str]

    def __init__(
        self, name: str, args: TrainingClusterArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlplatform:training:TrainingCluster", name, None, opts)
        self.role_names: list[pulumi.Output[str]] = []  # every role made here (audited)
        self._tags = dict(args.tags)
        self._partition = aws.get_partition_output().partition
        self._region = aws.get_region_output().region
        self._account = aws.get_caller_identity_output().account_id
        cluster_role = self._cluster_role(name, args)
        key, volume_grant = self._cluster_key(name, args, cluster_role)
        cluster = self._control_plane(name, args, key, cluster_role)
        oidc, issuer = self._oidc_provider(name, cluster)
        self._admin_access(name, args, cluster)
        node_role = self._node_role(name, args)
        image_registry = self._image_cache(name, args, node_role)
        self._node_groups(name, args, cluster, key, node_role, volume_grant)
        gpu_quota, max_gpus = gpu_capacity(args.gpu_node_groups)
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
                features_prefixes=args.features_prefixes,
                models_prefixes=args.models_prefixes,
                k8s_image_registry=image_registry,
                autoscaler_image_digest=args.autoscaler_image_digest,
                gpu_quota=gpu_quota,
                max_gpus_per_pod=max_gpus,
                namespace=args.namespace,
                service_account=args.service_account,
                tags=self._tags,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        gateway = ClusterGateway(
            f"{name}-gateway",
            ClusterGatewayArgs(
                cluster_name=cluster.name,
                cluster_endpoint=cluster.endpoint,
                cluster_ca_data=cluster.certificate_authority.data,
                cluster_security_group_id=cluster.vpc_config.cluster_security_group_id,
                vpc_id=args.vpc_id,
                subnet_ids=args.subnet_ids,
                objects=addons.objects,
                apply_set=APPLY_SET,
                jobs_namespace=args.namespace,
                log_kms_key_arn=args.lake_kms_key_arn,
                env_kms_key_arn=key.arn,
                log_retention_days=args.log_retention_days,
                tags=self._tags,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        submitter = self._submitter(name, args, gateway)
        self._network_policy_agent(name, cluster)
        self.role_names += addons.role_names + gateway.role_names

        self.cluster_name = cluster.name
        self.cluster_arn = cluster.arn
        self.oidc_provider_arn = oidc.arn
        self.trainer_role_arn = addons.trainer_role_arn
        self.submitter_role_arn = submitter.arn if submitter is not None else None
        self.jobs_function_name = gateway.jobs_function_name
        self.namespace = args.namespace
        self.service_account = args.service_account
        self.register_outputs(
            {
                "cluster_name": self.cluster_name,
                "oidc_provider_arn": self.oidc_provider_arn,
                "trainer_role_arn": self.trainer_role_arn,
                "submitter_role_arn": self.submitter_role_arn,
                "jobs_function_name": self.jobs_function_name,
            }
        )

    # --- builders -------------------------------------------------------------------------------

    def _cluster_role(self, name: str, args: TrainingClusterArgs) -> aws.iam.Role:
        """The EKS control plane's role (before the key: the key policy names it)."""
        cluster_role = aws.iam.Role(
            f"{name}-cluster",
            assume_role_policy=assume_role_policy(
                "eks.amazonaws.com", source_account=self._account
            ),
            description=f"EKS control plane of {args.cluster_name}",
            tags=self._tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.role_names.append(cluster_role.name)
        return cluster_role

    def _cluster_key(
        self, name: str, args: TrainingClusterArgs, cluster_role: aws.iam.Role
    ) -> tuple[aws.kms.Key, aws.kms.Grant]:
        """The cluster's key (secrets, node volumes, the gateway's environment), with an explicit
        least-use policy, and the grant Auto Scaling needs to launch nodes with encrypted
        volumes."""
        # Auto Scaling launches the nodes: its service-linked role uses the key for the encrypted
        # volumes through a grant (naming the role in the key policy would fail in an account
        # where it does not exist yet).
        autoscaling_role = pulumi.Output.format(
            "arn:{0}:iam::{1}:role/aws-service-role/autoscaling.amazonaws.com/"
            "AWSServiceRoleForAutoScaling",
            self._partition,
            self._account,
        )
        key = aws.kms.Key(
            f"{name}-key",
            description=f"EKS {args.cluster_name}: secrets envelope encryption and node volumes",
            enable_key_rotation=True,
            deletion_window_in_days=args.kms_deletion_window_days,
            policy=cluster_key_policy(
                partition=self._partition,
                dns_suffix=aws.get_partition_output().dns_suffix,
                region=self._region,
                account=self._account,
                cluster_role_arn=cluster_role.arn,
                autoscaling_role_arn=autoscaling_role,
            ),
            tags=self._tags,
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )
        volume_grant = aws.kms.Grant(
            f"{name}-volume-grant",
            key_id=key.key_id,
            grantee_principal=autoscaling_role,
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
            opts=pulumi.ResourceOptions(parent=self),
        )
        return key, volume_grant

    def _control_plane(
        self, name: str, args: TrainingClusterArgs, key: aws.kms.Key, cluster_role: aws.iam.Role
    ) -> aws.eks.Cluster:
        """Role, log group and the cluster: private API, envelope encryption, every log type."""
        child = pulumi.ResourceOptions(parent=self)
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-control-plane",
            # EKS writes to exactly this name; creating it first sets retention and encryption.
            name=f"/aws/eks/{args.cluster_name}/cluster",
            retention_in_days=args.log_retention_days,
            kms_key_id=args.lake_kms_key_arn,
            tags=self._tags,
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )
        cluster_policy = aws.iam.RolePolicyAttachment(
            f"{name}-cluster",
            role=cluster_role.name,
            policy_arn=_managed_policy(self._partition, "AmazonEKSClusterPolicy"),
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
        public = bool(args.public_access_cidrs)
        return aws.eks.Cluster(
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
                # Nothing in the program authenticates as the deployer any more (the cluster
                # gateway applies the in-cluster objects), but changing this replaces the cluster.
                bootstrap_cluster_creator_admin_permissions=True,
            ),
            tags=self._tags,
            opts=pulumi.ResourceOptions(
                parent=self,
                protect=args.protect,
                depends_on=[log_group, cluster_policy, cluster_key_policy],
            ),
        )

    def _oidc_provider(
        self, name: str, cluster: aws.eks.Cluster
    ) -> tuple[aws.iam.OpenIdConnectProvider, pulumi.Output[str]]:
        issuer = cluster.identities.apply(lambda ids: ids[0].oidcs[0].issuer)  # type: ignore[index]
        oidc = aws.iam.OpenIdConnectProvider(
            f"{name}-oidc",
            url=issuer,
            client_id_lists=["sts.amazonaws.com"],
            thumbprint_lists=[EKS_OIDC_THUMBPRINT],
            tags=self._tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        return oidc, issuer

    def _access(
        self,
        logical: str,
        cluster: aws.eks.Cluster,
        principal: pulumi.Input[str],
        policy: str,
        namespaces: Sequence[str] = (),
    ) -> aws.eks.AccessPolicyAssociation:
        child = pulumi.ResourceOptions(parent=self)
        entry = aws.eks.AccessEntry(
            logical,
            cluster_name=cluster.name,
            principal_arn=principal,
            type="STANDARD",
            tags=self._tags,
            opts=child,
        )
        return aws.eks.AccessPolicyAssociation(
            logical,
            cluster_name=cluster.name,
            principal_arn=entry.principal_arn,
            policy_arn=pulumi.Output.concat(
                "arn:", self._partition, ":eks::aws:cluster-access-policy/", policy
            ),
            access_scope=aws.eks.AccessPolicyAssociationAccessScopeArgs(
                type="namespace" if namespaces else "cluster",
                namespaces=list(namespaces) if namespaces else None,
            ),
            opts=child,
        )

    def _admin_access(self, name: str, args: TrainingClusterArgs, cluster: aws.eks.Cluster) -> None:
        """Cluster admins named in the arguments (they reach the API through the VPC)."""
        for arn in args.admin_role_arns:
            digest = hashlib.sha256(arn.encode()).hexdigest()[:8]
            self._access(f"{name}-admin-{digest}", cluster, arn, "AmazonEKSClusterAdminPolicy")

    def _submitter(
        self, name: str, args: TrainingClusterArgs, gateway: ClusterGateway
    ) -> aws.iam.Role | None:
        """Who submits training Jobs (`mlplat train --on eks`): exactly the principals named, who
        may invoke the jobs gateway, which holds edit rights in the training namespace only."""
        if not args.job_submitter_arns:
            return None
        child = pulumi.ResourceOptions(parent=self)
        submitter = aws.iam.Role(
            f"{name}-submitter",
            assume_role_policy=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"AWS": sorted(args.job_submitter_arns)},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            ),
            description=f"Submit training Jobs to the {args.namespace} namespace",
            tags=self._tags,
            opts=child,
        )
        self.role_names.append(submitter.name)
        aws.iam.RolePolicy(
            f"{name}-submitter",
            role=submitter.id,
            policy=policy_document(
                [
                    Statement(
                        ["lambda:InvokeFunction"], [gateway.jobs_function_arn], sid="JobsGateway"
                    ),
                ]
            ),
            opts=child,
        )
        return submitter

    def _network_policy_agent(self, name: str, cluster: aws.eks.Cluster) -> aws.eks.Addon:
        """The VPC CNI as a managed add-on with its network policy agent, which enforces the
        namespaces' NetworkPolicies (EKS installs the CNI unmanaged, without it; the add-on takes
        that installation over). Its images come from EKS's regional ECR, through the endpoints."""
        return aws.eks.Addon(
            f"{name}-vpc-cni",
            cluster_name=cluster.name,
            addon_name="vpc-cni",
            configuration_values=json.dumps({"enableNetworkPolicy": "true"}),
            resolve_conflicts_on_create="OVERWRITE",
            resolve_conflicts_on_update="OVERWRITE",
            tags=self._tags,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _node_role(self, name: str, args: TrainingClusterArgs) -> aws.iam.Role:
        child = pulumi.ResourceOptions(parent=self)
        node_role = aws.iam.Role(
            f"{name}-node",
            assume_role_policy=assume_role_policy("ec2.amazonaws.com"),
            description=f"EKS nodes of {args.cluster_name}",
            tags=self._tags,
            opts=child,
        )
        self.role_names.append(node_role.name)
        self._node_policies = [
            aws.iam.RolePolicyAttachment(
                f"{name}-node-{suffix}",
                role=node_role.name,
                policy_arn=_managed_policy(self._partition, policy),
                opts=child,
            )
            for suffix, policy in (
                ("worker", "AmazonEKSWorkerNodePolicy"),
                ("cni", "AmazonEKS_CNI_Policy"),
                ("ecr", "AmazonEC2ContainerRegistryPullOnly"),
            )
        ]
        return node_role

    def _image_cache(
        self, name: str, args: TrainingClusterArgs, node_role: aws.iam.Role
    ) -> pulumi.Output[str]:
        """registry.k8s.io through the account's ECR: the private nodes have no internet route.

        Returns `<account>.dkr.ecr.<region>.amazonaws.com/<prefix>`. The first pull of an image
        creates its repository under the prefix and imports it, which the node role may do there
        only.
        """
        child = pulumi.ResourceOptions(parent=self)
        rule = aws.ecr.PullThroughCacheRule(
            f"{name}-k8s-cache",
            ecr_repository_prefix=args.image_cache_prefix,
            upstream_registry_url=K8S_REGISTRY,
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-node-image-cache",
            role=node_role.id,
            policy=policy_document(
                [
                    Statement(
                        ["ecr:BatchImportUpstreamImage", "ecr:CreateRepository"],
                        [
                            pulumi.Output.format(
                                "arn:{0}:ecr:{1}:{2}:repository/{3}/*",
                                self._partition,
                                self._region,
                                self._account,
                                rule.ecr_repository_prefix,
                            )
                        ],
                        sid="PullThroughCache",
                    )
                ]
            ),
            opts=child,
        )
        return pulumi.Output.format(
            "{0}.dkr.ecr.{1}.amazonaws.com/{2}",
            self._account,
            self._region,
            rule.ecr_repository_prefix,
        )

    def _launch_template(
        self,
        name: str,
        role: str,
        args: TrainingClusterArgs,
        key: aws.kms.Key,
        security_groups: Sequence[pulumi.Input[str]],
        volumes: Sequence[tuple[str, int]],
    ) -> aws.ec2.LaunchTemplate:
        """IMDSv2 only, every volume gp3 and encrypted with the cluster key."""
        what = "root" if len(volumes) == 1 else "volumes"
        return aws.ec2.LaunchTemplate(
            f"{name}-{role}",
            description=f"{args.cluster_name} {role} nodes: IMDSv2, encrypted gp3 {what}",
            update_default_version=True,
            metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
                http_endpoint="enabled",
                http_tokens="required",
                # 1: a pod (behind the node's network namespace) cannot reach the node role's
                # credentials; every workload here has its own role through IRSA
                http_put_response_hop_limit=1,
            ),
            block_device_mappings=[
                aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                    device_name=device,
                    ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                        volume_size=size_gb,
                        volume_type="gp3",
                        encrypted="true",
                        kms_key_id=key.arn,
                        delete_on_termination="true",
                    ),
                )
                for device, size_gb in volumes
            ],
            # with groups in the template EKS adds none: the cluster group is listed here
            vpc_security_group_ids=list(security_groups),
            tag_specifications=[
                aws.ec2.LaunchTemplateTagSpecificationArgs(resource_type=kind, tags=self._tags)
                for kind in ("instance", "volume")
            ],
            tags=self._tags,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _node_groups(
        self,
        name: str,
        args: TrainingClusterArgs,
        cluster: aws.eks.Cluster,
        key: aws.kms.Key,
        node_role: aws.iam.Role,
        volume_grant: aws.kms.Grant,
    ) -> None:
        """A small CPU system group, and GPU groups that scale from and to zero."""
        node_sgs = [cluster.vpc_config.cluster_security_group_id, args.node_security_group_id]
        node_deps: list[pulumi.Resource] = [*self._node_policies, volume_grant]
        system_lt = self._launch_template(
            name, "system", args, key, node_sgs, [(AL2023_ROOT_DEVICE, 50)]
        )
        aws.eks.NodeGroup(
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
            tags=self._tags,
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=node_deps, ignore_changes=["scalingConfig.desiredSize"]
            ),
        )
        template = "k8s.io/cluster-autoscaler/node-template"
        for g in args.gpu_node_groups:
            gpu_labels = {NODE_ROLE_LABEL: "gpu", NODE_GROUP_LABEL: g.name, GPU_LABEL: "true"}
            lt = self._launch_template(
                name,
                f"gpu-{g.name}",
                args,
                key,
                node_sgs,
                # Bottlerocket: a small OS volume, and the data volume images and pods live on
                [
                    (BOTTLEROCKET_OS_DEVICE, BOTTLEROCKET_OS_GB),
                    (BOTTLEROCKET_DATA_DEVICE, g.disk_gb),
                ],
            )
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
                    **self._tags,
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
