"""What runs inside the training cluster: the Kubernetes objects, and the IAM roles they use.

The objects are plain manifests (what `kubectl apply` would take), built here from the cluster's
facts and validated by the tests against the cluster version's OpenAPI schema. They are applied
from inside the VPC by the cluster gateway's deployer (`components.cluster_gateway`), because the
API endpoint is private and `pulumi up` runs outside the VPC:

* the `training` namespace (Pod Security `restricted`) with a GPU `ResourceQuota` (what the GPU
  node groups can hold at most), a `LimitRange` (defaults for containers that state no requests)
  and network policies: deny by default, then DNS and HTTPS out, never the metadata service;
* the `trainer` service account, bound through IRSA to a role that may read the features tables
  and write the artifacts prefixes of the stack's models (with the lake key), nothing else;
* the cluster autoscaler (IRSA role, service account, RBAC, Deployment on the system nodes) that
  scales the GPU node groups from zero when a Job asks for a GPU and back to zero when idle. Its
  image comes through the account's ECR pull-through cache of registry.k8s.io, because the
  private nodes have no route to the internet.

The NVIDIA device plugin is not among them: the GPU nodes run Bottlerocket's NVIDIA variant, whose
image ships the device plugin (no image to pull from nvcr.io, which ECR cannot cache).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.iam import (
    Statement,
    assume_role_policy,
    policy_document,
    training_data_statements,
)

# The registry the cluster autoscaler is published to; the stack caches it in its own ECR.
K8S_REGISTRY = "registry.k8s.io"
# The cluster autoscaler's minor version must match the cluster's Kubernetes minor version. Paths
# and tags in registry.k8s.io; pulled as `<ECR pull-through prefix>/<path>`.
CLUSTER_AUTOSCALER_IMAGES: Mapping[str, str] = {
    "1.33": "autoscaling/cluster-autoscaler:v1.33.0",
}
# Node labels and the GPU taint (the Job builder in `ml.remote_training` uses the same values).
NODE_ROLE_LABEL = "mlplatform.io/node-role"
NODE_GROUP_LABEL = "mlplatform.io/node-group"
GPU_RESOURCE = "nvidia.com/gpu"
GPU_LABEL = "nvidia.com/gpu"
GPU_TAINT_KEY = "nvidia.com/gpu"
GPU_TAINT_VALUE = "true"
AUTOSCALER_NAMESPACE = "kube-system"
# Pod Security admission labels: enforce, and warn/audit so kubectl and the audit log say why.
PSA = "pod-security.kubernetes.io"
PSA_MODES = ("enforce", "warn", "audit")
# The instance metadata service: a pod must never reach it (the node role lives there).
IMDS_CIDR = "169.254.169.254/32"
AUTOSCALER_NAME = "cluster-autoscaler"
PART_OF = {"app.kubernetes.io/part-of": "ml-platform"}


class ClusterAddonsError(ValueError):
    """The in-cluster objects cannot be built from these arguments."""


IMAGE_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def cluster_autoscaler_image(eks_version: str) -> str:
    """The autoscaler's image path and tag in registry.k8s.io for a Kubernetes minor version."""
    try:
        return CLUSTER_AUTOSCALER_IMAGES[eks_version]
    except KeyError:
        raise ClusterAddonsError(
            f"no cluster-autoscaler image pinned for Kubernetes {eks_version}; pinned: "
            f"{', '.join(sorted(CLUSTER_AUTOSCALER_IMAGES))} (the autoscaler's minor version must "
            "match the cluster's: add it to CLUSTER_AUTOSCALER_IMAGES)"
        ) from None


def irsa_trust_policy(
    provider_arn: pulumi.Input[str],
    issuer_url: pulumi.Input[str],
    namespace: str,
    service_account: str,
) -> pulumi.Output[str]:
    """Trust for exactly one service account through the cluster's OIDC provider."""
    host = pulumi.Output.from_input(issuer_url).apply(lambda url: url.removeprefix("https://"))
    return host.apply(
        lambda h: assume_role_policy(
            federated=provider_arn,
            conditions={
                "StringEquals": {
                    f"{h}:sub": f"system:serviceaccount:{namespace}:{service_account}",
                    f"{h}:aud": "sts.amazonaws.com",
                }
            },
        )
    )


@dataclass(frozen=True, slots=True)
class ClusterAddonsArgs:
    cluster_name: str
    eks_version: str
    oidc_provider_arn: pulumi.Input[str]
    oidc_issuer_url: pulumi.Input[str]
    lake_kms_key_arn: pulumi.Input[str]
    features_bucket_arn: pulumi.Input[str]
    models_bucket_arn: pulumi.Input[str]
    # what training pods read and write: the features tables and the models-bucket prefixes of the
    # stack's models (each model's artifacts prefix)
    features_prefixes: Sequence[str]
    models_prefixes: Sequence[str]
    # `<account>.dkr.ecr.<region>.amazonaws.com/<prefix>`: registry.k8s.io through the ECR cache
    k8s_image_registry: pulumi.Input[str]
    gpu_quota: int  # GPUs all training pods may request together
    max_gpus_per_pod: int
    namespace: str = "training"
    service_account: str = "trainer"
    tags: Mapping[str, str] | None = None
    # `sha256:<64 hex>` of the autoscaler image (its tag's digest in registry.k8s.io): pulled as
    # `<path>:<tag>@<digest>`, so a re-pushed tag cannot change what runs; "" pulls by tag.
    autoscaler_image_digest: str = ""


# --- the manifests (pure: Pulumi inputs in, manifest dicts out) ----------------------------------


def training_namespace_objects(
    namespace: str,
    service_account: str,
    trainer_role_arn: pulumi.Input[str],
    gpu_quota: int,
    max_gpus_per_pod: int,
) -> list[dict[str, Any]]:
    """The training namespace, its GPU quota and container defaults, and the IRSA trainer."""
    return [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": namespace,
                # Pod Security `restricted`: the training Job (`ml.remote_training`) meets it
                "labels": {**PART_OF, **{f"{PSA}/{mode}": "restricted" for mode in PSA_MODES}},
            },
        },
        {
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": {"name": "gpu-quota", "namespace": namespace, "labels": PART_OF},
            "spec": {"hard": {f"requests.{GPU_RESOURCE}": str(gpu_quota)}},
        },
        {
            "apiVersion": "v1",
            "kind": "LimitRange",
            "metadata": {"name": "container-defaults", "namespace": namespace, "labels": PART_OF},
            "spec": {
                "limits": [
                    {
                        "type": "Container",
                        "defaultRequest": {"cpu": "500m", "memory": "1Gi"},
                        "default": {"cpu": "2", "memory": "4Gi"},
                        "max": {GPU_RESOURCE: str(max_gpus_per_pod)},
                    }
                ]
            },
        },
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {
                "name": service_account,
                "namespace": namespace,
                "labels": PART_OF,
                "annotations": {"eks.amazonaws.com/role-arn": trainer_role_arn},
            },
        },
        *network_policies(namespace),
    ]


def network_policies(namespace: str) -> list[dict[str, Any]]:
    """Default deny in the namespace, then only what training pods need: DNS from kube-dns, and
    HTTPS out, which in this network reaches the VPC endpoints and S3 (there is no internet route),
    never the instance metadata service. Enforced by the VPC CNI's network policy agent."""
    everyone: dict[str, Any] = {}
    return [
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "default-deny", "namespace": namespace, "labels": PART_OF},
            "spec": {"podSelector": everyone, "policyTypes": ["Ingress", "Egress"]},
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "allow-dns-and-https", "namespace": namespace, "labels": PART_OF},
            "spec": {
                "podSelector": everyone,
                "policyTypes": ["Egress"],
                "egress": [
                    {
                        "to": [
                            {
                                "namespaceSelector": {
                                    "matchLabels": {"kubernetes.io/metadata.name": "kube-system"}
                                },
                                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                            }
                        ],
                        "ports": [
                            {"protocol": "UDP", "port": 53},
                            {"protocol": "TCP", "port": 53},
                        ],
                    },
                    {
                        "to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": [IMDS_CIDR]}}],
                        "ports": [{"protocol": "TCP", "port": 443}],
                    },
                ],
            },
        },
    ]


def autoscaler_objects(
    cluster_name: str,
    image: pulumi.Input[str],
    role_arn: pulumi.Input[str],
    region: pulumi.Input[str],
) -> list[dict[str, Any]]:
    """The cluster autoscaler: service account (IRSA), RBAC and its Deployment on system nodes."""
    ca_labels = {"app.kubernetes.io/name": AUTOSCALER_NAME}
    labels = {**PART_OF, **ca_labels}
    meta: dict[str, Any] = {
        "name": AUTOSCALER_NAME,
        "namespace": AUTOSCALER_NAMESPACE,
        "labels": labels,
    }
    subject = {"kind": "ServiceAccount", "name": AUTOSCALER_NAME, "namespace": AUTOSCALER_NAMESPACE}
    rbac = "rbac.authorization.k8s.io"
    return [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {**meta, "annotations": {"eks.amazonaws.com/role-arn": role_arn}},
        },
        {
            "apiVersion": f"{rbac}/v1",
            "kind": "ClusterRole",
            "metadata": {"name": AUTOSCALER_NAME, "labels": labels},
            "rules": _AUTOSCALER_CLUSTER_RULES,
        },
        {
            "apiVersion": f"{rbac}/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": AUTOSCALER_NAME, "labels": labels},
            "roleRef": {"apiGroup": rbac, "kind": "ClusterRole", "name": AUTOSCALER_NAME},
            "subjects": [subject],
        },
        {
            "apiVersion": f"{rbac}/v1",
            "kind": "Role",
            "metadata": meta,
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["configmaps"],
                    "verbs": ["create", "list", "watch"],
                },
                {
                    "apiGroups": [""],
                    "resources": ["configmaps"],
                    "resourceNames": [
                        "cluster-autoscaler-status",
                        "cluster-autoscaler-priority-expander",
                    ],
                    "verbs": ["delete", "get", "update", "watch"],
                },
            ],
        },
        {
            "apiVersion": f"{rbac}/v1",
            "kind": "RoleBinding",
            "metadata": meta,
            "roleRef": {"apiGroup": rbac, "kind": "Role", "name": AUTOSCALER_NAME},
            "subjects": [subject],
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": meta,
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": ca_labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "serviceAccountName": AUTOSCALER_NAME,
                        "priorityClassName": "system-cluster-critical",
                        "nodeSelector": {NODE_ROLE_LABEL: "system"},
                        "securityContext": {
                            "runAsNonRoot": True,
                            "runAsUser": 65534,
                            "fsGroup": 65534,
                            "seccompProfile": {"type": "RuntimeDefault"},
                        },
                        "containers": [
                            {
                                "name": AUTOSCALER_NAME,
                                "image": image,
                                "imagePullPolicy": "IfNotPresent",
                                "command": [
                                    "./cluster-autoscaler",
                                    "--cloud-provider=aws",
                                    f"--namespace={AUTOSCALER_NAMESPACE}",
                                    "--node-group-auto-discovery=asg:tag="
                                    "k8s.io/cluster-autoscaler/enabled,"
                                    f"k8s.io/cluster-autoscaler/{cluster_name}",
                                    "--balance-similar-node-groups",
                                    "--expander=least-waste",
                                    "--skip-nodes-with-system-pods=false",
                                    "--scale-down-unneeded-time=10m",
                                    "--scale-down-delay-after-add=5m",
                                ],
                                "env": [{"name": "AWS_REGION", "value": region}],
                                "resources": {
                                    "requests": {"cpu": "100m", "memory": "600Mi"},
                                    "limits": {"memory": "600Mi"},
                                },
                                "securityContext": {
                                    "allowPrivilegeEscalation": False,
                                    "readOnlyRootFilesystem": True,
                                    "capabilities": {"drop": ["ALL"]},
                                },
                            }
                        ],
                    },
                },
            },
        },
    ]


# --- the component: IRSA roles plus the objects that use them -------------------------------------


class ClusterAddons(pulumi.ComponentResource):
    """The IRSA roles of the in-cluster workloads and the objects (`objects`) to apply."""

    trainer_role_arn: pulumi.Output[str]
    objects: list[dict[str, Any]]

    def __init__(
        self, name: str, args: ClusterAddonsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlplatform:training:ClusterAddons", name, None, opts)
        self.role_names: list[pulumi.Output[str]] = []  # every role made here (audited)
        if args.autoscaler_image_digest and not IMAGE_DIGEST.fullmatch(
            args.autoscaler_image_digest
        ):
            raise ClusterAddonsError(
                f"autoscaler_image_digest {args.autoscaler_image_digest!r}: expected "
                "sha256:<64 hex digits>"
            )
        if args.gpu_quota < 1 or args.max_gpus_per_pod < 1:
            raise ClusterAddonsError(
                f"gpu_quota ({args.gpu_quota}) and max_gpus_per_pod ({args.max_gpus_per_pod}) "
                "must be at least 1"
            )
        image_path = cluster_autoscaler_image(args.eks_version)
        if args.autoscaler_image_digest:
            image_path = f"{image_path}@{args.autoscaler_image_digest}"
        self._tags = dict(args.tags or {})
        trainer_role = self._trainer_role(name, args)
        autoscaler_role = self._autoscaler_role(name, args)
        region = aws.get_region_output().region
        self.objects = [
            *training_namespace_objects(
                args.namespace,
                args.service_account,
                trainer_role.arn,
                args.gpu_quota,
                args.max_gpus_per_pod,
            ),
            *autoscaler_objects(
                args.cluster_name,
                pulumi.Output.concat(args.k8s_image_registry, "/", image_path),
                autoscaler_role.arn,
                region,
            ),
        ]
        self.trainer_role_arn = trainer_role.arn
        self.namespace = args.namespace
        self.service_account = args.service_account
        self.register_outputs({"trainer_role_arn": self.trainer_role_arn})

    def _trainer_role(self, name: str, args: ClusterAddonsArgs) -> aws.iam.Role:
        """Training pods: read the models' features, write their artifacts prefixes (IRSA)."""
        child = pulumi.ResourceOptions(parent=self)
        role = aws.iam.Role(
            f"{name}-trainer",
            assume_role_policy=irsa_trust_policy(
                args.oidc_provider_arn, args.oidc_issuer_url, args.namespace, args.service_account
            ),
            description="Training pods: read the features zone, write the training prefix",
            tags=self._tags,
            opts=child,
        )
        self.role_names.append(role.name)
        aws.iam.RolePolicy(
            f"{name}-trainer",
            role=role.id,
            policy=policy_document(
                training_data_statements(
                    args.features_bucket_arn,
                    args.features_prefixes,
                    args.models_bucket_arn,
                    args.models_prefixes,
                    args.lake_kms_key_arn,
                )
            ),
            opts=child,
        )
        return role

    def _autoscaler_role(self, name: str, args: ClusterAddonsArgs) -> aws.iam.Role:
        """The cluster autoscaler: scale this cluster's node groups, read what it needs (IRSA)."""
        child = pulumi.ResourceOptions(parent=self)
        partition = aws.get_partition_output()
        region = aws.get_region_output()
        account = aws.get_caller_identity_output()
        cluster_tag_condition = f"aws:ResourceTag/k8s.io/cluster-autoscaler/{args.cluster_name}"
        role = aws.iam.Role(
            f"{name}-autoscaler",
            assume_role_policy=irsa_trust_policy(
                args.oidc_provider_arn, args.oidc_issuer_url, AUTOSCALER_NAMESPACE, AUTOSCALER_NAME
            ),
            description="Cluster autoscaler: scale this cluster's node groups",
            tags=self._tags,
            opts=child,
        )
        self.role_names.append(role.name)
        aws.iam.RolePolicy(
            f"{name}-autoscaler",
            role=role.id,
            policy=policy_document(
                [
                    Statement(
                        [
                            "autoscaling:SetDesiredCapacity",
                            "autoscaling:TerminateInstanceInAutoScalingGroup",
                        ],
                        ["*"],
                        conditions={"StringEquals": {cluster_tag_condition: "owned"}},
                        wildcard_reason="EKS names the node groups' Auto Scaling groups; only "
                        "those tagged for this cluster",
                    ),
                    Statement(
                        [
                            "autoscaling:DescribeAutoScalingGroups",
                            "autoscaling:DescribeAutoScalingInstances",
                            "autoscaling:DescribeLaunchConfigurations",
                            "autoscaling:DescribeScalingActivities",
                            "autoscaling:DescribeTags",
                            "ec2:DescribeImages",
                            "ec2:DescribeInstanceTypes",
                            "ec2:DescribeLaunchTemplateVersions",
                            "ec2:GetInstanceTypesFromInstanceRequirements",
                        ],
                        ["*"],
                        wildcard_reason="Describe actions support no resource-level permissions",
                    ),
                    Statement(
                        ["eks:DescribeNodegroup"],
                        # labels and taints of managed node groups, for scale from zero
                        [
                            pulumi.Output.format(
                                "arn:{0}:eks:{1}:{2}:nodegroup/{3}/*",
                                partition.partition,
                                region.region,
                                account.account_id,
                                args.cluster_name,
                            )
                        ],
                        sid="ReadNodeGroups",
                    ),
                ]
            ),
            opts=child,
        )
        return role


# The upstream cluster-autoscaler RBAC (autodiscover example), as data.
_AUTOSCALER_CLUSTER_RULES: list[dict[str, Any]] = [
    {"apiGroups": [""], "resources": ["events", "endpoints"], "verbs": ["create", "patch"]},
    {"apiGroups": [""], "resources": ["pods/eviction"], "verbs": ["create"]},
    {"apiGroups": [""], "resources": ["pods/status"], "verbs": ["update"]},
    {
        "apiGroups": [""],
        "resources": ["endpoints"],
        "resourceNames": [AUTOSCALER_NAME],
        "verbs": ["get", "update"],
    },
    {"apiGroups": [""], "resources": ["nodes"], "verbs": ["watch", "list", "get", "update"]},
    {
        "apiGroups": [""],
        "resources": [
            "namespaces",
            "pods",
            "services",
            "replicationcontrollers",
            "persistentvolumeclaims",
            "persistentvolumes",
        ],
        "verbs": ["watch", "list", "get"],
    },
    {
        "apiGroups": ["apps"],
        "resources": ["statefulsets", "replicasets", "daemonsets"],
        "verbs": ["watch", "list", "get"],
    },
    {"apiGroups": ["policy"], "resources": ["poddisruptionbudgets"], "verbs": ["watch", "list"]},
    {
        "apiGroups": ["storage.k8s.io"],
        "resources": [
            "storageclasses",
            "csinodes",
            "csidrivers",
            "csistoragecapacities",
            "volumeattachments",
        ],
        "verbs": ["watch", "list", "get"],
    },
    {
        "apiGroups": ["batch"],
        "resources": ["jobs", "cronjobs"],
        "verbs": ["watch", "list", "get", "patch"],
    },
    {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
    {
        "apiGroups": ["coordination.k8s.io"],
        "resources": ["leases"],
        "resourceNames": [AUTOSCALER_NAME],
        "verbs": ["get", "update"],
    },
]
